"""Every deployment format of a trained model, evaluated alike.

A small model trained with the demo's recipe (``trained`` in conftest.py) is exported to every
format — SavedModel, ONNX, TFLite float32 / float16 / dynamic-range / full-integer int8 — and each
file is evaluated through the one loader (``tfface.eval.extract_embeddings`` on the path) on the
held-out identities' pairs with the 10-fold protocol. The reference is the Keras model evaluated
the same way, and the embeddings of each format are also compared with the Keras model's raw
outputs normalised in numpy (the export contract), independently of tfface.export.

Stated margins (200 held-out pairs, one pair = 0.005 of accuracy):
* float formats (SavedModel, ONNX, TFLite float32 and float16): within 0.01 (two pairs) — their
  embeddings equal Keras's to float rounding, which can move the 10-fold threshold by one tie;
* dynamic-range and int8: within 0.05 (ten pairs) — the largest loss we accept before calling a
  quantisation broken on a model this small; the agreement check must stay >= 0.99 too.
"""
import json
import os
import shutil

import numpy as np
import pytest

FLOAT_MARGIN = 0.01
QUANT_MARGIN = 0.05
FORMATS = ("saved_model", "onnx", "tflite-none", "tflite-float16", "tflite-dynamic", "tflite-int8")


def _verify(model, paths, issame):
    from tfface.eval import extract_embeddings, verify

    emb = np.asarray(extract_embeddings(model, paths, batch_size=64, progress=False))
    return emb, verify(emb[0::2], emb[1::2], issame, metric="cosine", folds=10)


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    """{format: path} of every export, and the CLI's stdout of the two CLI exports."""
    from tfface import cli
    from tfface.export import export_onnx, export_tflite, load_embedder

    run, data = trained
    out = tmp_path_factory.mktemp("formats")
    embedder = load_embedder(str(run))
    paths = {
        "saved_model": str(out / "saved_model"),
        "onnx": str(out / "model.onnx"),
        "tflite-int8": str(out / "int8.tflite"),
    }
    # Two through the command line (its agreement report is checked below), the others through
    # the library functions it calls.
    assert cli.main(["export", str(run), paths["saved_model"]]) == 0
    assert cli.main(["export", str(run), paths["tflite-int8"], "--format", "tflite", "--quantize", "int8",
                     "--calibration", str(data / "train"), "--calibration-size", "64"]) == 0
    export_onnx(embedder, paths["onnx"])
    for mode in ("none", "float16", "dynamic"):
        # Converted from the SavedModel export (one trace of the model for all three).
        paths[f"tflite-{mode}"] = str(out / f"{mode}.tflite")
        export_tflite(paths["saved_model"], paths[f"tflite-{mode}"], quantize=mode)
    return embedder, paths


@pytest.fixture(scope="module")
def pairs(trained):
    from tfface.data import read_pairs

    _, data = trained
    paths, issame = read_pairs(str(data / "test" / "pairs.txt"), str(data / "test"))
    return paths, np.asarray(issame)


def test_every_format_verifies_like_keras(exports, pairs):
    embedder, files = exports
    paths, issame = pairs
    keras_emb, keras_result = _verify(embedder, paths, issame)
    base = keras_result["accuracy"]
    assert base >= 0.65, f"the trained model verifies at {base}; too close to chance for a comparison"

    from tfface.data.images import load_image

    images = np.stack([load_image(p, (32, 32)) for p in paths[:40]])
    raw = np.asarray(embedder(images.astype(np.float32), training=False), dtype=np.float64)
    reference = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    table = {}
    for name in FORMATS:
        emb, result = _verify(files[name], paths, issame)
        got = emb[:40] / np.linalg.norm(emb[:40], axis=1, keepdims=True)
        cos = np.sum(got * reference, axis=1)
        table[name] = (result["accuracy"], float(cos.min()))
        quantised = name in ("tflite-dynamic", "tflite-int8")
        margin = QUANT_MARGIN if quantised else FLOAT_MARGIN
        assert abs(result["accuracy"] - base) <= margin + 1e-9, (name, result["accuracy"], base, table)
        assert cos.min() >= (0.99 if quantised else 0.9999), (name, table)
    print(f"keras {base:.3f}; " + "; ".join(f"{k} {a:.3f} (min cos {c:.5f})" for k, (a, c) in table.items()))


def test_export_command_reports_agreement(exports, tmp_path):
    _, files = exports
    meta = json.loads(open(os.path.join(files["saved_model"], "assets", "tfface.json")).read())
    report = meta["agreement"]
    assert report["ok"] and report["images"] == 32 and report["min_cosine"] > 0.9999
    assert report["min_cosine"] <= report["mean_cosine"] <= 1.0 + 1e-9


