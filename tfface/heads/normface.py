"""NormFace (Wang et al., 2017): scaled cosine logits ``s·cos θ`` without margin."""
import keras

from tfface import registry
from tfface.heads.base import MarginHead


@registry.register("head", "normface", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class NormFace(MarginHead):
    """``s·cos θ_j`` for every class: normalised embeddings and class weights, no margin.

    Args:
        num_classes: number of identities.
        scale: ``s``, the fixed norm of the logits.
    """

    def __init__(self, num_classes, scale=64.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale = float(scale)

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.scale * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        return self.plain_logits_from_cosine(cos, embeddings)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale})
        return config
