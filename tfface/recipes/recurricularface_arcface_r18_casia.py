"""ReCurricularFace paper, row "ArcFace" of Tables 1-3 (ResNet18 on CASIA-WebFace).

Paper: Sang & Yang, "ReCurricularFace"; §4.2 (implementation details), results in Tables 1, 2
and 3.

Head: ArcFace (s = 64, m = 0.5).

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
