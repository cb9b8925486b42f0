"""The paper recipes carry the papers' numbers.

The expected values below are transcribed from the papers' experimental sections (see the
comments), not read from the recipe files or their bases, so a typo in a recipe or a base fails
here. Each recipe is read in its plain JSON form (``Recipe.to_dict``) with every schema default
filled in.
"""
import importlib
import re

import pytest

from tfface.recipe import list_recipes

# Not paper settings: the synthetic smoke recipe of the training area and the demo's recipe.
NOT_PAPER = {"smoke", "smoke_demo"}


def _module(name):
    return importlib.import_module(f"tfface.recipes.{name}")


def _load(name):
    return _module(name).RECIPE.to_dict()


def _paper_recipes():
    return [n for n in list_recipes() if n not in NOT_PAPER]


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
def test_recipe_cites_paper_section_and_table(name):
    module = _module(name)
    doc = module.__doc__ or ""
    assert "Paper:" in doc, f"{name}: the docstring must cite the paper ('Paper: ...')"
    assert "§" in doc, f"{name}: the docstring must cite a section (§...)"
    assert re.search(r"\bTables? ([IVX]+\b|\d)|\bFig\. \d", doc), f"{name}: the docstring must cite a table (or figure)"
    recipe = module.RECIPE
    assert recipe.name == name
    assert "§" in recipe.cite and recipe.description


def _sgd(recipe, lr, momentum=0.9):
    assert recipe["optimizer"]["name"] == "sgd"
    assert recipe["optimizer"]["momentum"] == momentum
    assert recipe["schedule"]["learning_rate"] == lr


@pytest.mark.parametrize("name", EXPECTED["mml"])
def test_minimum_margin_values(name):
    r = _load(name)
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
    assert r["optimizer"]["name"] == "adam" and r["optimizer"]["epsilon"] == 0.1
    assert r["head"] == {"name": "softmax", "use_bias": True}
    if "centre" in name:
        # §3.1 "Test settings": alpha (centre) = 5e-5 on eq. 2, which is a SUM over the batch
        # (L_C = 1/2 sum_i ||f_i - c_yi||^2), not a batch mean.
        assert aux["centre"] == {"name": "centre", "reduction": "sum", "weight": 5e-5}
        assert r["centres"]["name"] == "class_centres"
    else:
        assert r["centres"] is None
    if name == "mml_centre_mml":
        # beta (MML) = 5e-8, M = 280, started from the Centre scheme's model
        assert aux["mml"] == {"name": "minimum_margin", "margin": 280.0, "weight": 5e-8}
        assert r["init_from"]
    if name == "mml_centre_mml_onestage":
        weight = aux["mml"]["weight"]
        assert aux["mml"]["margin"] == 280.0
        assert weight["0"] == 0.0 and sorted(weight.values()) == [0.0, 5e-8]
        assert r["init_from"] is None
    if name == "mml_softmax":
        assert aux == {}


@pytest.mark.parametrize("name", EXPECTED["hardmining"])
def test_hard_mining_values(name):
    r = _load(name)
    # §III-D: ResNet18, CASIA-WebFace, batch 64, SGDM, lr 0.01 x0.1 at epochs 8, 12, 16, 20 epochs
    assert r["backbone"]["name"] == "iresnet18"
    assert "casia" in r["data"]["train"] and r["data"]["batch_size"] == 64
    _sgd(r, 0.01)
    assert r["schedule"]["boundaries"] == [8, 12, 16] and r["schedule"]["factor"] == 0.1
    assert r["epochs"] == 20
    head = {"ce": "softmax", "asoftmax": "sphereface", "arcface": "arcface"}[name.split("_")[1]]
    assert r["head"]["name"] == head
    if name.endswith("_hm"):
        # alpha, beta, A, B = 1.5, 1.1, 35, 0.75
        assert r["loss"] == {"name": "hard_mining", "alpha": 1.5, "beta": 1.1, "A": 35.0, "B": 0.75}
    else:
        assert r["loss"] == {"name": "cross_entropy"}


# Table 3 rows: (head class, margin, loss class); Table 2 / "Exploratory Experiments" for t.
MV_ROWS = {
    "mv_softmax": ("normface", None, "cross_entropy"),
    "mv_f_softmax": ("normface", None, "focal"),
    "mv_hm_softmax": ("normface", None, "ohem"),
    "mv_a_softmax": ("sphereface", 3, "cross_entropy"),
    "mv_arc_softmax": ("arcface", 0.5, "cross_entropy"),
    "mv_am_softmax": ("cosface", 0.35, "cross_entropy"),
    "mv_f_arc_softmax": ("arcface", 0.5, "focal"),
    "mv_f_am_softmax": ("cosface", 0.35, "focal"),
    "mv_hm_arc_softmax": ("arcface", 0.5, "ohem"),
    "mv_hm_am_softmax": ("cosface", 0.35, "ohem"),
    "mv_arc_f": ("mv_softmax", 0.5, "cross_entropy"),
    "mv_arc_a": ("mv_softmax", 0.5, "cross_entropy"),
    "mv_am_f": ("mv_softmax", 0.35, "cross_entropy"),
    "mv_am_a": ("mv_softmax", 0.35, "cross_entropy"),
}
MV_T = {"mv_arc_f": (0.2, "arc", False), "mv_arc_a": (0.3, "arc", True),
        "mv_am_f": (0.25, "am", False), "mv_am_a": (0.2, "am", True)}


