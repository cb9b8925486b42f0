"""Shared fixtures for the alignment tests: one MTCNN for the whole directory (building it loads
three networks) and the real photos that ship with scikit-image and matplotlib."""
import numpy as np
import pytest


@pytest.fixture(scope="session")
def detector():
    from mtcnn import MTCNN

    return MTCNN()


def _grace_hopper():
    import matplotlib.cbook
    from PIL import Image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def photos():
    """name -> uint8 RGB photo: three with one face, two without."""
    import skimage.data

    return {
        "astronaut": skimage.data.astronaut(),
        "camera": np.stack([skimage.data.camera()] * 3, axis=-1),
        "grace_hopper": _grace_hopper(),
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
    }
