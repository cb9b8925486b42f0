"""Minimum Margin Loss paper, scheme "Softmax Loss + Range Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Range Loss").

Loss: eq. 7, softmax + λ·range loss (eqs. 8-11) with n = 2 (§2.2: "n = 2 is the best choice").
Not stated in the paper ("all schemes use the same parameter settings"): M of eq. 10 = 280, the
MML minimum margin (both are squared distances between centres of the same features);
λ = 5e-5, the centre-loss weight; α = β = 1 in eq. 8.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 2 (MegaFace, FaceScrub probes, 1M distractors):
    tfface eval --model runs/mml_range --protocol megaface --data DATA_MEGAFACE --flip concat --out runs/mml_range/eval
- Table 3 (LFW, YTF):
    tfface eval --model runs/mml_range --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --flip concat --out runs/mml_range/eval
- Table 4 (SLLFW):
    tfface eval --model runs/mml_range --protocol sllfw --data DATA_SLLFW --flip concat --out runs/mml_range/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/mml_range --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip concat --out runs/mml_range/eval

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
