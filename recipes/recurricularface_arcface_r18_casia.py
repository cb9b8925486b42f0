"""ReCurricularFace paper, row "ArcFace" of Tables 1-3 (ResNet18 on CASIA-WebFace).

Paper: M. Sang, Y. Yang, "ReCurricularFace: Revisiting CurricularFace for Hard Sample Mining"
(Yunnan Normal University);
§4.2 (implementation details), results in Tables 1, 2 and 3.

Setting (§4.1, §4.2): CASIA-WebFace; ResNet18 (tfface: iresnet18); batch 512; 34 epochs;
learning rate 0.1, multiplied by 0.1 at epochs 20, 28 and 32; with E[θ(W_j)] ≈ 80° the modulation
of eq. 6 becomes I(t, cos θ_j) = 1.1·cos θ_j + 0.4·t (a = 1.1, b = 0.4); margin m = 0.5 (§1).

Head: ArcFace, the comparison row of Tables 1-3 trained "in the same environment".

Not stated in the paper (our choices, override with --set): 112×112 crops, scale s = 64, SGD
with momentum 0.9 and weight decay 5e-4 (CurricularFace's §4.1 settings, which it revisits).

Data: "data/casia_webface_tfrecords" is a placeholder. Build it from CASIA-WebFace with
    tfface align CASIA_WEBFACE data/casia_webface_112 --size 112
    tfface build data/casia_webface_112 data/casia_webface_tfrecords
Run:
    tfface train recurricularface_arcface_r18_casia \
        --workdir runs/recurricularface_arcface_r18_casia
"""

RECIPE = {
    "name": "recurricularface_arcface_r18_casia",
    "description": "ReCurricularFace Table 1: ArcFace, ResNet18 on CASIA-WebFace",
    "cite": "Sang & Yang, ReCurricularFace, §4.2, Tables 1-3",
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
    "backbone": {"name": "iresnet18", "embedding_size": 512},
    "head": {"class": "ArcFace", "scale": 64.0, "margin": 0.5},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {},
    "centres": None,
    "optimizer": {"class": "SGD", "momentum": 0.9, "nesterov": False},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.1,
        "unit": "epoch",
        "boundaries": [20, 28, 32],
        "factor": 0.1,
        "warmup": 0,
    },
    "epochs": 34,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
}
