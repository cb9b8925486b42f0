"""SavedModel export: the serving contract, checked against the Keras model with numpy.

The reference embeddings are computed here from the Keras model's raw outputs (float input,
L2-normalised with numpy; flip fusion = sum of the two raw embeddings, then normalised), and the
export is loaded in a fresh Python process that never imports tfface.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest


@pytest.fixture(scope="module")
def exported(tmp_path_factory, h):
    from tfface.export import export_saved_model

    tmp = tmp_path_factory.mktemp("export")
    model = h.embedder()
    plain, flipped = str(tmp / "plain"), str(tmp / "flip")
    meta_plain = export_saved_model(model, plain)
    meta_flip = export_saved_model(model, flipped, flip=True)
    return model, tmp, plain, flipped, meta_plain, meta_flip


def test_loads_without_tfface_and_matches_keras(exported, h):
    model, tmp, plain, flipped, _, _ = exported
    batches = {"n1": h.images(1, seed=1), "n7": h.images(7, seed=2)}
    for key, value in batches.items():
        np.save(tmp / f"{key}.npy", value)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, tensorflow as tf
        out = {{}}
        for tag, path in (("plain", {plain!r}), ("flip", {flipped!r})):
            fn = tf.saved_model.load(path).signatures["serving_default"]
            for key in ("n1", "n7"):
                images = np.load({str(tmp)!r} + "/" + key + ".npy")
                result = fn(images=tf.constant(images))
                assert list(result) == ["embeddings"], list(result)
                assert result["embeddings"].dtype == tf.float32
                out[tag + "_" + key] = result["embeddings"].numpy()
        assert not any(m == "tfface" or m.startswith("tfface.") for m in sys.modules), "tfface was imported"
        np.savez({str(tmp / "served.npz")!r}, **out)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # cwd outside the repository so tfface cannot even be found on the path.
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=str(tmp), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp / "served.npz")
    for flip, tag in ((False, "plain"), (True, "flip")):
        for key, images in batches.items():
            got = served[f"{tag}_{key}"]
            assert got.shape == (len(images), 16)
            np.testing.assert_allclose(got, h.reference(model, images, flip), atol=1e-5, rtol=0)
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # flip fusion changes the answer (the images are not symmetric), so it is really applied
    assert np.abs(served["plain_n7"] - served["flip_n7"]).max() > 1e-3


def test_signature_and_metadata(exported, h):
    import tensorflow as tf

    _, _, plain, flipped, meta_plain, meta_flip = exported
    fn = tf.saved_model.load(plain).signatures["serving_default"]
    (spec,) = fn.structured_input_signature[1].values()
    assert spec.name == "images" and spec.dtype == tf.uint8
    assert spec.shape.as_list() == [None, h.SIZE, h.SIZE, 3]
    assert fn.structured_outputs["embeddings"].shape.as_list() == [None, 16]
    with open(os.path.join(flipped, "assets", "tfface.json")) as f:
        on_disk = json.load(f)
    assert on_disk == json.loads(json.dumps(meta_flip))
    assert meta_flip["flip_fusion"] is True and meta_plain["flip_fusion"] is False
    assert meta_plain["embedding_size"] == 16
    assert meta_plain["input"]["size"] == [h.SIZE, h.SIZE] and meta_plain["input"]["dtype"] == "uint8"


def test_refuses_to_overwrite_and_wrong_sizes(exported, tmp_path, h):
    from tfface.export import export_saved_model
    from tfface.files import OutputError

    model, _, plain, _, _, _ = exported
    with pytest.raises(OutputError, match="not empty"):
        export_saved_model(model, plain)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="no saved_model.pb"):
        export_saved_model(model, str(tmp_path / "notes"), overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").exists()
    with pytest.raises(ValueError, match="fixed at 32"):
        export_saved_model(model, str(tmp_path / "x"), image_size=64)
    with pytest.raises(TypeError, match="keras.Model"):
        export_saved_model(lambda x: x, str(tmp_path / "y"))


def test_free_size_embedder_and_mixed_precision(tmp_path, h):
    """A fully convolutional embedder takes its size from image_size; a float16 model serves
    float32 embeddings."""
    import tensorflow as tf

    from tfface.export import export_saved_model
    from tfface.testing import dtype_policy

    with dtype_policy("mixed_float16"):
        model = h.embedder(input_hw=(None, None), kind="ops", name="free_size")
    meta = export_saved_model(model, str(tmp_path / "free"), image_size=(40, 36), overwrite=True)
    assert meta["input"]["size"] == [40, 36]
    fn = tf.saved_model.load(str(tmp_path / "free")).signatures["serving_default"]
    images = h.images(3, hw=(40, 36), seed=3)
    got = fn(images=tf.constant(images))["embeddings"]
    assert got.dtype == tf.float32
    # float16 compute: compare at float16 precision
    np.testing.assert_allclose(got.numpy(), h.reference(model, images, False), atol=5e-3)
    # overwrite=True replaces an earlier export
    export_saved_model(model, str(tmp_path / "free"), image_size=(40, 36), overwrite=True)


def test_tfface_eval_reads_the_export(exported, h):
    """tfface.eval.extract_embeddings takes the export directory as a model (the eval CLI's
    --model) and gets the same embeddings as from the Keras model."""
    from tfface.eval import extract_embeddings

    model, _, plain, _, _, _ = exported
    images = h.images(5, seed=9)
    got = np.asarray(extract_embeddings(plain, images, batch_size=4, progress=False))
    np.testing.assert_allclose(got, h.reference(model, images, flip=False), atol=1e-5)


def test_load_embedder_reads_the_export(exported, h, tmp_path):
    """The one loader reads a SavedModel export too (what eval and the demo give it), and names the
    three things it accepts when a directory is none of them."""
    import tensorflow as tf

    from tfface.export import load_embedder

    model, _, plain, _, _, _ = exported
    images = h.images(3, seed=9)
    fn = load_embedder(plain).signatures["serving_default"]
    got = fn(images=tf.constant(images))["embeddings"].numpy()
    np.testing.assert_allclose(got, h.reference(model, images, flip=False), atol=1e-5)
    with pytest.raises(ValueError, match=r"embedder\.keras.*saved_model\.pb"):
        load_embedder(str(tmp_path))


def test_export_refuses_an_export_as_its_source(exported, tmp_path, capsys):
    from tfface import cli

    _, _, plain, _, _, _ = exported
    assert cli.main(["export", plain, str(tmp_path / "again")]) == 2
    assert "already a SavedModel export" in capsys.readouterr().err
