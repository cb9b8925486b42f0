"""``tfface recipe list`` / ``show``: the recipe a run will use, fully resolved, as JSON.

Expected values are the papers' (MML §3.1, eq. 2 and 12) and the components' documented
defaults, written here.
"""
import json

import pytest

from tfface import cli
from tfface.recipe import list_recipes, load_recipe


def test_list_prints_every_recipe_with_its_description(capsys):
    assert cli.main(["recipe", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list_recipes()
    assert any(line.startswith("mml_centre_mml ") and "MML" in line for line in lines)


def test_show_prints_every_default_filled_in(capsys):
    assert cli.main(["recipe", "show", "mml_centre_mml", "--set", "data.batch_size=45"]) == 0
    shown = json.loads(capsys.readouterr().out)
    # The recipe's own values and the override...
    assert shown["data"]["batch_size"] == 45 and shown["steps"] == 275000
    assert shown["aux_losses"]["centre"]["weight"] == 5e-5            # alpha of eq. 12
    assert shown["aux_losses"]["centre"]["reduction"] == "sum"        # eq. 2 is a sum
    assert shown["aux_losses"]["mml"]["margin"] == 280.0 and shown["aux_losses"]["mml"]["weight"] == 5e-8
    # ...the schema's defaults...
    assert shown["keep_checkpoints"] == 3 and shown["data"]["random_crop"] is False
    assert shown["partial_fc"] is None and shown["decay_scope"] == "kernels"
    # ...and each component's own defaults (not the injected ones).
    assert shown["head"] == {"name": "softmax", "use_bias": True}
    assert shown["centres"] == {"name": "class_centres", "alpha": 0.5}
    assert shown["optimizer"]["name"] == "adam" and shown["optimizer"]["amsgrad"] is False
    assert shown["backbone"]["dropout_keep"] == 0.4 and "input_shape" not in shown["backbone"]
    # What show prints loads back as the same recipe.
    again = load_recipe(shown)
    assert again == load_recipe("mml_centre_mml", ["data.batch_size=45"]).resolved()


def test_show_keys_documents_every_key(capsys):
    assert cli.main(["recipe", "show", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "data.batch_size: an integer, default 64" in out
    assert "decay_scope: a string, default \"kernels\"" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["recipe", "show", "smoke", "--set", "head.margn=0.3"], "head.margn: head 'cosface' has no argument 'margn'"),
        (["recipe", "show", "smoke", "--set", "data.batch_size=eight"], "data.batch_size: expected an integer"),
        (["recipe", "show", "nope"], "unknown recipe 'nope'"),
        (["recipe", "show"], "name a recipe"),
    ],
)
def test_show_errors_exit_2_naming_the_key(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
