"""Recipes: plain-data training settings (``recipes/<name>.py`` holding ``RECIPE = {...}``).

``load_recipe`` resolves a recipe by name or path, fills in the defaults below, applies
``key=value`` overrides and checks every key and type, so a typo fails before anything is built.
Sections whose keys are the keyword arguments of a class (``backbone``, ``head``, ``loss``,
``optimizer``, ``centres``, each entry of ``aux_losses``) are checked against that class's
signature by ``tfface.training.build``.
"""
import copy
import importlib
import importlib.util
import json
import os
import pkgutil


class RecipeError(ValueError):
    """A recipe key, value or class that does not exist or has the wrong type."""


# Defaults of every key. Sections in _FREE are replaced as a whole when a recipe gives them (an
# "optimizer": {"class": "Adam"} must not inherit SGD's momentum); the others are merged key by key.
DEFAULTS = {
    "name": "",
    "description": "",
    "cite": "",
    "data": {
        "train": None,
        "num_classes": None,
        "image_size": [112, 112],
        "batch_size": 64,
        "flip": True,
        "random_crop": False,
        "color_jitter": False,
        "val": [],
        "synthetic": {},
    },
    "backbone": {"name": None},
    "head": {"class": None},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {},
    "centres": None,
    "optimizer": {"class": "SGD", "momentum": 0.9, "nesterov": False},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.1,
        "unit": "epoch",
        "boundaries": [],
        "factor": 0.1,
        "values": None,
        "warmup": 0,
        "warmup_start": 0.0,
    },
    "epochs": None,
    "steps": None,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
    "keep_checkpoints": 3,
}
_FREE = ("backbone", "head", "loss", "optimizer", "aux_losses", "centres")

_NUMBER = (int, float)
# Expected types of the fixed keys (dotted); None allowed where listed.
_TYPES = {
    "name": (str,),
    "description": (str,),
    "cite": (str,),
    "data.train": (str, type(None)),
    "data.num_classes": (int, type(None)),
    "data.image_size": (list, int),
    "data.batch_size": (int,),
    "data.flip": (bool,),
    "data.random_crop": (bool,),
    "data.color_jitter": (bool,),
    "data.val": (list,),
    "data.synthetic": (dict,),
    "backbone": (dict,),
    "head": (dict,),
    "loss": (dict,),
    "aux_losses": (dict,),
    "centres": (dict, type(None)),
    "optimizer": (dict,),
    "weight_decay": _NUMBER,
    "schedule.learning_rate": _NUMBER,
    "schedule.unit": (str,),
    "schedule.boundaries": (list,),
    "schedule.factor": _NUMBER,
    "schedule.values": (list, type(None)),
    "schedule.warmup": _NUMBER,
    "schedule.warmup_start": _NUMBER,
    "epochs": (int, type(None)),
    "steps": (int, type(None)),
    "steps_per_epoch": (int, type(None)),
    "mixed_precision": (bool, str),
    "jit_compile": (bool,),
    "deterministic": (bool,),
    "seed": (int,),
    "init_from": (str, type(None)),
    "checkpoint_every": (int,),
    "keep_checkpoints": (int,),
}


def recipes_dir():
    """The directory of the bundled recipes (the ``recipes`` package)."""
    import recipes

    return os.path.dirname(os.path.abspath(recipes.__file__))


def list_recipes():
    """Names of the bundled recipes (``recipes/*.py``)."""
    return sorted(
        m.name for m in pkgutil.iter_modules([recipes_dir()]) if not m.name.startswith("_")
    )


