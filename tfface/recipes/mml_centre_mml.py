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

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 2 (MegaFace, FaceScrub probes, 1M distractors):
    tfface eval --model runs/mml_centre_mml --protocol megaface --data DATA_MEGAFACE --flip concat --out runs/mml_centre_mml/eval
- Table 3 (LFW, YTF):
    tfface eval --model runs/mml_centre_mml --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --flip concat --out runs/mml_centre_mml/eval
- Table 4 (SLLFW):
    tfface eval --model runs/mml_centre_mml --protocol sllfw --data DATA_SLLFW --flip concat --out runs/mml_centre_mml/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/mml_centre_mml --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip concat --out runs/mml_centre_mml/eval

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
