"""Training throughput of FaceModel, and the cost of the Keras path.

For each model it prints training images/s of a hand-written ``tf.function`` step on the same
model, optimizer and data (backbone -> margin head -> loss + coupled weight decay -> SGD), and the
ratio to it of four Keras paths (goal: fit/hand <= 1.03, i.e. the Keras path adds nothing that
matters), each as wall-clock / process-CPU seconds, medians of alternating repeats (the CPU
figure is the robust one on a machine shared with other work):

* ``fit``: one whole ``fit`` call (its fixed per-call cost included), no callbacks, with the
  ``steps_per_execution`` that ``tfface train`` uses (recipe default ``"auto"``: here the largest
  divisor of the timed steps up to 32, printed as ``x/call``);
* ``fit+callbacks``: the same with the per-batch callbacks ``tfface train`` uses
  (``StepCheckpoint`` without files, ``ProgressPrinter`` without printing);
* ``fit 1/call``: ``fit`` with callbacks, one step per call (Keras' default, and tfface's
  before issue 14): Keras' per-call cost (its Python loop, the callbacks, the step's outputs
  read back) paid every step;
* ``train_fn``: Keras' compiled train function called directly, one step per call
  (FaceModel's step graph without fit's Python loop).

Data are random images in a repeated in-memory dataset, so the figures measure the training
step, not JPEG decoding.

    python benchmarks/train_step.py                  # smoke (tiny, 64², batch 64) + IResNet-50/CurricularFace (112², batch 8)
    python benchmarks/train_step.py --quick          # a few steps, IResNet-18: a sanity run
    python benchmarks/train_step.py --models iresnet50,inception_resnet_v1 --batch 128 --mixed-precision --jit-compile   # on a GPU

Writes nothing.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfface.training import build, load_recipe  # noqa: E402
from tfface.training.builder import steps_per_execution  # noqa: E402

# name -> (recipe overrides on top of the smoke recipe, default global batch)
MODELS = {
    "smoke": ({}, 64),
    "iresnet18": ({"backbone": {"name": "iresnet18", "embedding_size": 512},
                   "head": {"name": "curricularface", "scale": 64.0, "margin": 0.5},
                   "data.image_size": [112, 112]}, 8),
    "iresnet50": ({"backbone": {"name": "iresnet50", "embedding_size": 512},
                   "head": {"name": "curricularface", "scale": 64.0, "margin": 0.5},
                   "data.image_size": [112, 112]}, 8),
    "inception_resnet_v1": ({"backbone": {"name": "inception_resnet_v1", "embedding_size": 512, "dropout_keep": 0.4},
                             "head": {"name": "softmax"},
                             "data.image_size": [160, 160]}, 8),
}


def make_run(name, batch, num_classes, mixed_precision, jit_compile):
    overrides, default_batch = MODELS[name]
    overrides = dict(overrides)
    overrides["data.batch_size"] = batch or default_batch
    overrides["mixed_precision"] = bool(mixed_precision)
    overrides["jit_compile"] = bool(jit_compile)
    recipe = load_recipe("smoke", overrides)
    run = build(recipe, check_data=False, num_classes=num_classes, print_fn=lambda *a: None)
    h, w = recipe.data.image_size
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(4 * run.global_batch, h, w, 3)).astype("float32")
    labels = rng.integers(0, num_classes, size=(4 * run.global_batch,)).astype("int32")
    ds = (tf.data.Dataset.from_tensor_slices((images, labels)).batch(run.global_batch, drop_remainder=True)
          .cache().repeat().prefetch(tf.data.AUTOTUNE))
    return run, ds


class _Clock:
    """Wall and process-CPU seconds since creation."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def tfface_callbacks(run, steps):
    """The per-batch callbacks ``tfface train`` runs (step counter and non-finite guard, progress
    lines), without checkpoint files or printing: what the Keras path costs in a real run."""
    from tfface.training.callbacks import ProgressPrinter, StepCheckpoint

    guard = StepCheckpoint(None, run.step, every=10**9, total_steps=10**12)
    printer = ProgressPrinter(run.step, 10**12, 1, run.global_batch, print_fn=lambda *a: None)
    return [guard, printer]


def time_fit(model, ds, steps, per_call, callbacks=None):
    """(wall, CPU) seconds of one ``fit`` call of ``steps`` steps (its fixed per-call cost
    included: a distributed iterator over the dataset, the epoch's logs read back to Python),
    ``per_call`` steps per call of the compiled step (which divides ``steps``), after a warm-up
    call of ``per_call`` steps."""
    if model.steps_per_execution != per_call:
        model.steps_per_execution = per_call
        model.train_function = None
    model.fit(ds, epochs=1, steps_per_epoch=per_call, verbose=0, callbacks=callbacks)
    clock = _Clock()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
    return clock.read()


