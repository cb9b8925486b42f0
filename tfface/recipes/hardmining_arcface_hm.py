"""Hard-Mining loss paper, row "Hard-Mining ArcFace loss" (L_HM_AF).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: Hard-Mining (Algorithm 1, §II-B to §II-E) over ArcFace (eq. 8), cos(θ_y + m); s = 64, m = 0.5, the ArcFace paper's
values (eq. 8 names s and m only): per sample x = β·L,
loss = α·x·σ(A·(x − B)), α = 1.5, β = 1.1, A = 35, B = 0.75.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables I and II (LFW, YTF):
    tfface eval --model runs/hardmining_arcface_hm --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --out runs/hardmining_arcface_hm/eval

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_arcface_hm --workdir runs/hardmining_arcface_hm
"""
from tfface.recipes._bases import HARD_MINING, HARD_MINING_LOSS

RECIPE = HARD_MINING.derive(
    name="hardmining_arcface_hm",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    head={"name": "arcface", "scale": 64.0, "margin": 0.5},
    loss=HARD_MINING_LOSS,
    description="Hard-Mining paper: Hard-Mining ArcFace, ResNet18 on CASIA-WebFace",
)
