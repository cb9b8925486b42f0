"""CurricularFace paper: CurricularFace with ResNet50 on CASIA-WebFace.

Paper: Y. Huang, Y. Wang, Y. Tai, X. Liu, P. Shen, S. Li, J. Li, F. Huang, "CurricularFace:
Adaptive Curriculum Learning Loss for Deep Face Recognition", CVPR 2020, arXiv:2004.00288;
§4.1; the CASIA-WebFace setting of the ablations in Tables 2 and 3 (LFW, CFP-FP).

Setting (§4.1 "Training Setting"): 112×112 crops aligned on five landmarks as ArcFace;
ResNet50 / ResNet100 of ArcFace (tfface: iresnet50 / iresnet100, 512-d); batch 512 (4 GPUs); SGD,
momentum 0.9, weight decay 5e-4; CASIA-WebFace: learning rate 0.1 divided by 10 at epochs 28, 38
and 46, end at epoch 50; MS1MV2: divided at epochs 10, 18 and 22, end at 24; s = 64, m = 0.5.

Head: CurricularFace (eqs. 8-10): target cos(θ_y + m); a hard negative (cos θ_j > cos(θ_y + m))
becomes cos θ_j·(t + cos θ_j); t is an EMA of the batch mean of cos θ_y, t ← 0.01·r + 0.99·t
from t = 0 (eq. 9 with α = 0.99, i.e. momentum 0.01 on the new batch).

The paper does not name the backbone of its CASIA-WebFace ablations (Tables 2, 3); ResNet50 is
the smaller of its two. curricularface_ir100_casia is the ResNet100 variant.

Data: "data/casia_webface_tfrecords" is a placeholder. Build it from CASIA-WebFace with
    tfface align CASIA_WEBFACE data/casia_webface_112 --size 112
    tfface build data/casia_webface_112 data/casia_webface_tfrecords
Run:
    tfface train curricularface_ir50_casia --workdir runs/curricularface_ir50_casia
"""

RECIPE = {
    "name": "curricularface_ir50_casia",
    "description": "CurricularFace (s=64, m=0.5), iresnet50 on CASIA-WebFace, 50 epochs",
    "cite": "Huang et al., CurricularFace (CVPR 2020), §4.1, Tables 4-6",
    "data": {
        "train": "data/casia_webface_tfrecords",
        "num_classes": None,
        "image_size": [112, 112],
        "batch_size": 512,
        "flip": True,
        "random_crop": False,
        "color_jitter": False,
        "val": [],
    },
    "backbone": {"name": "iresnet50", "embedding_size": 512},
    "head": {"class": "CurricularFace", "scale": 64.0, "margin": 0.5, "momentum": 0.01},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {},
    "centres": None,
    "optimizer": {"class": "SGD", "momentum": 0.9, "nesterov": False},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.1,
        "unit": "epoch",
        "boundaries": [28, 38, 46],
        "factor": 0.1,
        "warmup": 0,
    },
    "epochs": 50,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
}
