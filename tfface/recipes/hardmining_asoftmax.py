"""Hard-Mining loss paper, row "Angular-Softmax loss" (L_AS).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: A-Softmax (SphereFace, eq. 6), ψ(θ) = (-1)^k cos(mθ) - 2k, m = 4 with
SphereFace's λ annealing (tfface's defaults: base 1000, γ = 0.12, power 1, λ_min = 5); the baseline of hardmining_asoftmax_hm.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables I and II (LFW, YTF):
    tfface eval --model runs/hardmining_asoftmax --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --out runs/hardmining_asoftmax/eval

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_asoftmax --workdir runs/hardmining_asoftmax
"""
from tfface.recipes._bases import HARD_MINING

RECIPE = HARD_MINING.derive(
    name="hardmining_asoftmax",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    head={"name": "sphereface", "margin": 4},
    description="Hard-Mining paper baseline: Angular-Softmax, ResNet18 on CASIA-WebFace",
)
