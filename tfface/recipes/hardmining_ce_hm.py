"""Hard-Mining loss paper, row "Hard-Mining Cross-Entropy loss" (L_HM_CE).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: Hard-Mining (Algorithm 1, §II-B to §II-E) over cross-entropy over a fully connected layer with bias (eq. 1): per sample x = β·L,
loss = α·x·σ(A·(x − B)), α = 1.5, β = 1.1, A = 35, B = 0.75.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables I and II (LFW, YTF):
    tfface eval --model runs/hardmining_ce_hm --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --out runs/hardmining_ce_hm/eval

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_ce_hm --workdir runs/hardmining_ce_hm
"""
from tfface.recipes._bases import HARD_MINING, HARD_MINING_LOSS

RECIPE = HARD_MINING.derive(
    name="hardmining_ce_hm",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    loss=HARD_MINING_LOSS,
    description="Hard-Mining paper: Hard-Mining Cross-Entropy, ResNet18 on CASIA-WebFace",
)
