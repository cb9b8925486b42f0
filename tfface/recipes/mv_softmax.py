"""MV-Softmax paper, Table 3 row "Softmax" (Baseline).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020; § "Experimental Settings", results in Tables 3,
4 and 5 (t chosen in Table 2).

Loss: eq. 1, softmax over s·cos θ with normalised weights and features
(tfface NormFace, s = 32), not a plain fully connected layer: the base setting.

Base: MV_SOFTMAX in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mv_softmax --workdir runs/mv_softmax
"""
from tfface.recipes._bases import MV_SOFTMAX

RECIPE = MV_SOFTMAX.derive(
    name="mv_softmax",
    cite="Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    description="MV-Softmax Table 3: Softmax, AttentionNet-IRSE, MS1M-v1c-R",
)
