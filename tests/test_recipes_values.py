"""The paper recipes carry the papers' numbers.

The expected values below are transcribed from the papers' experimental sections (see the
comments), not read from the recipe files, so a typo in a recipe fails here. Recipes are loaded as
plain Python files, independently of tfface.training.load_recipe (whose own test builds them).
"""
import glob
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = os.path.join(ROOT, "recipes")
# Not paper settings: the package marker and the synthetic smoke recipe of the training area.
NOT_PAPER = {"__init__", "smoke"}

SCHEMA_KEYS = {
    "name", "description", "cite", "data", "backbone", "head", "loss", "aux_losses", "centres",
    "optimizer", "weight_decay", "schedule", "epochs", "steps", "steps_per_epoch",
    "mixed_precision", "jit_compile", "deterministic", "seed", "init_from", "checkpoint_every",
}
DATA_KEYS = {"train", "num_classes", "image_size", "batch_size", "flip", "random_crop",
             "color_jitter", "val"}


def _load(name):
    path = os.path.join(RECIPES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _paper_recipes():
    names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(RECIPES, "*.py")))
    return [n for n in names if n not in NOT_PAPER]


EXPECTED = {
    "mml": ["mml_softmax", "mml_centre", "mml_marginal", "mml_range", "mml_centre_mml",
            "mml_centre_mml_onestage"],
    "hardmining": [f"hardmining_{h}{s}" for h in ("ce", "asoftmax", "arcface") for s in ("", "_hm")],
    "mv": ["mv_softmax", "mv_f_softmax", "mv_hm_softmax", "mv_a_softmax", "mv_arc_softmax",
           "mv_am_softmax", "mv_f_arc_softmax", "mv_f_am_softmax", "mv_hm_arc_softmax",
           "mv_hm_am_softmax", "mv_arc_f", "mv_arc_a", "mv_am_f", "mv_am_a"],
    "curricularface": ["curricularface_ir50_casia", "curricularface_ir100_casia",
                       "curricularface_ir50_ms1mv2", "curricularface_ir100_ms1mv2",
                       "curricularface_mobilefacenet_casia",
                       "curricularface_arcface_mobilefacenet_casia"],
    "recurricularface": ["recurricularface_r18_casia", "recurricularface_curricularface_r18_casia",
                         "recurricularface_arcface_r18_casia"],
}


def test_every_paper_setting_has_a_recipe():
    present = set(_paper_recipes())
    for family, names in EXPECTED.items():
        missing = sorted(set(names) - present)
        assert not missing, f"{family}: no recipe file for {missing}"


@pytest.mark.parametrize("name", _paper_recipes())
def test_recipe_is_plain_data_citing_paper_section_and_table(name):
    module = _load(name)
    doc = module.__doc__ or ""
    assert "Paper:" in doc, f"{name}: the docstring must cite the paper ('Paper: ...')"
    assert "§" in doc, f"{name}: the docstring must cite a section (§...)"
    assert re.search(r"\bTables? ([IVX]+\b|\d)|\bFig\. \d", doc), f"{name}: the docstring must cite a table (or figure)"
    recipe = module.RECIPE
    assert recipe["name"] == name
    assert set(recipe) <= SCHEMA_KEYS, f"{name}: keys outside the schema {set(recipe) - SCHEMA_KEYS}"
    assert ("epochs" in recipe) != ("steps" in recipe), f"{name}: exactly one of epochs/steps"
    assert set(recipe["data"]) <= DATA_KEYS
    assert "§" in recipe["cite"]
    # plain data only: nothing but literals in the module namespace besides the docstring
    public = {k for k in vars(module) if not k.startswith("__")}
    assert public == {"RECIPE"}, f"{name}: recipe modules hold only RECIPE, found {public}"


def _sgd(recipe, lr, momentum=0.9):
    assert recipe["optimizer"]["class"] == "SGD"
    assert recipe["optimizer"]["momentum"] == momentum
    assert recipe["schedule"]["learning_rate"] == lr


