"""Minimum Margin Loss paper, scheme "Softmax Loss + Marginal Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Marginal Loss").

Loss: eq. 5, softmax + λ·marginal loss (eq. 6) on L2-normalised features.
Not stated in the paper: threshold θ = 1.2 and error margin ξ = 0.3 (Deng et al., CVPRW 2017,
MarginalLoss's defaults); λ = 1.0 (eq. 6 is a mean of O(1) hinge terms on unit vectors).

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 2 (MegaFace, FaceScrub probes, 1M distractors):
    tfface eval --model runs/mml_marginal --protocol megaface --data DATA_MEGAFACE --flip concat --out runs/mml_marginal/eval
- Table 3 (LFW, YTF):
    tfface eval --model runs/mml_marginal --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --flip concat --out runs/mml_marginal/eval
- Table 4 (SLLFW):
    tfface eval --model runs/mml_marginal --protocol sllfw --data DATA_SLLFW --flip concat --out runs/mml_marginal/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/mml_marginal --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip concat --out runs/mml_marginal/eval

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_marginal --workdir runs/mml_marginal
"""
from tfface.recipes._bases import MML, aux

RECIPE = MML.derive(
    name="mml_marginal",
    description="MML paper: softmax + marginal loss",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
    aux_losses={"marginal": aux("marginal", 1.0, threshold=1.2, error_margin=0.3)},
)
