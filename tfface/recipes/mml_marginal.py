"""Minimum Margin Loss paper, scheme "Softmax Loss + Marginal Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Marginal Loss").

Loss: eq. 5, softmax + λ·marginal loss (eq. 6) on L2-normalised features.
Not stated in the paper: threshold θ = 1.2 and error margin ξ = 0.3 (Deng et al., CVPRW 2017,
MarginalLoss's defaults); λ = 1.0 (eq. 6 is a mean of O(1) hinge terms on unit vectors).

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
