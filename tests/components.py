"""The shared component table: every registered component, with small valid constructor
arguments for the shared harness (``tfface.testing``), by kind.

Adding a head, loss, centre layer or backbone means adding its row here (``tests/test_components.py``
fails naming any registered name without a row, and any row that is not registered). Injected
arguments (a head's ``num_classes``, a centre loss's ``centres``, a centre layer's
``num_classes``, a backbone's ``input_shape``) are not written here: the test provides them as
the builder does. Shapes are tiny; backbones run at their ``min_input_size``.
"""

COMPONENTS = {
    "head": {
        "softmax": {},
        "normface": {"scale": 16.0},
        "sphereface": {"margin": 4},
        "cosface": {},
        "arcface": {},
        "combined_margin": {"m1": 0.9, "m2": 0.4, "m3": 0.15},
        "mv_softmax": {"margin_type": "arc", "margin": 0.5, "adaptive": False},
        "curricularface": {},
        "recurricularface": {},
    },
    "loss": {
        "cross_entropy": {},
        "hard_mining": {"base": {"name": "focal", "gamma": 1.0}},
        "focal": {"gamma": 2.0},
        "ohem": {"keep_ratio": 0.6},
        "centre": {"reduction": "sum"},
        "range": {"margin": 100.0, "k": 2},
        "marginal": {"threshold": 1.1, "error_margin": 0.2},
        "minimum_margin": {"margin": 40.0},
    },
    "centres": {
        "class_centres": {"alpha": 0.3},
    },
    "backbone": {
        "tiny": {"embedding_size": 16},
        "iresnet18": {"embedding_size": 16, "dropout": 0.4},
        "iresnet34": {"embedding_size": 16},
        "iresnet50": {"embedding_size": 16},
        "iresnet100": {"embedding_size": 16},
        "mobilefacenet": {"embedding_size": 16},
        "attentionnet_irse": {"embedding_size": 16},
        "inception_resnet_v1": {"embedding_size": 16},
    },
}

# Rows whose harness run is slow on a CPU (graph construction costs per layer: these have
# 200–550 layers); they run with ``-m slow``. Their native builds, parameter counts and
# structures are checked in tests/backbones in the default run; iresnet18 stands for the
# IResNet family in the default run (the deeper variants differ only in the depths tuple).
SLOW = {
    "backbone": {"iresnet34", "iresnet50", "iresnet100", "attentionnet_irse", "inception_resnet_v1"},
}

# The harness' mixed_float16 fit runs for one head of each code path (plain FC, cosine without
# margin, SphereFace's norm-scaled logits, target-only margin, hard-negative re-weighting with
# and without state); every head runs under mixed_float16 in tests/heads/test_properties.py.
NO_MIXED_FIT = {
    "head": {"cosface", "combined_margin", "recurricularface"},
}
