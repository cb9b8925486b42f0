"""CosFace / AM-Softmax (Wang et al., 2018): additive cosine margin ``s·(cos θ_y − m)``."""
import keras

from tfface import registry
from tfface.heads import margins
from tfface.heads.base import MarginHead


@registry.register("head", "cosface", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class CosFace(MarginHead):
    """Target logit ``s·(cos θ_y − m)``, others ``s·cos θ_j``.

    Args:
        num_classes: number of identities.
        scale: ``s``.
        margin: additive cosine margin ``m``.
    """

    def __init__(self, num_classes, scale=64.0, margin=0.35, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale = float(scale)
        self.margin = float(margin)

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.scale * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        return margins.cosface_logits(cos, labels, self.scale, self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin})
        return config
