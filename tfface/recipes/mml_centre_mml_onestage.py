"""Minimum Margin Loss paper, scheme "Softmax Loss + Centre Loss + MML (one run)".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "MML").

Loss: eq. 12 as mml_centre_mml, in one run (§3.2, footnote 2: "initialising the factor β to 0
and then setting it to 5e-8 after a certain number of epochs. These two modes are equivalent").
Our choice: β switches on at step 100,000, the end of the first learning-rate stage, when the
centres have been learned.
MML (eq. 13) penalises class-centre pairs closer than M, as the text says (the printed eq. 13
has the sign reversed; see the design notes). tfface sums eq. 13 over unordered pairs; the
printed double sum counts each pair twice, so β acts at half its literal size.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 2 (MegaFace, FaceScrub probes, 1M distractors):
    tfface eval --model runs/mml_centre_mml_onestage --protocol megaface --data DATA_MEGAFACE --flip concat --out runs/mml_centre_mml_onestage/eval
- Table 3 (LFW, YTF):
    tfface eval --model runs/mml_centre_mml_onestage --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --flip concat --out runs/mml_centre_mml_onestage/eval
- Table 4 (SLLFW):
    tfface eval --model runs/mml_centre_mml_onestage --protocol sllfw --data DATA_SLLFW --flip concat --out runs/mml_centre_mml_onestage/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/mml_centre_mml_onestage --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip concat --out runs/mml_centre_mml_onestage/eval

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_centre_mml_onestage --workdir runs/mml_centre_mml_onestage
"""
from tfface.recipes._bases import MML, MML_CENTRE, MML_CENTRES, aux

RECIPE = MML.derive(
    name="mml_centre_mml_onestage",
    description="MML paper: softmax + centre + MML in one run (beta 0 until step 100K)",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
    aux_losses={"centre": MML_CENTRE, "mml": aux("minimum_margin", {0: 0.0, 100_000: 5e-8}, margin=280.0)},
    centres=MML_CENTRES,
)
