"""Hard-Mining loss paper, row "Cross-Entropy loss" (L_CE).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: cross-entropy over a fully connected layer with bias (eq. 1); the baseline of hardmining_ce_hm.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables I and II (LFW, YTF):
    tfface eval --model runs/hardmining_ce --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --out runs/hardmining_ce/eval

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_ce --workdir runs/hardmining_ce
"""
from tfface.recipes._bases import HARD_MINING

RECIPE = HARD_MINING.derive(
    name="hardmining_ce",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    description="Hard-Mining paper baseline: Cross-Entropy, ResNet18 on CASIA-WebFace",
)
