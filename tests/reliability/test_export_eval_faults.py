"""Faults of ``tfface export`` and ``tfface eval`` (issues 15 and 16): each case checks the message
(it names the file), the documented exit status, that a previous output is intact, and that the
figures are right (checked against numpy on the model's own embeddings).

Everything runs on an untrained tiny embedder (mechanics, not accuracy), in process through the
console script's dispatcher, except the full-disk cases, which need a subprocess with
``RLIMIT_FSIZE``."""
import json
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from tfface import cli
from tfface.files import EXIT_BUSY, EXIT_INPUT, EXIT_OUTPUT, DirLock, leftovers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 32
NAMES = [f"person{i}" for i in range(8)]


def tfface(*argv):
    return cli.main([str(a) for a in argv])


def _embedder(seed):
    import keras

    from tfface import backbones

    keras.utils.set_random_seed(seed)
    return backbones.get("tiny", input_shape=(SIZE, SIZE, 3), embedding_size=16)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A run directory holding an embedder.keras, a second model, and an LFW-layout folder with a
    2-fold pairs.txt (4 matched + 4 mismatched pairs per fold)."""
    base = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(0)
    lfw = base / "lfw"
    images = {}
    for n in NAMES:
        (lfw / n).mkdir(parents=True)
        for j in (1, 2):
            img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            Image.fromarray(img).save(lfw / n / f"{n}_{j:04d}.png")
            images[(n, j)] = img
    matched = [(n, 1, 2) for n in NAMES]
    mismatched = [(NAMES[i], 1, NAMES[(i + 3) % 8], 2) for i in range(8)]
    lines, order = ["2\t4"], []
    for fold in range(2):
        for m in matched[4 * fold:4 * fold + 4]:
            lines.append("\t".join(map(str, m)))
            order.append(((m[0], m[1]), (m[0], m[2]), True))
        for m in mismatched[4 * fold:4 * fold + 4]:
            lines.append("\t".join(map(str, m)))
            order.append(((m[0], m[1]), (m[2], m[3]), False))
    (lfw / "pairs.txt").write_text("\n".join(lines) + "\n")
    run = base / "run"
    run.mkdir()
    model = _embedder(1)
    model.save(str(run / "embedder.keras"))
    other = _embedder(2)
    other.save(str(base / "other.keras"))
    return {"base": base, "lfw": lfw, "run": run, "model": model, "other": other, "images": images,
            "order": order, "other_path": base / "other.keras"}


def _pairs_args(world):
    return ["--pairs", world["lfw"] / "pairs.txt", "--root", world["lfw"], "--ext", "png", "--no-progress"]


def _far_threshold_numpy(model, world, far, flip=False):
    """TAR@FAR threshold by hand: cosine of L2-normalised embeddings, impostor scores sorted in
    decreasing order, threshold = the (k+1)-th largest, k = floor(far * N_impostor)."""
    def emb(imgs):
        x = np.stack(imgs).astype(np.float32)
        e = np.asarray(model(x, training=False), dtype=np.float64)
        if flip:
            e = e + np.asarray(model(x[:, :, ::-1], training=False), dtype=np.float64)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    ea = emb([world["images"][a] for a, _, _ in world["order"]])
    eb = emb([world["images"][b] for _, b, _ in world["order"]])
    same = np.array([s for _, _, s in world["order"]])
    cos = np.sum(ea * eb, axis=1)
    imp = np.sort(cos[~same])[::-1]
    return float(imp[int(np.floor(far * len(imp)))])


# ------------------------------------------------------------------------------------ eval


def test_eval_prints_and_writes_thresholds_export_records_them(world, tmp_path, capsys):
    """Item 6: eval accepts a run directory, honours the 2 folds of pairs.txt, prints the decision
    thresholds and writes them; export --thresholds records the same numbers in its metadata."""
    out = tmp_path / "ev"
    assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--far", "0.25",
                  "--out", out) == 0
    printed = capsys.readouterr().out
    data = json.load(open(out / "eval.json"))["lfw"]
    assert data["folds"] == 2 and len(data["fold_accuracies"]) == 2
    want = _far_threshold_numpy(world["model"], world, 0.25)
    dt = data["decision_thresholds"]
    assert dt["far"]["2.5e-1"] == pytest.approx(want, abs=1e-5)
    assert dt["best_accuracy"] == pytest.approx(np.mean(data["thresholds"]), abs=1e-9)
    assert "decision thresholds" in printed and f"FAR 2.5e-1: {want:.4f}" in printed
    assert f"{dt['best_accuracy']:.4f}" in printed

    # --folds that disagrees with the header is refused, naming the file
    assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--folds", "10") == EXIT_INPUT
    err = capsys.readouterr().err
    assert "declares 2 folds" in err and "pairs.txt" in err

    sm = tmp_path / "sm"
    assert tfface("export", world["run"], sm, "--thresholds", out / "eval.json",
                  "--agreement-images", "0") == 0
    meta = json.loads((sm / "assets" / "tfface.json").read_text())
    assert meta["thresholds"]["far"]["2.5e-1"] == pytest.approx(want, abs=1e-5)
    assert meta["thresholds"]["best_accuracy"] == pytest.approx(dt["best_accuracy"])
    assert meta["thresholds"]["source"] == str(out / "eval.json")
    # a missing thresholds file: exit 2, named, nothing written
    assert tfface("export", world["run"], tmp_path / "sm2", "--thresholds", tmp_path / "no.json") == EXIT_INPUT
    assert "no.json" in capsys.readouterr().err and not (tmp_path / "sm2").exists()


def test_eval_refuses_identical_probes_and_gallery(world, tmp_path, capsys):
    """Item 5: the same folder (or a copy of its images) as probes and gallery would report a
    meaningless 100% rank-1."""
    lfw = world["lfw"]
    assert tfface("eval", "--model", world["run"], "--probes", lfw, "--gallery", lfw, "--no-progress") == EXIT_INPUT
    assert "same folder" in capsys.readouterr().err
    link = tmp_path / "link"
    link.symlink_to(lfw)
    assert tfface("eval", "--model", world["run"], "--probes", lfw, "--gallery", link, "--no-progress") == EXIT_INPUT
    assert "same folder" in capsys.readouterr().err
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(lfw, copy)
    (copy / "pairs.txt").unlink()
    assert tfface("eval", "--model", world["run"], "--probes", lfw, "--gallery", copy, "--no-progress") == EXIT_INPUT
    assert "same images" in capsys.readouterr().err


def _png_header_only(width, height):
    """A PNG whose header declares width x height (IHDR only, then a tiny IDAT/IEND)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _bin(path, images, issame):
    with open(path, "wb") as fh:
        pickle.dump((images, issame), fh, protocol=4)