def _load_file(path):
    if path.endswith(".json"):
        with open(path) as f:
            return json.load(f)
    spec = importlib.util.spec_from_file_location(f"_tfface_recipe_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "RECIPE"):
        raise RecipeError(f"recipe file {path} defines no RECIPE dict")
    return module.RECIPE


def _source(name_or_path):
    if isinstance(name_or_path, dict):
        return copy.deepcopy(name_or_path), "<dict>"
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise RecipeError(f"a recipe is a name, a .py/.json path or a dict, got {name_or_path!r}")
    text = os.fspath(name_or_path)
    if text.endswith((".py", ".json")) or os.sep in text:
        if not os.path.isfile(text):
            raise RecipeError(f"recipe file {text!r} not found")
        return copy.deepcopy(_load_file(text)), text
    available = list_recipes()
    if text not in available:
        raise RecipeError(f"unknown recipe {text!r}; available: {', '.join(available)}")
    module = importlib.import_module(f"recipes.{text}")
    if not hasattr(module, "RECIPE"):
        raise RecipeError(f"recipes/{text}.py defines no RECIPE dict")
    return copy.deepcopy(module.RECIPE), f"recipes/{text}.py"


def _valid_keys(section):
    return ", ".join(sorted(DEFAULTS[section])) if section else ", ".join(sorted(DEFAULTS))


def _merge(recipe, origin):
    resolved = copy.deepcopy(DEFAULTS)
    for key, value in recipe.items():
        if key not in DEFAULTS:
            raise RecipeError(f"{origin}: unknown recipe key {key!r}; valid keys: {_valid_keys(None)}")
        if isinstance(DEFAULTS[key], dict) and key not in _FREE:
            if not isinstance(value, dict):
                raise RecipeError(f"{origin}: {key!r} must be a dict, got {value!r}")
            for sub, sub_value in value.items():
                if sub not in DEFAULTS[key]:
                    raise RecipeError(
                        f"{origin}: unknown recipe key '{key}.{sub}'; valid keys in {key!r}: "
                        f"{_valid_keys(key)}"
                    )
                resolved[key][sub] = copy.deepcopy(sub_value)
        else:
            resolved[key] = copy.deepcopy(value)
    return resolved


def parse_overrides(overrides):
    """``{"a.b": v}`` or ``["a.b=v", ...]`` -> list of (dotted key, value); values given as
    strings are parsed as JSON when they are JSON (``64``, ``true``, ``[1, 2]``, ``null``) and
    kept as strings otherwise (``ArcFace``)."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return list(overrides.items())
    pairs = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise RecipeError(f"an override is 'key=value', got {item!r}")
        key, text = item.split("=", 1)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        pairs.append((key.strip(), value))
    return pairs


def _apply_override(recipe, key, value, origin):
    parts = key.split(".")
    top = parts[0]
    if top not in DEFAULTS:
        raise RecipeError(f"{origin}: unknown recipe key {key!r}; valid keys: {_valid_keys(None)}")
    if len(parts) == 1:
        recipe[top] = value
        return
    node = recipe
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None and depth == 0 and top in _FREE:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"{origin}: cannot set {key!r}: {'.'.join(parts[:depth + 1])!r} is not a dict")
        node = child
    last = parts[-1]
    if top not in _FREE and len(parts) == 2 and last not in DEFAULTS[top]:
        raise RecipeError(
            f"{origin}: unknown recipe key {key!r}; valid keys in {top!r}: {_valid_keys(top)}"
        )
    node[last] = value


def _check_types(recipe, origin):
    for dotted, types in _TYPES.items():
        node = recipe
        for part in dotted.split("."):
            node = node[part]
        value = node
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            names = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise RecipeError(f"{origin}: {dotted} must be {names}, got {value!r}")
    data = recipe["data"]
    if isinstance(data["image_size"], int):
        data["image_size"] = [data["image_size"], data["image_size"]]
    if len(data["image_size"]) != 2 or not all(isinstance(v, int) and v > 0 for v in data["image_size"]):
        raise RecipeError(f"{origin}: data.image_size must be [height, width], got {data['image_size']!r}")
    if data["batch_size"] <= 0:
        raise RecipeError(f"{origin}: data.batch_size must be > 0, got {data['batch_size']}")
    if not data["train"]:
        raise RecipeError(f"{origin}: data.train is required (a TFRecord directory, an image folder or 'synthetic')")
    if not recipe["backbone"].get("name"):
        raise RecipeError(f"{origin}: backbone.name is required (see tfface.backbones.names())")
    if not recipe["head"].get("class"):
        raise RecipeError(f"{origin}: head.class is required (see tfface.heads.names())")
    if not recipe["loss"].get("class"):
        raise RecipeError(f"{origin}: loss.class is required")
    if not recipe["optimizer"].get("class"):
        raise RecipeError(f"{origin}: optimizer.class is required")
    for name, entry in recipe["aux_losses"].items():
        if not isinstance(entry, dict) or "class" not in entry:
            raise RecipeError(f"{origin}: aux_losses.{name} must be a dict with a 'class', got {entry!r}")
    if recipe["schedule"]["unit"] not in ("epoch", "step"):
        raise RecipeError(f"{origin}: schedule.unit must be 'epoch' or 'step', got {recipe['schedule']['unit']!r}")
    if (recipe["epochs"] is None) == (recipe["steps"] is None):
        raise RecipeError(f"{origin}: give exactly one of 'epochs' and 'steps' "
                          f"(got epochs={recipe['epochs']!r}, steps={recipe['steps']!r})")
    for key in ("epochs", "steps", "steps_per_epoch"):
        if recipe[key] is not None and recipe[key] <= 0:
            raise RecipeError(f"{origin}: {key} must be > 0, got {recipe[key]}")
    if recipe["checkpoint_every"] <= 0:
        raise RecipeError(f"{origin}: checkpoint_every must be > 0, got {recipe['checkpoint_every']}")
    if isinstance(recipe["mixed_precision"], str) and recipe["mixed_precision"] not in (
        "mixed_float16", "mixed_bfloat16", "float32"
    ):
        raise RecipeError(
            f"{origin}: mixed_precision must be true/false or 'mixed_float16'/'mixed_bfloat16', "
            f"got {recipe['mixed_precision']!r}"
        )


def load_recipe(name_or_path, overrides=None):
    """Load, complete and check a recipe.

    Args:
        name_or_path: a bundled recipe name (``"smoke"`` -> ``recipes/smoke.py``), a path to a
            ``.py`` file defining ``RECIPE`` or to a ``.json`` file, or a dict.
        overrides: ``{"data.batch_size": 64}`` or ``["data.batch_size=64", "head.margin=0.4"]``.

    Returns:
        The resolved recipe: a plain, JSON-serialisable dict with every key of ``DEFAULTS``.

    Raises:
        RecipeError: unknown recipe, unknown key (the message lists the valid keys), wrong type.
    """
    recipe, origin = _source(name_or_path)
    if not isinstance(recipe, dict):
        raise RecipeError(f"{origin}: RECIPE must be a dict, got {type(recipe).__name__}")
    resolved = _merge(recipe, origin)
    for key, value in parse_overrides(overrides):
        _apply_override(resolved, key, value, "override")
    _check_types(resolved, origin)
    return resolved
