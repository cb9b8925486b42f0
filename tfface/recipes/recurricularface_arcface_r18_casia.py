"""ReCurricularFace paper, row "ArcFace" of Tables 1-3 (ResNet18 on CASIA-WebFace).

Paper: Sang & Yang, "ReCurricularFace"; §4.2 (implementation details), results in Tables 1, 2
and 3.

Head: ArcFace (s = 64, m = 0.5).

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 1 (LFW, AgeDB-30, CFP-FP):
    tfface eval --model runs/recurricularface_arcface_r18_casia --protocol lfw --data DATA_LFW --protocol agedb_30 --data DATA_AGEDB_30 --protocol cfp_fp --data DATA_CFP_FP --flip sum --out runs/recurricularface_arcface_r18_casia/eval
- Table 2 (IJB-B, IJB-C):
    tfface eval --model runs/recurricularface_arcface_r18_casia --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip sum --out runs/recurricularface_arcface_r18_casia/eval
- Table 3 (TinyFace):
    tfface eval --model runs/recurricularface_arcface_r18_casia --protocol tinyface --data DATA_TINYFACE --flip sum --out runs/recurricularface_arcface_r18_casia/eval

Base: RECURRICULARFACE in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train recurricularface_arcface_r18_casia --workdir runs/recurricularface_arcface_r18_casia
"""
from tfface.recipes._bases import RECURRICULARFACE

RECIPE = RECURRICULARFACE.derive(
    name="recurricularface_arcface_r18_casia",
    description="ReCurricularFace Table 1: ArcFace, ResNet18 on CASIA-WebFace",
    cite="Sang & Yang, ReCurricularFace, §4.2, Tables 1-3",
    head={"name": "arcface", "scale": 64.0, "margin": 0.5},
)
