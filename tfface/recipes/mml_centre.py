"""Minimum Margin Loss paper, scheme "Softmax Loss + Centre Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Centre Loss").

Loss: eq. 3, softmax + α·centre loss (eq. 2, a sum over the batch) with α = 5e-5 (§3.1 "Test
settings": α of eq. 12). This run's weights start the MML scheme (mml_centre_mml).

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 2 (MegaFace, FaceScrub probes, 1M distractors):
    tfface eval --model runs/mml_centre --protocol megaface --data DATA_MEGAFACE --flip concat --out runs/mml_centre/eval
- Table 3 (LFW, YTF):
    tfface eval --model runs/mml_centre --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --flip concat --out runs/mml_centre/eval
- Table 4 (SLLFW):
    tfface eval --model runs/mml_centre --protocol sllfw --data DATA_SLLFW --flip concat --out runs/mml_centre/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/mml_centre --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip concat --out runs/mml_centre/eval

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_centre --workdir runs/mml_centre
"""
from tfface.recipes._bases import MML, MML_CENTRE, MML_CENTRES

RECIPE = MML.derive(
    name="mml_centre",
    description="MML paper: softmax + centre loss (alpha=5e-5, summed)",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
    aux_losses={"centre": MML_CENTRE},
    centres=MML_CENTRES,
)
