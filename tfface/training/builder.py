"""Recipe -> objects: model (compiled), optimizer, data, strategy, checkpoint.

Every component is built by ``tfface.registry.build`` from the recipe's typed
``Component(name, args)``: the registry checks the arguments against the component's signature
and the builder adds only what it owns (the head's ``num_classes``, the backbone's
``input_shape``, the shared ``centres`` of the losses that declare them, the optimizer's
``learning_rate``). Everything that can be wrong is checked here, before the first step: unknown
components and arguments (naming the dotted recipe key), a missing data set, labels that do not
fit the head's ``num_classes``.
"""
import contextlib
import dataclasses
import math
import os
import tempfile
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from tfface import registry, replica
from tfface.recipe import Recipe, RecipeError, load_recipe
from tfface.registry import Component
from tfface.training.callbacks import make_checkpoint
from tfface.training.model import FaceModel
from tfface.training.schedules import StepWeight


class DataError(ValueError):
    """The training data does not fit the recipe (labels >= num_classes, no examples)."""


# ---------------------------------------------------------------------------------------------
# components


def component(kind, spec, key, **provided):
    """``registry.build`` with the recipe key in its errors, raised as :class:`RecipeError`."""
    try:
        return registry.build(kind, spec, key=key, **provided)
    except registry.RegistryError as err:
        raise RecipeError(str(err)) from None


def _loss_entry(spec, key, takes):
    """The registry entry of a loss, refused when it is not a loss on ``takes`` (``"logits"``
    for ``loss``, ``"embeddings"`` for an auxiliary loss)."""
    try:
        found = registry.entry("loss", spec.name, key)
    except registry.RegistryError as err:
        raise RecipeError(str(err)) from None
    if found.meta.get("takes") != takes:
        raise RecipeError(
            f"{key}: loss {found.name!r} is a loss on {found.meta.get('takes')}, not on {takes}"
            + (" (auxiliary losses take the embeddings: centre, range, marginal, minimum_margin)"
               if takes == "embeddings" else " (the logits loss: cross_entropy, hard_mining, focal, ohem)")
        )
    return found


def make_backbone(spec, image_size):
    """The recipe's backbone for ``(H, W, 3)`` inputs of ``image_size``."""
    return component("backbone", spec, "backbone", input_shape=(image_size[0], image_size[1], 3))


def make_head(recipe, num_classes):
    """The recipe's head over ``num_classes``, wrapped by ``partial_fc`` when the recipe sets it."""
    head = component("head", recipe.head, "head", num_classes=num_classes)
    if recipe.partial_fc is not None:
        settings = dataclasses.asdict(recipe.partial_fc)
        head = component("head_wrapper", Component("partial_fc", settings), "partial_fc", head=head)
    return head


def make_aux_losses(recipe, centres):
    """``{name: (loss, weight)}``; the losses that declare ``centres`` get the one shared layer."""
    result = {}
    used = False
    for name, entry in recipe.aux_losses.items():
        key = f"aux_losses.{name}"
        wants_centres = "centres" in _loss_entry(entry.loss, key, "embeddings").inject
        provided = {}
        if wants_centres:
            if centres is None:
                raise RecipeError(
                    f"{key}: loss {entry.loss.name!r} reads class centres; declare them with "
                    "centres: {\"name\": \"class_centres\"}"
                )
            provided["centres"] = centres
            used = True
        loss = component("loss", entry.loss, key, **provided)
        weight = StepWeight(dict(entry.weight)) if isinstance(entry.weight, Mapping) else entry.weight
        result[name] = (loss, weight)
    if centres is not None and not used:
        raise RecipeError("centres: declared, but no auxiliary loss reads class centres")
    return result


def make_schedule(spec, steps_per_epoch):
    """The learning-rate schedule; epochs are converted to steps with ``steps_per_epoch``."""
    per_unit = steps_per_epoch if spec.unit == "epoch" else 1
    args = dataclasses.asdict(spec)
    del args["unit"]
    args["boundaries"] = list(args["boundaries"])
    if args["values"] is not None:
        args["values"] = list(args["values"])
    return component("schedule", Component("step_decay", args), "schedule", steps_per_epoch=per_unit)


