"""Centre loss (Wen et al. 2016; MML paper Eq. 2)."""

import keras

from tfface.losses import _common
from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "centre", inject=("centres",), takes="embeddings")
@keras.saving.register_keras_serializable(package="tfface")
class CentreLoss(keras.losses.Loss):
    """Per sample ``½‖f_i − c_{y_i}‖²``, called as ``loss(labels, embeddings)``, with the
    centres of ``centres`` (a ``tfface.layers.ClassCentres``) *before* this step's update.

    ``reduction`` is Keras': the default ``"sum_over_batch_size"`` is the batch mean;
    ``reduction="sum"`` is the MML paper's Eq. 2, ``L_C = ½ Σ_i ‖f_i − c_{y_i}‖²``, a *sum*
    over the batch, to which its α = 5e-5 (Eq. 12) applies while ``L_S`` is a batch mean; at
    B = 90 the sum is 90 times the mean. Under ``tf.distribute`` each replica returns the sum
    over its slice (Keras scales only mean reductions by the number of replicas), so the
    replicas' values and gradients add up to the sum over the global batch. facenet's own
    ``center_loss`` is a mean over N·D (``tf.reduce_mean`` of the squared differences); tfface,
    and its MML recipes (``reduction="sum"``), follow the printed equation instead.

    The loss does not move the centres: the model calls
    ``centres(embeddings, labels, training=True)``. ``get_config`` describes the layer; a loss
    rebuilt from it holds a fresh layer and must be re-attached to the model's
    (``loss.centres = model_layer``).
    """

    # The builder hands the model's ClassCentres layer in (registry inject=("centres",)).
    requires_centres = True

    def __init__(self, centres, reduction="sum_over_batch_size", name="centre_loss", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.centres = _common.check_centres(_common.centres_from_config(centres), "CentreLoss")

    def call(self, y_true, y_pred):
        value = _common.centres_value(self.centres, y_pred, "CentreLoss")
        return F.centre_loss(value, y_pred, y_true)

    def get_config(self):
        config = super().get_config()
        config.update(centres=_common.centres_config(self.centres))
        return config
