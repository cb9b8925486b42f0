"""MV-Softmax (Wang et al., 2020, "Mis-classified Vector Guided Softmax Loss")."""
import keras

from tfface import registry
from tfface.heads import margins
from tfface.heads.base import MarginHead


@registry.register("head", "mv_softmax", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class MVSoftmax(MarginHead):
    """Margin target plus emphasis on mis-classified negatives.

    Target ``s·f(m, θ_y)`` with ``f = cos θ_y − m`` (``margin_type="am"``) or
    ``f = cos(θ_y + m)`` with ArcFace's θ+m>π fallback (``"arc"``). A non-target ``k`` is
    mis-classified when ``cos θ_k > f(m, θ_y)`` and its logit becomes ``s·(cos θ_k + t)``
    (fixed, ``adaptive=False``) or ``s·((t + 1)·cos θ_k + t)`` (adaptive, the official code's
    form); the others stay ``s·cos θ_k``.

    The paper's settings: s=32, m=0.35 (AM) or 0.5 (Arc); t = 0.2 (MV-Arc-f), 0.3 (MV-Arc-a),
    0.25 (MV-AM-f), 0.2 (MV-AM-a).

    Args:
        num_classes: number of identities.
        scale: ``s``.
        margin: ``m``.
        t: the re-weighting constant ``t ≥ 0``.
        margin_type: ``"am"`` or ``"arc"``.
        adaptive: adaptive (``True``) or fixed (``False``) re-weighting.
    """

    def __init__(
        self, num_classes, scale=32.0, margin=0.35, t=0.2, margin_type="am", adaptive=True, **kwargs
    ):
        super().__init__(num_classes, **kwargs)
        if margin_type not in ("am", "arc"):
            raise ValueError(f"MVSoftmax: margin_type must be 'am' or 'arc', got {margin_type!r}")
        self.scale = float(scale)
        self.margin = float(margin)
        self.t = float(t)
        self.margin_type = margin_type
        self.adaptive = bool(adaptive)

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.scale * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        return margins.mv_softmax_logits(
            cos,
            labels,
            self.scale,
            self.margin,
            self.t,
            self.margin_type,
            self.adaptive,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scale": self.scale,
                "margin": self.margin,
                "t": self.t,
                "margin_type": self.margin_type,
                "adaptive": self.adaptive,
            }
        )
        return config
