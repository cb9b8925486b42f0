"""CurricularFace paper, convergence experiment: CurricularFace with MobileFaceNet, m = 0.5.

Paper: Y. Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020;
§4.2 and Fig. 5.

Convergence experiment (§4.2, Fig. 5): MobileFaceNet on CASIA-WebFace with m = 0.5; CurricularFace
converges where ArcFace (curricularface_arcface_mobilefacenet_casia) does not.

Base: CURRICULARFACE in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train curricularface_mobilefacenet_casia --workdir runs/curricularface_mobilefacenet_casia
"""
from tfface.recipes._bases import CURRICULARFACE

RECIPE = CURRICULARFACE.derive(
    name="curricularface_mobilefacenet_casia",
    description="CurricularFace Fig. 5: CurricularFace (m=0.5), MobileFaceNet on CASIA-WebFace",
    cite="Huang et al., CurricularFace (CVPR 2020), §4.2, Fig. 5",
    backbone={"name": "mobilefacenet", "embedding_size": 512},
)
