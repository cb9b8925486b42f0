"""Shared fixtures of the search tests: one MTCNN, the real photos that scikit-image and
matplotlib ship (two with a face, two without) in a folder with a corrupt and an empty file, and
a tiny random-weight embedder saved to ``.keras``."""
import os

import numpy as np
import pytest

MODEL_SIZE = 112  # arcface crops are 112x112: the model takes them as they are
DIM = 16


@pytest.fixture(scope="session")
def detector():
    # The one the commands use too (tfface.search.photos.shared_detector): the in-process
    # command runs of these tests then build and trace no second MTCNN.
    from tfface.search.photos import shared_detector

    return shared_detector()


def _grace_hopper():
    import matplotlib.cbook
    from PIL import Image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def photo_arrays():
    import skimage.data

    return {"astronaut": skimage.data.astronaut(), "grace_hopper": _grace_hopper(),
            "chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory, photo_arrays):
    """people/astronaut.png, people/grace_hopper.png, things/chelsea.png, things/coffee.png
    (lossless, so the pixels are the arrays'), things/corrupt.jpg, things/empty.jpg,
    notes.txt."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    os.makedirs(root / "people")
    os.makedirs(root / "things")
    for name, folder in (("astronaut", "people"), ("grace_hopper", "people"), ("chelsea", "things"),
                         ("coffee", "things")):
        Image.fromarray(photo_arrays[name]).save(root / folder / f"{name}.png")
    (root / "things" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (root / "things" / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not a photo")
    return str(root)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A random-weight ``tiny`` backbone (112x112 -> 16-d) saved as .keras."""
    import keras

    from tfface import backbones

    keras.utils.set_random_seed(3)
    model = backbones.get("tiny", input_shape=(MODEL_SIZE, MODEL_SIZE, 3), embedding_size=DIM)
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    import keras

    return keras.saving.load_model(tiny_model_path, compile=False)
