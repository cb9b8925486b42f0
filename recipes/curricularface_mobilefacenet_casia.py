"""CurricularFace paper, convergence experiment: CurricularFace with MobileFaceNet, m = 0.5.

Paper: Y. Huang, Y. Wang, Y. Tai, X. Liu, P. Shen, S. Li, J. Li, F. Huang, "CurricularFace:
Adaptive Curriculum Learning Loss for Deep Face Recognition", CVPR 2020, arXiv:2004.00288;
§4.2 and Fig. 5.

Setting (§4.2 "Robustness on Training Convergence", Fig. 5): MobileFaceNet trained on
CASIA-WebFace with m = 0.5: CurricularFace converges (99.25% on LFW) while ArcFace "does not
converge and the loss is NAN at about 2,400-th step"; with m = 0.45 both converge (99.20% vs
99.10%): --set head.margin=0.45. The rest follows §4.1: 112×112, batch 512, SGD momentum 0.9,
weight decay 5e-4, s = 64, learning rate 0.1 divided by 10 at epochs 28, 38 and 46, end at 50.

Not stated in the paper (our choices): the schedule of this experiment (we use §4.1's
CASIA-WebFace schedule) and the MobileFaceNet embedding size (512, as the other backbones).

Expected: converges.

Data: "data/casia_webface_tfrecords" is a placeholder. Build it from CASIA-WebFace with
    tfface align CASIA_WEBFACE data/casia_webface_112 --size 112
    tfface build data/casia_webface_112 data/casia_webface_tfrecords
Run:
    tfface train curricularface_mobilefacenet_casia \
        --workdir runs/curricularface_mobilefacenet_casia
"""

RECIPE = {
    "name": "curricularface_mobilefacenet_casia",
    "description": "CurricularFace Fig. 5: CurricularFace (m=0.5), MobileFaceNet on CASIA-WebFace",
    "cite": "Huang et al., CurricularFace (CVPR 2020), §4.2, Fig. 5",
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
    "backbone": {"name": "mobilefacenet", "embedding_size": 512},
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
