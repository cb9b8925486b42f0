"""Margin-based classification heads.

Each head is a ``keras.layers.Layer``: ``head(embeddings, labels=None, training=None)`` returns
float32 logits ``(B, C)`` for ``SparseCategoricalCrossentropy(from_logits=True)``; class weights
are ``head.kernel (D, C)``. The margin maths lives in ``tfface.heads.margins``.

``get(name, **kwargs)`` builds a head from its snake_case name (``names()``) or class name.
"""
from tfface.heads.arcface import ArcFace
from tfface.heads.base import MarginHead
from tfface.heads.combined_margin import CombinedMargin
from tfface.heads.cosface import CosFace
from tfface.heads.curricularface import CurricularFace
from tfface.heads.mv_softmax import MVSoftmax
from tfface.heads.normface import NormFace
from tfface.heads.partial_fc import PartialFC
from tfface.heads.recurricularface import ReCurricularFace
from tfface.heads.softmax import Softmax
from tfface.heads.sphereface import SphereFace

_REGISTRY = {
    "softmax": Softmax,
    "normface": NormFace,
    "sphereface": SphereFace,
    "cosface": CosFace,
    "arcface": ArcFace,
    "combined_margin": CombinedMargin,
    "mv_softmax": MVSoftmax,
    "curricularface": CurricularFace,
    "recurricularface": ReCurricularFace,
}


def names():
    """The registered head names (snake_case), in the order of the design table."""
    return list(_REGISTRY)


def get(name, **kwargs):
    """Build the head called ``name`` (a name from ``names()`` or a class name such as
    ``"ArcFace"``) with constructor arguments ``kwargs``."""
    if isinstance(name, str):
        if name in _REGISTRY:
            return _REGISTRY[name](**kwargs)
        for cls in _REGISTRY.values():
            if cls.__name__ == name:
                return cls(**kwargs)
    raise ValueError(
        f"Unknown head {name!r}; expected one of {names()} or a class name "
        f"({', '.join(c.__name__ for c in _REGISTRY.values())})"
    )


__all__ = [
    "MarginHead",
    "PartialFC",
    "Softmax",
    "NormFace",
    "SphereFace",
    "CosFace",
    "ArcFace",
    "CombinedMargin",
    "MVSoftmax",
    "CurricularFace",
    "ReCurricularFace",
    "get",
    "names",
]
