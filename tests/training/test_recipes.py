"""Every bundled recipe loads and builds (model, data spec, optimizer) without training.

Recipes are listed from tfface/recipes, so recipes added later are covered. Their data sets are
not on this machine: they are built with ``check_data=False`` and a small ``num_classes``. Paper
backbones are large, so each distinct backbone setting is built once, at its smallest input size,
and shared (frozen) by the later recipes that use it; heads, losses, centres, optimizer and
schedule are built for every recipe.
"""
import json

import keras
import pytest

from tfface import backbones
from tfface.recipe import list_recipes, load_recipe
from tfface.training import builder, build

NAMES = list_recipes()
_BACKBONES = {}


@pytest.fixture
def shared_backbones(monkeypatch):
    real = builder.make_backbone

    def cached(spec, image_size):
        key = (json.dumps(spec.to_dict(), sort_keys=True), tuple(image_size), keras.config.dtype_policy().name)
        if key not in _BACKBONES:
            _BACKBONES[key] = real(spec, image_size)
            return _BACKBONES[key]
        # Reused: frozen, so the optimizer does not build slots for tens of millions of
        # weights again (that was checked when the backbone was first built).
        _BACKBONES[key].trainable = False
        return _BACKBONES[key]

    monkeypatch.setattr(builder, "make_backbone", cached)


def test_the_recipe_list_holds_the_paper_families_and_smoke():
    assert "smoke" in NAMES
    assert {n.split("_")[0] for n in NAMES} == {"smoke", "mml", "hardmining", "mv", "curricularface",
                                                "recurricularface"}


@pytest.mark.parametrize("name", NAMES)
def test_recipe_loads_and_builds(name, shared_backbones):
    recipe = load_recipe(name)
    assert recipe.name == name, "RECIPE's name should match the file name"
    assert recipe.cite, f"{name}: cite the paper, section and table"
    size = backbones.spec(recipe.backbone.name).min_input_size
    recipe = load_recipe(recipe, {"data.image_size": [size, size]})
    run = build(recipe, check_data=False, num_classes=recipe.data.num_classes or 16, print_fn=lambda *a: None)
    assert run.model.optimizer is run.optimizer and run.optimizer.built
    assert run.model.head.kernel.shape[-1] == run.num_classes
    assert run.data_spec["batch_size"] == recipe.data.batch_size
    assert set(run.model.aux_losses) == set(recipe.aux_losses)
    assert run.steps > 0 and run.epochs > 0
    schedule = recipe.schedule
    first = schedule.values[0] if schedule.values else schedule.learning_rate
    expected = schedule.warmup_start if schedule.warmup else first
    assert float(run.optimizer.learning_rate) == pytest.approx(expected)
