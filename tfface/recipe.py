"""Typed recipes: every training setting as a tree of frozen dataclasses.

A :class:`Recipe` holds the data (:class:`Data`), the pluggable parts as
:class:`~tfface.registry.Component` values (``backbone``, ``head``, ``loss``, each auxiliary loss,
``centres``, ``optimizer``), the learning-rate :class:`Schedule` and the run's length and switches.
Each field carries its default, its type and one line of documentation, written once here:
:func:`describe` lists them, :meth:`Recipe.from_dict` checks a plain dict against them, and a
wrong key, type or value fails naming the dotted key, the value and what was expected.

Bundled recipes are the modules of ``tfface/recipes/`` (one ``RECIPE`` each, derived from its
paper family's base in ``tfface/recipes/_bases.py``); ``load_recipe`` also reads a ``.py`` file
defining ``RECIPE`` (a ``Recipe`` or a dict) or a ``.json`` file, and applies ``key=value``
overrides (``--set head.margin=0.4``). Importing this module loads no TensorFlow.

In their plain (JSON) form components are flat: ``{"name": "arcface", "margin": 0.5}``; an
auxiliary loss adds its ``weight``: ``{"name": "centre", "weight": 5e-5, "reduction": "sum"}``.
A dotted override addresses a component's argument directly: ``head.margin=0.4``,
``aux_losses.mml.weight=1e-7``, ``optimizer.momentum=0.95``.
"""
import collections.abc
import copy
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import pkgutil
import types
import typing
from typing import Any, Mapping, Optional, Tuple, Union

from tfface.registry import Component


class RecipeError(ValueError):
    """A recipe key, value or component that does not exist or has the wrong type."""


def _require(key, value, ok, expected):
    """Raise :class:`RecipeError` naming the dotted ``key``, the value and the expected range
    unless ``ok``; a non-finite float is never in range."""
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        raise RecipeError(f"{key}: expected {expected}, got {value!r}")


def _positive(key, value, kind="a number"):
    _require(key, value, value is not None and value > 0, f"{kind} > 0")


def _non_negative(key, value, kind="a number"):
    _require(key, value, value is not None and value >= 0, f"{kind} >= 0")


