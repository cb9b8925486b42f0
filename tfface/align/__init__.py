"""tfface.align: MTCNN detection and 5-point alignment into ArcFace (112×112, 96×112) or facenet
(box + margin, 160×160) crops, and :func:`align_folder` for a whole folder tree (the library behind
``tfface align SRC DST``).

Names are resolved lazily; the detector (and with it TensorFlow) is loaded on first detection.
"""
from tfface._lazy import lazy_exports

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
    "align_folder": "tfface.align.folder",
    "load_landmarks": "tfface.align.folder",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
