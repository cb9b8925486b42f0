"""Hard-Mining loss (Hard-Mining paper, Algorithm 1 / Eq. 2)."""

import keras

from tfface.losses import _common
from tfface.losses import functional as F
from tfface.registry import register


@register("loss", "hard_mining", takes="logits")
@keras.saving.register_keras_serializable(package="tfface")
class HardMining(keras.losses.Loss):
    """Hard-Mining wrapper of any per-sample loss: ``α·x·σ(A·(x − B))`` with ``x = β·L``
    (Algorithm 1, the default) or ``α·L·σ(A·(β·L − B))`` (``form="eq2"``), applied to each
    sample's loss ``L`` before the reduction.

    ``base`` is the wrapped loss, called as ``base(labels, logits)`` without reduction: default
    ``SparseCategoricalCrossentropy(from_logits=True)``, i.e. Hard-Mining CE; with logits from
    ``tfface.heads.SphereFace`` or ``ArcFace`` it is the paper's Hard-Mining A-Softmax or
    Hard-Mining ArcFace. A ``keras.losses.Loss`` base is used through its un-reduced ``call``.
    """

    def __init__(
        self,
        base=None,
        alpha=1.5,
        beta=1.1,
        A=35.0,
        B=0.75,
        form="algorithm1",
        name="hard_mining",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if form not in ("algorithm1", "eq2"):
            raise ValueError(f"HardMining: form must be 'algorithm1' or 'eq2', got {form!r}")
        self.base = _common.resolve_base(base)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.A = float(A)
        self.B = float(B)
        self.form = form

    def call(self, y_true, y_pred):
        return F.hard_mining(
            _common.per_sample(self.base, y_true, y_pred),
            self.alpha,
            self.beta,
            self.A,
            self.B,
            self.form,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            base=_common.serialize_base(self.base),
            alpha=self.alpha,
            beta=self.beta,
            A=self.A,
            B=self.B,
            form=self.form,
        )
        return config
