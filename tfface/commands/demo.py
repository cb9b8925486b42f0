"""``tfface demo``: from data to a served model in a few minutes on a laptop CPU.

    [1/6] synth   the embedded synthetic identities (train + held-out test identities, pairs.txt)
    [2/6] build   the training images -> sharded TFRecords
    [3/6] train   the ``smoke`` recipe (tiny backbone, margin head) with model.fit, TensorBoard logs
    [4/6] eval    10-fold verification accuracy and TAR@FAR on the held-out identities' pairs
    [5/6] export  SavedModel: serving_default(images uint8 [N, H, W, 3]) -> embeddings [N, D]
    [6/6] serve   reload the export with tf.saved_model.load and verify one matched and one
                  mismatched pair with the threshold found in [4/6]

Everything is written under ``--workdir`` (default ``./demo_out``)::

    data/        synthetic images (data/train, data/test, data/test/pairs.txt)
    tfrecords/   the built training set
    run/         the training run (checkpoints, logs/ for TensorBoard, embedder.keras)
    export/1/    the SavedModel (TF Serving layout: <model>/<version>)
    demo.json    every stage's figures

A rerun starts afresh in the same directory (the demo only ever deletes a directory it created,
recognised by its marker file). Exit status: 0 when the model verifies the held-out identities
far above chance (accuracy >= ``--min-accuracy``) and the served model agrees with the Keras
model; 1 otherwise; 2 for a work directory that is not the demo's.

The demo only orchestrates: each stage is one call of the library (``generate_synthetic``,
``build_tfrecords``, ``load_recipe``/``train`` as ``tfface train`` calls them, ``load_embedder``,
``extract_embeddings``/``verify``, ``export_saved_model``).
"""
import json
import os
import shutil
import sys
import time

MARKER = ".tfface_demo"
RECIPE = "smoke"

# Synthetic data. The full demo uses the smoke recipe's own data.synthetic settings (the data set
# its head, margin and schedule were chosen for); --quick is a plumbing check sized for a test
# (well under a minute), with just enough pairs for a 10-fold protocol.
QUICK_DATA = dict(num_identities=32, num_test_identities=20, min_images=8, max_images=16,
                  test_images_per_identity=6, folds=10, pairs_per_fold=10)
QUICK_IMAGE_SIZE = 32
QUICK_STEPS = 60
# The smoke recipe's 10 epochs (its one-minute setting for tests) reach about 0.8 held-out
# accuracy; 30 epochs reach about 0.89 in the demo's budget, so the demo trains longer.
DEMO_EPOCHS = 30
FAR = (1e-1, 1e-2, 1e-3)


def add_arguments(parser):
    parser.add_argument("--workdir", default="demo_out", help="where everything is written (default: ./demo_out)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller data set and a short training: checks the plumbing in under a minute")
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS,
                        help=f"training epochs; the smoke recipe's learning-rate steps are stretched to "
                        f"match (default {DEMO_EPOCHS}, about a minute and a half on two CPU cores; --quick trains "
                        f"{QUICK_STEPS} steps instead)")
    parser.add_argument("--min-accuracy", type=float, default=None,
                        help="fail below this held-out verification accuracy (default 0.75; 0.65 with --quick; "
                        "chance is 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the training")


class _Stages:
    """Prints ``[i/n] name ...`` banners and collects each stage's time and one-line result."""

    def __init__(self, names, print_fn=print):
        self.names = names
        self.print = print_fn
        self.rows = []
        self.figures = {}

    def start(self, name, what):
        self._name, self._t0 = name, time.perf_counter()
        self.print(f"\n[{self.names.index(name) + 1}/{len(self.names)}] {name}: {what}", flush=True)

    def done(self, result, **figures):
        seconds = time.perf_counter() - self._t0
        self.rows.append((self._name, seconds, result))
        self.figures[self._name] = dict(figures, seconds=round(seconds, 2))
        self.print(f"      {result}  ({seconds:.1f}s)", flush=True)

    def table(self):
        width = max(len(n) for n, _, _ in self.rows)
        lines = [f"{'stage'.ljust(width)}  {'time':>7}  result", f"{'-' * width}  {'-' * 7}  {'-' * 6}"]
        for name, seconds, result in self.rows:
            lines.append(f"{name.ljust(width)}  {seconds:6.1f}s  {result}")
        total = sum(s for _, s, _ in self.rows)
        lines.append(f"{'total'.ljust(width)}  {total:6.1f}s")
        return "\n".join(lines)


