"""``tfface demo``: from data to a served model in about a minute on a laptop CPU.

    [1/6] synth   the embedded synthetic identities (train + held-out test identities, pairs.txt)
    [2/6] build   the training images -> sharded TFRecords
    [3/6] train   the ``smoke_demo`` recipe with model.fit; after every epoch the held-out pairs
                  are verified (accuracy, TAR@FAR, AUC and a ROC image in TensorBoard)
    [4/6] eval    10-fold verification accuracy and TAR@FAR on the held-out identities' pairs
                  (flip-fused embeddings: f(x) + f(mirror(x))),
                  and a sheet of example pairs with their scores and decisions (pairs.png)
    [5/6] export  SavedModel: serving_default(images uint8 [N, H, W, 3]) -> embeddings [N, D]
                  (flip fusion, as in [4/6], inside)
    [6/6] serve   reload the export with tf.saved_model.load and decide a typical matched and a
                  typical mismatched held-out pair (the median score of each kind) with the
                  threshold that [4/6] chose on the *other* nine folds

Everything is written under ``--workdir`` (default ``./demo_out``)::

    data/        synthetic images (data/train, data/test, data/test/pairs.txt)
    tfrecords/   the built training set
    run/         the training run (checkpoints, embedder.keras, logs/ for TensorBoard: training
                 curves in logs/train, held-out figures per epoch and the ROC in logs/verification)
    export/1/    the SavedModel (TF Serving layout: <model>/<version>)
    pairs.png    example held-out pairs: both crops, cosine, threshold, decision, right/wrong
    demo.json    every stage's figures (strict JSON: a missing figure is null, never NaN)

Held-out means identities never seen in training: their pairs are LFW-style, 10 identity-disjoint
folds; a pair's decision uses the threshold that maximises accuracy on the other nine folds.

A rerun starts afresh in the same directory (the demo only ever deletes a directory it created,
recognised by its marker file). Exit status: 0 when the model verifies the held-out identities
far above chance (accuracy >= ``--min-accuracy``) and the served model agrees with the Keras
model; 1 otherwise; 2 for a work directory that is not the demo's.

The demo only orchestrates: each stage is one call of the library (``generate_synthetic``,
``build_tfrecords``, ``load_recipe``/``train`` as ``tfface train`` calls them, ``load_embedder``,
``extract_embeddings``/``verify``, ``export_saved_model``).
"""
import os
import resource
import shutil
import sys
import time

MARKER = ".tfface_demo"
RECIPE = "smoke_demo"
VAL_NAME = "heldout"

# --quick: a plumbing check sized for a test (a few CPU-seconds of training), with just enough
# pairs for a 10-fold protocol and a few epochs, so every per-epoch output has several points.
QUICK_DATA = dict(num_identities=100, num_test_identities=20, min_images=4, max_images=8,
                  test_images_per_identity=6, folds=10, pairs_per_fold=10)
QUICK_EPOCHS = 4
FAR = (1e-1, 1e-2, 1e-3)
# Flip fusion: an image's embedding is f(x) + f(mirror(x)), L2-normalised (insightface's
# evaluation), in [4/6] eval and inside the exported SavedModel alike; it adds about 0.01 to the
# held-out accuracy for twice the (small) embedding cost.
FLIP = True

# pairs.png: SHEET_ROWS x SHEET_COLUMNS cells under a HEADER-pixel title band; the first half of
# the cells are matched pairs, the rest mismatched, spread evenly over the pair list (not picked
# by outcome). A cell is PAD | crop | PAD | crop | PAD wide and PAD | crop | PAD | TEXT tall, each
# crop shown at CROP x CROP pixels; its frame is green for a correct decision, red for a wrong one.
SHEET_ROWS, SHEET_COLUMNS = 4, 4
CROP, PAD, TEXT, HEADER = 64, 4, 30, 20


def add_arguments(parser):
    parser.add_argument("--workdir", default="demo_out", help="where everything is written (default: ./demo_out)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smaller data set and {QUICK_EPOCHS} short epochs: checks the plumbing in "
                        "well under a minute")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the smoke_demo recipe's; its learning-rate steps are "
                        f"stretched to match; {QUICK_EPOCHS} with --quick)")
    parser.add_argument("--min-accuracy", type=float, default=None,
                        help="fail below this held-out verification accuracy (default 0.9; 0.6 with --quick; "
                        "chance is 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the training")


