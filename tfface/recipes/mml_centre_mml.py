"""Minimum Margin Loss paper, scheme "Softmax Loss + Centre Loss + MML".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "MML").

Loss: eq. 12, softmax + α·centre + β·MML with α = 5e-5, β = 5e-8, M = 280 (§3.1, §3.2).
MML (eq. 13) penalises class-centre pairs closer than M, as the text says (the printed eq. 13
has the sign reversed; see the design notes). tfface sums eq. 13 over unordered pairs; the
printed double sum counts each pair twice, so β acts at half its literal size.

Two-stage training as the paper's: "Softmax Loss + Centre Loss + MML loads the trained model of
Softmax Loss + Centre Loss as the pre-trained model" (§3.1). init_from points at that run (train
mml_centre with --workdir runs/mml_centre first). The one-run form is mml_centre_mml_onestage.

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_centre_mml --workdir runs/mml_centre_mml
"""
from tfface.recipes._bases import MML, MML_CENTRE, MML_CENTRES, aux

RECIPE = MML.derive(
    name="mml_centre_mml",
    description="MML paper: softmax + centre + MML (M=280), started from the Centre run",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
    aux_losses={"centre": MML_CENTRE, "mml": aux("minimum_margin", 5e-8, margin=280.0)},
    centres=MML_CENTRES,
    init_from="runs/mml_centre",
)
