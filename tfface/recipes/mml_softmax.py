"""Minimum Margin Loss paper, scheme "Softmax Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Softmax Loss").

Loss: softmax cross-entropy over a fully connected layer with bias (eq. 1): the base setting.

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Table 2 (MegaFace, FaceScrub probes, 1M distractors):
    tfface eval --model runs/mml_softmax --protocol megaface --data DATA_MEGAFACE --flip concat --out runs/mml_softmax/eval
- Table 3 (LFW, YTF):
    tfface eval --model runs/mml_softmax --protocol lfw --data DATA_LFW --protocol ytf --data DATA_YTF --flip concat --out runs/mml_softmax/eval
- Table 4 (SLLFW):
    tfface eval --model runs/mml_softmax --protocol sllfw --data DATA_SLLFW --flip concat --out runs/mml_softmax/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/mml_softmax --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip concat --out runs/mml_softmax/eval

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_softmax --workdir runs/mml_softmax
"""
from tfface.recipes._bases import MML

RECIPE = MML.derive(
    name="mml_softmax",
    description="MML paper: softmax baseline, Inception-ResNet-v1 on VGGFace2",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
)
