"""Numpy float64 transcriptions of the papers' formulas, written independently of
``tfface.heads.margins`` (arccos, explicit loops, the papers' piecewise definitions), used as the
reference by the head tests."""
import numpy as np


def cosine(x, w):
    """cos θ_ij = x_i·w_j / (‖x_i‖‖w_j‖)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0))


def theta(c):
    return np.arccos(np.clip(c, -1.0, 1.0))


def arcface_target(c, m):
    """ArcFace: cos(θ + m); where θ + m > π, the reference code's cos θ − m·sin m."""
    th = theta(c)
    return np.where(th + m > np.pi, c - m * np.sin(m), np.cos(th + m))


def psi(c, m):
    """SphereFace: ψ(θ) = (−1)^k cos(mθ) − 2k, k = ⌊mθ/π⌋ (k = m at θ = π)."""
    th = theta(c)
    k = np.floor(m * th / np.pi)
    return (-1.0) ** k * np.cos(m * th) - 2.0 * k


def sphere_lambda(iteration, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
    return max(lambda_min, base * (1.0 + gamma * iteration) ** (-power))


def sphereface_logits(x, w, labels, m, lam):
    """Target (λ‖x‖cos θ + ‖x‖ψ(θ))/(1 + λ), others ‖x‖cos θ."""
    c = cosine(x, w)
    n = np.linalg.norm(np.asarray(x, np.float64), axis=1)
    out = n[:, None] * c
    for i, y in enumerate(labels):
        out[i, y] = (lam * n[i] * c[i, y] + n[i] * psi(c[i, y], m)) / (1.0 + lam)
    return out


def margin_logits(c, labels, s, target):
    out = s * np.array(c, np.float64)
    for i, y in enumerate(labels):
        out[i, y] = s * target(c[i, y])
    return out


def mv_softmax_logits(c, labels, s, m, t, margin_type, adaptive):
    """MV-Softmax: f = cos θ_y − m (AM) or ArcFace's target (Arc); a non-target k with
    cos θ_k > f is re-weighted to cos θ_k + t (fixed) or (t + 1)cos θ_k + t (adaptive)."""
    out = np.array(c, np.float64)
    for i, y in enumerate(labels):
        f = c[i, y] - m if margin_type == "am" else arcface_target(c[i, y], m)
        for k in range(c.shape[1]):
            if k == y:
                out[i, k] = f
            elif c[i, k] > f:
                out[i, k] = (t + 1.0) * c[i, k] + t if adaptive else c[i, k] + t
    return s * out


def curricular_logits(c, labels, s, m, t, modulate):
    """CurricularFace given the updated t: N(t, cos θ_j) = modulate(cos θ_j, t) where
    cos θ_j > cos(θ_y + m) (no fallback in the comparison), target ArcFace with fallback."""
    out = np.array(c, np.float64)
    for i, y in enumerate(labels):
        threshold = np.cos(theta(c[i, y]) + m)
        for j in range(c.shape[1]):
            if j == y:
                out[i, j] = arcface_target(c[i, y], m)
            elif c[i, j] > threshold:
                out[i, j] = modulate(c[i, j], t)
    return s * out


def curricular_modulate(c, t):
    return c * (t + c)


def recurricular_modulate(a, b):
    return lambda c, t: c * (a * c + b * t)
