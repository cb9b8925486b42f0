"""Hard-Mining loss paper, row "Hard-Mining Angular-Softmax loss" (L_HM_AS).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition"; §III-D, results in Table I (CASIA-WebFace training).

Loss: Hard-Mining (Algorithm 1, §II-B to §II-E) over A-Softmax (SphereFace, eq. 6), ψ(θ) = (-1)^k cos(mθ) - 2k, m = 4 with
SphereFace's λ annealing (tfface's defaults: base 1000, γ = 0.12, power 1, λ_min = 5): per sample x = β·L,
loss = α·x·σ(A·(x − B)), α = 1.5, β = 1.1, A = 35, B = 0.75.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables I and II (LFW, YTF):
    tfface eval --model runs/hardmining_asoftmax_hm --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --out runs/hardmining_asoftmax_hm/eval

Base: HARD_MINING in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train hardmining_asoftmax_hm --workdir runs/hardmining_asoftmax_hm
"""
from tfface.recipes._bases import HARD_MINING, HARD_MINING_LOSS

RECIPE = HARD_MINING.derive(
    name="hardmining_asoftmax_hm",
    cite="Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    head={"name": "sphereface", "margin": 4},
    loss=HARD_MINING_LOSS,
    description="Hard-Mining paper: Hard-Mining Angular-Softmax, ResNet18 on CASIA-WebFace",
)
