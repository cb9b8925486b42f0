"""smoke: a one-minute CPU run on the embedded synthetic data set (tests and ``tfface demo``).

Not a paper setting. The ``tiny`` backbone (three strided 3×3 convolutions, 64-d) trains on 64×64
synthetic faces of 100 identities with CosFace (Wang et al., CVPR 2018) at a reduced scale and
margin, s=16, m=0.2.

Why not ArcFace m=0.5, s=64: an additive angular margin that large, from scratch, on a small
backbone and a short schedule, can fail to converge (CurricularFace, Huang et al. CVPR 2020, §4.2
and Fig. 5: NaN loss with MobileFaceNet; design.md "known pitfall"). At initialisation every
target angle is near 90°, where cos(θ+m) pushes the target logit far below the others and the
gradient mostly shrinks the features. CosFace's additive cosine margin keeps the target logit a
monotonic, bounded shift of cos θ at every angle, and s=16 (instead of 64) keeps the softmax out of
saturation for 100 classes, so the loss falls from the first steps; m=0.2 still separates the
held-out identities (verification far above chance after about a minute on two CPU cores).
A short linear warm-up (one epoch) and one ÷10 step near the end follow the papers' step schedules.
"""
from tfface.recipe import Recipe

RECIPE = Recipe.from_dict({
    "name": "smoke",
    "description": "tiny backbone + CosFace(s=16, m=0.2) on the synthetic set, about a minute of CPU",
    "cite": "not a paper setting; CosFace (Wang et al., CVPR 2018) with a reduced scale and margin",
    "data": {
        "train": "synthetic",
        "image_size": [64, 64],
        "batch_size": 64,
        "synthetic": {"num_identities": 100, "num_test_identities": 50, "image_size": 64,
                      "min_images": 10, "max_images": 40, "pairs_per_fold": 50},
    },
    "backbone": {"name": "tiny", "embedding_size": 64},
    "head": {"name": "cosface", "scale": 16.0, "margin": 0.2},
    "schedule": {"learning_rate": 0.1, "unit": "epoch", "boundaries": [8], "factor": 0.1, "warmup": 1},
    "epochs": 10,
    "checkpoint_every": 50,
})
