"""``tfface export`` on a run directory, its errors, and the ONNX export."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_TF2ONNX = importlib.util.find_spec("tf2onnx") is not None
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None


def _cli(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "tfface.cli", "export", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_cli_exports_a_run_directory(tmp_path, h, capsys):
    import tensorflow as tf

    from tfface import cli

    model = h.embedder()
    workdir = tmp_path / "run"
    workdir.mkdir()
    model.save(str(workdir / "embedder.keras"))
    out = tmp_path / "served" / "1"
    # In-process (the dispatcher and argument parsing are the same as the console script's;
    # the subprocess tests below cover the process boundary).
    assert cli.main(["export", str(workdir), str(out), "--flip"]) == 0
    stdout = capsys.readouterr().out
    assert "reloaded and run on 32 synthetic faces" in stdout and "flip fusion on" in stdout
    assert "min cosine 1.000000" in stdout
    fn = tf.saved_model.load(str(out)).signatures["serving_default"]
    images = h.images(4, seed=5)
    got = fn(images=tf.constant(images))["embeddings"].numpy()
    np.testing.assert_allclose(got, h.reference(model, images, flip=True), atol=1e-5)
    meta = json.loads((out / "assets" / "tfface.json").read_text())
    assert meta["flip_fusion"] is True

    # the same OUT again is refused, naming the directory, and --overwrite replaces it
    again = _cli(str(workdir / "embedder.keras"), str(out))
    assert again.returncode == 3 and "not empty" in again.stderr and str(out) in again.stderr


def test_cli_errors_name_the_input(tmp_path):
    missing = _cli(str(tmp_path / "nope"), str(tmp_path / "out"))
    assert missing.returncode == 2 and "nope" in missing.stderr and "does not exist" in missing.stderr
    (tmp_path / "run").mkdir()
    empty = _cli(str(tmp_path / "run"), str(tmp_path / "out"))
    assert empty.returncode == 2 and "embedder.keras" in empty.stderr
    (tmp_path / "model.h5").write_text("x")
    wrong = _cli(str(tmp_path / "model.h5"), str(tmp_path / "out"))
    assert wrong.returncode == 2 and "not a .keras file" in wrong.stderr


def test_load_embedder_accepts_dir_and_file(tmp_path, h):
    from tfface.export import load_embedder

    model = h.embedder()
    model.save(str(tmp_path / "embedder.keras"))
    images = h.images(2, seed=6).astype(np.float32)
    for path in (str(tmp_path), str(tmp_path / "embedder.keras")):
        loaded = load_embedder(path)
        np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), atol=1e-6)


def test_onnx_without_tf2onnx_says_what_to_install(tmp_path, h, monkeypatch, capsys):
    from tfface import cli
    from tfface.export import export_onnx

    # A None entry in sys.modules makes "import tf2onnx" raise ImportError, as when it is absent.
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(ImportError, match="pip install tf2onnx onnxruntime"):
        export_onnx(h.embedder(), str(tmp_path / "model.onnx"))
    model_path = tmp_path / "embedder.keras"
    h.embedder().save(str(model_path))
    assert cli.main(["export", str(model_path), str(tmp_path / "m.onnx"), "--format", "onnx"]) == 2
    assert "pip install tf2onnx" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_export_matches_keras(tmp_path, h):
    # The test extra installs tf2onnx and onnxruntime: a missing one fails here, it is not skipped.
    assert HAVE_TF2ONNX, "tf2onnx is needed to test the ONNX export (pip install -e '.[test]')"
    from tfface.export import export_onnx

    model = h.embedder(kind="ops")
    path = str(tmp_path / "model.onnx")
    meta = export_onnx(model, path, flip=True)
    assert meta["embedding_size"] == 16
    from tfface.files import OutputError

    with pytest.raises(OutputError, match="exists"):
        export_onnx(model, path)
    assert HAVE_ORT, "onnxruntime is needed to check the ONNX export (pip install onnxruntime)"
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for n in (1, 5):
        images = h.images(n, seed=n)
        got = session.run(["embeddings"], {"images": images})[0]
        np.testing.assert_allclose(got, h.reference(model, images, flip=True), atol=1e-5)
