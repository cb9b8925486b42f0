"""SphereFace / A-Softmax (Liu et al., 2017): multiplicative angular margin with annealing."""
import keras
import numpy as np
import tensorflow as tf

from tfface import registry
from tfface.heads import margins
from tfface.heads.base import MarginHead


@registry.register("head", "sphereface", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class SphereFace(MarginHead):
    """Target logit ``r·ψ(θ_y)``, others ``r·cos θ_j`` (class weights normalised, no bias), where
    the radius ``r`` is the feature norm ``‖x‖`` (SphereFace's own form, ``scale=None``) or a fixed
    ``scale`` ``s`` on normalised features (the form of the MV-Softmax paper's A-Softmax
    baseline, s = 32 for every method; its official code normalises x and w and multiplies by s).

    ``ψ(θ) = (−1)^k cos(mθ) − 2k`` with ``k = ⌊mθ/π⌋``. Training anneals from the softmax-like
    target to ψ as in the reference implementation: the target is
    ``r·(λ cos θ_y + ψ(θ_y)) / (1 + λ)`` with ``λ = max(λ_min, base·(1 + γ·iter)^(−power))``,
    where ``iter`` counts training steps (a non-trainable weight, saved with the model, counted
    once per step across replicas; the first training step uses ``iter = 1``). Evaluation with
    labels uses the current ``λ`` without counting. ``anneal=False`` means ``λ = 0``: the pure
    ψ target.

    Args:
        num_classes: number of identities.
        margin: the integer multiplicative margin ``m`` (4 in the paper).
        anneal: use the λ schedule (``False``: ``λ = 0``).
        lambda_base, lambda_gamma, lambda_power, lambda_min: the schedule's constants (the
            defaults are SphereFace's Caffe prototxt: 1000, 0.12, 1, 5; the MV-Softmax official
            code uses 1000, 1e-4, 2, 5).
        scale: ``None`` keeps the feature norm ``‖x‖`` as the radius; a positive float ``s``
            normalises the features and multiplies every logit by ``s``.
    """

    def __init__(
        self,
        num_classes,
        margin=4,
        anneal=True,
        lambda_base=1000.0,
        lambda_gamma=0.12,
        lambda_power=1.0,
        lambda_min=5.0,
        scale=None,
        **kwargs,
    ):
        super().__init__(num_classes, **kwargs)
        if isinstance(margin, bool) or int(margin) != margin or margin < 1:
            raise ValueError(f"SphereFace: margin must be a positive integer, got {margin!r}")
        self.margin = int(margin)
        self.anneal = bool(anneal)
        self.lambda_base = float(lambda_base)
        self.lambda_gamma = float(lambda_gamma)
        self.lambda_power = float(lambda_power)
        self.lambda_min = float(lambda_min)
        if scale is not None and (
            isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) or scale <= 0
        ):
            raise ValueError(f"SphereFace: scale must be None (use ‖x‖) or a positive number, got {scale!r}")
        self.scale = None if scale is None else float(scale)

    def build_state(self):
        # Counted once per global step: every replica adds 1 and the first replica's value wins.
        self.iteration = self.add_weight(
            name="iteration",
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
        )

    def _lambda(self, iteration):
        if not self.anneal:
            return tf.constant(0.0, tf.float32)
        return margins.sphereface_lambda(
            iteration, self.lambda_base, self.lambda_gamma, self.lambda_power, self.lambda_min
        )

    def radius(self, embeddings):
        """The factor of every logit, float32 ``(B,)``: ``‖x‖``, or ``scale`` when it is set."""
        if self.scale is None:
            return margins.norm(embeddings)
        return tf.fill(tf.shape(embeddings)[:1], tf.constant(self.scale, tf.float32))

    def plain_logits_from_cosine(self, cos, embeddings):
        return self.radius(embeddings)[:, None] * cos

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        iteration = tf.convert_to_tensor(self.iteration)
        if training:
            iteration = iteration + 1
            self.iteration.assign(iteration)
        lam = self._lambda(iteration)
        return margins.sphereface_logits(cos, self.radius(embeddings), labels, self.margin, lam)

    def monitored(self):
        return {"lambda": self._lambda(tf.convert_to_tensor(self.iteration))}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "margin": self.margin,
                "anneal": self.anneal,
                "lambda_base": self.lambda_base,
                "lambda_gamma": self.lambda_gamma,
                "lambda_power": self.lambda_power,
                "lambda_min": self.lambda_min,
                "scale": self.scale,
            }
        )
        return config