def test_eval_command_takes_each_format(exports, pairs, trained, tmp_path):
    """``tfface eval --model`` on a .tflite file: the same protocol's result as the library on
    the same pairs (the library path is the one every format took above)."""
    from tfface import cli

    _, files = exports
    paths, issame = pairs
    _, data = trained
    for name in ("tflite-int8",):
        out = tmp_path / name
        assert cli.main(["eval", "--model", files[name], "--pairs", str(data / "test" / "pairs.txt"),
                         "--root", str(data / "test"), "--out", str(out), "--no-progress"]) == 0
        result = json.loads((out / "eval.json").read_text())
        (value,) = result.values()
        _, expected = _verify(files[name], paths, issame)
        assert value["accuracy"] == pytest.approx(expected["accuracy"])


def test_cache_key_hashes_the_file_contents(exports, pairs, tmp_path):
    from tfface.eval import extract_embeddings

    _, files = exports
    paths, _ = pairs
    cache = tmp_path / "cache"
    copy = tmp_path / "elsewhere" / "renamed.tflite"
    copy.parent.mkdir()
    shutil.copy(files["tflite-int8"], copy)
    a = extract_embeddings(files["tflite-int8"], paths[:8], cache=str(cache), progress=False)
    b = extract_embeddings(str(copy), paths[:8], cache=str(cache), progress=False)
    assert len(os.listdir(cache)) == 1 and np.array_equal(a, b)  # same contents: one entry
    shutil.copy(files["tflite-float16"], copy)  # same name, other weights: a new entry
    c = extract_embeddings(str(copy), paths[:8], cache=str(cache), progress=False)
    assert len(os.listdir(cache)) == 2 and not np.array_equal(a, c)
    extract_embeddings(files["onnx"], paths[:8], cache=str(cache), progress=False)
    assert len(os.listdir(cache)) == 3


def test_a_broken_export_warns_loudly(trained, tmp_path, monkeypatch, capsys):
    """An export whose preprocessing swaps RGB to BGR (a classic deployment bug) disagrees with
    the Keras model: the command warns loudly (and with --strict exits 1). ONNX, the quickest
    export to write; every format runs the same check."""
    import tensorflow as tf

    from tfface import cli
    from tfface.export import check_agreement, load_embedder, onnx
    from tfface.export.agreement import synthetic_faces

    run, _ = trained
    original = onnx.make_embed_fn

    def bgr(embedder, flip=False):
        embed = original(embedder, flip)
        return lambda images: embed(tf.reverse(images, axis=[3]))

    monkeypatch.setattr(onnx, "make_embed_fn", bgr)
    out = tmp_path / "broken.onnx"
    assert cli.main(["export", str(run), str(out), "--format", "onnx"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "DISAGREES" in err and "min cosine" in err
    assert cli.main(["export", str(run), str(out), "--format", "onnx", "--overwrite", "--strict"]) == 1
    assert "DISAGREES" in capsys.readouterr().err

    report = check_agreement(load_embedder(str(run)), str(out), synthetic_faces(8, 32))
    assert not report["ok"] and report["min_cosine"] < 0.99
    # The same export without the bug agrees.
    monkeypatch.setattr(onnx, "make_embed_fn", original)
    assert cli.main(["export", str(run), str(out), "--format", "onnx", "--overwrite", "--strict"]) == 0
    assert "DISAGREES" not in capsys.readouterr().err


def test_cli_argument_errors(trained, tmp_path, capsys):
    from tfface import cli

    run, _ = trained
    assert cli.main(["export", str(run), str(tmp_path / "m.tflite"), "--format", "tflite", "--quantize", "int8"]) == 2
    assert "--calibration" in capsys.readouterr().err
    assert cli.main(["export", str(run), str(tmp_path / "m"), "--quantize", "float16"]) == 2
    assert "--format tflite" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "m.tflite")


def test_tflite_runs_with_either_interpreter(exports, monkeypatch):
    """LiteRT's interpreter when ai-edge-litert is installed, TensorFlow's deprecated one
    otherwise: the same embeddings."""
    import sys

    from tfface.export.load import TFLiteEmbedder
    from tfface.export.agreement import synthetic_faces

    _, files = exports
    images = synthetic_faces(3, 32)
    first = TFLiteEmbedder(files["tflite-int8"])(images)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    fallback = TFLiteEmbedder(files["tflite-int8"])
    assert "tensorflow" in type(fallback.interpreter).__module__
    np.testing.assert_allclose(fallback(images), first, atol=1e-6)