def cpu_seconds():
    """CPU time (user + system) of this process and its finished children, in seconds."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class _Stages:
    """Prints ``[i/n] name ...`` banners and collects each stage's wall and CPU time and result."""

    def __init__(self, names, print_fn=print):
        self.names = names
        self.print = print_fn
        self.rows = []
        self.figures = {}

    def start(self, name, what):
        self._name, self._t0, self._c0 = name, time.perf_counter(), cpu_seconds()
        self.print(f"\n[{self.names.index(name) + 1}/{len(self.names)}] {name}: {what}", flush=True)

    def done(self, result, **figures):
        seconds, cpu = time.perf_counter() - self._t0, cpu_seconds() - self._c0
        self.rows.append((self._name, seconds, cpu, result))
        self.figures[self._name] = dict(figures, seconds=round(seconds, 2), cpu_seconds=round(cpu, 2))
        self.print(f"      {result}  ({seconds:.1f}s, {cpu:.1f} CPU-s)", flush=True)

    def table(self):
        width = max(len(n) for n, _, _, _ in self.rows)
        lines = [f"{'stage'.ljust(width)}  {'wall':>7}  {'CPU':>7}  result",
                 f"{'-' * width}  {'-' * 7}  {'-' * 7}  {'-' * 6}"]
        for name, seconds, cpu, result in self.rows:
            lines.append(f"{name.ljust(width)}  {seconds:6.1f}s  {cpu:6.1f}s  {result}")
        lines.append(f"{'total'.ljust(width)}  {sum(r[1] for r in self.rows):6.1f}s  "
                     f"{sum(r[2] for r in self.rows):6.1f}s")
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


def _fmt_far(far):
    return f"{far:.0e}".replace("e-0", "e-")


