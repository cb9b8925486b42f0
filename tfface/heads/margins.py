"""Pure margin functions shared by the heads.

Every function here is stateless maths over ``tf`` tensors, so the heads stay thin and the
formulas can be checked against numpy transcriptions of the papers. Conventions:

* ``cos`` is the ``(B, C)`` matrix of cosines between normalised embeddings and class weights;
* ``cos_y`` is the ``(B,)`` vector of target cosines ``cos θ_y``;
* margins are applied only to the ``B`` target entries (``apply_to_target``), never to the whole
  ``(B, C)`` matrix: the ``(B, D) × (D, C)`` matmul dominates the cost of a head, and the margin
  must not add full passes over ``(B, C)`` beyond the ones the method really needs (MV-Softmax and
  CurricularFace re-weight the hard negatives, which is one elementwise pass).

Numerical guards (each documented where it is applied): cosines are clipped to ``[-1, 1]``
before any ``sqrt``/``acos``; ``sin θ = sqrt(1 − cos²θ)`` has a zero gradient where ``1 − cos²θ``
is (numerically) zero instead of an infinite one; ``acos`` is evaluated only on ``B`` target
entries and only where it cannot be avoided (``CombinedMargin`` with ``m1 != 1``).
"""
import math

import tensorflow as tf

# Below this, 1 - cos² is treated as exactly zero by `sin_from_cos`: only cos θ = ±1 up to float
# rounding reaches it, and there d sin θ / d cos θ is infinite.
_SIN_EPS = 1e-12
# Squared-norm floors of `inverse_norm`/`norm`: a zero embedding or class column gives cos θ = 0
# and a finite gradient instead of 0/0. The larger float16 floor is explained in `cosine`.
_NORM_EPS = 1e-12
_LOW_PRECISION_NORM_EPS = 1e-4


# ---------------------------------------------------------------------------------------------
# cosines


def inverse_norm(x, axis, eps=_NORM_EPS):
    """``1 / max(‖x‖, sqrt(eps))`` along ``axis`` (kept), in float32."""
    x = tf.cast(x, tf.float32)
    return tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x), axis=axis, keepdims=True), eps))


def norm(x, axis=-1):
    """``‖x‖`` along ``axis`` (dropped) in float32, with a finite gradient at ``x = 0``."""
    x = tf.cast(x, tf.float32)
    return tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(x), axis=axis), _NORM_EPS))


def cosine(embeddings, kernel, compute_dtype="float32"):
    """Cosine logits ``cos θ_{ij} = x_i·w_j / (‖x_i‖‖w_j‖)``, float32 ``(B, C)``.

    The embeddings are normalised (``B × D``, cheap); in float32 the kernel is not normalised
    (that would be a ``D × C`` pass forward and several backward) but its column norms scale the
    ``B × C`` product, which is cheaper whenever ``B < D``. Norms are always computed in float32
    (a float16 sum of squares of a 512-d embedding overflows); the matmul itself runs in
    ``compute_dtype`` so that ``mixed_float16`` keeps its speed, and its result is cast to
    float32 straight away.
    """
    low_precision = tf.as_dtype(compute_dtype) != tf.float32
    x = tf.cast(embeddings, tf.float32)
    # The gradient of x/‖x‖ is bounded by 1/max(‖x‖, floor). In float16 it flows back into
    # the float16 embeddings, so the floor is 1e-2 there (a factor 100 instead of 1e6, which
    # would overflow float16 for a zero embedding); real embeddings are far longer than 1e-2.
    x = x * inverse_norm(x, axis=1, eps=_LOW_PRECISION_NORM_EPS if low_precision else _NORM_EPS)
    w = tf.cast(kernel, tf.float32)
    inv_w = inverse_norm(w, axis=0)
    if low_precision:
        # Low precision: normalise the kernel in float32 before the cast (a D × C pass, but the
        # cast is one anyway). Post-scaling would send 1/‖w‖ (up to 1e6 for a zero column)
        # through the float16 backward pass, where it overflows.
        return tf.cast(
            tf.matmul(tf.cast(x, compute_dtype), tf.cast(w * inv_w, compute_dtype)), tf.float32
        )
    return tf.matmul(x, w) * inv_w


