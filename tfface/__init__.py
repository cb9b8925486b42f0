"""tfface: face-recognition embeddings with Keras 3 and TensorFlow.

Sub-packages are imported lazily so that ``import tfface`` (and ``tfface --version``) stays
cheap and has no side effects: TensorFlow is loaded on first use of a sub-package.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "heads",
    "losses",
    "layers",
    "backbones",
    "data",
    "align",
    "eval",
    "training",
    "export",
    "testing",
)
# Names re-exported at the top level: name -> module that defines it.
_EXPORTS = {
    "FaceModel": "tfface.training",
}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"tfface.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfface' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + list(_EXPORTS))