def _good_bin_images(world):
    out = []
    for a, b, _ in world["order"]:
        for key in (a, b):
            n, j = key
            out.append((world["lfw"] / n / f"{n}_{j:04d}.png").read_bytes())
    return out, [s for _, _, s in world["order"]]


def test_eval_bin_pixel_cap_and_decode_errors_name_the_record(world, tmp_path, capsys):
    """Issue 15: a .bin image declaring 15000x15000 pixels is refused from its header (before a
    0.9 GB decode); a damaged image is named by its record."""
    images, issame = _good_bin_images(world)
    huge = list(images)
    huge[5] = _png_header_only(15000, 15000)
    _bin(tmp_path / "huge.bin", huge, issame)
    assert tfface("eval", "--model", world["run"], "--bin", tmp_path / "huge.bin", "--no-progress") == EXIT_INPUT
    err = capsys.readouterr().err
    assert "huge.bin record 5" in err and "15000x15000" in err
    # the cap is an option
    assert tfface("eval", "--model", world["run"], "--bin", tmp_path / "huge.bin", "--no-progress",
                  "--max-pixels", "100") == EXIT_INPUT
    assert "huge.bin record 0" in capsys.readouterr().err
    damaged = list(images)
    damaged[7] = images[7][:60]  # a valid header, the pixels cut off
    _bin(tmp_path / "damaged.bin", damaged, issame)
    assert tfface("eval", "--model", world["run"], "--bin", tmp_path / "damaged.bin", "--no-progress") == EXIT_INPUT
    assert "damaged.bin record 7" in capsys.readouterr().err


def test_eval_deeply_nested_bin(world, tmp_path, capsys):
    n = 200_000
    data = b"\x80\x02]C\x01aaC\x01ba]" + b"]" * n + b"a" * n + b"\x86."
    (tmp_path / "nested.bin").write_bytes(data)
    assert tfface("eval", "--model", world["run"], "--bin", tmp_path / "nested.bin", "--no-progress") == EXIT_INPUT
    err = capsys.readouterr().err
    assert "nested.bin" in err and "expected a bool" in err


