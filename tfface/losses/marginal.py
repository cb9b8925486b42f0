"""Marginal Loss (Deng et al. 2017; MML paper Eq. 6)."""

import keras

from tfface.replica import global_batch, replica_share
from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "marginal", takes="embeddings")
@keras.saving.register_keras_serializable(package="tfface")
class MarginalLoss(keras.losses.Loss):
    """Mean over ordered pairs ``i ≠ j`` of ``max(ξ − y_ij·(θ − ‖f̂_i − f̂_j‖²), 0)`` on
    L2-normalised features, called as ``loss(labels, embeddings)``; θ=1.2, ξ=0.3 as in Deng
    et al. A batch-level loss: global batch under ``tf.distribute``, each replica returns its
    share."""

    def __init__(self, threshold=1.2, error_margin=0.3, name="marginal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = float(threshold)
        self.error_margin = float(error_margin)

    def call(self, y_true, y_pred):
        f, y = global_batch(y_pred, y_true)
        return replica_share(F.marginal_loss(f, y, self.threshold, self.error_margin))

    def get_config(self):
        config = super().get_config()
        config.update(threshold=self.threshold, error_margin=self.error_margin)
        return config