def make_optimizer(spec, learning_rate):
    """The recipe's optimizer with ``learning_rate`` (a schedule)."""
    return component("optimizer", spec, "optimizer", learning_rate=learning_rate)


def build_model(recipe, num_classes):
    """The ``FaceModel`` a recipe describes (not compiled), under the current strategy's scope
    and dtype policy."""
    backbone = make_backbone(recipe.backbone, recipe.data.image_size)
    head = make_head(recipe, num_classes)
    centres = None
    if recipe.centres is not None:
        centres = component("centres", recipe.centres, "centres", num_classes=num_classes)
    aux = make_aux_losses(recipe, centres)
    return FaceModel(backbone, head, aux_losses=aux, centres=centres, weight_decay=recipe.weight_decay,
                     decay_scope=recipe.decay_scope, name="face_model")


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
    cheaply: the image folder's index, ``stats.json``/``labels.json`` beside TFRecord shards, or
    a RecordIO set's ``.idx``, header record and ``property``."""
    from tfface.data import pipeline

    try:
        kind, what = pipeline.describe_source(source)
    except ValueError as err:
        raise DataError(f"data.train: {err}") from None
    if kind == "folder":
        paths, labels, names = what
        return len(paths), (max(labels) if labels else None), len(names)
    if kind == "recordio":
        # The .idx and header record give the count; the reader drops labels >= num_classes.
        classes = pipeline.num_classes(source)
        return what.num_examples, classes - 1, classes
    from tfface.files import read_json

    folder = os.path.dirname(what[0])
    labels_path = os.path.join(folder, "labels.json")
    labels = read_json(labels_path, "the data set's labels file")
    if not isinstance(labels, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels.values()):
        raise DataError(f"data.train: {labels_path} is not a mapping of identity -> label "
                        "(integers >= 0), as 'tfface build' writes it")
    if not labels:
        raise DataError(f"data.train {source!r}: {labels_path} lists no identities")
    classes = pipeline.num_classes(source)
    values = list(labels.values())
    largest = max(values) if values else None
    examples = None
    stats = _read_stats(folder)
    if stats is not None:
        written = stats.get("written")
        if isinstance(written, int) and not isinstance(written, bool):
            examples = written
    return examples, largest, classes


def _read_stats(folder):
    """``stats.json`` of a build (a mapping), None when absent; a malformed one is an error
    naming it."""
    from tfface.files import read_json

    path = os.path.join(folder, "stats.json")
    if not os.path.isfile(path):
        return None
    stats = read_json(path, "the data set's stats file")
    if not isinstance(stats, dict):
        raise DataError(f"data.train: {path} is not a mapping, as 'tfface build' writes it")
    return stats


