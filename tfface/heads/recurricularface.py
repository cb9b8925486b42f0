"""ReCurricularFace: CurricularFace with a re-derived hard-negative modulation."""
import keras

from tfface import registry
from tfface.heads import margins
from tfface.heads.curricularface import CurricularFace


@registry.register("head", "recurricularface", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class ReCurricularFace(CurricularFace):
    """CurricularFace whose hard negatives become ``cos θ_j·(a·cos θ_j + b·t)``.

    Everything else (the EMA of ``t`` over the global batch before modulation, the mask
    ``cos θ_j > cos(θ_y + m)`` before the fallback, the ArcFace target with its θ+m>π fallback,
    the scale) is CurricularFace's. The paper derives ``a = 1/cos((E[θ] − m)/2)`` and ``b`` from
    its eqs. 2–6 and settles on ``a = 1.1, b = 0.4`` (§4.2); both stay explicit arguments.

    Args:
        num_classes: number of identities.
        scale: ``s``.
        margin: ``m`` in radians.
        a: weight of ``cos θ_j`` in the modulation.
        b: weight of ``t`` in the modulation.
        momentum: weight of the new batch in the EMA of ``t``.
    """

    def __init__(self, num_classes, scale=64.0, margin=0.5, a=1.1, b=0.4, momentum=0.01, **kwargs):
        super().__init__(num_classes, scale=scale, margin=margin, momentum=momentum, **kwargs)
        self.a = float(a)
        self.b = float(b)

    def _logits(self, cos, labels, t):
        return margins.recurricular_logits(cos, labels, self.scale, self.margin, t, self.a, self.b)

    def get_config(self):
        config = super().get_config()
        config.update({"a": self.a, "b": self.b})
        return config