def sin_from_cos(cos):
    """``sin θ = sqrt(1 − cos²θ)`` for ``θ ∈ [0, π]``, from the clipped cosine.

    Where ``1 − cos²θ`` is (numerically) zero the value is 0 and the gradient is 0 (the exact
    derivative is infinite there); elsewhere the gradient is exact.
    """
    cos = tf.clip_by_value(cos, -1.0, 1.0)
    sq = 1.0 - tf.square(cos)
    positive = sq > _SIN_EPS
    # Double `where`: the untaken branch must not see sqrt(0) either, or its inf gradient
    # times zero gives NaN.
    return tf.where(positive, tf.sqrt(tf.where(positive, sq, tf.ones_like(sq))), tf.zeros_like(sq))


def safe_acos(cos):
    """``θ = acos(cos)`` with the value exact on ``[-1, 1]`` (clipped) and a finite gradient: the
    gradient is zero within 1e-6 of ±1, where the exact derivative ``−1/sin θ`` explodes."""
    cos = tf.clip_by_value(cos, -1.0, 1.0)
    inside = tf.abs(cos) < 1.0 - 1e-6
    safe = tf.where(inside, cos, tf.zeros_like(cos))
    return tf.where(inside, tf.acos(safe), tf.stop_gradient(tf.acos(cos)))


# ---------------------------------------------------------------------------------------------
# target entries


def target_indices(labels):
    """``(B, 2)`` int32 indices ``[[i, y_i]]`` of the target entries."""
    labels = tf.cast(labels, tf.int32)
    return tf.stack([tf.range(tf.shape(labels)[0], dtype=tf.int32), labels], axis=1)


def gather_target(x, labels):
    """``x[i, y_i]`` for every row, shape ``(B,)``."""
    return tf.gather_nd(x, target_indices(labels))


# Hard-negative re-weightings: kind -> (value, derivative w.r.t. cos), with params a tuple of
# scalar tensors. Kept as data rather than closures so that the fused (XLA) kernels below can be
# traced once per kind.
def _hard_value(kind, c, params):
    if kind == "mv_fixed":  # cos θ_k + t
        return c + params[0]
    if kind == "mv_adaptive":  # (t + 1)·cos θ_k + t
        return (params[0] + 1.0) * c + params[0]
    if kind == "curricular":  # cos θ_j·(t + cos θ_j)
        return c * (params[0] + c)
    if kind == "recurricular":  # cos θ_j·(a·cos θ_j + b·t)
        return c * (params[1] * c + params[2] * params[0])
    raise ValueError(f"unknown hard-negative re-weighting {kind!r}")


def _hard_slope(kind, c, params):
    if kind == "mv_fixed":
        return tf.ones_like(c)
    if kind == "mv_adaptive":
        return (params[0] + 1.0) * tf.ones_like(c)
    if kind == "curricular":
        return params[0] + 2.0 * c
    if kind == "recurricular":
        return 2.0 * params[1] * c + params[2] * params[0]
    raise ValueError(f"unknown hard-negative re-weighting {kind!r}")


def _hard_forward(cos, threshold, indices, new, kind, params):
    out = tf.where(cos > threshold[:, None], _hard_value(kind, cos, params), cos)
    return tf.tensor_scatter_nd_update(out, indices, new)


def _hard_backward(upstream, cos, threshold, indices, g_target, kind, params):
    g = tf.where(cos > threshold[:, None], upstream * _hard_slope(kind, cos, params), upstream)
    return tf.tensor_scatter_nd_update(g, indices, g_target)


