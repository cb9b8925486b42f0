"""Hard-Mining loss paper, row "ArcFace loss" (L_AF).

Paper: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional Neural
Network for Face Recognition";
§III-D (input data and network settings), results in Table I (CASIA-WebFace training).

Setting (§III "Experimental setup", A, B and D): ResNet18 (tfface: iresnet18) trained on
CASIA-WebFace (494,414 images of 10,575 identities), MTCNN-aligned faces normalised by
(x - 127.5) / 128; batch 64; SGD with momentum; learning rate 0.01, multiplied by 0.1 at epochs
8, 12 and 16; 20 epochs; Hard-Mining α = 1.5, β = 1.1, A = 35, B = 0.75.

Loss: ArcFace (eq. 8), cos(θ_y + m) with scale s and margin m;
the baseline of its Hard-Mining variant hardmining_arcface_hm.

Not stated in the paper (our choices, override with --set):
- crop size 112×112 with ArcFace's five-point alignment (the paper follows ArcFace and SphereFace
  "following the recent trend [8], [7]"); momentum 0.9 and weight decay 5e-4, the values of those
  two papers' training code.
- ArcFace s = 64, m = 0.5, the ArcFace paper's values (eq. 8 names s and m only).

Data: "data/casia_webface_tfrecords" is a placeholder. Build it from CASIA-WebFace with
    tfface align CASIA_WEBFACE data/casia_webface_112 --size 112
    tfface build data/casia_webface_112 data/casia_webface_tfrecords
The paper's Table II trains the same six settings on MS-Celeb-1M (ArcFace's cleaned list):
--set data.train=data/ms1m_tfrecords.
Run:
    tfface train hardmining_arcface --workdir runs/hardmining_arcface
"""

RECIPE = {
    "name": "hardmining_arcface",
    "description": "Hard-Mining paper baseline: ArcFace, ResNet18 on CASIA-WebFace",
    "cite": "Srivastava et al., Hard-Mining Loss, §III-D, Table I",
    "data": {
        "train": "data/casia_webface_tfrecords",
        "num_classes": None,
        "image_size": [112, 112],
        "batch_size": 64,
        "flip": True,
        "random_crop": False,
        "color_jitter": False,
        "val": [],
    },
    "backbone": {"name": "iresnet18", "embedding_size": 512},
    "head": {"class": "ArcFace", "scale": 64.0, "margin": 0.5},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {},
    "centres": None,
    "optimizer": {"class": "SGD", "momentum": 0.9, "nesterov": False},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.01,
        "unit": "epoch",
        "boundaries": [8, 12, 16],
        "factor": 0.1,
        "warmup": 0,
    },
    "epochs": 20,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
}