def test_truncated_keras_is_named(world, tmp_path, capsys):
    raw = (world["run"] / "embedder.keras").read_bytes()
    bad = tmp_path / "cut.keras"
    bad.write_bytes(raw[: len(raw) // 2])
    assert tfface("eval", "--model", bad, *_pairs_args(world)) == EXIT_INPUT
    err = capsys.readouterr().err
    assert str(bad) in err and "truncated" in err
    assert tfface("export", bad, tmp_path / "sm") == EXIT_INPUT
    err = capsys.readouterr().err
    assert str(bad) in err and "truncated" in err and not (tmp_path / "sm").exists()


def test_eval_outputs_in_the_way(world, tmp_path, capsys):
    """--out / --cache that cannot be written: exit 3 before any work, naming the path; the
    previous eval.json is kept."""
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--out", blocker) == EXIT_OUTPUT
    assert str(blocker) in capsys.readouterr().err and blocker.read_text() == "keep"
    assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--out", blocker / "sub") == EXIT_OUTPUT
    assert str(blocker) in capsys.readouterr().err
    assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--cache", blocker) == EXIT_OUTPUT
    assert "--cache" in capsys.readouterr().err
    out = tmp_path / "ev"
    out.mkdir()
    (out / "eval.json").symlink_to(tmp_path / "elsewhere.json")
    assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--out", out) == EXIT_OUTPUT
    assert "eval.json is a symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.json").exists()
    # a second eval writing to the same --out is refused while the first holds it
    (out / "eval.json").unlink()
    with DirLock(out, "test holder"):
        assert tfface("eval", "--model", world["run"], *_pairs_args(world), "--out", out) == EXIT_BUSY
    assert "test holder" in capsys.readouterr().err


def test_eval_cache_follows_the_model_contents(world, tmp_path, capsys):
    """Issue 15: re-export a different model to the same path; eval --cache reports the new one."""
    sm, cache = tmp_path / "sm", tmp_path / "cache"
    results = []
    for model_path in (world["run"], world["other_path"]):
        assert tfface("export", model_path, sm, "--overwrite", "--agreement-images", "0") == 0
        out = tmp_path / f"ev{len(results)}"
        assert tfface("eval", "--model", sm, *_pairs_args(world), "--far", "0.25", "--cache", cache,
                      "--out", out) == 0
        results.append(json.load(open(out / "eval.json"))["lfw"]["far_thresholds"]["0.25"])
    capsys.readouterr()
    assert results[0] == pytest.approx(_far_threshold_numpy(world["model"], world, 0.25), abs=1e-5)
    assert results[1] == pytest.approx(_far_threshold_numpy(world["other"], world, 0.25), abs=1e-5)
    assert results[0] != pytest.approx(results[1], abs=1e-4)


# ---------------------------------------------------------------------------------- export


def _serve(path, images):
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return fn(images=tf.constant(images))["embeddings"].numpy()


def test_failed_overwrite_keeps_the_previous_saved_model(world, tmp_path, monkeypatch, capsys):
    """Issue 15: a SavedModel write that fails half-way (here: the disk fills up once the graph
    and variables are written, at the metadata) leaves the previous export intact and no staging
    folder; the next --overwrite succeeds."""
    from tfface.export import metadata

    sm = tmp_path / "sm"
    assert tfface("export", world["run"], sm, "--agreement-images", "0") == 0
    before = {p.relative_to(sm): p.read_bytes() for p in sm.rglob("*") if p.is_file()}
    images = np.random.default_rng(3).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    served = _serve(sm, images)
    real = metadata.write_saved_model_metadata
    written = []

    def failing(folder, meta):
        written.append(sorted(os.listdir(folder)))
        raise OSError(28, "No space left on device", os.path.join(folder, "assets", "tfface.json"))

    monkeypatch.setattr(metadata, "write_saved_model_metadata", failing)
    assert tfface("export", world["other_path"], sm, "--overwrite", "--agreement-images", "0") == EXIT_OUTPUT
    assert "saved_model.pb" in written[0]  # the failure came after the model was written
    assert "disk is full" in capsys.readouterr().err
    after = {p.relative_to(sm): p.read_bytes() for p in sm.rglob("*") if p.is_file()}
    assert after == before and leftovers(tmp_path) == []
    np.testing.assert_array_equal(_serve(sm, images), served)
    monkeypatch.setattr(metadata, "write_saved_model_metadata", real)
    assert tfface("export", world["other_path"], sm, "--overwrite", "--agreement-images", "0") == 0
    ref = np.asarray(world["other"](images.astype(np.float32), training=False), dtype=np.float64)
    np.testing.assert_allclose(_serve(sm, images), ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)


def test_failed_onnx_conversion_keeps_the_previous_file(world, tmp_path, monkeypatch, capsys):
    tf2onnx = pytest.importorskip("tf2onnx")
    path = tmp_path / "m.onnx"
    assert tfface("export", world["run"], path, "--format", "onnx", "--agreement-images", "0") == 0
    good = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("conversion failed half-way")

    monkeypatch.setattr(tf2onnx.convert, "from_function", broken)
    with pytest.raises(RuntimeError):
        tfface("export", world["other_path"], path, "--format", "onnx", "--overwrite")
    assert path.read_bytes() == good and leftovers(tmp_path) == []


def _cli_subprocess(args, fsize=None):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "tfface.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, preexec_fn=limit)


@pytest.mark.slow
def test_full_disk_during_export_keeps_the_previous_files(world, tmp_path):
    """A write that hits the file size limit (a full disk): exit 3 naming the output; the previous
    TFLite file and SavedModel are intact, no temporary file is left."""
    tfl = tmp_path / "m.tflite"
    assert tfface("export", world["run"], tfl, "--format", "tflite", "--agreement-images", "0") == 0
    good = tfl.read_bytes()
    proc = _cli_subprocess(["export", world["other_path"], tfl, "--format", "tflite", "--overwrite",
                            "--agreement-images", "0"], fsize=4096)
    assert proc.returncode == EXIT_OUTPUT, proc.stderr[-2000:]
    assert str(tfl) in proc.stderr and tfl.read_bytes() == good and leftovers(tmp_path) == []


def test_export_outputs_in_the_way_and_lock(world, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    assert tfface("export", world["run"], blocker) == EXIT_OUTPUT
    assert str(blocker) in capsys.readouterr().err and blocker.read_text() == "keep"
    link = tmp_path / "m.tflite"
    link.symlink_to(blocker)
    assert tfface("export", world["run"], link, "--format", "tflite", "--overwrite") == EXIT_OUTPUT
    assert "symbolic link" in capsys.readouterr().err and blocker.read_text() == "keep"
    with DirLock.beside(tmp_path / "sm", "test holder"):
        assert tfface("export", world["run"], tmp_path / "sm") == EXIT_BUSY
    assert "test holder" in capsys.readouterr().err and not (tmp_path / "sm").exists()
    # what an export killed with SIGKILL leaves (a staging folder, a temporary file) is removed
    # by the next export to the same path, under its lock; other names are left alone
    (tmp_path / ".sm.partial-1-2").mkdir()
    (tmp_path / ".sm.partial-1-2" / "saved_model.pb").write_bytes(b"half")
    (tmp_path / ".other.partial-1-2").mkdir()
    assert tfface("export", world["run"], tmp_path / "sm", "--agreement-images", "0") == 0
    assert leftovers(tmp_path) == [".other.partial-1-2"]


def test_serving_signature_checks_size_and_dtype(world, tmp_path):
    """Issue 15: an export for 32x32 refuses 24x24 crops and float images instead of returning
    normal-looking embeddings."""
    import tensorflow as tf

    from tfface.export import export_tflite
    from tfface.export.load import TFLiteEmbedder

    sm = tmp_path / "sm"
    assert tfface("export", world["run"], sm, "--agreement-images", "0") == 0
    fn = tf.saved_model.load(str(sm)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be 32x32"):
        fn(images=tf.zeros((2, 24, 24, 3), tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="uint8"):
        fn(images=tf.zeros((2, SIZE, SIZE, 3), tf.float32))
    tfl = tmp_path / "m.tflite"
    export_tflite(world["model"], str(tfl))
    emb = TFLiteEmbedder(str(tfl))
    with pytest.raises(ValueError, match=r"float images in \[0, 1\] must be scaled"):
        emb(np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="takes 32x32"):
        emb(np.zeros((2, 24, 24, 3), np.uint8))


@pytest.mark.slow
def test_export_killed_mid_write_keeps_the_previous_saved_model(world, tmp_path):
    """SIGKILL while the new SavedModel is being staged: the previous export is intact, and the
    next --overwrite (under the lock the dead process no longer holds) cleans the staging folder."""
    import time

    sm = tmp_path / "sm"
    assert tfface("export", world["run"], sm, "--agreement-images", "0") == 0
    before = {p.relative_to(sm): p.read_bytes() for p in sm.rglob("*") if p.is_file()}
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-m", "tfface.cli", "export", str(world["other_path"]), str(sm),
                             "--overwrite", "--agreement-images", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not any(n.startswith(".sm.partial-") for n in os.listdir(tmp_path)):
        assert proc.poll() is None and time.monotonic() < deadline, "the export never staged"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = {p.relative_to(sm): p.read_bytes() for p in sm.rglob("*") if p.is_file()}
    assert after == before
    assert tfface("export", world["other_path"], sm, "--overwrite", "--agreement-images", "0") == 0
    assert leftovers(tmp_path) == []
