"""Centre loss (Wen et al. 2016; MML paper Eq. 2)."""

import keras

from tfface.losses import _common
from tfface.losses import functional as F


@keras.saving.register_keras_serializable(package="tfface")
class CentreLoss(keras.losses.Loss):
    """Per sample ``½‖f_i − c_{y_i}‖²``, called as ``loss(labels, embeddings)``, with the
    centres of ``centres`` (a ``tfface.layers.ClassCentres``) *before* this step's update.

    The default reduction is the batch mean; the MML paper's Eq. 2 sums over the batch
    (``reduction="sum"``), which with its α=5e-5 and B=90 is 90 times the mean. The loss does
    not move the centres: the model calls ``centres(embeddings, labels, training=True)``.

    ``get_config`` describes the layer; a loss rebuilt from it holds a fresh layer and must be
    re-attached to the model's (``loss.centres = model_layer``).
    """

    def __init__(self, centres, name="centre_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.centres = _common.check_centres(_common.centres_from_config(centres), "CentreLoss")

    def call(self, y_true, y_pred):
        value = _common.centres_value(self.centres, y_pred, "CentreLoss")
        return F.centre_loss(value, y_pred, y_true)

    def get_config(self):
        config = super().get_config()
        config.update(centres=_common.centres_config(self.centres))
        return config
