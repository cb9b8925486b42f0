"""ArcFace (Deng et al., 2019): additive angular margin ``s·cos(θ_y + m)``."""
import math

import keras

from tfface import registry
from tfface.heads import margins
from tfface.heads.base import MarginHead


@registry.register("head", "arcface", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class ArcFace(MarginHead):
    """Target logit ``s·cos(θ_y + m)``, others ``s·cos θ_j``.

    Where ``θ_y + m > π`` the target is the reference code's fallback ``s·(cos θ_y − m·sin m)``,
    which keeps the target monotonic in ``θ_y``. ``cos(θ + m)`` is computed as
    ``cos θ cos m − sin θ sin m`` (no ``acos``), so the gradient is exact.

    Args:
        num_classes: number of identities.
        scale: ``s``.
        margin: additive angular margin ``m`` in radians, in ``[0, π)``.
    """

    def __init__(self, num_classes, scale=64.0, margin=0.5, **kwargs):
        super().__init__(num_classes, **kwargs)
        if not 0.0 <= margin < math.pi:
            raise ValueError(f"ArcFace: margin must be in [0, pi), got {margin!r}")
        self.scale = float(scale)
        self.margin = float(margin)

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.scale * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        return margins.arcface_logits(cos, labels, self.scale, self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin})
        return config
