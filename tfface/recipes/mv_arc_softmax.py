"""MV-Softmax paper, Table 3 row "Arc-Softmax" (Margin-based).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 3 with f(m3, θ) = cos(θ + m3), m3 = 0.5, s = 32 (ArcFace).

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_arc_softmax --workdir runs/mv_arc_softmax
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_arc_softmax",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: Arc-Softmax, AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "arcface", "scale": 32.0, "margin": 0.5},
)