@pytest.mark.parametrize("name", EXPECTED["mml"])
def test_minimum_margin_values(name):
    r = _load(name).RECIPE
    # §3.1: VGGFace2, 160x160 MTCNN crops, random flip, Inception-ResNet-v1, batch 90, 512-d,
    # weight decay 5e-4, keep probability 0.4, lr 0.05 / 10 every 100K iterations, 275K iterations.
    assert r["backbone"] == {"name": "inception_resnet_v1", "embedding_size": 512, "dropout_keep": 0.4}
    assert r["data"]["image_size"] == [160, 160] and r["data"]["batch_size"] == 90
    assert r["data"]["flip"] is True and "vggface2" in r["data"]["train"]
    assert r["weight_decay"] == 5e-4
    s = r["schedule"]
    assert (s["learning_rate"], s["unit"], s["boundaries"], s["factor"]) == (0.05, "step", [100000, 200000], 0.1)
    assert r["steps"] == 275000
    aux = r["aux_losses"]
    if "centre" in name:
        # §3.1 "Test settings": alpha (centre) = 5e-5
        assert aux["centre"]["class"] == "CentreLoss" and aux["centre"]["weight"] == 5e-5
        assert r["centres"] is not None
    if name == "mml_centre_mml":
        # beta (MML) = 5e-8, M = 280, started from the Centre scheme's model
        assert aux["mml"] == {"class": "MinimumMarginLoss", "margin": 280.0, "weight": 5e-8}
        assert r["init_from"]
    if name == "mml_centre_mml_onestage":
        weight = aux["mml"]["weight"]
        assert aux["mml"]["margin"] == 280.0
        assert weight[0] == 0.0 and sorted(weight.values()) == [0.0, 5e-8]
        assert r["init_from"] is None
    if name == "mml_softmax":
        assert aux == {} and r["head"]["class"] == "Softmax"


@pytest.mark.parametrize("name", EXPECTED["hardmining"])
def test_hard_mining_values(name):
    r = _load(name).RECIPE
    # §III-D: ResNet18, CASIA-WebFace, batch 64, SGDM, lr 0.01 x0.1 at epochs 8, 12, 16, 20 epochs
    assert r["backbone"]["name"] == "iresnet18"
    assert "casia" in r["data"]["train"] and r["data"]["batch_size"] == 64
    _sgd(r, 0.01)
    assert r["schedule"]["boundaries"] == [8, 12, 16] and r["schedule"]["factor"] == 0.1
    assert r["epochs"] == 20
    head = {"ce": "Softmax", "asoftmax": "SphereFace", "arcface": "ArcFace"}[name.split("_")[1]]
    assert r["head"]["class"] == head
    if name.endswith("_hm"):
        # alpha, beta, A, B = 1.5, 1.1, 35, 0.75
        assert r["loss"] == {"class": "HardMining", "alpha": 1.5, "beta": 1.1, "A": 35.0, "B": 0.75}
    else:
        assert r["loss"] == {"class": "SparseCategoricalCrossentropy"}


# Table 3 rows: (head class, margin, loss class); Table 2 / "Exploratory Experiments" for t.
MV_ROWS = {
    "mv_softmax": ("NormFace", None, "SparseCategoricalCrossentropy"),
    "mv_f_softmax": ("NormFace", None, "Focal"),
    "mv_hm_softmax": ("NormFace", None, "OHEM"),
    "mv_a_softmax": ("SphereFace", 3, "SparseCategoricalCrossentropy"),
    "mv_arc_softmax": ("ArcFace", 0.5, "SparseCategoricalCrossentropy"),
    "mv_am_softmax": ("CosFace", 0.35, "SparseCategoricalCrossentropy"),
    "mv_f_arc_softmax": ("ArcFace", 0.5, "Focal"),
    "mv_f_am_softmax": ("CosFace", 0.35, "Focal"),
    "mv_hm_arc_softmax": ("ArcFace", 0.5, "OHEM"),
    "mv_hm_am_softmax": ("CosFace", 0.35, "OHEM"),
    "mv_arc_f": ("MVSoftmax", 0.5, "SparseCategoricalCrossentropy"),
    "mv_arc_a": ("MVSoftmax", 0.5, "SparseCategoricalCrossentropy"),
    "mv_am_f": ("MVSoftmax", 0.35, "SparseCategoricalCrossentropy"),
    "mv_am_a": ("MVSoftmax", 0.35, "SparseCategoricalCrossentropy"),
}
MV_T = {"mv_arc_f": (0.2, "arc", False), "mv_arc_a": (0.3, "arc", True),
        "mv_am_f": (0.25, "am", False), "mv_am_a": (0.2, "am", True)}


