"""Minimum Margin Loss paper, scheme "Softmax Loss + Range Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Range Loss").

Loss: eq. 7, softmax + λ·range loss (eqs. 8-11) with n = 2 (§2.2: "n = 2 is the best choice").
Not stated in the paper ("all schemes use the same parameter settings"): M of eq. 10 = 280, the
MML minimum margin (both are squared distances between centres of the same features);
λ = 5e-5, the centre-loss weight; α = β = 1 in eq. 8.

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_range --workdir runs/mml_range
"""
from tfface.recipes._bases import MML, aux

RECIPE = MML.derive(
    name="mml_range",
    description="MML paper: softmax + range loss (n=2, M=280)",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
    aux_losses={"range": aux("range", 5e-5, k=2, margin=280.0, alpha=1.0, beta=1.0)},
)
