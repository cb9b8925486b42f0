"""MV-Softmax paper, Table 3 row "AM-Softmax" (Margin-based).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 3 with f(m2, θ) = cos θ − m2, m2 = 0.35, s = 32 (AM-Softmax / CosFace).

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_am_softmax --workdir runs/mv_am_softmax
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_am_softmax",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: AM-Softmax, AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "cosface", "scale": 32.0, "margin": 0.35},
)