@pytest.mark.parametrize("name", EXPECTED["mv"])
def test_mv_softmax_values(name):
    r = _load(name)
    # Experimental Settings: batch 128, SGD momentum 0.9, wd 5e-4, lr 0.1 / 10 at 4, 8, 10,
    # 12 epochs, s = 32 for all methods, 144x144 crops, AttentionNet-IRSE, 512-d.
    assert r["data"]["batch_size"] == 128 and r["data"]["image_size"] == [144, 144]
    assert r["backbone"] == {"name": "attentionnet_irse", "embedding_size": 512}
    _sgd(r, 0.1)
    assert r["weight_decay"] == 5e-4
    assert r["schedule"]["boundaries"] == [4, 8, 10] and r["schedule"]["factor"] == 0.1
    assert r["epochs"] == 12
    head_class, margin, loss_class = MV_ROWS[name]
    assert r["head"]["name"] == head_class and r["loss"]["name"] == loss_class
    # s = 32 "for all the methods", A-Softmax included (on normalised features).
    assert r["head"]["scale"] == 32.0
    if margin is not None:
        assert r["head"]["margin"] == margin
    if head_class == "sphereface":
        # The official code: lambda = max(5, 1000 * (1 + 1e-4 * it) ** -2).
        head = r["head"]
        assert (head["lambda_base"], head["lambda_gamma"], head["lambda_power"], head["lambda_min"]) == (
            1000.0, 1e-4, 2.0, 5.0)
    if loss_class == "focal":
        assert r["loss"]["gamma"] == 2.0
    if loss_class == "ohem":
        assert r["loss"]["keep_ratio"] == 0.9
    if name in MV_T:
        t, margin_type, adaptive = MV_T[name]
        assert (r["head"]["t"], r["head"]["margin_type"], r["head"]["adaptive"]) == (t, margin_type, adaptive)


@pytest.mark.parametrize("name", EXPECTED["curricularface"])
def test_curricularface_values(name):
    r = _load(name)
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
    if backbone != "mobilefacenet":
        # "ResNet50 and ResNet100 as in [ArcFace]": output block E, dropout 0.4 before the FC.
        assert r["backbone"]["dropout"] == 0.4
    # The official code decays every weight but batch norm (PReLU slopes and biases included).
    assert r["decay_scope"] == "all_but_batchnorm"
    # §4.2 / Fig. 5: ArcFace m = 0.5 on MobileFaceNet is the diverging counterpart
    expected_head = "arcface" if "arcface" in name else "curricularface"
    assert r["head"]["name"] == expected_head
    if expected_head == "curricularface":
        assert r["head"]["momentum"] == 0.01


@pytest.mark.parametrize("name", EXPECTED["recurricularface"])
def test_recurricularface_values(name):
    r = _load(name)
    # §4.2: ResNet18, CASIA-WebFace, batch 512, 34 epochs, lr 0.1 x0.1 at 20, 28, 32;
    # I(t, cos) = 1.1 cos + 0.4 t.
    assert r["backbone"]["name"] == "iresnet18" and "casia" in r["data"]["train"]
    assert r["data"]["batch_size"] == 512 and r["epochs"] == 34
    assert r["schedule"]["learning_rate"] == 0.1
    assert r["schedule"]["boundaries"] == [20, 28, 32] and r["schedule"]["factor"] == 0.1
    if name == "recurricularface_r18_casia":
        assert r["head"]["name"] == "recurricularface"
        assert (r["head"]["a"], r["head"]["b"], r["head"]["margin"]) == (1.1, 0.4, 0.5)


@pytest.mark.parametrize("name", _paper_recipes())
def test_docstring_eval_commands_name_registered_protocols(name):
    """Each recipe lists the commands that produce its paper table's columns; every protocol and
    option they name exists (checked against the registry, not run: the data is not here)."""
    import shlex

    from tfface import registry

    doc = _module(name).__doc__
    commands = [line.strip() for line in doc.splitlines() if line.strip().startswith("tfface eval ")]
    assert commands, f"{name}: the docstring lists no 'tfface eval' command"
    known = set(registry.names("protocol"))
    for command in commands:
        argv = shlex.split(command)
        protocols = [argv[i + 1] for i, a in enumerate(argv) if a == "--protocol"]
        datas = [argv[i + 1] for i, a in enumerate(argv) if a == "--data"]
        assert protocols and len(protocols) == len(datas), command
        assert set(protocols) <= known, f"{name}: unknown protocols {set(protocols) - known}"
        assert argv[argv.index("--model") + 1] == f"runs/{name}"
        flip = argv[argv.index("--flip") + 1] if "--flip" in argv else "none"
        assert flip in ("none", "sum", "concat")