def run(args):
    import numpy as np

    from tfface.files import write_json

    quick = bool(args.quick)
    min_accuracy = args.min_accuracy if args.min_accuracy is not None else (0.6 if quick else 0.9)
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
    sheet_path = os.path.join(workdir, "pairs.png")
    stages = _Stages(["synth", "build", "train", "eval", "export", "serve"])
    began, cpu_began = time.perf_counter(), cpu_seconds()
    print(f"tfface demo{' --quick' if quick else ''}: synth -> build -> train -> eval -> export -> serve, "
          f"in {os.path.abspath(workdir)}", flush=True)

    from tfface.recipe import load_recipe

    recipe = load_recipe(RECIPE)
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

    # [3/6] train, verifying the held-out pairs after every epoch (recipe data.val)
    from tfface.training.callbacks import NonFiniteLossError
    from tfface.training.runner import train

    test_dir = os.path.join(data_dir, "test")
    pairs_txt = os.path.join(test_dir, "pairs.txt")
    epochs = args.epochs if args.epochs is not None else (QUICK_EPOCHS if quick else recipe.epochs)
    overrides = {"data.train": records_dir, "data.num_classes": None, "seed": args.seed}
    overrides.update(_stretched_schedule(recipe, epochs))
    stages.start("train", f"recipe '{RECIPE}' ({recipe.backbone.name} backbone, "
                          f"{recipe.head.name} head), {epochs} epochs -> {run_dir}")
    recipe = load_recipe(RECIPE, overrides)
    # The held-out pairs verified after every epoch as [4/6] verifies them (flip-fused), so the
    # curve's last point is the final figure; written to run/logs/verification for TensorBoard.
    from tfface.data import read_pairs
    from tfface.eval import VerificationCallback

    heldout = VerificationCallback({VAL_NAME: read_pairs(pairs_txt, test_dir)}, log_dir=os.path.join(run_dir, "logs"),
                                   image_size=(height, width), flip="sum" if FLIP else "none")
    try:
        summary = train(recipe, run_dir, progress=True, callbacks=[heldout])
    except NonFiniteLossError as err:
        print(f"tfface demo: training diverged: {err}", file=sys.stderr)
        return 1
    final = summary.get("final") or {}
    loss = final.get("loss")
    ips = summary.get("images_per_second")
    curve = [h.get(f"{VAL_NAME}_accuracy") for h in summary.get("history") or []]
    stages.done(
        f"{summary['steps']} steps, batch {summary['global_batch']}, {summary['num_classes']} classes"
        + (f", final loss {loss:.3f}" if isinstance(loss, (int, float)) else "")
        + (f", {ips:.0f} images/s" if ips else ""),
        steps=summary["steps"], epochs=summary["epochs"], final=final, images_per_second=ips,
        heldout_accuracy_per_epoch=curve,
    )

    # [4/6] eval
    from tfface.eval import extract_embeddings, verify
    from tfface.export.load import load_embedder

    stages.start("eval", "10-fold verification on the held-out identities' pairs.txt")
    embedder = load_embedder(run_dir)
    paths, issame, fold_of = read_pairs(pairs_txt, test_dir, return_folds=True)
    emb = np.asarray(extract_embeddings(embedder, paths, batch_size=64, flip="sum" if FLIP else "none",
                                         progress=False))
    result = verify(emb[0::2], emb[1::2], issame, metric="cosine", folds=data_spec["folds"], far=FAR)
    accuracy = result["accuracy"]
    # Each pair is decided by its fold's threshold, which was chosen on the other folds' pairs.
    pair_threshold = np.asarray(result["thresholds"])[fold_of]
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    scores = np.sum(unit[0::2] * unit[1::2], axis=1)
    decided = scores >= pair_threshold
    tars = {far: result["tar_at_far"].get(far) for far in FAR}
    tar_text = ", ".join(f"TAR@FAR={_fmt_far(f)} {t:.3f}" for f, t in tars.items() if t is not None and np.isfinite(t))
    sheet = _pairs_sheet(sheet_path, paths, issame, scores, pair_threshold)
    stages.done(
        f"accuracy {accuracy:.4f} ± {result['accuracy_std']:.4f} (chance 0.5), {tar_text}, "
        f"AUC {result['auc']:.4f}; cosine thresholds {min(result['thresholds']):.3f}..{max(result['thresholds']):.3f} "
        f"over the folds; {sheet['correct']}/{sheet['pairs']} example pairs right in {sheet_path}",
        accuracy=accuracy, accuracy_std=result["accuracy_std"], fold_accuracies=result["fold_accuracies"],
        thresholds=result["thresholds"], threshold=result["threshold"],
        tar_at_far={_fmt_far(f): t for f, t in tars.items()}, auc=result["auc"], eer=result["eer"],
        far_resolution=result["far_resolution"], decided_correctly=int(np.sum(decided == issame)),
        pairs_sheet=dict(sheet, path=os.path.abspath(sheet_path)),
    )

    # [5/6] export
    from tfface.export.saved_model import export_saved_model

    stages.start("export", f"SavedModel -> {export_dir}")
    meta = export_saved_model(embedder, export_dir, flip=FLIP)
    dim = meta["embedding_size"]
    stages.done(f"serving_default(images uint8 [N, {height}, {width}, 3]) -> embeddings [N, {dim}], "
                f"L2-normalised{', flip-fused' if FLIP else ''}", path=os.path.abspath(export_dir), embedding_size=dim)

    # [6/6] serve
    import tensorflow as tf

    from tfface.data.images import load_image
    from tfface.export.agreement import keras_reference

    stages.start("serve", "tf.saved_model.load(export) on a typical matched and a typical mismatched pair")
    # load_embedder reads a SavedModel directory with tf.saved_model.load, as a server would.
    serving = load_embedder(export_dir).signatures["serving_default"]
    checks, agree = [], True
    for label, want in (("matched", True), ("mismatched", False)):
        i = _median_pair(scores, issame == want)
        # Preprocessed as training and evaluation preprocess them (tfface.data.images).
        images = np.stack([load_image(paths[2 * i], (height, width)), load_image(paths[2 * i + 1], (height, width))])
        served = serving(images=tf.constant(images))["embeddings"].numpy()
        keras_emb = keras_reference(embedder, images, flip=FLIP)
        agree &= bool(np.abs(served - keras_emb).max() < 1e-4)
        cos = float(served[0] @ served[1])
        threshold = float(pair_threshold[i])
        said_same = cos >= threshold
        checks.append(dict(pair=label, index=i, fold=int(fold_of[i]), a=os.path.relpath(paths[2 * i], test_dir),
                           b=os.path.relpath(paths[2 * i + 1], test_dir), cosine=cos, threshold=threshold,
                           same=bool(said_same), correct=bool(said_same == want)))
        print(f"      {label:10s} {checks[-1]['a']} vs {checks[-1]['b']} (median score of the {label} pairs): "
              f"cosine {cos:.3f} {'>=' if said_same else '<'} {threshold:.3f} (fold {fold_of[i] + 1}'s threshold, "
              f"chosen on the other folds) -> {'same' if said_same else 'different'} person "
              f"({'correct' if said_same == want else 'wrong'})")
    stages.done(
        f"{sum(c['correct'] for c in checks)}/2 pairs decided correctly; served embeddings "
        f"{'equal' if agree else 'DIFFER FROM'} the Keras model's",
        pairs=checks, served_equals_keras=agree,
    )

    ok = accuracy >= min_accuracy and agree
    report = dict(workdir=os.path.abspath(workdir), quick=quick, recipe=RECIPE, seed=args.seed,
                  min_accuracy=min_accuracy, passed=ok, seconds=round(time.perf_counter() - began, 1),
                  cpu_seconds=round(cpu_seconds() - cpu_began, 1), stages=stages.figures)
    write_json(os.path.join(workdir, "demo.json"), report)

    print("\n" + stages.table())
    logs = os.path.abspath(os.path.join(run_dir, "logs"))
    print(f"\nfigures: {os.path.join(os.path.abspath(workdir), 'demo.json')}; example pairs: "
          f"{os.path.abspath(sheet_path)}")
    print(f"TensorBoard (training curves; held-out accuracy, TAR@FAR, AUC and ROC per epoch): "
          f"tensorboard --logdir {logs}")
    print(f"served model: {os.path.abspath(export_dir)}  (TF Serving: mount {os.path.abspath(os.path.dirname(export_dir))}"
          " as /models/face and set MODEL_NAME=face)")
    if accuracy < min_accuracy:
        print(f"tfface demo: held-out accuracy {accuracy:.4f} is below {min_accuracy} (chance is 0.5): the model "
              "did not learn to verify identities", file=sys.stderr)
    if not agree:
        print("tfface demo: the exported SavedModel does not reproduce the Keras model's embeddings", file=sys.stderr)
    print("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def _median_pair(scores, mask):
    """The index of the pair whose score is the median of the pairs in ``mask`` (a typical pair
    of that kind; the lower middle one for an even count)."""
    import numpy as np

    candidates = np.flatnonzero(mask)
    order = candidates[np.argsort(scores[candidates], kind="stable")]
    return int(order[(len(order) - 1) // 2])


def _sheet_pick(issame, count):
    """``count`` pair indices: half matched, half mismatched, each spread evenly over its kind."""
    import numpy as np

    picks = []
    for want, n in ((True, count // 2), (False, count - count // 2)):
        kind = np.flatnonzero(issame == want)
        picks += [int(kind[k]) for k in np.unique(np.linspace(0, len(kind) - 1, n).round().astype(int))]
    return picks


def _pairs_sheet(path, paths, issame, scores, thresholds):
    """Write ``pairs.png``: the example pairs with cosine, threshold and decision (layout in the
    module constants). Returns ``{"pairs", "correct", "rows", "columns", "width", "height"}``."""
    from PIL import Image, ImageDraw

    from tfface.files import atomic_file

    picks = _sheet_pick(issame, SHEET_ROWS * SHEET_COLUMNS)
    cell_w, cell_h = 3 * PAD + 2 * CROP, 2 * PAD + CROP + TEXT
    size = (SHEET_COLUMNS * cell_w, HEADER + SHEET_ROWS * cell_h)
    sheet = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 4), "held-out pairs: cosine vs the threshold chosen on the other folds", fill=(0, 0, 0))
    correct = 0
    for k, i in enumerate(picks):
        x0, y0 = (k % SHEET_COLUMNS) * cell_w, HEADER + (k // SHEET_COLUMNS) * cell_h
        same = bool(scores[i] >= thresholds[i])
        right = same == bool(issame[i])
        correct += right
        colour = (0, 150, 0) if right else (210, 0, 0)
        draw.rectangle([x0 + 1, y0 + 1, x0 + cell_w - 2, y0 + cell_h - 2], outline=colour, width=2)
        for j in range(2):
            with Image.open(paths[2 * i + j]) as img:
                crop = img.convert("RGB").resize((CROP, CROP), Image.NEAREST)
            sheet.paste(crop, (x0 + PAD + j * (CROP + PAD), y0 + PAD))
        truth = "same person" if issame[i] else "two people"
        draw.text((x0 + PAD, y0 + 2 * PAD + CROP - 2), f"{truth}: cos {scores[i]:.2f}", fill=(0, 0, 0))
        draw.text((x0 + PAD, y0 + 2 * PAD + CROP + 12),
                  f"{'>=' if same else '<'} {thresholds[i]:.2f} {'same' if same else 'diff'} "
                  f"{'RIGHT' if right else 'WRONG'}", fill=colour)
    with atomic_file(path, "wb") as f:
        sheet.save(f, format="PNG")
    return dict(pairs=len(picks), correct=int(correct), rows=SHEET_ROWS, columns=SHEET_COLUMNS,
                width=size[0], height=size[1])


def _stretched_schedule(recipe, epochs):
    """Overrides that train ``recipe`` for ``epochs`` with its epoch boundaries scaled to match."""
    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    overrides = {"epochs": epochs}
    boundaries = recipe.schedule.boundaries
    if recipe.schedule.unit == "epoch" and boundaries and epochs != recipe.epochs:
        ratio = epochs / recipe.epochs
        overrides["schedule.boundaries"] = sorted({max(1, round(b * ratio)) for b in boundaries})
        if recipe.schedule.warmup:
            overrides["schedule.warmup"] = min(recipe.schedule.warmup, max(0.5, recipe.schedule.warmup * ratio))
    return overrides