def _size_of(value):
    """``(height, width)`` of a recorded size (an int or a pair), None when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value, value)
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return tuple(value)
    return None


def crop_size(source, samples=4):
    """``(height, width)`` of the crops of a training source when they all share one size, else
    None (a folder of raw photos of mixed sizes). Read from ``stats.json`` of a build
    (``image_size`` or ``crop_size``), a RecordIO ``property``, or the first few images."""
    from tfface.data import pipeline

    try:
        kind, what = pipeline.describe_source(source)
    except (ValueError, OSError):
        return None
    if kind == "recordio":
        return _size_of(list(what.image_size)) if what.image_size is not None else None
    if kind == "folder":
        paths = list(what[0])
        picks = sorted({paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(samples, len(paths)))})
        sizes = set()
        try:
            from PIL import Image

            for path in picks:
                with Image.open(path) as image:
                    sizes.add((image.height, image.width))
        except Exception:  # noqa: BLE001 - an unreadable image is reported by the pipeline
            return None
        return sizes.pop() if len(sizes) == 1 else None
    folder = os.path.dirname(what[0])
    stats = _read_stats(folder) or {}
    for key in ("image_size", "crop_size"):
        if _size_of(stats.get(key)) is not None:
            return _size_of(stats.get(key))
    sizes = set()
    try:
        from tfface.data.tfrecord import FEATURES

        for record in tf.data.TFRecordDataset(what[:1]).take(samples):
            example = tf.io.parse_single_example(record, {"image": FEATURES["image"]})
            shape = tf.io.decode_image(example["image"], channels=3, expand_animations=False).shape
            sizes.add((int(shape[0]), int(shape[1])))
    except (tf.errors.OpError, ValueError):
        return None
    return sizes.pop() if len(sizes) == 1 else None


def check_crop_size(source, image_size, resize):
    """Refuse crops of another size than the recipe's input (a 160×160 facenet crop in a 112×112
    ArcFace recipe) unless ``data.resize`` says to resize them."""
    if resize:
        return
    found = crop_size(source)
    want = tuple(image_size)
    if found is not None and tuple(found) != want:
        raise DataError(
            f"data.train {source!r} holds {found[0]}x{found[1]} crops but data.image_size is "
            f"{want[0]}x{want[1]}: training would resize every crop (crops are aligned for one "
            f"size). Use data cropped at {want[0]}x{want[1]}, set data.image_size="
            f"[{found[0]}, {found[1]}], or set data.resize=true to resize on purpose"
        )


# ---------------------------------------------------------------------------------------------
# the run


# The most steps "auto" runs per call: Keras' per-call cost (its Python loop, callbacks, the
# step's outputs read back) is then paid once per 32 steps; callbacks still see every call.
AUTO_STEPS_PER_EXECUTION = 32


def steps_per_execution(value, steps_per_epoch, total_steps, strategy=None):
    """Training steps per call of the compiled step (Keras' ``steps_per_execution``).

    A call always runs its whole count, so the count must divide the steps of every ``fit``
    call: the epoch and the run's length. ``"auto"``: the largest such divisor up to
    :data:`AUTO_STEPS_PER_EXECUTION` (1 with several workers, where each call's steps are
    collective). An integer must divide both (``RecipeError`` otherwise)."""
    whole = math.gcd(int(steps_per_epoch), int(total_steps))
    if value == "auto":
        if strategy is not None:
            with strategy.scope():
                if replica.multi_worker():
                    return 1
        return max(d for d in range(1, min(whole, AUTO_STEPS_PER_EXECUTION) + 1) if whole % d == 0)
    if whole % int(value):
        raise RecipeError(
            f"steps_per_execution: {value} does not divide steps_per_epoch ({steps_per_epoch}) and "
            f"the run's length ({total_steps} steps); a call always runs all its steps. Use 'auto' "
            f"or a divisor of {whole}"
        )
    return int(value)


@dataclasses.dataclass
class TrainingRun:
    """What ``build`` returns. ``dataset(start_step)`` gives the global-batch training data
    positioned at ``start_step`` (model.fit distributes it over the strategy's replicas)."""

    recipe: Recipe
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


def _synthetic_source(data, data_dir, print_fn):
    from tfface.data import generate_synthetic

    root = data_dir or tempfile.mkdtemp(prefix="tfface_synthetic_")
    if not os.path.isfile(os.path.join(root, "info.json")):
        print_fn(f"generating the synthetic data set in {root}")
        generate_synthetic(root, **dict(data.synthetic))
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
        recipe: a :class:`~tfface.recipe.Recipe` (``load_recipe``), a name, a path or a dict.
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
    data = recipe.data
    batch = data.batch_size
    if batch % strategy.num_replicas_in_sync:
        raise RecipeError(
            f"data.batch_size: {batch} (the global batch) is not divisible by the "
            f"{strategy.num_replicas_in_sync} replicas"
        )

    source = data.train
    if check_data:
        if source == "synthetic":
            source = _synthetic_source(data, data_dir, print_fn)
        elif not data_exists(source):
            raise FileNotFoundError(
                f"data.train: training data {source!r} not found (expected a TFRecord directory "
                "from 'tfface build', a TFRecord file pattern, an insightface train.rec, or an "
                "image folder with one sub-folder per identity)"
            )
    classes = num_classes or data.num_classes
    examples = None
    if check_data:
        examples, largest, found = describe_data(source)
        if not found:
            raise DataError(f"data.train {source!r} holds no identities")
        check_crop_size(source, data.image_size, data.resize)
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
        raise RecipeError("data.num_classes: unknown; set data.num_classes or pass num_classes=")
    if not isinstance(classes, int) or classes < 2:
        raise RecipeError(f"data.num_classes: expected an integer >= 2, got {classes!r}")

    spe = steps_per_epoch or recipe.steps_per_epoch
    if spe is None and examples is not None:
        spe = examples // batch
        if spe == 0:
            raise DataError(f"data.train {source!r} holds {examples} examples, fewer than one batch of {batch}")
    if spe is None:
        if check_data and (recipe.epochs is not None or recipe.schedule.unit == "epoch"):
            raise RecipeError(
                f"steps_per_epoch: unknown for {source!r} (no stats.json beside the shards); set it"
            )
        # Without data (check_data=False) epochs are nominal: 1000 steps.
        spe = 1000
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0):
        raise RecipeError(f"steps: expected an integer > 0, got {steps!r}")
    total = steps if steps is not None else (recipe.steps or recipe.epochs * spe)
    epochs = math.ceil(total / spe)
    per_call = steps_per_execution(recipe.steps_per_execution, spe, total, strategy)

    keras.utils.set_random_seed(recipe.seed)
    # Keras' initialisers and dropout draw from the seeds set above. TensorFlow's global seed is
    # cleared again: the input pipeline seeds itself per (seed, epoch), and tf.data's
    # shuffle(seed=<tensor>) fails while a global seed is set.
    tf.random.set_seed(None)
    if recipe.deterministic:
        tf.config.experimental.enable_op_determinism()

    with strategy.scope(), _policy(recipe.policy):
        model = build_model(recipe, classes)
        _loss_entry(recipe.loss, "loss", "logits")
        logits_loss = component("loss", recipe.loss, "loss")
        optimizer = make_optimizer(recipe.optimizer, make_schedule(recipe.schedule, spe))
        model.compile(optimizer=optimizer, loss=logits_loss, jit_compile=recipe.jit_compile,
                      steps_per_execution=per_call)
        model.optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
    checkpoint = make_checkpoint(model, step)

    data_spec = {
        "source": source,
        "batch_size": batch,
        "image_size": tuple(data.image_size),
        "seed": recipe.seed,
        "deterministic": recipe.deterministic,
        "flip": data.flip,
        "random_crop": data.random_crop,
        "color_jitter": data.color_jitter,
    }
    make_fn = None
    if check_data:
        make_fn = _dataset_factory(data_spec, examples, classes)
        _check_first_batch(make_fn(0), classes, source)
    return TrainingRun(
        recipe=recipe, strategy=strategy, model=model, optimizer=model.optimizer, num_classes=classes,
        steps=total, steps_per_epoch=spe, epochs=epochs, global_batch=batch, data_spec=data_spec,
        step=step, checkpoint=checkpoint, make_dataset_fn=make_fn,
    )


def _dataset_factory(spec, examples, num_classes=None):
    """``make(start_step)``: the global-batch stream positioned after ``start_step`` batches.

    The pipeline is a concatenation of data epochs of ``examples`` elements, cut into batches.
    Batch ``s`` starts at element ``s·B`` = data epoch ``e`` plus ``offset``; the pipeline starts
    at epoch ``e`` (``start_epoch``, no replay of earlier epochs). Deterministic runs then drop the
    ``offset`` elements (at most one epoch of reading) so they continue exactly; other runs start a
    fresh order (seed keyed on the step) at that epoch.
    """
    from tfface.data import make_dataset

    augment = {key: spec[key] for key in ("flip", "random_crop", "color_jitter")}
    batch = spec["batch_size"]
    deterministic = spec["deterministic"]
    # Images of an image-folder source that are empty, truncated or not images are skipped by the
    # pipeline and counted here (``make.skipped``); the runner reports the count.
    skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_images")

    def make(start_step):
        consumed = int(start_step) * batch
        if examples:
            epoch, offset = divmod(consumed, examples)
        else:
            epoch, offset = 0, consumed
        seed = spec["seed"] if deterministic else spec["seed"] + int(start_step)
        ds = make_dataset(
            spec["source"], batch, spec["image_size"], training=True, seed=seed,
            deterministic=deterministic, start_epoch=epoch, num_classes=num_classes,
            skipped_counter=skipped, **augment,
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

    make.skipped = skipped
    return make


def _check_first_batch(ds, num_classes, source):
    _, labels = next(iter(ds.take(1)))
    labels = np.asarray(labels)
    if labels.size and (labels.max() >= num_classes or labels.min() < 0):
        raise DataError(
            f"data.train {source!r}: the first batch holds label {int(labels.max())} but "
            f"num_classes is {num_classes}"
        )
