"""The typed recipe: defaults, types and values checked once, errors naming the dotted key.

The expected messages and values are written out here; the schema itself (tfface.recipe) is only
the thing under test.
"""
import dataclasses
import json
import os

import pytest

from tfface.recipe import Recipe, RecipeError, describe, list_recipes, load_recipe
from tfface.registry import Component

MINIMAL = {
    "name": "mini",
    "data": {"train": "synthetic"},
    "backbone": {"name": "tiny"},
    "head": {"name": "cosface", "scale": 16.0},
    "epochs": 2,
}


def test_minimal_recipe_fills_every_default():
    r = Recipe.from_dict(MINIMAL)
    assert r.data.image_size == (112, 112) and r.data.batch_size == 64 and r.data.flip is True
    assert r.loss == Component("cross_entropy")
    assert r.optimizer == Component("sgd", {"momentum": 0.9, "nesterov": False})
    assert r.weight_decay == 5e-4 and r.decay_scope == "kernels"
    assert r.schedule.learning_rate == 0.1 and r.schedule.unit == "epoch"
    assert r.centres is None and r.partial_fc is None and dict(r.aux_losses) == {}
    plain = r.to_dict()
    assert plain["head"] == {"name": "cosface", "scale": 16.0}
    assert plain["data"]["image_size"] == [112, 112]
    # The plain form round-trips, through JSON too.
    assert Recipe.from_dict(json.loads(json.dumps(plain))) == r


def test_recipes_are_frozen():
    r = Recipe.from_dict(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.epochs = 3
    with pytest.raises(TypeError):
        r.head.args["scale"] = 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        # a bad key
        ("data.batch_sze=32", "data.batch_sze: unknown key; valid keys in data: train, num_classes"),
        ("optimiser=sgd", "optimiser: unknown recipe key"),
        # a bad type
        ("data.batch_size=large", "data.batch_size: expected an integer, got 'large'"),
        ("data.flip=1", "data.flip: expected true or false, got 1"),
        ("schedule.boundaries=4", "schedule.boundaries: expected a list of a number, got 4"),
        ("schedule.boundaries=[4, \"x\"]", "schedule.boundaries[1]: expected a number, got 'x'"),
        ("head=3", "head: expected a component {'name': ..., <args>}, got 3"),
        # a bad value
        ("data.batch_size=0", "data.batch_size: expected an integer > 0, got 0"),
        ("data=5", "data: expected a Data mapping, got 5"),
        ("data.num_classes=1", "data.num_classes: expected null or an integer >= 2, got 1"),
        ("data.image_size=[112, 0]", "data.image_size: expected [height, width] > 0, got [112, 0]"),
        ("schedule.learning_rate=-0.1", "schedule.learning_rate: expected a number > 0, got -0.1"),
        ("schedule.learning_rate=0", "schedule.learning_rate: expected a number > 0, got 0.0"),
        ("schedule.learning_rate=NaN", "schedule.learning_rate: expected a number > 0, got nan"),
        ("schedule.learning_rate=Infinity", "schedule.learning_rate: expected a number > 0, got inf"),
        ("schedule.factor=-0.1", "schedule.factor: expected a number in (0, 1], got -0.1"),
        ("schedule.factor=10", "schedule.factor: expected a number in (0, 1], got 10.0"),
        ("schedule.boundaries=[8, 4]", "schedule.boundaries: expected increasing numbers, got [8.0, 4.0]"),
        ("schedule.boundaries=[-1]", "schedule.boundaries[0]: expected a number >= 0, got -1.0"),
        ("schedule.values=[0.1, -0.01]", "schedule.values[1]: expected a number > 0, got -0.01"),
        ("schedule.values=[0.1, 0.01]", "schedule.values: expected 1 rates (one more than schedule.boundaries)"),
        ("schedule.warmup=-1", "schedule.warmup: expected a number >= 0, got -1.0"),
        ("weight_decay=-5e-4", "weight_decay: expected a number >= 0, got -0.0005"),
        ("epochs=0", "epochs: expected an integer > 0, got 0"),
        ("steps_per_epoch=-3", "steps_per_epoch: expected an integer > 0, got -3"),
        ("checkpoint_every=0", "checkpoint_every: expected an integer > 0, got 0"),
        ("keep_checkpoints=0", "keep_checkpoints: expected an integer >= 1 (the last good checkpoint is always kept), got 0"),
        ("seed=-1", "seed: expected an integer in [0, 2**32), got -1"),
        ("seed=4294967296", "seed: expected an integer in [0, 2**32), got 4294967296"),
        ("partial_fc.seed=-2", "partial_fc.seed: expected an integer in [0, 2**32), got -2"),
        ("aux_losses.c={\"name\": \"centre\", \"weight\": -1}", "aux_losses.c.weight: expected a number >= 0, got -1.0"),
        ("aux_losses.c={\"name\": \"centre\", \"weight\": {\"0\": 0.0, \"-5\": 1.0}}",
         "aux_losses.c.weight: expected step keys: integers >= 0, got -5"),
        ("schedule.unit=minute", "schedule.unit: expected 'epoch' or 'step', got 'minute'"),
        ("decay_scope=everything", "decay_scope: expected 'kernels' or 'all_but_batchnorm', got 'everything'"),
        ("partial_fc.sample_rate=1.5", "partial_fc.sample_rate: expected a value in (0, 1], got 1.5"),
        ("steps=100", "epochs, steps: give exactly one (got epochs=2, steps=100)"),
        ("mixed_precision=half", "mixed_precision: expected true, false, 'mixed_float16' or 'mixed_bfloat16', got 'half'"),
        ("aux_losses.loss={\"name\": \"centre\"}", "aux_losses.loss: the key is a metric name"),
    ],
)
def test_a_bad_override_fails_naming_the_dotted_key(override, message):
    with pytest.raises(RecipeError) as info:
        Recipe.from_dict(MINIMAL).override([override])
    assert message in str(info.value)


