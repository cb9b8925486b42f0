"""Hard-Mining loss paper, row "Cross-Entropy loss" (L_CE).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: cross-entropy over a fully connected layer with bias (eq. 1); the baseline of hardmining_ce_hm.

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_ce --workdir runs/hardmining_ce
"""
from tfface.recipes._bases import HARD_MINING

RECIPE = HARD_MINING.derive(
    name="hardmining_ce",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    description="Hard-Mining paper baseline: Cross-Entropy, ResNet18 on CASIA-WebFace",
)
