"""Helpers shared by the export tests: a small embedder with the backbone contract, the numpy
reference of the serving signature (written from the contract, not from tfface.export), and a
small trained model with held-out pairs (``trained``)."""
import numpy as np
import pytest

SIZE = 32


def _embedder(input_hw=(SIZE, SIZE), dim=16, kind="tiny", name="ops_embedder"):
    """A small embedder with the backbone contract: float [0, 255] images -> (N, D), unnormalised.

    ``kind="tiny"`` is tfface's registered ``tiny`` backbone (what the smoke recipe and the demo
    export); ``kind="ops"`` is a hand-built model with PReLU and a depthwise convolution (the
    layers of IResNet and MobileFaceNet) that also accepts any input size. BatchNorm statistics
    are set away from their initial values and Dropout is present, so that only an
    inference-mode call reproduces the reference.
    """
    import keras

    if kind == "tiny":
        from tfface import backbones

        model = backbones.get("tiny", input_shape=(*input_hw, 3), embedding_size=dim)
    else:
        inputs = keras.Input((*input_hw, 3))
        x = keras.layers.Rescaling(1 / 128.0, offset=-127.5 / 128.0)(inputs)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.PReLU(shared_axes=[1, 2])(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(0.5)(x)
        outputs = keras.layers.Dense(dim)(x)
        model = keras.Model(inputs, outputs, name=name)
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.uniform(-0.5, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
    return model


def _images(n, hw=(SIZE, SIZE), seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *hw, 3), dtype=np.uint8)


def _normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _reference(model, images, flip):
    raw = np.asarray(model(images.astype(np.float32), training=False))
    if flip:
        raw = raw + np.asarray(model(images[:, :, ::-1].astype(np.float32), training=False))
    return _normalise(raw.astype(np.float64))


class _Helpers:
    SIZE = SIZE
    embedder = staticmethod(_embedder)
    images = staticmethod(_images)
    reference = staticmethod(_reference)


@pytest.fixture(scope="session")
def h():
    return _Helpers


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The demo's model, small: the ``smoke`` recipe (tiny backbone, CosFace) trained for a few
    dozen steps on a small synthetic set at 32×32, as ``tfface demo --quick`` trains it, with the
    held-out identities' pairs.txt (10 folds × 10 matched + 10 mismatched pairs). Returns ``(run_dir, data_dir)``."""
    from tfface.data import generate_synthetic
    from tfface.training.runner import train

    root = tmp_path_factory.mktemp("trained")
    data = root / "data"
    generate_synthetic(str(data), num_identities=16, num_test_identities=20, image_size=32,
                       min_images=8, max_images=12, test_images_per_identity=4, folds=10,
                       pairs_per_fold=10, workers=0)
    run = root / "run"
    overrides = {"data.train": str(data / "train"), "data.num_classes": None,
                 "data.image_size": [32, 32], "data.batch_size": 32, "checkpoint_every": 1000}
    train("smoke", str(run), steps=60, progress=False, overrides=overrides)
    return run, data
