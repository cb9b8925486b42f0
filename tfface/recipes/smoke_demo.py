"""smoke_demo: the setting ``tfface demo`` trains, about a minute of CPU on two cores.

Not a paper setting. It is the smoke recipe's tiny backbone and CosFace head (Wang et al., CVPR
2018, at a reduced scale and margin, see ``smoke``), tuned for held-out accuracy per CPU-second
on the embedded synthetic set (the table in docs/getting_started.md, "What the demo trains"):

* 32×32 images: the synthetic identities differ in face geometry and colours, which 32 pixels
  keep; 64×64 costs four times the convolutions for no held-out gain in a one-minute budget.
* ``pooling="flatten"`` (BN → flatten → FC → BN, the face-network output block) instead of a
  global average: the embedding keeps where each feature is (eyes above nose above mouth), the
  largest single gain (held-out accuracy 0.88 → 0.93 at equal cost).
* many identities with few images each: verification of *unseen* identities improves with the
  number of training identities far more than with images per identity (the model otherwise
  learns the training identities by heart: training accuracy 1.0, held-out 0.92).
* 100 held-out identities, 10 identity-disjoint folds of 100 matched + 100 mismatched pairs: a
  stable held-out figure (fold std about 0.02) at little cost.
"""
from tfface.recipe import Recipe

RECIPE = Recipe.from_dict({
    "name": "smoke_demo",
    "description": "tfface demo: tiny flatten backbone + CosFace on the synthetic set at 32x32, about a minute of CPU",
    "cite": "not a paper setting; CosFace (Wang et al., CVPR 2018) with a reduced scale and margin",
    "data": {
        "train": "synthetic",
        "image_size": [32, 32],
        "batch_size": 64,
        "synthetic": {"num_identities": 400, "num_test_identities": 100, "image_size": 32,
                      "min_images": 5, "max_images": 20, "test_images_per_identity": 10,
                      "folds": 10, "pairs_per_fold": 100},
    },
    "backbone": {"name": "tiny", "embedding_size": 64, "widths": [16, 32, 64], "pooling": "flatten"},
    "head": {"name": "cosface", "scale": 16.0, "margin": 0.2},
    "schedule": {"learning_rate": 0.1, "unit": "epoch", "boundaries": [12], "factor": 0.1, "warmup": 1},
    "epochs": 15,
    "checkpoint_every": 1000,
})
