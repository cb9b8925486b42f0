"""Recipe -> objects: model (compiled), optimizer, data, strategy, checkpoint.

Everything that can be wrong in a recipe is checked here, before the first step: unknown
classes and class arguments (the message names them and lists the valid ones), a missing data
set, labels that do not fit the head's ``num_classes``.
"""
import contextlib
import dataclasses
import inspect
import json
import math
import os
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfface.training.callbacks import make_checkpoint
from tfface.training.model import FaceModel
from tfface.training.recipe import RecipeError, load_recipe
from tfface.training.schedules import StepDecay, StepWeight


class DataError(ValueError):
    """The training data does not fit the recipe (labels >= num_classes, no examples)."""


# ---------------------------------------------------------------------------------------------
# classes


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# Keyword arguments every Keras layer/loss/optimizer accepts through **kwargs.
_BASE_KWARGS = ("name", "dtype", "trainable", "reduction")


def _check_kwargs(section, cls, kwargs, provided=()):
    """Every key of ``kwargs`` is a named argument of ``cls`` (a class's constructor or a builder
    function), or a base Keras argument such as ``name``: a misspelt ``head.margn`` fails here,
    naming the valid ones."""
    try:
        params = inspect.signature(cls.__init__ if isinstance(cls, type) else cls).parameters
    except (TypeError, ValueError):
        return
    names = [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = [k for k in kwargs if k not in names and k not in _BASE_KWARGS]
    if unknown:
        valid = [n for n in names if n not in provided]
        raise RecipeError(
            f"{section}: {cls.__name__} has no argument {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(valid)}"
        )


def _find_class(section, module, class_name, extra_modules=()):
    for mod in (module,) + tuple(extra_modules):
        if mod is None:
            continue
        candidate = getattr(mod, class_name, None)
        if isinstance(candidate, type):
            return candidate
    getter = getattr(module, "get", None) if module is not None else None
    names = getattr(module, "names", None) if module is not None else None
    available = []
    if callable(names):
        available = list(names())
    if callable(getter) and class_name in available:
        return getter
    if callable(getter):
        snake = _snake(class_name)
        if snake in available:
            return getter
    raise RecipeError(
        f"{section}: unknown class {class_name!r}"
        + (f"; available: {', '.join(available)}" if available else "")
    )


def _instantiate(section, module, spec, extra=None, extra_modules=()):
    spec = dict(spec)
    class_name = spec.pop("class")
    extra = dict(extra or {})
    target = _find_class(section, module, class_name, extra_modules)
    if isinstance(target, type):
        _check_kwargs(section, target, spec, provided=extra)
        return target(**extra, **spec)
    try:
        return target(class_name, **extra, **spec)
    except TypeError as err:
        raise RecipeError(f"{section}: {class_name}: {err}") from None


def make_backbone(spec, image_size):
    from tfface import backbones

    spec = dict(spec)
    name = spec.pop("name")
    available = list(backbones.names())
    if name not in available:
        raise RecipeError(f"backbone.name: unknown backbone {name!r}; available: {', '.join(available)}")
    builder = getattr(backbones.spec(name), "builder", None)
    if builder is not None:
        _check_kwargs("backbone", builder, spec, provided=("input_shape", "embedding_size"))
    try:
        return backbones.get(name, input_shape=(image_size[0], image_size[1], 3), **spec)
    except TypeError as err:
        raise RecipeError(f"backbone: {name}: {err}") from None


def make_head(spec, num_classes):
    from tfface import heads

    return _instantiate("head", heads, spec, {"num_classes": num_classes})


def make_logits_loss(spec):
    from tfface import losses

    spec = dict(spec)
    class_name = spec["class"]
    if class_name in ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"):
        spec.pop("class")
        _check_kwargs("loss", keras.losses.SparseCategoricalCrossentropy, spec)
        spec.setdefault("from_logits", True)
        return keras.losses.SparseCategoricalCrossentropy(**spec)
    target = _find_class("loss", losses, class_name, (keras.losses,))
    if isinstance(target, type) and "from_logits" in inspect.signature(target.__init__).parameters:
        # Heads return logits.
        spec.setdefault("from_logits", True)
    return _instantiate("loss", losses, spec, extra_modules=(keras.losses,))


def make_centres(spec, num_classes):
    from tfface import layers

    spec = dict(spec or {})
    _check_kwargs("centres", layers.ClassCentres, spec, provided=("num_classes",))
    return layers.ClassCentres(num_classes, **spec)


def make_aux_losses(specs, centres_spec, num_classes):
    """``{name: {"class": ..., "weight": w, **kwargs}}`` -> ``({name: (loss, weight)}, centres)``;
    one ``ClassCentres`` layer (``centres``, or None) is shared by every loss that takes it."""
    from tfface import losses

    result = {}
    centres = None
    for name, spec in specs.items():
        spec = dict(spec)
        weight = spec.pop("weight", 1.0)
        class_name = spec["class"]
        target = _find_class(f"aux_losses.{name}", losses, class_name)
        extra = {}
        if isinstance(target, type) and "centres" in inspect.signature(target.__init__).parameters:
            if centres is None:
                centres = make_centres(centres_spec, num_classes)
            extra["centres"] = centres
        loss = _instantiate(f"aux_losses.{name}", losses, spec, extra)
        if isinstance(weight, dict):
            weight = StepWeight(weight)
        elif not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise RecipeError(f"aux_losses.{name}.weight must be a number or {{step: weight}}, got {weight!r}")
        result[name] = (loss, weight)
    if centres is None and centres_spec:
        raise RecipeError("centres is set but no auxiliary loss uses class centres")
    return result, centres


def make_schedule(spec, steps_per_epoch):
    per_unit = steps_per_epoch if spec["unit"] == "epoch" else 1
    try:
        return StepDecay(
            learning_rate=spec["learning_rate"],
            boundaries=spec["boundaries"],
            factor=spec["factor"],
            values=spec["values"],
            warmup=spec["warmup"],
            warmup_start=spec["warmup_start"],
            steps_per_epoch=per_unit,
        )
    except ValueError as err:
        raise RecipeError(f"schedule: {err}") from None


def make_optimizer(spec, learning_rate):
    spec = dict(spec)
    class_name = spec.pop("class")
    cls = getattr(keras.optimizers, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, keras.optimizers.Optimizer):
        available = [n for n in dir(keras.optimizers) if isinstance(getattr(keras.optimizers, n), type)
                     and issubclass(getattr(keras.optimizers, n), keras.optimizers.Optimizer)]
        raise RecipeError(f"optimizer: unknown class {class_name!r}; available: {', '.join(available)}")
    if "learning_rate" in spec:
        raise RecipeError("optimizer.learning_rate: set the rate in schedule.learning_rate")
    _check_kwargs("optimizer", cls, spec, provided=("learning_rate",))
    return cls(learning_rate=learning_rate, **spec)


@contextlib.contextmanager
def _policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ---------------------------------------------------------------------------------------------
# data


def data_exists(source):
    if os.path.isdir(source):
        return True
    return bool(tf.io.gfile.glob(source))


def describe_data(source):
    """``(num_examples or None, largest label or None, num_classes)`` of a training source, read
    cheaply: the image folder's index, or ``stats.json``/``labels.json`` beside TFRecord shards."""
    from tfface.data import pipeline

    try:
        kind, what = pipeline.describe_source(source)
    except ValueError as err:
        raise DataError(f"data.train: {err}") from None
    if kind == "folder":
        paths, labels, names = what
        return len(paths), (max(labels) if labels else None), len(names)
    folder = os.path.dirname(what[0])
    classes = pipeline.num_classes(source)
    with open(os.path.join(folder, "labels.json")) as f:
        values = list(json.load(f).values())
    largest = max(values) if values else None
    examples = None
    stats = os.path.join(folder, "stats.json")
    if os.path.isfile(stats):
        with open(stats) as f:
            written = json.load(f).get("written")
        if isinstance(written, int):
            examples = written
    return examples, largest, classes


def _dataset_kwargs(make_dataset, spec):
    """The recipe's augmentation switches, passed only where make_dataset has them."""
    params = inspect.signature(make_dataset).parameters
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kwargs = {}
    for key in ("flip", "random_crop", "color_jitter"):
        if key in params or accepts_any:
            kwargs[key] = spec[key]
        elif spec[key]:
            raise RecipeError(f"data.{key}: tfface.data.make_dataset has no {key!r} option")
    return kwargs


# ---------------------------------------------------------------------------------------------
# the run


@dataclasses.dataclass
class TrainingRun:
    """What ``build`` returns. ``dataset(start_step)`` gives the global-batch training data
    positioned at ``start_step`` (model.fit distributes it over the strategy's replicas)."""

    recipe: dict
    strategy: object
    model: FaceModel
    optimizer: object
    num_classes: int
    steps: int
    steps_per_epoch: int
    epochs: int
    global_batch: int
    data_spec: dict
    step: object
    checkpoint: object
    make_dataset_fn: object = None
    callbacks: list = dataclasses.field(default_factory=list)

    def dataset(self, start_step=0):
        if self.make_dataset_fn is None:
            raise RuntimeError("this run was built with check_data=False; it has no data")
        return self.make_dataset_fn(start_step)


def _synthetic_source(spec, data_dir, print_fn):
    from tfface.data import generate_synthetic

    root = data_dir or tempfile.mkdtemp(prefix="tfface_synthetic_")
    if not os.path.isfile(os.path.join(root, "info.json")):
        print_fn(f"generating the synthetic data set in {root}")
        generate_synthetic(root, **spec.get("synthetic", {}))
    return os.path.join(root, "train")


def build(
    recipe,
    strategy=None,
    num_classes=None,
    steps=None,
    check_data=True,
    data_dir=None,
    steps_per_epoch=None,
    print_fn=print,
):
    """Build everything a recipe describes, under ``strategy``.

    Args:
        recipe: a resolved recipe (``load_recipe``), a name, a path or a dict.
        strategy: a ``tf.distribute.Strategy``; default: TensorFlow's current strategy.
        num_classes: the head's classes; default: ``data.num_classes`` or the data's labels.
        steps: total steps instead of the recipe's ``epochs``/``steps``.
        check_data: False skips every data check and builds no dataset (for inspecting a
            recipe whose data is not on this machine; then ``num_classes`` must be known).
        data_dir: where ``data.train: "synthetic"`` is generated (default: a temporary dir).
        steps_per_epoch: overrides the recipe's / the data's steps per epoch.

    Returns:
        ``TrainingRun`` with the compiled ``model``, its ``optimizer``, ``dataset(start)``,
        ``steps``, ``steps_per_epoch``, ``epochs``, ``strategy`` and a ``checkpoint``.
    """
    recipe = load_recipe(recipe)
    strategy = strategy or tf.distribute.get_strategy()
    data = recipe["data"]
    batch = data["batch_size"]
    if batch % strategy.num_replicas_in_sync:
        raise RecipeError(
            f"data.batch_size {batch} (the global batch) is not divisible by the "
            f"{strategy.num_replicas_in_sync} replicas"
        )

    source = data["train"]
    if check_data:
        if source == "synthetic":
            source = _synthetic_source(data, data_dir, print_fn)
        elif not data_exists(source):
            raise FileNotFoundError(
                f"data.train: training data {source!r} not found (expected a TFRecord directory "
                "from 'tfface build', a TFRecord file pattern, or an image folder with one "
                "sub-folder per identity)"
            )
    classes = num_classes or data["num_classes"]
    examples = None
    if check_data:
        examples, largest, found = describe_data(source)
        if classes is None:
            classes = found
        largest = max(v for v in (found - 1, largest) if v is not None)
        if largest >= classes:
            raise DataError(
                f"data.train {source!r} has labels up to {largest} but num_classes is {classes}: "
                f"every label must be < num_classes (set data.num_classes >= {largest + 1} or "
                "leave it null to read it from the data)"
            )
    if classes is None:
        raise RecipeError("num_classes unknown: set data.num_classes or pass num_classes=")
    if not isinstance(classes, int) or classes < 2:
        raise RecipeError(f"num_classes must be an int >= 2, got {classes!r}")

    spe = steps_per_epoch or recipe["steps_per_epoch"]
    if spe is None and examples is not None:
        spe = examples // batch
        if spe == 0:
            raise DataError(f"data.train {source!r} holds {examples} examples, fewer than one batch of {batch}")
    if spe is None:
        if check_data and (recipe["epochs"] is not None or recipe["schedule"]["unit"] == "epoch"):
            raise RecipeError(
                f"steps_per_epoch unknown for {source!r} (no stats.json beside the shards): set "
                "steps_per_epoch"
            )
        # Without data (check_data=False) epochs are nominal: 1000 steps.
        spe = 1000
    total = steps or recipe["steps"] or recipe["epochs"] * spe
    epochs = math.ceil(total / spe)

    seed = recipe["seed"]
    keras.utils.set_random_seed(seed)
    # Keras' initialisers and dropout draw from the seeds set above. TensorFlow's global seed is
    # cleared again: the input pipeline seeds itself per (seed, epoch), and tf.data's
    # shuffle(seed=<tensor>) fails while a global seed is set.
    tf.random.set_seed(None)
    if recipe["deterministic"]:
        if recipe["jit_compile"]:
            raise RecipeError("jit_compile and deterministic cannot both be on: Keras disables XLA under op determinism")
        tf.config.experimental.enable_op_determinism()

    policy = recipe["mixed_precision"]
    policy = "mixed_float16" if policy is True else ("float32" if policy is False else policy)

    with strategy.scope(), _policy(policy):
        backbone = make_backbone(recipe["backbone"], data["image_size"])
        head = make_head(recipe["head"], classes)
        aux, centres = make_aux_losses(recipe["aux_losses"], recipe["centres"], classes)
        logits_loss = make_logits_loss(recipe["loss"])
        model = FaceModel(backbone, head, aux_losses=aux, centres=centres, weight_decay=recipe["weight_decay"],
                          name="face_model")
        schedule = make_schedule(recipe["schedule"], spe)
        optimizer = make_optimizer(recipe["optimizer"], schedule)
        model.compile(optimizer=optimizer, loss=logits_loss, jit_compile=recipe["jit_compile"])
        model.optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
    checkpoint = make_checkpoint(model, step)

    data_spec = {
        "source": source,
        "batch_size": batch,
        "image_size": tuple(data["image_size"]),
        "seed": seed,
        "deterministic": recipe["deterministic"],
        "flip": data["flip"],
        "random_crop": data["random_crop"],
        "color_jitter": data["color_jitter"],
    }
    make_fn = None
    if check_data:
        make_fn = _dataset_factory(data_spec, examples)
        _check_first_batch(make_fn(0), classes, source)
    return TrainingRun(
        recipe=recipe, strategy=strategy, model=model, optimizer=model.optimizer, num_classes=classes,
        steps=total, steps_per_epoch=spe, epochs=epochs, global_batch=batch, data_spec=data_spec,
        step=step, checkpoint=checkpoint, make_dataset_fn=make_fn,
    )


def _dataset_factory(spec, examples):
    """``make(start_step)``: the global-batch stream positioned after ``start_step`` batches.

    The pipeline is a concatenation of data epochs of ``examples`` elements, cut into batches.
    Batch ``s`` starts at element ``s·B`` = data epoch ``e`` plus ``offset``; the pipeline starts
    at epoch ``e`` (``start_epoch``, no replay of earlier epochs). Deterministic runs then drop the
    ``offset`` elements (at most one epoch of reading) so they continue exactly; other runs start a
    fresh order (seed keyed on the step) at that epoch.
    """
    from tfface.data import make_dataset

    kwargs = _dataset_kwargs(make_dataset, spec)
    batch = spec["batch_size"]
    deterministic = spec["deterministic"]

    def make(start_step):
        consumed = int(start_step) * batch
        if examples:
            epoch, offset = divmod(consumed, examples)
        else:
            epoch, offset = 0, consumed
        seed = spec["seed"] if deterministic else spec["seed"] + int(start_step)
        ds = make_dataset(
            spec["source"], batch, spec["image_size"], training=True, seed=seed,
            deterministic=deterministic, start_epoch=epoch, **kwargs,
        )
        if ds.cardinality() != tf.data.INFINITE_CARDINALITY:
            ds = ds.repeat()
        if deterministic and offset:
            if offset % batch == 0:
                ds = ds.skip(offset // batch)
            else:
                ds = ds.unbatch().skip(offset).batch(batch, drop_remainder=True)
        options = tf.data.Options()
        # DATA sharding gives every worker its slice of each global batch, so a multi-worker
        # step sees the same examples as one process would.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        options.deterministic = bool(deterministic)
        return ds.with_options(options)

    return make


def _check_first_batch(ds, num_classes, source):
    _, labels = next(iter(ds.take(1)))
    labels = np.asarray(labels)
    if labels.size and (labels.max() >= num_classes or labels.min() < 0):
        raise DataError(
            f"data.train {source!r}: the first batch holds label {int(labels.max())} but "
            f"num_classes is {num_classes}"
        )
