"""Extraction: every source kind gives the same embeddings as calling the model directly; flip
modes; the cache; a SavedModel with the export contract's uint8 signature."""
import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfface.eval.extract import extract_embeddings


def asym_fn(x):
    """Left half mean minus right half mean per channel: flipping the image negates it."""
    x = np.asarray(x, np.float64)
    w = x.shape[2] // 2
    return (x[:, :, :w].mean(axis=(1, 2)) - x[:, :, w:].mean(axis=(1, 2))).astype(np.float32)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3)(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)
    return keras.Model(inp, out)


def png_bytes(img):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_flip_modes_with_callable(images):
    ref = asym_fn(images)
    none = extract_embeddings(asym_fn, images, batch_size=3, progress=False)
    np.testing.assert_allclose(none, ref, rtol=1e-6)
    summed = extract_embeddings(asym_fn, images, batch_size=3, flip="sum", progress=False)
    np.testing.assert_allclose(summed, 0.0, atol=1e-4)
    concat = extract_embeddings(asym_fn, images, batch_size=3, flip="concat", progress=False)
    # facenet's convention: each half L2-normalised before concatenation.
    unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(concat, np.concatenate([unit, -unit], 1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="flip"):
        extract_embeddings(asym_fn, images, flip="mirror")


def test_keras_model_and_every_source(tmp_path, images, tiny_model):
    ref = tiny_model(images.astype(np.float32)).numpy()
    flipped = tiny_model(np.ascontiguousarray(images[:, :, ::-1]).astype(np.float32)).numpy()
    got = extract_embeddings(tiny_model, images, batch_size=4, flip="sum", progress=False)
    np.testing.assert_allclose(got, ref + flipped, rtol=1e-5, atol=1e-5)
    keras_path = str(tmp_path / "m.keras")
    tiny_model.save(keras_path)
    np.testing.assert_allclose(extract_embeddings(keras_path, images, 4, progress=False), ref,
                               rtol=1e-5, atol=1e-5)
    # Larger images are resized to the model's input size.
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    assert extract_embeddings(tiny_model, big, 4, progress=False).shape == (7, 5)

    # Sources (decoding is independent of the model: the cheap numpy function checks them).
    want = asym_fn(images)
    encoded = [png_bytes(im) for im in images]
    np.testing.assert_allclose(extract_embeddings(asym_fn, encoded, 4, progress=False), want,
                               rtol=1e-5, atol=1e-5)
    paths = []
    for i, b in enumerate(encoded):
        p = tmp_path / f"{i}.png"
        p.write_bytes(b)
        paths.append(str(p))
    np.testing.assert_allclose(extract_embeddings(asym_fn, paths, 4, progress=False), want,
                               rtol=1e-5, atol=1e-5)
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    for shard, part in enumerate([encoded[:4], encoded[4:]]):
        with tf.io.TFRecordWriter(str(rec_dir / f"train-{shard:05d}.tfrecord")) as w:
            for b in part:
                feat = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))}
                w.write(tf.train.Example(features=tf.train.Features(feature=feat))
                        .SerializeToString())
    np.testing.assert_allclose(extract_embeddings(asym_fn, str(rec_dir), 4, progress=False),
                               want, rtol=1e-5, atol=1e-5)


def test_cache_reuses_one_pass(tmp_path, images, tiny_model):
    calls = []

    def fn(x):
        calls.append(1)
        return asym_fn(x)

    cache = str(tmp_path / "cache")
    a = extract_embeddings(fn, images, batch_size=7, cache=cache, cache_key="asym-v1",
                           progress=False)
    b = extract_embeddings(fn, images, batch_size=7, cache=cache, cache_key="asym-v1",
                           progress=False)
    assert len(calls) == 1 and np.array_equal(a, b)
    extract_embeddings(fn, images, batch_size=7, cache=cache, cache_key="asym-v1", flip="sum",
                       progress=False)
    assert len(calls) == 3  # another flip mode is another entry (two calls: image + flipped)
    with pytest.raises(ValueError, match="cache_key"):
        extract_embeddings(fn, images, cache=cache)
    # Keras models are fingerprinted by their weights.
    extract_embeddings(tiny_model, images, cache=cache, progress=False)
    n_files = len(os.listdir(cache))
    extract_embeddings(tiny_model, images, cache=cache, progress=False)
    assert len(os.listdir(cache)) == n_files
    clone = keras.models.clone_model(tiny_model)  # new random weights
    extract_embeddings(clone, images, cache=cache, progress=False)
    assert len(os.listdir(cache)) == n_files + 1


def test_saved_model_uint8_signature(tmp_path, images):
    w = tf.Variable(np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32))

    class Export(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = w

        @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.uint8, name="images")])
        def serve(self, images):
            x = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2]) @ self.w
            return {"embeddings": tf.math.l2_normalize(x, axis=1)}

    module = Export()
    path = str(tmp_path / "export")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    x = images.astype(np.float64).mean(axis=(1, 2)) @ w.numpy()
    ref = x / np.linalg.norm(x, axis=1, keepdims=True)
    got = extract_embeddings(path, images, batch_size=5, progress=False)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(extract_embeddings(loaded, images, progress=False), ref,
                               rtol=1e-5, atol=1e-5)


def test_bad_sources_are_named(tmp_path, images):
    with pytest.raises(ValueError, match="do not exist"):
        extract_embeddings(asym_fn, [str(tmp_path / "missing.jpg")])
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        extract_embeddings(asym_fn, images[..., 0])
    with pytest.raises(ValueError, match="image 0: not an image"):
        extract_embeddings(asym_fn, [b"not an image"], progress=False)
    with pytest.raises(ValueError, match="model"):
        extract_embeddings(str(tmp_path / "nothing"), images)


def test_a_training_run_directory_is_a_model(tmp_path, images, tiny_model):
    """Model paths go through tfface.export.load_embedder: a run directory (WORKDIR/embedder.keras)
    works as the .keras file does."""
    run = tmp_path / "run"
    run.mkdir()
    tiny_model.save(str(run / "embedder.keras"))
    ref = tiny_model(images.astype(np.float32)).numpy()
    np.testing.assert_allclose(extract_embeddings(str(run), images, 4, progress=False), ref,
                               rtol=1e-5, atol=1e-5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="embedder.keras"):
        extract_embeddings(str(tmp_path / "empty"), images)