# The same two functions compiled by XLA: without fusion the mask, the re-weighting, the select
# and the scatter are separate passes over (B, C) (about 8 of them forward+backward), which costs
# several percent of a whole step at C = 50,000; fused they are one pass each way. Only this
# elementwise part is compiled, so the rest of the model (and the label checks, which XLA would
# drop) is unaffected.
_hard_forward_fused = tf.function(_hard_forward, jit_compile=True, reduce_retracing=True)
_hard_backward_fused = tf.function(_hard_backward, jit_compile=True, reduce_retracing=True)
# Fuse from this many classes on (smaller heads are not worth a compilation per shape).
FUSE_MIN_CLASSES = 4096


def apply_to_target(cos, labels, fn, threshold=None, hard=None, fuse=None):
    """Replace every target entry ``cos[i, y_i]`` by ``fn(cos[i, y_i])`` and, when ``threshold``
    is given, every other entry above ``threshold[i]`` (the hard negatives) by the re-weighting
    ``hard = (kind, params)`` (see ``mv_hard``, ``curricular_hard``, ``recurricular_hard``).

    ``fn`` is elementwise and must not read variables (pass their values in). Nothing but ``cos``
    receives a gradient: ``threshold`` (the mask) and the re-weighting's parameters (``t``) are
    constants, as in the reference code.

    A custom gradient keeps the cost to one scatter forward and one backward: the incoming
    gradient is kept everywhere except at the targets, where it becomes ``g_iy·fn'(cos_iy)``,
    and at the hard negatives, where it is multiplied by the re-weighting's derivative. The naive
    composition (gather, then scatter) would add a dense ``(B, C)`` gradient of the gather and a
    sum. With hard negatives and at least ``FUSE_MIN_CLASSES`` classes (or ``fuse=True``), the
    elementwise part runs as one XLA-fused kernel each way.
    """
    indices = target_indices(labels)
    if threshold is not None:
        threshold = tf.stop_gradient(threshold)
        kind, params = hard
        params = tuple(tf.stop_gradient(tf.cast(p, cos.dtype)) for p in params)
        if fuse is None:
            fuse = cos.shape[-1] is not None and cos.shape[-1] >= FUSE_MIN_CLASSES
        forward, backward = (
            (_hard_forward_fused, _hard_backward_fused) if fuse else (_hard_forward, _hard_backward)
        )

    @tf.custom_gradient
    def _apply(cos):
        values = tf.gather_nd(cos, indices)
        with tf.GradientTape() as tape:
            tape.watch(values)
            new = tf.cast(fn(values), cos.dtype)
        # fn is elementwise, so its Jacobian is diagonal: the derivative is taken here on the B
        # target values, and the backward pass only scales the B target gradients.
        slope = tape.gradient(new, values)
        if slope is None:
            slope = tf.zeros_like(values)
        if threshold is None:
            out = tf.tensor_scatter_nd_update(cos, indices, new)
        else:
            out = forward(cos, threshold, indices, new, kind, params)

        def grad(upstream):
            g_target = tf.gather_nd(upstream, indices) * tf.cast(slope, upstream.dtype)
            if threshold is None:
                return tf.tensor_scatter_nd_update(upstream, indices, g_target)
            return backward(upstream, cos, threshold, indices, g_target, kind, params)

        return out, grad

    return _apply(cos)


# ---------------------------------------------------------------------------------------------
# target margins (functions of cos θ_y)


def cosface_target(cos_y, margin):
    """CosFace / AM-Softmax: ``cos θ − m``."""
    return cos_y - margin


def cos_theta_plus(cos_y, margin):
    """``cos(θ + m) = cos θ cos m − sin θ sin m`` (no acos; exact gradient away from ±1)."""
    cos_y = tf.clip_by_value(cos_y, -1.0, 1.0)
    return cos_y * math.cos(margin) - sin_from_cos(cos_y) * math.sin(margin)


