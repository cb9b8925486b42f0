"""tfface.align: MTCNN detection and 5-point alignment into ArcFace (112×112, 96×112) or facenet
(box + margin, 160×160) crops, and the ``tfface align SRC DST`` command.

Names are resolved lazily; the detector (and with it TensorFlow) is loaded on first detection.
"""
import importlib

_EXPORTS = {
    "FaceAligner": "tfface.align.aligner",
    "AlignedFace": "tfface.align.aligner",
    "Detection": "tfface.align.aligner",
    "ARCFACE_TEMPLATE_112": "tfface.align.geometry",
    "ARCFACE_TEMPLATE_96x112": "tfface.align.geometry",
    "arcface_template": "tfface.align.geometry",
    "select_face": "tfface.align.geometry",
    "similarity_warp": "tfface.align.geometry",
    "facenet_crop": "tfface.align.geometry",
    "centre_crop": "tfface.align.geometry",
    "align_folder": "tfface.align.cli",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfface.align' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
