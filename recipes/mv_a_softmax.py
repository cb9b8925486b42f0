"""MV-Softmax paper, Table 3 row "A-Softmax" (Margin-based).

Paper: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
Softmax Loss for Face Recognition", AAAI 2020, arXiv:1912.00833;
§ "Experimental Settings" (the paper's sections are unnumbered), results in Tables 3, 4 and 5
(t chosen in Table 2).

Setting ("Experimental Settings"): MS-Celeb-1M-v1c with test overlaps removed
(MS-Celeb-1M-v1c-R, 72,690 identities, 3.28M images, Table 1); faces detected, aligned on five
landmarks and cropped to 144×144, pixels normalised by (x - 127.5) / 128, random horizontal flip;
AttentionNet-IRSE with stages [1, 1, 1] and a 512-d feature; SGD, momentum 0.9, weight decay
5e-4, total batch 128 (32 on each of 4 GPUs); learning rate 0.1 divided by 10 at epochs 4, 8 and
10; 12 epochs; scale s = 32 "for all the methods"; margins m_AM = 0.35, m_Arc = 0.5,
m_A-Softmax = 3; F-Softmax γ = 2; HM-Softmax keeps the 90% highest-loss samples of a batch.

Loss: eq. 3 with f(m1, θ) = cos(m1·θ), m1 = 3 (A-Softmax, SphereFace).

Notes:
- A-Softmax keeps SphereFace's own form (feature norm ‖x‖ instead of s, λ annealing with
  tfface's SphereFace defaults), as the paper takes each competitor "according to their
  paper's suggestions".

Data: "data/ms1m_v1c_r_tfrecords" is a placeholder. Build it from the cleaned MS-Celeb-1M-v1c
images (minus the paper's overlap list) with
    tfface align MS1M_V1C_R data/ms1m_v1c_r_144 --size 144
    tfface build data/ms1m_v1c_r_144 data/ms1m_v1c_r_tfrecords
Evaluate with the original image only and cosine similarity ("Test").
Run:
    tfface train mv_a_softmax --workdir runs/mv_a_softmax
"""

RECIPE = {
    "name": "mv_a_softmax",
    "description": "MV-Softmax Table 3: A-Softmax, AttentionNet-IRSE, MS1M-v1c-R",
    "cite": "Wang et al., MV-Softmax (AAAI 2020), § Experimental Settings, Tables 2-5",
    "data": {
        "train": "data/ms1m_v1c_r_tfrecords",
        "num_classes": None,
        "image_size": [144, 144],
        "batch_size": 128,
        "flip": True,
        "random_crop": False,
        "color_jitter": False,
        "val": [],
    },
    "backbone": {"name": "attentionnet_irse", "embedding_size": 512},
    "head": {"class": "SphereFace", "margin": 3},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {},
    "centres": None,
    "optimizer": {"class": "SGD", "momentum": 0.9, "nesterov": False},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.1,
        "unit": "epoch",
        "boundaries": [4, 8, 10],
        "factor": 0.1,
        "warmup": 0,
    },
    "epochs": 12,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
}
