"""The GPU benchmark: one command, at most 8 minutes on one GPU, one table.

Rows:

* training images/s of IResNet-50 (112², CurricularFace) and Inception-ResNet-v1 (160², softmax)
  through ``FaceModel.fit``, built by ``tfface.training.build`` from the smoke recipe with
  overrides, mixed precision + XLA, synthetic in-memory data (random images and labels, cached and
  repeated: the step, not JPEG decoding), C = 85,742 classes (MS1MV2), batch ``--batch``
  (default 256; ``--batch 128,512`` for several);
* the Partial FC head step at 2,000,000 classes (D=512, B=128: embeddings -> sampled margin
  logits -> softmax cross-entropy -> gradients -> sparse SGD-momentum update of the sampled rows),
  sample rate 1.0 and 0.1: ms per step, images/s, and the ratio;
* the input pipeline on all CPU cores: bare ``decode_jpeg`` over TFRecords, tfface's pipeline
  with flip, and with flip + crop + colour (112², batch 256), images/s and ratios.

Each row runs in its own subprocess (a clean device and memory each, so one failure or time-out
costs one row), with a time limit taken from what is left of ``--budget`` (480 s). Rows that do
not finish print ``timed out`` or ``failed`` with the reason. The first measurement of a training
row includes the XLA compilation; the timed steps come after it.

    python benchmarks/gpu.py                 # on a GPU machine: the table for docs/benchmarks.md
    python benchmarks/gpu.py --smoke         # tiny sizes on a CPU: checks that everything runs

Writes nothing outside a temporary folder.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    "iresnet50": ("IResNet-50", {"backbone": {"name": "iresnet50", "embedding_size": 512},
                                 "head": {"name": "curricularface", "scale": 64.0, "margin": 0.5},
                                 "data.image_size": [112, 112]}),
    "inception_resnet_v1": ("Inception-ResNet-v1", {"backbone": {"name": "inception_resnet_v1", "embedding_size": 512,
                                                                 "dropout_keep": 0.4},
                                                    "head": {"name": "softmax"},
                                                    "data.image_size": [160, 160]}),
}


# ---------------------------------------------------------------------------------------------
# the rows, each run in a subprocess (``--row JSON``); each prints one JSON line


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    import tensorflow as tf

    return tf


def row_train(model, batch, num_classes, steps, warmup, mixed_precision, jit_compile):
    tf = _tf()
    import numpy as np

    from tfface.training import build, load_recipe

    overrides = dict(MODELS[model][1])
    overrides.update({"data.batch_size": batch, "mixed_precision": mixed_precision, "jit_compile": jit_compile})
    recipe = load_recipe("smoke", overrides)
    run = build(recipe, check_data=False, num_classes=num_classes, print_fn=lambda *a: None)
    h, w = recipe.data.image_size
    rng = np.random.default_rng(0)
    n = 4 * run.global_batch
    images = rng.uniform(0, 255, size=(n, h, w, 3)).astype("float32")
    labels = rng.integers(0, num_classes, size=(n,)).astype("int32")
    ds = (tf.data.Dataset.from_tensor_slices((images, labels)).batch(run.global_batch, drop_remainder=True)
          .cache().repeat().prefetch(tf.data.AUTOTUNE))
    t0 = time.perf_counter()
    run.model.fit(ds, epochs=1, steps_per_epoch=warmup, verbose=0)  # traces and compiles
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    history = run.model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - t0
    loss = float(history.history["loss"][-1])
    return {"images_s": steps * run.global_batch / seconds, "step_ms": 1000 * seconds / steps,
            "compile_s": first, "loss": loss, "finite": bool(np.isfinite(loss))}


def row_pfc(classes, dim, batch, rate, steps):
    tf = _tf()
    import numpy as np

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
    step(labels[0], tf.constant(0, tf.int64)).numpy()  # trace + warm-up
    times = []
    for i in range(1, steps + 1):
        t0 = time.perf_counter()
        loss = step(labels[i], tf.constant(i, tf.int64)).numpy()
        times.append(time.perf_counter() - t0)
    peak = None
    if tf.config.list_physical_devices("GPU"):
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    step_s = float(np.median(times))
    return {"step_ms": 1000 * step_s, "images_s": batch / step_s, "device_peak_mb": peak,
            "finite": bool(np.isfinite(loss))}


def row_input(identities, batch, batches):
    tf = _tf()

    from tfface.data.build import build_tfrecords
    from tfface.data.pipeline import make_dataset
    from tfface.data.synthetic import generate_synthetic
    from tfface.data.tfrecord import FEATURES

    with tempfile.TemporaryDirectory() as tmp:
        generate_synthetic(os.path.join(tmp, "synth"), num_identities=identities, num_test_identities=0, folds=0,
                           workers=0)
        stats = build_tfrecords(os.path.join(tmp, "synth", "train"), os.path.join(tmp, "tfr"), shards=8,
                                progress=False)
        files = sorted(tf.io.gfile.glob(os.path.join(tmp, "tfr", "*.tfrecord")))
        files = files * max(1, -(-20000 // stats["written"]))

        def bare():
            spec = {"image": FEATURES["image"], "label": FEATURES["label"]}

            def decode(r):
                ex = tf.io.parse_single_example(r, spec)
                return tf.io.decode_jpeg(ex["image"], channels=3), tf.cast(ex["label"], tf.int32)

            ds = tf.data.TFRecordDataset(files, num_parallel_reads=8).repeat()
            return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(tf.data.AUTOTUNE)

        def throughput(ds):
            it = iter(ds)
            for _ in range(3):
                next(it)
            t0 = time.perf_counter()
            for _ in range(batches):
                next(it)
            return batches * batch / (time.perf_counter() - t0)

        out = {"bare": throughput(bare())}
        out["flip"] = throughput(make_dataset(files, batch, 112, training=True, seed=0))
        out["augmented"] = throughput(make_dataset(files, batch, 112, training=True, seed=0, random_crop=True,
                                                   color_jitter=True))
    out["images"] = stats["written"]
    return out


ROWS = {"train": row_train, "pfc": row_pfc, "input": row_input}


# ---------------------------------------------------------------------------------------------
# the driver


def plan(args):
    """[(label, setting, kind, kwargs)] in the order run."""
    s = args.smoke
    classes = 100 if s else args.num_classes
    rows = []
    for model in args.models.split(","):
        if model not in MODELS:
            raise SystemExit(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        size = MODELS[model][1]["data.image_size"][0]
        for batch in [int(b) for b in str(args.batch).split(",")]:
            rows.append((f"{MODELS[model][0]} fit", f"batch {batch}, {size}², C={classes:,}", "train",
                         dict(model=model, batch=batch, num_classes=classes, steps=2 if s else args.steps,
                              warmup=1 if s else 3, mixed_precision=True, jit_compile=not s or args.smoke_xla)))
    pfc_classes = 20_000 if s else args.pfc_classes
    for rate in (1.0, 0.1):
        rows.append((f"Partial FC r={rate}", f"C={pfc_classes:,}, D=512, B=128", "pfc",
                     dict(classes=pfc_classes, dim=512, batch=128, rate=rate, steps=2 if s else 10)))
    input_batch = 32 if s else 256
    rows.append(("input", f"{os.cpu_count()} CPU cores, 112², batch {input_batch}", "input",
                 dict(identities=20 if s else 300, batch=input_batch, batches=3 if s else 40)))
    return rows


def run_row(kind, kwargs, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--row", json.dumps({"kind": kind, **kwargs})]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed (exit {out.returncode}): {tail[:200]}"}
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (batch 2, 100 classes, no XLA, 20,000 Partial FC classes): a CPU check")
    parser.add_argument("--smoke-xla", action="store_true", help="with --smoke: compile with XLA too (slow on a CPU)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for everything (default 480; 1800 with --smoke, for a slow shared CPU)")
    parser.add_argument("--models", default="iresnet50,inception_resnet_v1")
    parser.add_argument("--batch", default="256", help="global batch, or several: 128,256,512")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per row")
    parser.add_argument("--num-classes", type=int, default=85_742, help="training head classes (MS1MV2)")
    parser.add_argument("--pfc-classes", type=int, default=2_000_000)
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row is not None:
        spec = json.loads(args.row)
        result = ROWS[spec.pop("kind")](**spec)
        tf = _tf()
        gpus = tf.config.list_physical_devices("GPU")
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None
        result.update(device=f"{len(gpus)}x {name}" if gpus else "CPU only", tf=tf.__version__)
        print(json.dumps(result), flush=True)
        return 0
    if args.smoke:
        args.batch = "2"

    start = time.perf_counter()
    budget = args.budget if args.budget is not None else (1800.0 if args.smoke else 480.0)
    deadline = start + budget
    rows = plan(args)
    print(f"{len(rows)} rows, {os.cpu_count()} CPU cores, budget {budget:.0f}s{'; SMOKE sizes' if args.smoke else ''}",
          flush=True)
    results = []
    for i, (label, setting, kind, kwargs) in enumerate(rows):
        left = deadline - time.perf_counter()
        # A row may use what the rows before it left over, less a reserve for each row to come.
        reserve = (90.0 if args.smoke else 40.0) * (len(rows) - i - 1)
        limit = max(left / (len(rows) - i), left - reserve)
        if left < 10:
            res = {"error": "not run: budget spent"}
        else:
            res = run_row(kind, kwargs, limit)
        results.append((label, setting, kind, kwargs, res))
        print(f"  done {label} ({setting}) at {time.perf_counter() - start:.0f}s"
              f"{': ' + res['error'] if 'error' in res else ''}", flush=True)
    print_table(results)
    print(f"total {time.perf_counter() - start:.0f}s (budget {budget:.0f}s)")
    return 0 if all("error" not in r for *_, r in results) else 1


def print_table(results):
    """``results``: [(label, setting, kind, row kwargs, row result)]."""
    devices = sorted({r["device"] for *_, r in results if "device" in r})
    print(f"\ndevice: {', '.join(devices) or 'unknown'}; TensorFlow {next((r['tf'] for *_, r in results if 'tf' in r), '?')}")
    print()
    print(f"{'benchmark':<46}{'setting':<30}{'images/s':>10}  notes")
    pfc = {}
    for label, setting, kind, kwargs, res in results:
        if "error" in res:
            print(f"{label:<46}{setting:<30}{'-':>10}  {res['error']}")
            continue
        if kind == "train":
            note = f"{res['step_ms']:.0f} ms/step; first fit (compile) {res['compile_s']:.0f}s; loss {res['loss']:.2f}"
            print(f"{label:<46}{setting:<30}{res['images_s']:>10.2f}  {note}")
        elif kind == "pfc":
            pfc[kwargs["rate"]] = res
            peak = f"; device peak {res['device_peak_mb']:.0f} MB" if res.get("device_peak_mb") else ""
            print(f"{label:<46}{setting:<30}{res['images_s']:>10.1f}  {res['step_ms']:.1f} ms/step{peak}")
        else:
            for key, name in (("bare", "bare decode_jpeg"), ("flip", "pipeline (flip)"),
                              ("augmented", "pipeline (flip, crop, colour)")):
                print(f"{label + ': ' + name:<46}{setting:<30}{res[key]:>10.0f}  {res[key] / res['bare']:.2f} x bare")
    if 1.0 in pfc and 0.1 in pfc:
        print(f"Partial FC step time 0.1 / 1.0: {pfc[0.1]['step_ms'] / pfc[1.0]['step_ms']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
