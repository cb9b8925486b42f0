"""PartialFC head step: time and peak memory at a million identities, full vs sampled.

The step is the head alone: embeddings (B, D) -> sampled margin logits -> distributed softmax
cross-entropy -> gradients of the embeddings and of the sampled class rows -> sparse SGD-momentum
update of those rows. Each sample rate runs in a fresh subprocess so that its memory high-water
mark is its own. Two memory figures are printed:

* step working memory: peak resident memory during the steps minus the resident memory once the
  class matrix and its momentum exist (what the step itself allocates: logits, gradients,
  gathered rows);
* steps peak: the resident high-water mark during the steps (includes the (C, D) matrix and
  its momentum, which exist whatever the sample rate; the build's transient is excluded).

    python benchmarks/partial_fc.py            # C=1,000,000, D=512, B=128
    python benchmarks/partial_fc.py --quick    # C=100,000
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    # Linux: writing 5 to clear_refs resets the resident high-water mark (VmHWM), so the peak
    # read after the steps is theirs, not the build's (whose random init is transiently large).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_mb():
    return _status_mb("VmHWM")


def worker(classes, dim, batch, rate, steps):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    import numpy as np
    import tensorflow as tf

    from tfface import heads

    pfc = heads.PartialFC(heads.ArcFace(num_classes=classes), sample_rate=rate)
    pfc.build((None, dim))
    rng = np.random.default_rng(0)
    emb = tf.constant(rng.normal(size=(batch, dim)).astype("float32"))

    @tf.function
    def step(labels, i):
        with tf.GradientTape() as tape:
            tape.watch(emb)
            loss, sampled = pfc.train_loss(emb, labels, step=i)
        g_emb, g_rows = tape.gradient(loss, [emb, sampled.rows])
        pfc.apply_gradients(sampled, g_rows, learning_rate=0.1, momentum=0.9)
        return loss + 0.0 * tf.reduce_sum(g_emb)

    labels = [tf.constant(rng.integers(0, classes, batch).astype("int32")) for _ in range(steps + 2)]
    total_peak = _status_mb("VmHWM")
    _reset_peak()
    base = _status_mb("VmRSS")
    step(labels[0], tf.constant(0, tf.int64)).numpy()  # trace + warm-up
    times = []
    for i in range(1, steps + 1):
        t0 = time.perf_counter()
        step(labels[i], tf.constant(i, tf.int64)).numpy()
        times.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "rate": rate,
                "step_s": float(np.median(times)),
                "working_mb": _peak_mb() - base,
                "total_peak_mb": max(total_peak, _peak_mb()),
                "steps_peak_mb": _peak_mb(),
                "resident_after_build_mb": base,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="C=100,000 and 3 steps")
    parser.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.classes, args.steps = 100_000, 3
    if args.worker is not None:
        worker(args.classes, args.dim, args.batch, args.worker, args.steps)
        return
    results = {}
    for rate in (1.0, 0.1):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", str(rate), "--classes", str(args.classes),
             "--dim", str(args.dim), "--batch", str(args.batch), "--steps", str(args.steps)],
            capture_output=True, text=True, check=True,
        )
        results[rate] = json.loads(out.stdout.strip().splitlines()[-1])
    full, part = results[1.0], results[0.1]
    print(f"PartialFC head step, C={args.classes:,}, D={args.dim}, B={args.batch}, one device (CPU)")
    print(f"{'sample_rate':>12} {'step (ms)':>10} {'working MB':>11} {'steps peak MB':>14}")
    for r in (full, part):
        print(f"{r['rate']:>12} {1000 * r['step_s']:>10.1f} {r['working_mb']:>11.0f} {r['steps_peak_mb']:>14.0f}")
    print(f"time ratio 0.1/1.0:           {part['step_s'] / full['step_s']:.3f}  (goal <= 0.25)")
    print(f"working-memory ratio 0.1/1.0: {part['working_mb'] / full['working_mb']:.3f}  (goal <= 0.35)")
    print(f"steps-peak ratio 0.1/1.0:     {part['steps_peak_mb'] / full['steps_peak_mb']:.3f}  "
          "(includes the (C, D) matrix and its momentum, held at any rate)")


if __name__ == "__main__":
    main()
