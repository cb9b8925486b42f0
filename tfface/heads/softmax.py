"""Softmax: the plain fully connected classifier ``x·W + b`` (the baseline of every paper)."""
import keras
import tensorflow as tf

from tfface import registry
from tfface.heads.base import MarginHead


@registry.register("head", "softmax", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class Softmax(MarginHead):
    """Plain fully connected logits ``x·W + b`` (no normalisation, no margin).

    Args:
        num_classes: number of identities.
        use_bias: add a per-class bias ``b``.
    """

    # The similarity is the raw product x·W + b (what the other heads' hooks call ``cos``).
    normalized = False

    def __init__(self, num_classes, use_bias=True, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.use_bias = bool(use_bias)

    def build_state(self):
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.num_classes,), initializer="zeros", autocast=False
            )

    def similarity(self, embeddings):
        # The matmul runs in the compute dtype (float16 under mixed precision); the logits and
        # the bias are float32.
        logits = tf.cast(
            tf.matmul(embeddings, tf.cast(self.kernel, embeddings.dtype)), tf.float32
        )
        if self.bias is not None:
            logits = logits + self.bias
        return logits

    def plain_logits_from_cosine(self, cos, embeddings):
        return cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        return cos

    def get_config(self):
        config = super().get_config()
        config.update({"use_bias": self.use_bias})
        return config
