"""Hard-Mining loss paper, row "ArcFace loss" (L_AF).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: ArcFace (eq. 8), cos(θ_y + m); s = 64, m = 0.5, the ArcFace paper's
values (eq. 8 names s and m only); the baseline of hardmining_arcface_hm.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables I and II (LFW, YTF):
    tfface eval --model runs/hardmining_arcface --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --out runs/hardmining_arcface/eval

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_arcface --workdir runs/hardmining_arcface
"""
from tfface.recipes._bases import HARD_MINING

RECIPE = HARD_MINING.derive(
    name="hardmining_arcface",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    head={"name": "arcface", "scale": 64.0, "margin": 0.5},
    description="Hard-Mining paper baseline: ArcFace, ResNet18 on CASIA-WebFace",
)
