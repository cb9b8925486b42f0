"""Forward+backward step time of every margin head, as a ratio to NormFace.

    python benchmarks/heads.py            # C=50,000, D=512, B=128 (the issue's setting)
    python benchmarks/heads.py --quick    # C=5,000, fewer repetitions: a fast sanity run

One step is ``head(x, y, training=True)``, sparse softmax cross-entropy, and the gradients with
respect to the embeddings and the kernel, inside one ``tf.function`` per head (XLA only with
``--jit``). The heads are timed round-robin (each round times every head once) so that a
machine whose load changes affects all heads alike; the figure is the median over rounds.
Prints a table and writes nothing.

It also prints the issue-14 ratio: the CurricularFace step on the *default path* (as
``FaceModel.compile(jit_compile="auto")`` runs it: the head and its loss compiled with XLA; on a
GPU Keras compiles the whole step, which includes them) against its three bare matrix products
(``x·W``, ``gᵀ·x`` for the kernel and ``g·Wᵀ`` for the embeddings, each in float32, timed as one
``tf.function``), and the same step uncompiled (the old default). Goal: default path <= 1.15x.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfface import heads  # noqa: E402


def make_step(head, jit):
    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = head(x, y, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grad_x, grad_w = tape.gradient(loss, [x, head.kernel])
        # Reduce to scalars so that fetching the result is cheap but depends on everything.
        return loss + tf.reduce_sum(grad_x) + tf.reduce_sum(grad_w)

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="C=5,000 and fewer repetitions")
    parser.add_argument("--classes", type=int, default=None, help="C (default 50,000; 5,000 with --quick)")
    parser.add_argument("--dim", type=int, default=512, help="D (default 512)")
    parser.add_argument("--batch", type=int, default=128, help="B (default 128)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 30; 5 with --quick)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per head after tracing")
    parser.add_argument("--jit", action="store_true", help="compile each step with XLA")
    parser.add_argument("--mixed", action="store_true", help="mixed_float16 heads")
    parser.add_argument("--heads", default=",".join(heads.names()), help="comma-separated head names")
    parser.add_argument("--matmul-only", action="store_true",
                        help="only the CurricularFace default-path / three-matmul ratio")
    args = parser.parse_args(argv)

    classes = args.classes or (5_000 if args.quick else 50_000)
    rounds = args.rounds or (5 if args.quick else 30)
    names = [n.strip() for n in args.heads.split(",") if n.strip()]
    if "normface" not in names:
        names.insert(0, "normface")

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(args.batch, args.dim)).astype("float32"))
    y = tf.constant(rng.integers(0, classes, size=args.batch).astype("int32"))
    if not args.matmul_only:
        table(args, names, classes, rounds, x, y)
    matmul_ratio(args, classes, rounds, x, y)
    return 0


def table(args, names, classes, rounds, x, y):
    steps = {}
    for name in names:
        head = heads.get(name, num_classes=classes, dtype="mixed_float16" if args.mixed else None)
        head.build((None, args.dim))
        steps[name] = make_step(head, args.jit)
        for _ in range(1 + args.warmup):
            steps[name](x, y).numpy()

    times = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            start = time.perf_counter()
            steps[name](x, y).numpy()
            times[name].append(time.perf_counter() - start)

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(
        f"heads forward+backward: C={classes:,} D={args.dim} B={args.batch} {device} "
        f"jit={args.jit} mixed_float16={args.mixed} rounds={rounds}"
    )
    base = statistics.median(times["normface"])
    print(f"{'head':<18}{'median ms':>12}{'ratio':>8}")
    for name in names:
        median = statistics.median(times[name])
        print(f"{name:<18}{median * 1e3:>12.2f}{median / base:>8.3f}")


def matmul_ratio(args, classes, rounds, x, y):
    """CurricularFace on the default path (head + loss under XLA) and uncompiled, against its
    three bare matrix products; round-robin, medians."""
    head = heads.get("curricularface", num_classes=classes)
    head.build((None, args.dim))
    w = tf.Variable(rng_normal((args.dim, classes)))
    g = tf.constant(rng_normal((args.batch, classes)))

    @tf.function
    def matmuls(x, g):
        logits = tf.matmul(x, w)
        grad_w = tf.matmul(x, g, transpose_a=True)
        grad_x = tf.matmul(g, w, transpose_b=True)
        return tf.reduce_sum(logits) + tf.reduce_sum(grad_w) + tf.reduce_sum(grad_x)

    variants = {"default (XLA head+loss)": make_step(head, True), "uncompiled": make_step(head, False),
                "3 matmuls": lambda x, y: matmuls(x, g)}
    for fn in variants.values():
        for _ in range(1 + args.warmup):
            fn(x, y).numpy()
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn(x, y).numpy()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["3 matmuls"])
    print(f"CurricularFace C={classes:,} D={args.dim} B={args.batch}: step / its three matrix products")
    for name in variants:
        median = statistics.median(times[name])
        print(f"  {name:<26}{median * 1e3:>10.2f} ms{median / base:>8.3f}")
    ratio = statistics.median(times["default (XLA head+loss)"]) / base
    print(f"ratio default-path head step / three matmuls = {ratio:.2f} (goal <= 1.15)")


def rng_normal(shape):
    return np.random.default_rng(1).normal(size=shape).astype("float32")


if __name__ == "__main__":
    sys.exit(main())
