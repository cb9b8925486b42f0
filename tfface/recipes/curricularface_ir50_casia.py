"""CurricularFace paper: CurricularFace with ResNet50 on CASIA-WebFace.

Paper: Y. Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020;
§4.1; the CASIA-WebFace setting of the ablations in Tables 2 and 3 (LFW, CFP-FP).
The paper does not name the backbone of those ablations; ResNet50 is the smaller of its two.

Head: CurricularFace (eqs. 8-10): target cos(θ_y + m); a hard negative (cos θ_j > cos(θ_y + m))
becomes cos θ_j·(t + cos θ_j); t ← 0.01·r + 0.99·t from t = 0 (eq. 9, α = 0.99).

Base: CURRICULARFACE in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train curricularface_ir50_casia --workdir runs/curricularface_ir50_casia
"""
from tfface.recipes._bases import CURRICULARFACE

RECIPE = CURRICULARFACE.derive(
    name="curricularface_ir50_casia",
    description="CurricularFace (s=64, m=0.5), iresnet50 on CASIA-WebFace, 50 epochs",
    cite="Huang et al., CurricularFace (CVPR 2020), §4.1, Tables 2-3",
)