@pytest.mark.parametrize("name", EXPECTED["mv"])
def test_mv_softmax_values(name):
    r = _load(name).RECIPE
    # Experimental Settings: batch 128, SGD momentum 0.9, wd 5e-4, lr 0.1 / 10 at 4, 8, 10,
    # 12 epochs, s = 32 for all methods, 144x144 crops, AttentionNet-IRSE, 512-d.
    assert r["data"]["batch_size"] == 128 and r["data"]["image_size"] == [144, 144]
    assert r["backbone"] == {"name": "attentionnet_irse", "embedding_size": 512}
    _sgd(r, 0.1)
    assert r["weight_decay"] == 5e-4
    assert r["schedule"]["boundaries"] == [4, 8, 10] and r["schedule"]["factor"] == 0.1
    assert r["epochs"] == 12
    head_class, margin, loss_class = MV_ROWS[name]
    assert r["head"]["class"] == head_class and r["loss"]["class"] == loss_class
    if head_class != "SphereFace":
        assert r["head"]["scale"] == 32.0
    if margin is not None:
        assert r["head"]["margin"] == margin
    if loss_class == "Focal":
        assert r["loss"]["gamma"] == 2.0
    if loss_class == "OHEM":
        assert r["loss"]["keep_ratio"] == 0.9
    if name in MV_T:
        t, margin_type, adaptive = MV_T[name]
        assert (r["head"]["t"], r["head"]["margin_type"], r["head"]["adaptive"]) == (t, margin_type, adaptive)


@pytest.mark.parametrize("name", EXPECTED["curricularface"])
def test_curricularface_values(name):
    r = _load(name).RECIPE
    # §4.1: 112x112, batch 512, SGD momentum 0.9, wd 5e-4, s = 64, m = 0.5;
    # CASIA: lr 0.1 / 10 at 28, 38, 46, 50 epochs; MS1MV2: at 10, 18, 22, 24 epochs.
    assert r["data"]["image_size"] == [112, 112] and r["data"]["batch_size"] == 512
    _sgd(r, 0.1)
    assert r["weight_decay"] == 5e-4
    assert r["head"]["scale"] == 64.0 and r["head"]["margin"] == 0.5
    if "casia" in name:
        assert r["schedule"]["boundaries"] == [28, 38, 46] and r["epochs"] == 50
    else:
        assert r["schedule"]["boundaries"] == [10, 18, 22] and r["epochs"] == 24
    backbone = ("iresnet50" if "ir50" in name else "iresnet100" if "ir100" in name else "mobilefacenet")
    assert r["backbone"]["name"] == backbone
    # §4.2 / Fig. 5: ArcFace m = 0.5 on MobileFaceNet is the diverging counterpart
    expected_head = "ArcFace" if "arcface" in name else "CurricularFace"
    assert r["head"]["class"] == expected_head


@pytest.mark.parametrize("name", EXPECTED["recurricularface"])
def test_recurricularface_values(name):
    r = _load(name).RECIPE
    # §4.2: ResNet18, CASIA-WebFace, batch 512, 34 epochs, lr 0.1 x0.1 at 20, 28, 32;
    # I(t, cos) = 1.1 cos + 0.4 t.
    assert r["backbone"]["name"] == "iresnet18" and "casia" in r["data"]["train"]
    assert r["data"]["batch_size"] == 512 and r["epochs"] == 34
    assert r["schedule"]["learning_rate"] == 0.1
    assert r["schedule"]["boundaries"] == [20, 28, 32] and r["schedule"]["factor"] == 0.1
    if name == "recurricularface_r18_casia":
        assert r["head"]["class"] == "ReCurricularFace"
        assert (r["head"]["a"], r["head"]["b"], r["head"]["margin"]) == (1.1, 0.4, 0.5)