def time_train_function(model, ds, steps, warmup):
    """(wall, CPU) seconds of ``steps`` calls of Keras' compiled ``train_function``
    (FaceModel.train_step with its metrics, logs and label check, inside Keras' strategy.run
    wrapper) on a plain iterator: the step's graph without fit's Python loop, callbacks and
    distributed iterator."""
    if model.steps_per_execution != 1 or model.train_function is None:
        model.steps_per_execution = 1
        model.make_train_function(force=True)
    function = model.train_function
    iterator = iter(ds)
    for _ in range(warmup):
        function(iterator)
    clock = _Clock()
    for _ in range(steps):
        logs = function(iterator)
    float(logs["loss"])
    return clock.read()


def hand_step(model, jit_compile):
    """The same computation as FaceModel.train_step minus Keras: forward, margin logits, mean
    cross-entropy + ½·wd·Σ‖W‖², gradient, optimizer update (with loss scaling when mixed)."""
    optimizer = model.optimizer
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    decay = model.decay_variables
    wd = model.weight_decay
    variables = model.trainable_variables

    @tf.function(jit_compile=jit_compile)
    def compute(images, labels):
        with tf.GradientTape() as tape:
            embeddings = tf.cast(model.backbone(images, training=True), tf.float32)
            logits = model.head(embeddings, labels, training=True)
            loss = ce(labels, logits)
            if wd:
                loss = loss + 0.5 * wd * tf.add_n([tf.reduce_sum(tf.square(v)) for v in decay])
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    # The usual custom loop: the iterator is read inside the compiled function.
    @tf.function
    def step(iterator):
        return compute(*next(iterator))

    return step


def time_hand(model, ds, steps, warmup, jit_compile):
    """(wall, CPU) seconds of ``steps`` hand-written steps."""
    step = hand_step(model, jit_compile)
    iterator = iter(ds)
    for _ in range(warmup):
        loss = step(iterator)
    float(loss)
    clock = _Clock()
    for _ in range(steps):
        loss = step(iterator)
    float(loss)
    return clock.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps, smoke + iresnet18")
    parser.add_argument("--models", default=None, help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--batch", type=int, default=None, help="global batch (default per model)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=None, help="alternating fit/hand measurements (median)")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--jit-compile", action="store_true")
    args = parser.parse_args(argv)
    models = (args.models or ("smoke,iresnet18" if args.quick else "smoke,iresnet50")).split(",")
    gpus = tf.config.list_physical_devices("GPU")
    print(f"device: {'GPU ' + str(len(gpus)) if gpus else 'CPU'} ({os.cpu_count()} logical CPUs); "
          f"TF {tf.__version__}, Keras {keras.__version__}; mixed precision {args.mixed_precision}, "
          f"XLA {args.jit_compile}")
    print("ratios to the hand-written step, median of alternating repeats: wall-clock / process CPU seconds")
    print(f"{'model':<22}{'batch':>6}{'hand img/s':>12}{'x/call':>7}{'fit':>14}{'fit+callbacks':>16}"
          f"{'fit 1/call':>14}{'train_fn':>14}")
    for name in models:
        if name not in MODELS:
            parser.error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        run, ds = make_run(name, args.batch, args.num_classes, args.mixed_precision, args.jit_compile)
        small = name == "smoke"
        steps = args.steps or (5 if args.quick else (60 if small else 10))
        repeats = args.repeats or (1 if args.quick else 3)
        warmup = 2 if args.quick else 5
        callbacks = tfface_callbacks(run, steps)
        # What tfface train would choose for a run of `steps` steps per epoch.
        per_call = steps_per_execution("auto", steps, steps)
        keys = ("hand", "fit", "fit+callbacks", "fit 1/call", "train_fn")
        times = {key: [] for key in keys}
        # Alternate the paths so machine load drifts affect them alike; medians.
        for _ in range(repeats):
            times["fit"].append(time_fit(run.model, ds, steps, per_call))
            times["fit+callbacks"].append(time_fit(run.model, ds, steps, per_call, callbacks))
            times["fit 1/call"].append(time_fit(run.model, ds, steps, 1, callbacks))
            times["hand"].append(time_hand(run.model, ds, steps, warmup, args.jit_compile))
            times["train_fn"].append(time_train_function(run.model, ds, steps, warmup))
        med = {key: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
               for key, v in times.items()}
        hand_wall, hand_cpu = med["hand"]
        cells = "".join(f"{med[key][0] / hand_wall:>8.3f}/{med[key][1] / hand_cpu:<5.3f}" for key in keys[1:])
        print(f"{name:<22}{run.global_batch:>6}{steps * run.global_batch / hand_wall:>12.1f}{per_call:>7}  {cells}")
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