def test_overrides_reach_component_arguments_and_parse_json():
    r = Recipe.from_dict(MINIMAL).override([
        "head.margin=0.3", "head.name=arcface", "data.image_size=64", "aux_losses.c={\"name\": \"centre\", \"weight\": 0.5}",
        "centres.name=class_centres", "init_from=null", "schedule.boundaries=[3, 6]",
    ])
    assert r.head == Component("arcface", {"scale": 16.0, "margin": 0.3})
    assert r.data.image_size == (64, 64)
    assert r.aux_losses["c"].loss == Component("centre") and r.aux_losses["c"].weight == 0.5
    assert r.centres == Component("class_centres")
    assert r.schedule.boundaries == (3.0, 6.0)
    # a step-schedule weight keeps integer steps, from JSON's string keys
    r = r.override({"aux_losses.c.weight": {"0": 0.0, "100": 1e-3}})
    assert dict(r.aux_losses["c"].weight) == {0: 0.0, 100: 1e-3}
    with pytest.raises(RecipeError, match=r"aux_losses.c.weight: expected integer keys"):
        r.override({"aux_losses.c.weight": {"later": 1.0}})


def test_derive_states_only_differences():
    base = Recipe.from_dict(MINIMAL)
    child = base.derive({"head.margin": 0.35}, name="child", epochs=5, loss={"name": "focal", "gamma": 2.0})
    assert child.name == "child" and child.epochs == 5 and child.loss == Component("focal", {"gamma": 2.0})
    assert child.head == Component("cosface", {"scale": 16.0, "margin": 0.35})
    assert base.epochs == 2 and base.head == Component("cosface", {"scale": 16.0})
    with pytest.raises(RecipeError, match="epoch: unknown recipe key"):
        base.derive(epoch=3)


def test_load_recipe_reads_names_json_and_python_files(tmp_path):
    assert "smoke" in list_recipes() and "mml_centre_mml" in list_recipes()
    assert load_recipe("smoke").name == "smoke"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(MINIMAL))
    assert load_recipe(str(path), ["epochs=4"]).epochs == 4
    py = tmp_path / "mine.py"
    py.write_text(f"RECIPE = {MINIMAL!r}\n")
    assert load_recipe(str(py)).head.name == "cosface"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**MINIMAL, "data": {"train": "x", "batch": 3}}))
    with pytest.raises(RecipeError, match=r"bad.json: data.batch: unknown key"):
        load_recipe(str(bad))
    with pytest.raises(RecipeError, match=r"unknown recipe 'smok'; available: .*smoke"):
        load_recipe("smok")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(os.path.join(str(tmp_path), "missing.json"))


def test_missing_required_key_says_what_it_is():
    with pytest.raises(RecipeError, match=r"head: required \(registered margin head"):
        Recipe.from_dict({k: v for k, v in MINIMAL.items() if k != "head"})
    with pytest.raises(RecipeError, match=r"data.train: required"):
        Recipe.from_dict({**MINIMAL, "data": {}})


def test_describe_lists_every_key_once_with_doc():
    rows = describe()
    keys = [key for key, *_ in rows]
    assert len(keys) == len(set(keys))
    for expected in ("data.batch_size", "schedule.learning_rate", "head", "weight_decay", "decay_scope",
                     "partial_fc", "aux_losses", "keep_checkpoints"):
        assert expected in keys
    assert all(doc for *_, doc in rows)
    assert dict((k, d) for k, _, d, _ in rows)["data.batch_size"] == 64


def test_resolved_fills_component_defaults():
    r = load_recipe("smoke").resolved()
    # CosFace's own defaults appear; the injected num_classes does not.
    assert r.head.args["scale"] == 16.0 and r.head.args["margin"] == 0.2
    assert "num_classes" not in r.head.args
    assert r.optimizer.args["momentum"] == 0.9 and "learning_rate" not in r.optimizer.args
    with pytest.raises(RecipeError, match=r"head.margn: head 'cosface' has no argument 'margn'"):
        load_recipe("smoke", ["head.margn=0.3"]).resolved()
    with pytest.raises(RecipeError, match=r"unknown head 'cosfce'; known: .*cosface"):
        load_recipe("smoke", ["head.name=cosfce"]).resolved()
