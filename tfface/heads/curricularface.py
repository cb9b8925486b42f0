"""CurricularFace (Huang et al., 2020): adaptive curriculum emphasis on hard negatives."""
import math

import keras
import tensorflow as tf

from tfface import registry, replica
from tfface.heads import margins
from tfface.heads.base import MarginHead


@registry.register("head", "curricularface", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class CurricularFace(MarginHead):
    """ArcFace target with hard negatives re-weighted by a running ``t``, as in the official code.

    In training, with labels, per batch:

    1. ``t ← momentum·mean(cos θ_y) + (1 − momentum)·t``: the mean is over the *global* batch
       under ``tf.distribute`` (an all-reduce, so ``t`` is identical on every replica), taken
       before any modulation, with no gradient through ``t``;
    2. hard negatives ``cos θ_j > cos(θ_y + m)`` (compared before the θ+m>π fallback) become
       ``cos θ_j·(t + cos θ_j)``;
    3. the target is ``cos(θ_y + m)``, or ``cos θ_y − m·sin m`` where ``θ_y + m > π``;

    and everything is scaled by ``s``. With labels outside training the stored ``t`` is used and
    not updated; without labels the logits are ``s·cos θ``. ``t`` (initially 0) is a
    non-trainable weight, saved in checkpoints and ``.keras`` files.

    Args:
        num_classes: number of identities.
        scale: ``s``.
        margin: ``m`` in radians, in ``[0, π)``.
        momentum: weight of the new batch in the EMA of ``t`` (the official code's 0.01; the
            paper's eq. 9 writes the old-value weight α = 0.99).
    """

    def __init__(self, num_classes, scale=64.0, margin=0.5, momentum=0.01, **kwargs):
        super().__init__(num_classes, **kwargs)
        if not 0.0 <= margin < math.pi:
            raise ValueError(f"{type(self).__name__}: margin must be in [0, pi), got {margin!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(
                f"{type(self).__name__}: momentum must be in [0, 1], got {momentum!r}"
            )
        self.scale = float(scale)
        self.margin = float(margin)
        self.momentum = float(momentum)

    def build_state(self):
        # Every replica computes the same value from the all-reduced batch mean; "mean"
        # aggregation (on-write, mirrored) keeps the copies equal even so.
        self.t = self.add_weight(
            name="t",
            shape=(),
            initializer="zeros",
            trainable=False,
            autocast=False,
            aggregation="mean",
        )

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.scale * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        t = tf.convert_to_tensor(self.t)
        if training:
            t = margins.ema(t, self._global_target_mean(cos, labels, t), self.momentum)
            self.t.assign(t)
        return self._logits(cos, labels, tf.stop_gradient(t))

    def _logits(self, cos, labels, t):
        return margins.curricular_logits(cos, labels, self.scale, self.margin, t)

    @staticmethod
    def _global_target_mean(cos, labels, fallback):
        """Mean of ``cos θ_y`` over the global batch (all replicas), without gradient; the
        previous ``t`` for an empty batch."""
        cos_y = tf.stop_gradient(margins.gather_target(cos, labels))
        local = tf.stack([tf.reduce_sum(cos_y), tf.cast(tf.size(cos_y), tf.float32)])
        # In cross-replica context (no enclosing strategy.run) the batch is already global.
        total = replica.all_reduce_sum(local)
        return tf.where(total[1] > 0, total[0] / tf.maximum(total[1], 1.0), fallback)

    def monitored(self):
        return {"t": tf.convert_to_tensor(self.t)}

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin, "momentum": self.momentum})
        return config
