"""Minimum Margin Loss (Wei et al., MML paper Eqs. 13–15, Algorithm 1)."""

import keras

from tfface.replica import global_batch, replica_share
from tfface.losses import _common
from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "minimum_margin", inject=("centres",), takes="embeddings")
@keras.saving.register_keras_serializable(package="tfface")
class MinimumMarginLoss(keras.losses.Loss):
    """Σ over unordered pairs of distinct classes in the batch of ``max(M − ‖c'_a − c'_b‖², 0)``,
    called as ``loss(labels, embeddings)``.

    ``c'`` are the centres of ``centres`` (a ``tfface.layers.ClassCentres``) after this step's
    eq. 14–15 update with the layer's ``alpha``, computed functionally here so the gradient
    reaches the features (Algorithm 1, step 3); the layer's own call assigns the same update.
    Under ``tf.distribute`` features and labels are gathered so the sums, counts and class pairs
    are the global batch's, and each replica returns its share (value / replicas).

    M=280 is the paper's value for its 512-d Inception-ResNet-v1 features (not normalised),
    used with weight β=5e-8 after a first stage with β=0.
    """

    # The builder hands the model's ClassCentres layer in (registry inject=("centres",)).
    requires_centres = True

    def __init__(self, centres, margin=280.0, name="minimum_margin_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.centres = _common.check_centres(
            _common.centres_from_config(centres), "MinimumMarginLoss"
        )
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        value = _common.centres_value(self.centres, y_pred, "MinimumMarginLoss")
        f, y = global_batch(y_pred, y_true)
        return replica_share(F.minimum_margin_loss(value, f, y, self.centres.alpha, self.margin))

    def get_config(self):
        config = super().get_config()
        config.update(centres=_common.centres_config(self.centres), margin=self.margin)
        return config
