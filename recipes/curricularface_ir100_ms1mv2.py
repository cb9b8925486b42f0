"""CurricularFace paper: CurricularFace with ResNet100 on MS1MV2.

Paper: Y. Huang, Y. Wang, Y. Tai, X. Liu, P. Shen, S. Li, J. Li, F. Huang, "CurricularFace:
Adaptive Curriculum Learning Loss for Deep Face Recognition", CVPR 2020, arXiv:2004.00288;
§4.1, §4.3; Tables 4, 5 and 6 (LFW, CFP-FP, CPLFW, AgeDB, CALFW, IJB-B/C, MegaFace).

Setting (§4.1 "Training Setting"): 112×112 crops aligned on five landmarks as ArcFace;
ResNet50 / ResNet100 of ArcFace (tfface: iresnet50 / iresnet100, 512-d); batch 512 (4 GPUs); SGD,
momentum 0.9, weight decay 5e-4; CASIA-WebFace: learning rate 0.1 divided by 10 at epochs 28, 38
and 46, end at epoch 50; MS1MV2: divided at epochs 10, 18 and 22, end at 24; s = 64, m = 0.5.

Head: CurricularFace (eqs. 8-10): target cos(θ_y + m); a hard negative (cos θ_j > cos(θ_y + m))
becomes cos θ_j·(t + cos θ_j); t is an EMA of the batch mean of cos θ_y, t ← 0.01·r + 0.99·t
from t = 0 (eq. 9 with α = 0.99, i.e. momentum 0.01 on the new batch).

Data: "data/ms1mv2_tfrecords" is a placeholder: MS1MV2 (insightface's faces_emore, already
aligned at 112×112) unpacked to an image folder (one sub-folder per identity), then
    tfface build MS1MV2_FOLDER data/ms1mv2_tfrecords
Run:
    tfface train curricularface_ir100_ms1mv2 --workdir runs/curricularface_ir100_ms1mv2
"""

RECIPE = {
    "name": "curricularface_ir100_ms1mv2",
    "description": "CurricularFace (s=64, m=0.5), iresnet100 on MS1MV2, 24 epochs",
    "cite": "Huang et al., CurricularFace (CVPR 2020), §4.1, Tables 4-6",
    "data": {
        "train": "data/ms1mv2_tfrecords",
        "num_classes": None,
        "image_size": [112, 112],
        "batch_size": 512,
        "flip": True,
        "random_crop": False,
        "color_jitter": False,
        "val": [],
    },
    "backbone": {"name": "iresnet100", "embedding_size": 512},
    "head": {"class": "CurricularFace", "scale": 64.0, "margin": 0.5, "momentum": 0.01},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {},
    "centres": None,
    "optimizer": {"class": "SGD", "momentum": 0.9, "nesterov": False},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.1,
        "unit": "epoch",
        "boundaries": [10, 18, 22],
        "factor": 0.1,
        "warmup": 0,
    },
    "epochs": 24,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
}
