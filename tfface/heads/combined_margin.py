"""Combined margin (InsightFace): ``s·(cos(m1·θ_y + m2) − m3)``, which contains SphereFace-like
(m1), ArcFace (m2) and CosFace (m3) margins."""
import keras

from tfface import registry
from tfface.heads import margins
from tfface.heads.base import MarginHead


@registry.register("head", "combined_margin", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class CombinedMargin(MarginHead):
    """Target logit ``s·(cos(m1·θ_y + m2) − m3)``, others ``s·cos θ_j``.

    As written in the contract, there is no θ+m>π fallback (use ``ArcFace`` for that). With
    ``m1 == 1`` the target is computed without ``acos``; otherwise ``θ_y = acos(cos θ_y)`` is
    taken on the ``B`` target entries only, clipped and with a finite gradient at ±1.

    Args:
        num_classes: number of identities.
        scale: ``s``.
        m1: multiplicative angular margin.
        m2: additive angular margin (radians).
        m3: additive cosine margin.
    """

    def __init__(self, num_classes, scale=64.0, m1=1.0, m2=0.5, m3=0.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale = float(scale)
        self.m1 = float(m1)
        self.m2 = float(m2)
        self.m3 = float(m3)

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.scale * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        return margins.combined_margin_logits(
            cos, labels, self.scale, self.m1, self.m2, self.m3
        )

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "m1": self.m1, "m2": self.m2, "m3": self.m3})
        return config
