"""MV-Softmax paper, Table 3 row "F-Arc-Softmax" (Naive-fused).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: Focal (γ = 2) over Arc-Softmax logits (m = 0.5, s = 32).

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_f_arc_softmax --workdir runs/mv_f_arc_softmax
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_f_arc_softmax",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: F-Arc-Softmax, AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "arcface", "scale": 32.0, "margin": 0.5},
    loss={"name": "focal", "gamma": 2.0},
)
