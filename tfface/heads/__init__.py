"""Margin-based classification heads.

Each head is a ``keras.layers.Layer``: ``head(embeddings, labels=None, training=None)`` returns
float32 logits ``(B, C)`` for ``SparseCategoricalCrossentropy(from_logits=True)``; class weights
are ``head.kernel (D, C)``. The margin maths lives in ``tfface.heads.margins``; how a head takes
part in a training step (``training_loss`` / ``apply_own_gradients`` / ``check_training``,
returning a ``HeadLoss``) in ``tfface.heads.base``.

Every head registers itself in ``tfface.registry`` under kind ``"head"`` (with ``num_classes``
injected by the builder); ``names()`` and ``get(name, **kwargs)`` read that registry, and a head's
class name (``"ArcFace"``) is an alias of its registered name. ``PartialFC`` is not a head of its
own: it wraps one.
"""
from tfface import registry
from tfface.heads.base import HeadLoss, MarginHead, TrainingHead

# Imported in the order of the design table, which is the order of ``names()``.
from tfface.heads.softmax import Softmax  # noqa: I001
from tfface.heads.normface import NormFace
from tfface.heads.sphereface import SphereFace
from tfface.heads.cosface import CosFace
from tfface.heads.arcface import ArcFace
from tfface.heads.combined_margin import CombinedMargin
from tfface.heads.mv_softmax import MVSoftmax
from tfface.heads.curricularface import CurricularFace
from tfface.heads.recurricularface import ReCurricularFace
from tfface.heads.partial_fc import PartialFC, PartialFCSample


def names():
    """The registered head names (snake_case), in the order of the design table."""
    return registry.names("head")


def get(name, **kwargs):
    """Build the head called ``name`` (a name from ``names()`` or a class name such as
    ``"ArcFace"``) with constructor arguments ``kwargs``."""
    try:
        target = registry.get("head", name)
    except registry.RegistryError:
        classes = ", ".join(registry.get("head", n).__name__ for n in names())
        raise registry.RegistryError(
            f"Unknown head {name!r}; expected one of {names()} or a class name ({classes})"
        ) from None
    return target(**kwargs)


__all__ = [
    "HeadLoss",
    "MarginHead",
    "TrainingHead",
    "PartialFC",
    "PartialFCSample",
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
