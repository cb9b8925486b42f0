"""Range Loss (Zhang et al. 2017, as written in the MML paper Eqs. 8–11)."""

import keras

from tfface.replica import global_batch, replica_share
from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "range", takes="embeddings")
@keras.saving.register_keras_serializable(package="tfface")
class RangeLoss(keras.losses.Loss):
    """``α·intra + β·inter`` on squared Euclidean distances, called as
    ``loss(labels, embeddings)``: intra sums, over the classes of the batch, the harmonic mean
    of the ``k`` largest within-class pair distances; inter is ``max(M − d, 0)`` for the
    nearest pair of batch-mean class centres.

    ``margin`` (M) is required: it depends on the feature scale (squared distances of
    L2-normalised features are at most 4; the MML recipe uses 280, its MML margin, for 512-d
    un-normalised Inception-ResNet-v1 features), and neither paper gives a value to default to.
    A batch-level loss: global batch under ``tf.distribute``, each replica returns its share.
    """

    def __init__(self, k=2, margin=None, alpha=1.0, beta=1.0, name="range_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if margin is None:
            raise ValueError(
                "RangeLoss: margin (M, on squared distances) is required; it depends on the "
                "feature scale (at most 4 between L2-normalised features)"
            )
        if int(k) != k or k < 1:
            raise ValueError(f"RangeLoss: k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.margin = float(margin)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        f, y = global_batch(y_pred, y_true)
        return replica_share(F.range_loss(f, y, self.k, self.margin, self.alpha, self.beta))

    def get_config(self):
        config = super().get_config()
        config.update(k=self.k, margin=self.margin, alpha=self.alpha, beta=self.beta)
        return config