def _field(default=dataclasses.MISSING, doc="", factory=dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def _frozen_mapping(value):
    return types.MappingProxyType(dict(value))


@dataclasses.dataclass(frozen=True)
class ValSet:
    """A verification set evaluated at every epoch end (``tfface.eval.VerificationCallback``):
    a registered verification protocol on its data (``{"name", "protocol", "data"}``), an
    LFW-style pairs.txt with its root, or an insightface .bin."""

    name: str = _field(doc="name of the set in the logs (lfw, cfp_fp, ...)")
    pairs: Optional[str] = _field(None, "LFW-style pairs.txt (with root)")
    root: Optional[str] = _field(None, "image folder the pairs.txt names are relative to")
    ext: str = _field("jpg", "image extension of the pairs.txt layout")
    bin: Optional[str] = _field(None, "insightface .bin file (instead of pairs and root)")
    protocol: Optional[str] = _field(None, "a registered verification protocol (lfw, agedb_30, "
                                           "cfp_fp, ...; see docs/eval.md), with data")
    data: Optional[str] = _field(None, "the protocol's folder (or file) as distributed")
    options: Mapping[str, Any] = _field(doc="the protocol's options (far, folds, ...)",
                                        factory=dict)

    def __post_init__(self):
        forms = [self.protocol is not None or self.data is not None, self.bin is not None,
                 self.pairs is not None or self.root is not None]
        if sum(forms) != 1 or (forms[0] and (self.protocol is None or self.data is None)) or (
                forms[2] and (self.pairs is None or self.root is None)):
            raise RecipeError(f"data.val ({self.name}): needs 'protocol' and 'data', or 'bin', "
                              "or 'pairs' and 'root' (one of the three)")
        if self.options and self.protocol is None:
            raise RecipeError(f"data.val ({self.name}): 'options' belong to a 'protocol'")


@dataclasses.dataclass(frozen=True)
class Data:
    """What the model trains on and how each batch is made."""

    train: str = _field(doc="TFRecord directory or pattern from 'tfface build', an image folder "
                            "(one sub-folder per identity), or 'synthetic'")
    num_classes: Optional[int] = _field(None, "classes of the head; null reads them from the data")
    image_size: Tuple[int, int] = _field((112, 112), "[height, width] of the network input")
    batch_size: int = _field(64, "global batch size (all replicas together)")
    flip: bool = _field(True, "random horizontal flip")
    random_crop: bool = _field(False, "random crop augmentation")
    color_jitter: bool = _field(False, "random colour jitter augmentation")
    val: Tuple[ValSet, ...] = _field((), "verification sets evaluated at every epoch end")
    synthetic: Mapping[str, Any] = _field(
        doc="arguments of tfface.data.generate_synthetic when train is 'synthetic'", factory=dict
    )
    resize: bool = _field(False, "train on crops of another size than image_size by resizing "
                                 "them (false: a data set whose crops are all of another size "
                                 "is refused before training)")

    def __post_init__(self):
        _positive("data.batch_size", self.batch_size, "an integer")
        _require("data.image_size", list(self.image_size), all(v > 0 for v in self.image_size),
                 "[height, width] > 0")
        if self.num_classes is not None:
            _require("data.num_classes", self.num_classes, self.num_classes >= 2,
                     "null or an integer >= 2")


@dataclasses.dataclass(frozen=True)
class AuxLoss:
    """A weighted auxiliary feature loss, ``weight · loss(labels, embeddings)``."""

    loss: Component = _field(doc="the registered loss and its arguments")
    weight: Union[float, Mapping[int, float]] = _field(
        1.0, "a number, or {step: weight} (the weight from that step on)"
    )

    def to_dict(self):
        return {**self.loss.to_dict(), "weight": _plain(self.weight)}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Piecewise-constant learning rate with an optional linear warm-up
    (``tfface.training.StepDecay``)."""

    learning_rate: float = _field(0.1, "initial learning rate")
    unit: str = _field("epoch", "unit of boundaries and warmup: 'epoch' or 'step'")
    boundaries: Tuple[float, ...] = _field((), "where the rate is multiplied by factor")
    factor: float = _field(0.1, "multiplier at each boundary (0.1: divide by 10)")
    values: Optional[Tuple[float, ...]] = _field(None, "explicit rate per interval (overrides learning_rate/factor)")
    warmup: float = _field(0, "linear warm-up length, in unit")
    warmup_start: float = _field(0.0, "rate at step 0 of the warm-up")

    def __post_init__(self):
        if self.unit not in ("epoch", "step"):
            raise RecipeError(f"schedule.unit: expected 'epoch' or 'step', got {self.unit!r}")
        _positive("schedule.learning_rate", self.learning_rate)
        _require("schedule.factor", self.factor, 0 < self.factor <= 1, "a number in (0, 1]")
        for i, value in enumerate(self.boundaries):
            _non_negative(f"schedule.boundaries[{i}]", value)
        _require("schedule.boundaries", list(self.boundaries),
                 all(a < b for a, b in zip(self.boundaries, self.boundaries[1:])), "increasing numbers")
        if self.values is not None:
            for i, value in enumerate(self.values):
                _positive(f"schedule.values[{i}]", value)
            _require("schedule.values", list(self.values), len(self.values) == len(self.boundaries) + 1,
                     f"{len(self.boundaries) + 1} rates (one more than schedule.boundaries)")
        _non_negative("schedule.warmup", self.warmup)
        _non_negative("schedule.warmup_start", self.warmup_start)


@dataclasses.dataclass(frozen=True)
class PartialFCConfig:
    """Sharded, sampled class weights for millions of identities (``tfface.heads.PartialFC``)."""

    sample_rate: float = _field(0.1, "fraction of each shard's classes kept per step, in (0, 1]")
    seed: int = _field(0, "seed of the class sampling")

    def __post_init__(self):
        _require("partial_fc.sample_rate", self.sample_rate, 0.0 < self.sample_rate <= 1.0,
                 "a value in (0, 1]")
        _require("partial_fc.seed", self.seed, 0 <= self.seed < 2**32, "an integer in [0, 2**32)")


_POLICIES = (False, True, "float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training setting, complete: what ``tfface train`` runs and ``summary.json`` records."""

    name: str = _field(doc="the recipe's name (its file name for bundled recipes)")
    data: Data = _field(doc="training data and batches")
    backbone: Component = _field(doc="registered backbone (tfface.backbones.names()) and arguments")
    head: Component = _field(doc="registered margin head (tfface.heads.names()) and arguments")
    description: str = _field("", "one line saying what the recipe trains")
    cite: str = _field("", "paper, section and table the setting comes from")
    partial_fc: Optional[PartialFCConfig] = _field(None, "wrap the head in PartialFC (null: a plain head)")
    loss: Component = _field(Component("cross_entropy"), "registered loss on the head's logits")
    aux_losses: Mapping[str, AuxLoss] = _field(
        doc="weighted auxiliary feature losses by metric name", factory=dict
    )
    centres: Optional[Component] = _field(
        None, "the class centres shared by the losses that read them (class_centres)"
    )
    optimizer: Component = _field(
        Component("sgd", {"momentum": 0.9, "nesterov": False}), "registered optimizer and arguments"
    )
    weight_decay: float = _field(5e-4, "coupled L2 coefficient: the gradient gets weight_decay·w")
    decay_scope: str = _field(
        "kernels", "what weight decay applies to: 'kernels' (conv/dense kernels and the head's "
                   "class weights) or 'all_but_batchnorm' (also biases and PReLU slopes)"
    )
    schedule: Schedule = _field(Schedule(), "learning-rate schedule")
    epochs: Optional[int] = _field(None, "training length in epochs (exactly one of epochs, steps)")
    steps: Optional[int] = _field(None, "training length in steps (exactly one of epochs, steps)")
    steps_per_epoch: Optional[int] = _field(None, "null: examples // batch_size, from the data")
    mixed_precision: Union[bool, str] = _field(
        False, "true (mixed_float16), false, 'mixed_float16' or 'mixed_bfloat16'"
    )
    jit_compile: Union[bool, str] = _field(
        "auto", "XLA: true (the whole step), false (none) or 'auto' (the whole step on a GPU, else "
                "the head and its loss; none with deterministic)"
    )
    steps_per_execution: Union[int, str] = _field(
        "auto", "training steps per call of the compiled step: 'auto' (one machine: the largest "
                "divisor of steps_per_epoch and of the run's length up to 32; several workers: 1) "
                "or an integer that divides both"
    )
    deterministic: bool = _field(False, "op determinism and an exactly resumable data order")
    seed: int = _field(0, "seed of initialisation, dropout and data order")
    init_from: Optional[str] = _field(None, "run directory or .keras file whose weights start this run")
    checkpoint_every: int = _field(1000, "steps between checkpoints")
    keep_checkpoints: int = _field(3, "checkpoints kept")

    def __post_init__(self):
        if (self.epochs is None) == (self.steps is None):
            raise RecipeError(
                f"epochs, steps: give exactly one (got epochs={self.epochs!r}, steps={self.steps!r})"
            )
        for key in ("epochs", "steps", "steps_per_epoch", "checkpoint_every"):
            value = getattr(self, key)
            if value is not None:
                _positive(key, value, "an integer")
        _require("keep_checkpoints", self.keep_checkpoints, self.keep_checkpoints >= 1,
                 "an integer >= 1 (the last good checkpoint is always kept)")
        _require("seed", self.seed, 0 <= self.seed < 2**32, "an integer in [0, 2**32)")
        if self.mixed_precision not in _POLICIES:
            raise RecipeError(
                f"mixed_precision: expected true, false, 'mixed_float16' or 'mixed_bfloat16', "
                f"got {self.mixed_precision!r}"
            )
        _non_negative("weight_decay", self.weight_decay)
        if self.decay_scope not in ("kernels", "all_but_batchnorm"):
            raise RecipeError(
                f"decay_scope: expected 'kernels' or 'all_but_batchnorm', got {self.decay_scope!r}"
            )
        for name, entry in self.aux_losses.items():
            if isinstance(entry.weight, Mapping):
                for step, weight in entry.weight.items():
                    _non_negative(f"aux_losses.{name}.weight", step, "step keys: integers")
                    _non_negative(f"aux_losses.{name}.weight.{step}", weight)
            else:
                _non_negative(f"aux_losses.{name}.weight", entry.weight)
            if not name.isidentifier() or name in ("loss", "accuracy", "l2", "learning_rate"):
                raise RecipeError(
                    f"aux_losses.{name}: the key is a metric name: an identifier other than "
                    "loss, accuracy, l2, learning_rate"
                )
        spx = self.steps_per_execution
        if spx != "auto" and not (isinstance(spx, int) and not isinstance(spx, bool) and spx > 0):
            raise RecipeError(f"steps_per_execution: expected 'auto' or an integer > 0, got {spx!r}")
        if self.jit_compile not in (True, False, "auto"):
            raise RecipeError(f"jit_compile: expected true, false or 'auto', got {self.jit_compile!r}")
        if self.jit_compile is True and self.deterministic:
            raise RecipeError("jit_compile, deterministic: cannot both be on (Keras disables XLA under op determinism)")

    # -- plain form ---------------------------------------------------------------------------

    def to_dict(self):
        """The JSON form: components flat, tuples as lists."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, value, origin="recipe"):
        """Check and convert a plain dict; missing keys take their defaults."""
        try:
            return _convert(value, Recipe, "")
        except RecipeError as err:
            raise RecipeError(f"{origin}: {err}") from None

    def override(self, overrides, origin="override"):
        """A copy with ``["a.b=value", ...]`` or ``{"a.b": value}`` applied (values parsed as
        JSON when they are JSON: ``64``, ``true``, ``[1, 2]``, ``null``)."""
        plain = self.to_dict()
        for key, value in parse_overrides(overrides):
            _set_dotted(plain, key, value, origin)
        return Recipe.from_dict(plain, origin)

    def derive(self, changes=None, **fields):
        """A recipe built from this one (a paper family's base): ``fields`` replace top-level
        fields (given as dataclasses, components or plain values), ``changes`` set dotted keys
        (``{"head.margin": 0.35}``)."""
        plain = self.to_dict()
        for key, value in fields.items():
            if key not in _FIELDS[Recipe]:
                raise RecipeError(f"{key}: unknown recipe key; valid keys: {', '.join(_FIELDS[Recipe])}")
            plain[key] = _to_plain(value)
        recipe = Recipe.from_dict(plain, fields.get("name", self.name))
        return recipe.override(changes or {}, fields.get("name", self.name)) if changes else recipe

    def resolved(self):
        """This recipe with every component's arguments completed by the component's own
        defaults (read from the registry): the settings a run actually uses."""
        from tfface import registry

        def full(kind, component, key):
            try:
                return registry.resolved_args(kind, component, key)
            except registry.RegistryError as err:
                raise RecipeError(str(err)) from None

        aux = {
            name: dataclasses.replace(entry, loss=full("loss", entry.loss, f"aux_losses.{name}"))
            for name, entry in self.aux_losses.items()
        }
        return dataclasses.replace(
            self,
            backbone=full("backbone", self.backbone, "backbone"),
            head=full("head", self.head, "head"),
            loss=full("loss", self.loss, "loss"),
            aux_losses=_frozen_mapping(aux),
            centres=None if self.centres is None else full("centres", self.centres, "centres"),
            optimizer=full("optimizer", self.optimizer, "optimizer"),
        )

    @property
    def policy(self):
        """The Keras dtype policy name of ``mixed_precision``."""
        if self.mixed_precision is True:
            return "mixed_float16"
        if self.mixed_precision is False:
            return "float32"
        return self.mixed_precision


# ---------------------------------------------------------------------------------------------
# checking and converting


_FIELDS = {}
_HINTS = {}


def _fields(cls):
    if cls not in _FIELDS:
        _HINTS[cls] = typing.get_type_hints(cls)
        _FIELDS[cls] = {f.name: f for f in dataclasses.fields(cls)}
    return _FIELDS[cls]


for _cls in (ValSet, Data, AuxLoss, Schedule, PartialFCConfig, Recipe):
    _fields(_cls)


def _describe_type(tp):
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Union:
        return " or ".join(_describe_type(a) for a in typing.get_args(tp))
    if origin in (tuple, Tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe_type(args[0])}"
        return f"a list of {len(args)} {_describe_type(args[0])}"
    if origin in (Mapping, dict, collections.abc.Mapping) or tp in (Mapping, dict):
        return "a mapping"
    if tp is Component:
        return "a component {'name': ..., <args>}"
    if dataclasses.is_dataclass(tp):
        return f"a {tp.__name__} mapping"
    if tp is float:
        return "a number"
    return {int: "an integer", str: "a string", bool: "true or false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _fail(key, value, tp):
    raise RecipeError(f"{key or 'recipe'}: expected {_describe_type(tp)}, got {value!r}")


def _convert(value, tp, key):
    origin = typing.get_origin(tp)
    if tp is Any:
        return copy.deepcopy(value)
    if tp is type(None):
        if value is None:
            return None
        _fail(key, value, tp)
    if origin is Union:
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        present = [o for o in options if o is not type(None)]
        if len(present) == 1:
            return _convert(value, present[0], key)
        errors = {}
        for option in present:
            try:
                return _convert(value, option, key)
            except RecipeError as err:
                errors[option] = err
        if isinstance(value, Mapping):
            # A mapping can only be meant for the mapping-shaped option: report its own error.
            shaped = [o for o in present if typing.get_origin(o) in (collections.abc.Mapping, dict)]
            if len(shaped) == 1:
                raise errors[shaped[0]]
        _fail(key, value, tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
        _fail(key, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        _fail(key, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        _fail(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        _fail(key, value, tp)
    if origin in (tuple, Tuple):
        args = typing.get_args(tp)
        if isinstance(value, int) and not isinstance(value, bool) and args == (int, int):
            value = [value, value]  # image_size: 112 -> [112, 112]
        if not isinstance(value, (list, tuple)):
            _fail(key, value, tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            _fail(key, value, tp)
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (Mapping, dict, collections.abc.Mapping) or tp in (Mapping, dict):
        if not isinstance(value, Mapping):
            _fail(key, value, tp)
        args = typing.get_args(tp) or (Any, Any)
        out = {}
        for k, v in value.items():
            if args[0] is int:
                try:
                    k = int(k)  # JSON keys are strings: {"0": 0.0, "100000": 5e-8}
                except (TypeError, ValueError):
                    raise RecipeError(f"{key}: expected integer keys, got {k!r}") from None
            out[k] = _convert(v, args[1], f"{key}.{k}")
        return _frozen_mapping(out)
    if tp is Component:
        if isinstance(value, Component):
            return value
        if isinstance(value, str):
            return Component(value)
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str) or not value["name"]:
            raise RecipeError(f"{key}: expected a component {{'name': ..., <args>}}, got {value!r}")
        args = dict(value)
        return Component(args.pop("name"), copy.deepcopy(args))
    if tp is AuxLoss:
        if isinstance(value, AuxLoss):
            return value
        if not isinstance(value, Mapping) or "name" not in value:
            raise RecipeError(f"{key}: expected {{'name': ..., 'weight': ..., <args>}}, got {value!r}")
        args = dict(value)
        weight = _convert(args.pop("weight", 1.0), _HINTS[AuxLoss]["weight"], f"{key}.weight")
        return AuxLoss(_convert(args, Component, key), weight)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            _fail(key, value, tp)
        fields = _fields(tp)
        prefix = f"{key}." if key else ""
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise RecipeError(
                f"{prefix}{unknown[0]}: unknown key; valid keys{' in ' + key if key else ''}: "
                f"{', '.join(fields)}"
            )
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _convert(value[name], _HINTS[tp][name], f"{prefix}{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(f"{prefix}{name}: required ({f.metadata.get('doc', '')})")
        return tp(**kwargs)
    raise TypeError(f"unsupported recipe type {tp!r} at {key}")  # a bug in the schema, not input


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _to_plain(value):
    if isinstance(value, Component):
        return _plain(value.to_dict())
    if isinstance(value, AuxLoss):
        return value.to_dict()
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# overrides


def parse_overrides(overrides):
    """``{"a.b": v}`` or ``["a.b=v", ...]`` -> list of (dotted key, value); string values are
    parsed as JSON when they are JSON and kept as strings otherwise (``arcface``)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
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


def _set_dotted(plain, key, value, origin):
    parts = key.split(".")
    if parts[0] not in _FIELDS[Recipe]:
        raise RecipeError(f"{origin}: {key}: unknown recipe key; valid keys: {', '.join(_FIELDS[Recipe])}")
    node = plain
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None and isinstance(node, dict):
            # An optional section that is null (partial_fc, centres) is created by setting a key.
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"{origin}: {key}: {'.'.join(parts[:depth + 1])} is not a mapping")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


# ---------------------------------------------------------------------------------------------
# loading


def recipes_dir():
    """The directory of the bundled recipes (``tfface/recipes``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")


def list_recipes():
    """Names of the bundled recipes (``tfface/recipes/*.py``, private modules excluded)."""
    return sorted(m.name for m in pkgutil.iter_modules([recipes_dir()]) if not m.name.startswith("_"))


def _recipe_of(module, origin):
    recipe = getattr(module, "RECIPE", None)
    if recipe is None:
        raise RecipeError(f"{origin} defines no RECIPE")
    return recipe


def _source(name_or_path):
    if isinstance(name_or_path, Recipe):
        return name_or_path, "<recipe>"
    if isinstance(name_or_path, Mapping):
        return dict(name_or_path), "<dict>"
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise RecipeError(f"a recipe is a name, a .py/.json path, a dict or a Recipe, got {name_or_path!r}")
    text = os.fspath(name_or_path)
    if text.endswith((".py", ".json")) or os.sep in text:
        if not os.path.isfile(text):
            raise RecipeError(f"recipe file {text!r} not found")
        if text.endswith(".json"):
            with open(text) as f:
                try:
                    return json.load(f), text
                except json.JSONDecodeError as err:
                    raise RecipeError(f"{text}: not valid JSON: {err}") from None
        spec = importlib.util.spec_from_file_location(f"_tfface_recipe_{abs(hash(text))}", text)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return _recipe_of(module, text), text
    available = list_recipes()
    if text not in available:
        raise RecipeError(f"unknown recipe {text!r}; available: {', '.join(available)}")
    return _recipe_of(importlib.import_module(f"tfface.recipes.{text}"), f"tfface/recipes/{text}.py"), f"tfface/recipes/{text}.py"


def load_recipe(name_or_path, overrides=None):
    """Load, complete and check a recipe.

    Args:
        name_or_path: a bundled recipe name (``"smoke"``), a ``.py`` file defining ``RECIPE``,
            a ``.json`` file, a plain dict or a :class:`Recipe`.
        overrides: ``{"data.batch_size": 64}`` or ``["data.batch_size=64", "head.margin=0.4"]``.

    Returns:
        A frozen :class:`Recipe` with every default filled in.

    Raises:
        RecipeError: unknown recipe, key, type or value, naming the dotted key.
    """
    value, origin = _source(name_or_path)
    recipe = value if isinstance(value, Recipe) else Recipe.from_dict(value, origin)
    return recipe.override(overrides) if overrides else recipe


def describe(cls=Recipe, prefix=""):
    """``[(dotted key, type, default, doc)]`` of every field, nested sections expanded."""
    rows = []
    for name, f in _fields(cls).items():
        tp = _HINTS[cls][name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp) and tp is not Component:
            rows.extend(describe(tp, f"{key}."))
            continue
        if f.default is not dataclasses.MISSING:
            default = _to_plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _to_plain(f.default_factory())
        else:
            default = "(required)"
        rows.append((key, _describe_type(tp), default, f.metadata.get("doc", "")))
    return rows
