"""CurricularFace paper, convergence experiment: CurricularFace with MobileFaceNet, m = 0.5.

Paper: Y. Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020;
§4.2 and Fig. 5.

Convergence experiment (§4.2, Fig. 5): MobileFaceNet on CASIA-WebFace with m = 0.5; CurricularFace
converges where ArcFace (curricularface_arcface_mobilefacenet_casia) does not.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Fig. 5 (convergence; evaluate as Table 4):
    tfface eval --model runs/curricularface_mobilefacenet_casia --protocol lfw --data DATA_LFW --protocol cfp_fp --data DATA_CFP_FP --protocol agedb_30 --data DATA_AGEDB_30 --flip sum --out runs/curricularface_mobilefacenet_casia/eval

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
