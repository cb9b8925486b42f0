"""MV-Softmax paper, Table 3 row "MV-Arc-Softmax-a (0.3)" (Ours).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 6 with the Arc margin f = cos(θ_y + 0.5) and the adaptive re-weighting of
eq. 8, h = e^(s·t·(cos θ_k + 1)·I_k), t = 0.3 (Table 2).

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_arc_a --workdir runs/mv_arc_a
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_arc_a",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: MV-Arc-Softmax-a (0.3), AttentionNet-IRSE, MS1M-v1c-R",
    head={"name": "mv_softmax", "scale": 32.0, "margin": 0.5, "t": 0.3, "margin_type": "arc", "adaptive": True},
)
