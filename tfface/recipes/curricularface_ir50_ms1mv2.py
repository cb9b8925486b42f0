"""CurricularFace paper: CurricularFace with ResNet50 on MS1MV2.

Paper: Y. Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020;
§4.1, §4.3; Table 6 (ResNet50 on MS1MV2, compared with AdaptiveFace).

Head: CurricularFace (eqs. 8-10): target cos(θ_y + m); a hard negative (cos θ_j > cos(θ_y + m))
becomes cos θ_j·(t + cos θ_j); t ← 0.01·r + 0.99·t from t = 0 (eq. 9, α = 0.99).

Base: CURRICULARFACE in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train curricularface_ir50_ms1mv2 --workdir runs/curricularface_ir50_ms1mv2
"""
from tfface.recipes._bases import CURRICULARFACE, CURRICULARFACE_MS1MV2

RECIPE = CURRICULARFACE.derive(
    CURRICULARFACE_MS1MV2,
    name="curricularface_ir50_ms1mv2",
    description="CurricularFace (s=64, m=0.5), iresnet50 on MS1MV2, 24 epochs",
    cite="Huang et al., CurricularFace (CVPR 2020), §4.1, §4.3, Table 6",
)
