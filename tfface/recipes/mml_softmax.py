"""Minimum Margin Loss paper, scheme "Softmax Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020); §3.1, results in Tables 2, 3, 4 and 5 (row "Softmax Loss").

Loss: softmax cross-entropy over a fully connected layer with bias (eq. 1): the base setting.

Base: MML in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train mml_softmax --workdir runs/mml_softmax
"""
from tfface.recipes._bases import MML

RECIPE = MML.derive(
    name="mml_softmax",
    description="MML paper: softmax baseline, Inception-ResNet-v1 on VGGFace2",
    cite="Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
)
