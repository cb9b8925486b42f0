"""Step-time overhead of each tfface loss relative to the plain softmax head step.

The plain step (the baseline, ratio 1.00) is what every scheme of the MML paper pays anyway:
embeddings (B, D) -> logits of a C-class fully connected head -> sparse softmax cross-entropy
-> gradients for the head's weights and for the embeddings (what would flow into the backbone)
-> SGD apply, in one ``tf.function``. Each variant adds one loss at its paper weight (the
Centre / MML schemes also run the ``ClassCentres`` update inside the step) or replaces the
cross-entropy by a mining loss. The MML paper claims "almost no increase in computing cost";
the goal is a ratio <= 1.10 at its setting C=10,000, D=512, B=90.

    python benchmarks/losses.py            # full run
    python benchmarks/losses.py --quick    # a fast sanity run (fewer steps)

Prints one line per variant: milliseconds per step (median of the repeats) and the ratio. Writes
nothing. Variants are timed in interleaved rounds so a background load affects all alike.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.get_logger().setLevel("ERROR")  # one tf.function per variant is intended, not retracing

from tfface.layers import ClassCentres  # noqa: E402
from tfface.losses import (  # noqa: E402
    OHEM,
    CentreLoss,
    Focal,
    HardMining,
    MarginalLoss,
    MinimumMarginLoss,
    RangeLoss,
)


def make_step(num_classes, dim, variant):
    """A compiled training step for one variant, with its own weights."""
    head = keras.layers.Dense(num_classes, name="head")
    head.build((None, dim))
    optimizer = keras.optimizers.SGD(0.01)
    optimizer.build(head.trainable_weights)
    centres = ClassCentres(num_classes, alpha=0.5)
    centres.build((None, dim))
    sce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # (logits loss, [(feature loss, weight)], update the centres?)
    variants = {
        "plain softmax": (sce, [], False),
        "hard_mining (replaces CE)": (HardMining(), [], False),
        "focal (replaces CE)": (Focal(), [], False),
        "ohem (replaces CE)": (OHEM(), [], False),
        "+ centre (5e-5)": (sce, [(CentreLoss(centres), 5e-5)], True),
        "+ centre (5e-5) + mml (5e-8)": (
            sce,
            [(CentreLoss(centres), 5e-5), (MinimumMarginLoss(centres), 5e-8)],
            True,
        ),
        "+ mml (5e-8)": (sce, [(MinimumMarginLoss(centres), 5e-8)], True),
        "+ range (1.0)": (sce, [(RangeLoss(), 1.0)], False),
        "+ marginal (1.0)": (sce, [(MarginalLoss(), 1.0)], False),
    }
    logits_loss, feature_losses, update_centres = variants[variant]
    weights = head.trainable_weights

    @tf.function
    def step(embeddings, labels):
        with tf.GradientTape() as tape:
            tape.watch(embeddings)
            loss = logits_loss(labels, head(embeddings))
            for feature_loss, weight in feature_losses:
                loss = loss + weight * feature_loss(labels, embeddings)
        grads = tape.gradient(loss, weights + [embeddings])
        optimizer.apply_gradients(zip(grads[:-1], weights))
        if update_centres:
            centres(embeddings, labels, training=True)
        # The embeddings' gradient is what a backbone would receive: keep it alive.
        return loss, tf.reduce_sum(grads[-1])

    return step


VARIANTS = [
    "plain softmax",
    "hard_mining (replaces CE)",
    "focal (replaces CE)",
    "ohem (replaces CE)",
    "+ centre (5e-5)",
    "+ mml (5e-8)",
    "+ centre (5e-5) + mml (5e-8)",
    "+ range (1.0)",
    "+ marginal (1.0)",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps: a sanity run")
    parser.add_argument("--classes", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=90)
    args = parser.parse_args(argv)
    steps, rounds = (5, 3) if args.quick else (30, 7)

    rng = np.random.default_rng(0)
    embeddings = tf.constant(rng.normal(size=(args.batch, args.dim)).astype("float32") * 10)
    labels = tf.constant(rng.integers(0, args.classes, size=args.batch).astype("int32"))
    functions = {v: make_step(args.classes, args.dim, v) for v in VARIANTS}
    for fn in functions.values():  # trace and warm up
        for _ in range(2):
            fn(embeddings, labels)[0].numpy()

    times = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for variant, fn in functions.items():
            start = time.perf_counter()
            for _ in range(steps):
                out = fn(embeddings, labels)
            out[0].numpy()
            times[variant].append((time.perf_counter() - start) / steps)

    base = np.median(times["plain softmax"])
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(
        f"tfface loss step overhead: C={args.classes} D={args.dim} B={args.batch} on {device}, "
        f"median of {rounds} rounds x {steps} steps (goal: ratio <= 1.10)"
    )
    for variant in VARIANTS:
        median = np.median(times[variant])
        print(f"  {variant:32s} {1000 * median:8.2f} ms/step   ratio {median / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
