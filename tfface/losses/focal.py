"""Focal softmax loss (F-Softmax baseline of the MV-Softmax paper, Eq. 2)."""

import keras

from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "focal", takes="logits")
@keras.saving.register_keras_serializable(package="tfface")
class Focal(keras.losses.Loss):
    """Per sample ``−(1 − p_y)^γ·log p_y`` over logits (any head's); γ=2 in the MV-Softmax
    paper's comparison."""

    def __init__(self, gamma=2.0, name="focal", **kwargs):
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"Focal: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        return F.focal(y_true, y_pred, self.gamma)

    def get_config(self):
        config = super().get_config()
        config.update(gamma=self.gamma)
        return config
