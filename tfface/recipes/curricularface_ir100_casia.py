"""CurricularFace paper: CurricularFace with ResNet100 on CASIA-WebFace.

Paper: Y. Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020;
§4.1, §4.3; Table 6 (MegaFace, small training-set protocol: CASIA-WebFace).

Head: CurricularFace (eqs. 8-10): target cos(θ_y + m); a hard negative (cos θ_j > cos(θ_y + m))
becomes cos θ_j·(t + cos θ_j); t ← 0.01·r + 0.99·t from t = 0 (eq. 9, α = 0.99).

Base: CURRICULARFACE in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train curricularface_ir100_casia --workdir runs/curricularface_ir100_casia
"""
from tfface.recipes._bases import CURRICULARFACE

RECIPE = CURRICULARFACE.derive(
    name="curricularface_ir100_casia",
    description="CurricularFace (s=64, m=0.5), iresnet100 on CASIA-WebFace, 50 epochs",
    cite="Huang et al., CurricularFace (CVPR 2020), §4.1, §4.3, Table 6",
    backbone={"name": "iresnet100", "embedding_size": 512, "dropout": 0.4},
)