def arcface_target(cos_y, margin):
    """ArcFace: ``cos(θ + m)``, and where ``θ + m > π`` (i.e. ``cos θ < cos(π − m)``) the
    reference fallback ``cos θ − m·sin m``, which keeps the target decreasing in θ."""
    cos_y = tf.clip_by_value(cos_y, -1.0, 1.0)
    return tf.where(
        cos_y < math.cos(math.pi - margin),
        cos_y - margin * math.sin(margin),
        cos_theta_plus(cos_y, margin),
    )


def combined_target(cos_y, m1, m2, m3):
    """Combined margin (InsightFace): ``cos(m1·θ + m2) − m3``.

    With ``m1 == 1`` this uses the acos-free ``cos(θ + m2)`` identity; otherwise ``θ`` comes from
    a guarded ``acos`` on the ``B`` target entries.
    """
    if m1 == 1.0:
        return cos_theta_plus(cos_y, m2) - m3
    return tf.cos(m1 * safe_acos(cos_y) + m2) - m3


def chebyshev(cos, m):
    """``cos(mθ)`` as the Chebyshev polynomial ``T_m(cos θ)`` (integer ``m ≥ 0``): exact and
    acos-free."""
    previous, current = tf.ones_like(cos), cos
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2.0 * cos * current - previous
    return current


def sphereface_psi(cos_y, m):
    """SphereFace's ``ψ(θ) = (−1)^k cos(mθ) − 2k`` with ``k = ⌊mθ/π⌋`` (θ ∈ [0, π]).

    ``k`` is counted from the cosine (``θ ≥ jπ/m ⇔ cos θ ≤ cos(jπ/m)``), so neither ``acos`` nor
    its infinite derivative at ±1 is involved. At ``θ = π`` the formula's ``k = m`` and the
    ``k = m − 1`` piece agree (ψ is continuous), so counting ``j = 1..m`` is exact.
    """
    cos_y = tf.clip_by_value(cos_y, -1.0, 1.0)
    k = tf.zeros_like(cos_y)
    for j in range(1, m + 1):
        k += tf.cast(cos_y <= math.cos(j * math.pi / m), cos_y.dtype)
    sign = 1.0 - 2.0 * tf.math.floormod(k, 2.0)
    return sign * chebyshev(cos_y, m) - 2.0 * k


def sphereface_lambda(iteration, base, gamma, power, lambda_min):
    """SphereFace's annealing weight ``λ = max(λ_min, base·(1 + γ·iter)^(−power))``."""
    iteration = tf.cast(iteration, tf.float32)
    return tf.maximum(lambda_min, base * tf.pow(1.0 + gamma * iteration, -power))


def sphereface_target(cos_y, m, lam):
    """Annealed SphereFace target divided by ``‖x‖``: ``(λ cos θ + ψ(θ)) / (1 + λ)``.

    (The paper's ``(λ‖x‖cos θ + ‖x‖ψ(θ))/(1 + λ)``; the head multiplies every logit by ``‖x‖``.)
    """
    lam = tf.cast(lam, cos_y.dtype)
    return (lam * tf.clip_by_value(cos_y, -1.0, 1.0) + sphereface_psi(cos_y, m)) / (1.0 + lam)


# ---------------------------------------------------------------------------------------------
# hard-negative re-weighting (MV-Softmax, CurricularFace, ReCurricularFace)


def mv_target(cos_y, margin, margin_type):
    """MV-Softmax's ``f(m, θ_y)``: ``cos θ_y − m`` ("am") or ArcFace's target with its θ+m>π
    fallback ("arc"). It is both the target logit and the hard-negative threshold."""
    if margin_type == "am":
        return cosface_target(cos_y, margin)
    if margin_type == "arc":
        return arcface_target(cos_y, margin)
    raise ValueError(f"margin_type must be 'am' or 'arc', got {margin_type!r}")


def mv_hard(t, adaptive):
    """MV-Softmax's re-weighting of mis-classified negatives: ``cos θ_k + t`` (fixed) or
    ``(t + 1)·cos θ_k + t`` (adaptive), as an ``apply_to_target`` ``hard`` spec."""
    return ("mv_adaptive" if adaptive else "mv_fixed", (t,))


