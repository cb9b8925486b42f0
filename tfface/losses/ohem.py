"""Online hard example mining (HM-Softmax baseline of the MV-Softmax paper)."""

import keras

from tfface.replica import global_batch, replica_share
from tfface.losses import _common
from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "ohem", takes="logits")
@keras.saving.register_keras_serializable(package="tfface")
class OHEM(keras.losses.Loss):
    """Mean of the ``⌈keep_ratio·B⌉`` highest per-sample losses of the batch (the MV-Softmax
    paper keeps 90 %); the easy rest is dropped. ``base`` as in ``HardMining`` (default
    sparse CE from logits, so any head's logits give HM-Softmax, HM-Arc-Softmax, ...).

    A batch-level loss: under ``tf.distribute`` the per-sample losses are gathered so the
    selection is over the global batch, and each replica returns its share (value / replicas)
    as Keras does for mean losses.
    """

    def __init__(self, keep_ratio=0.9, base=None, name="ohem", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f"OHEM: keep_ratio must be in (0, 1], got {keep_ratio}")
        self.keep_ratio = float(keep_ratio)
        self.base = _common.resolve_base(base)

    def call(self, y_true, y_pred):
        (values,) = global_batch(_common.per_sample(self.base, y_true, y_pred))
        return replica_share(F.ohem(values, self.keep_ratio))

    def get_config(self):
        config = super().get_config()
        config.update(keep_ratio=self.keep_ratio, base=_common.serialize_base(self.base))
        return config