def _prepare_workdir(workdir):
    """Create ``workdir`` or clear a previous demo in it; refuse anything else."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise FileExistsError(f"--workdir {workdir!r} is a file; expected a directory")
    if os.path.isdir(workdir) and os.listdir(workdir):
        if not os.path.isfile(os.path.join(workdir, MARKER)):
            raise FileExistsError(
                f"--workdir {workdir!r} is not empty and was not made by 'tfface demo'; choose a new "
                "or empty directory"
            )
        shutil.rmtree(workdir)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, MARKER), "w") as f:
        f.write("made by 'tfface demo'; a rerun of the demo deletes and rewrites this directory\n")


def _as_set_arguments(overrides):
    """``{"a.b": value}`` -> ``["a.b=<JSON>", ...]``, the form ``tfface train --set`` passes."""
    return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]


def _fmt_far(far):
    return f"{far:.0e}".replace("e-0", "e-")


def run(args):
    import numpy as np

    quick = bool(args.quick)
    min_accuracy = args.min_accuracy if args.min_accuracy is not None else (0.65 if quick else 0.75)
    workdir = args.workdir
    try:
        _prepare_workdir(workdir)
    except FileExistsError as err:
        print(f"tfface demo: {err}", file=sys.stderr)
        return 2
    data_dir = os.path.join(workdir, "data")
    records_dir = os.path.join(workdir, "tfrecords")
    run_dir = os.path.join(workdir, "run")
    export_dir = os.path.join(workdir, "export", "1")
    stages = _Stages(["synth", "build", "train", "eval", "export", "serve"])
    began = time.perf_counter()
    print(f"tfface demo{' --quick' if quick else ''}: synth -> build -> train -> eval -> export -> serve, "
          f"in {os.path.abspath(workdir)}", flush=True)

    from tfface.recipe import load_recipe

    # Smaller images with --quick: a quarter of the pixels of the smoke recipe's 64x64, for a fast check.
    base_overrides = {"data.image_size": [QUICK_IMAGE_SIZE, QUICK_IMAGE_SIZE]} if quick else {}
    recipe = load_recipe(RECIPE, _as_set_arguments(base_overrides))
    height, width = recipe.data.image_size
    if height != width:
        raise ValueError(f"the {RECIPE} recipe's image_size {[height, width]} is not square; "
                         "the synthetic generator draws square images")

    # [1/6] synth
    from tfface.data import generate_synthetic

    data_spec = {"folds": 10, "pairs_per_fold": 50}
    data_spec.update(QUICK_DATA if quick else dict(recipe.data.synthetic))
    data_spec.update(image_size=height, seed=args.seed)
    stages.start("synth", f"synthetic identities at {height}x{width} -> {data_dir}")
    info = generate_synthetic(data_dir, workers=0, **data_spec)
    pairs_n = data_spec["folds"] * data_spec["pairs_per_fold"]
    stages.done(
        f"{info['train']['identities']} identities / {info['train']['images']} training images; "
        f"{info['test']['identities']} held-out identities, {pairs_n} matched + {pairs_n} mismatched pairs",
        train_identities=info["train"]["identities"], train_images=info["train"]["images"],
        test_identities=info["test"]["identities"], pairs=2 * pairs_n,
    )

    # [2/6] build
    from tfface.data import build_tfrecords
    from tfface.data.images import list_tfrecords

    stages.start("build", f"{data_dir}/train -> TFRecords in {records_dir}")
    stats = build_tfrecords(os.path.join(data_dir, "train"), records_dir, seed=args.seed, progress=False)
    shards = len(list_tfrecords(records_dir))
    skipped = sum((stats.get("skipped") or {}).values()) if isinstance(stats.get("skipped"), dict) else 0
    stages.done(f"{stats['written']} images in {shards} shard(s), {skipped} skipped",
                written=stats["written"], shards=shards, skipped=skipped)

    # [3/6] train
    from tfface.training.callbacks import NonFiniteLossError
    from tfface.training.runner import train

    overrides = dict(base_overrides, **{"data.train": records_dir, "data.num_classes": None, "seed": args.seed,
                                        "data.image_size": [height, width]})
    steps = QUICK_STEPS if quick else None
    if not quick and recipe.epochs and args.epochs != recipe.epochs:
        overrides.update(_stretched_schedule(recipe, args.epochs))
    stages.start("train", f"recipe '{RECIPE}' ({recipe.backbone.name} backbone, "
                          f"{recipe.head.name} head) -> {run_dir}")
    recipe = load_recipe(RECIPE, _as_set_arguments(overrides))
    try:
        summary = train(recipe, run_dir, steps=steps, progress=True)
    except NonFiniteLossError as err:
        print(f"tfface demo: training diverged: {err}", file=sys.stderr)
        return 1
    final = summary.get("final") or {}
    loss = final.get("loss")
    ips = summary.get("images_per_second")
    stages.done(
        f"{summary['steps']} steps, batch {summary['global_batch']}, {summary['num_classes']} classes"
        + (f", final loss {loss:.3f}" if isinstance(loss, (int, float)) else "")
        + (f", {ips:.0f} images/s" if ips else ""),
        steps=summary["steps"], final=final, images_per_second=ips,
    )

    # [4/6] eval
    from tfface.data import read_pairs
    from tfface.eval import extract_embeddings, verify
    from tfface.export.load import load_embedder

    test_dir = os.path.join(data_dir, "test")
    stages.start("eval", "10-fold verification on the held-out identities' pairs.txt")
    embedder = load_embedder(run_dir)
    paths, issame = read_pairs(os.path.join(test_dir, "pairs.txt"), test_dir)
    emb = np.asarray(extract_embeddings(embedder, paths, batch_size=64, flip="none", progress=False))
    result = verify(emb[0::2], emb[1::2], issame, metric="cosine", folds=data_spec["folds"], far=FAR)
    accuracy, threshold = result["accuracy"], result["threshold"]
    tars = {far: result["tar_at_far"].get(far) for far in FAR}
    tar_text = ", ".join(f"TAR@FAR={_fmt_far(f)} {t:.3f}" for f, t in tars.items() if t is not None and np.isfinite(t))
    stages.done(
        f"accuracy {accuracy:.4f} ± {result['accuracy_std']:.4f} (chance 0.5), {tar_text}, "
        f"AUC {result['auc']:.4f}, cosine threshold {threshold:.3f}",
        accuracy=accuracy, accuracy_std=result["accuracy_std"], threshold=threshold,
        tar_at_far={_fmt_far(f): t for f, t in tars.items()}, auc=result["auc"], eer=result["eer"],
    )
    _log_eval(os.path.join(run_dir, "logs", "eval"), summary["steps"], result, tars)

    # [5/6] export
    from tfface.export.saved_model import export_saved_model

    stages.start("export", f"SavedModel -> {export_dir}")
    meta = export_saved_model(embedder, export_dir)
    dim = meta["embedding_size"]
    stages.done(f"serving_default(images uint8 [N, {height}, {width}, 3]) -> embeddings [N, {dim}], "
                "L2-normalised", path=os.path.abspath(export_dir), embedding_size=dim)

    # [6/6] serve
    import tensorflow as tf

    from tfface.data.images import load_image

    stages.start("serve", "tf.saved_model.load(export) on one matched and one mismatched pair")
    # load_embedder reads a SavedModel directory with tf.saved_model.load, as a server would.
    serving = load_embedder(export_dir).signatures["serving_default"]
    checks, agree = [], True
    for label, want in (("matched", True), ("mismatched", False)):
        i = int(np.flatnonzero(issame == want)[0])
        # Preprocessed as training and evaluation preprocess them (tfface.data.images).
        images = np.stack([load_image(paths[2 * i], (height, width)), load_image(paths[2 * i + 1], (height, width))])
        served = serving(images=tf.constant(images))["embeddings"].numpy()
        keras_emb = np.asarray(embedder(images.astype(np.float32), training=False), dtype=np.float64)
        keras_emb /= np.linalg.norm(keras_emb, axis=1, keepdims=True)
        agree &= bool(np.abs(served - keras_emb).max() < 1e-4)
        cos = float(served[0] @ served[1])
        said_same = cos >= threshold
        checks.append(dict(pair=label, a=os.path.relpath(paths[2 * i], test_dir), b=os.path.relpath(paths[2 * i + 1], test_dir),
                           cosine=cos, same=said_same, correct=said_same == want))
        print(f"      {label:10s} {checks[-1]['a']} vs {checks[-1]['b']}: cosine {cos:.3f} -> "
              f"{'same' if said_same else 'different'} person ({'correct' if said_same == want else 'wrong'})")
    stages.done(
        f"{sum(c['correct'] for c in checks)}/2 pairs decided correctly; served embeddings "
        f"{'equal' if agree else 'DIFFER FROM'} the Keras model's",
        pairs=checks, served_equals_keras=agree,
    )

    ok = accuracy >= min_accuracy and agree
    report = dict(workdir=os.path.abspath(workdir), quick=quick, recipe=RECIPE, min_accuracy=min_accuracy,
                  passed=ok, seconds=round(time.perf_counter() - began, 1), stages=stages.figures)
    with open(os.path.join(workdir, "demo.json"), "w") as f:
        json.dump(report, f, indent=2, default=float)

    print("\n" + stages.table())
    logs = os.path.abspath(os.path.join(run_dir, "logs"))
    print(f"\nfigures: {os.path.join(os.path.abspath(workdir), 'demo.json')}")
    print(f"TensorBoard (training curves, held-out accuracy): tensorboard --logdir {logs}")
    print(f"served model: {os.path.abspath(export_dir)}  (TF Serving: mount {os.path.abspath(os.path.dirname(export_dir))}"
          " as /models/face and set MODEL_NAME=face)")
    if accuracy < min_accuracy:
        print(f"tfface demo: held-out accuracy {accuracy:.4f} is below {min_accuracy} (chance is 0.5): the model "
              "did not learn to verify identities", file=sys.stderr)
    if not agree:
        print("tfface demo: the exported SavedModel does not reproduce the Keras model's embeddings", file=sys.stderr)
    print("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def _stretched_schedule(recipe, epochs):
    """Overrides that train ``recipe`` for ``epochs`` with its epoch boundaries scaled to match."""
    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    overrides = {"epochs": epochs}
    boundaries = recipe.schedule.boundaries
    if recipe.schedule.unit == "epoch" and boundaries:
        ratio = epochs / recipe.epochs
        overrides["schedule.boundaries"] = sorted({max(1, round(b * ratio)) for b in boundaries})
    return overrides


def _log_eval(log_dir, step, result, tars):
    """The held-out figures as TensorBoard scalars beside the training curves."""
    import numpy as np
    import tensorflow as tf

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        tf.summary.scalar("heldout/accuracy", result["accuracy"], step=step)
        tf.summary.scalar("heldout/auc", result["auc"], step=step)
        for far, tar in tars.items():
            if tar is not None and np.isfinite(tar):
                tf.summary.scalar(f"heldout/tar_at_far_{_fmt_far(far)}", tar, step=step)
    writer.close()