def curricular_hard(t):
    """CurricularFace's modulation ``cos θ_j·(t + cos θ_j)`` (no gradient through ``t``)."""
    return ("curricular", (t,))


def recurricular_hard(t, a, b):
    """ReCurricularFace's modulation ``cos θ_j·(a·cos θ_j + b·t)``."""
    return ("recurricular", (t, a, b))


def ema(previous, batch_value, momentum):
    """``momentum·batch_value + (1 − momentum)·previous`` (``momentum`` weights the new batch)."""
    return momentum * batch_value + (1.0 - momentum) * previous


# ---------------------------------------------------------------------------------------------
# logits of each head from the cosine matrix (what the layers call; dtype follows ``cos``)


def cosface_logits(cos, labels, scale, margin):
    """CosFace: ``s·(cos θ_y − m)`` for the target, ``s·cos θ_j`` elsewhere."""
    return scale * apply_to_target(cos, labels, lambda c: cosface_target(c, margin))


def arcface_logits(cos, labels, scale, margin):
    """ArcFace: ``s·cos(θ_y + m)`` (with the θ+m>π fallback), ``s·cos θ_j`` elsewhere."""
    return scale * apply_to_target(cos, labels, lambda c: arcface_target(c, margin))


def combined_margin_logits(cos, labels, scale, m1, m2, m3):
    """Combined margin: ``s·(cos(m1·θ_y + m2) − m3)``, ``s·cos θ_j`` elsewhere."""
    return scale * apply_to_target(cos, labels, lambda c: combined_target(c, m1, m2, m3))


def sphereface_logits(cos, norms, labels, margin, lam):
    """SphereFace: ``‖x‖·(λ cos θ_y + ψ(θ_y))/(1 + λ)`` for the target, ``‖x‖cos θ_j``
    elsewhere (``norms`` is ``‖x‖``, shape ``(B,)``)."""
    return norms[:, None] * apply_to_target(cos, labels, lambda c: sphereface_target(c, margin, lam))


def mv_softmax_logits(cos, labels, scale, margin, t, margin_type, adaptive, fuse=None):
    """MV-Softmax: target ``s·f(m, θ_y)``; a non-target ``k`` with ``cos θ_k > f(m, θ_y)`` gets
    ``s·(cos θ_k + t)`` (fixed) or ``s·((t + 1)cos θ_k + t)`` (adaptive); others ``s·cos θ_k``."""
    threshold = mv_target(tf.stop_gradient(gather_target(cos, labels)), margin, margin_type)
    return scale * apply_to_target(
        cos, labels, lambda c: mv_target(c, margin, margin_type), threshold, mv_hard(t, adaptive), fuse
    )


def curricular_logits(cos, labels, scale, margin, t, fuse=None):
    """CurricularFace with a given ``t`` (already updated from this batch): hard negatives
    ``cos θ_j > cos(θ_y + m)`` (no fallback in the mask) become ``s·cos θ_j(t + cos θ_j)``; the
    target is ArcFace's ``s·cos(θ_y + m)`` with its fallback."""
    threshold = cos_theta_plus(tf.stop_gradient(gather_target(cos, labels)), margin)
    return scale * apply_to_target(
        cos, labels, lambda c: arcface_target(c, margin), threshold, curricular_hard(t), fuse
    )


def recurricular_logits(cos, labels, scale, margin, t, a, b, fuse=None):
    """ReCurricularFace: as CurricularFace, hard negatives become ``s·cos θ_j(a·cos θ_j + b·t)``."""
    threshold = cos_theta_plus(tf.stop_gradient(gather_target(cos, labels)), margin)
    return scale * apply_to_target(
        cos, labels, lambda c: arcface_target(c, margin), threshold, recurricular_hard(t, a, b), fuse
    )
