"""MV-Softmax paper, Table 3 row "MV-AM-Softmax-f (0.25)" (Ours).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 6 with the AM margin f = cos θ_y − 0.35 and the fixed re-weighting of eq. 7,
t = 0.25 (Table 2).

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_am_f --workdir runs/mv_am_f
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_am_f",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: MV-AM-Softmax-f (0.25), AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "mv_softmax", "scale": 32.0, "margin": 0.35, "t": 0.25, "margin_type": "am", "adaptive": False},
)
