"""MV-Softmax paper, Table 3 row "F-Softmax" (Mining-based).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 2 with g(p_y) = (1 − p_y)^γ, γ = 2 (Focal loss) over the eq. 1 logits.

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_f_softmax --workdir runs/mv_f_softmax
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_f_softmax",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: F-Softmax, AttentionNet-IRSE, MS1M-v1c-R",
    loss={"name": "focal", "gamma": 2.0},
)
