"""The pure margin functions against numpy float64 transcriptions of the papers' formulas
(tests/heads/heads_reference.py), in float64 and float32, including gradients against finite
differences of the references."""
import math
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heads_reference as ref  # noqa: E402

from tfface.heads import margins  # noqa: E402

DTYPES = [("float64", 1e-10), ("float32", 2e-5)]


def _tf(x, dtype):
    return tf.constant(np.asarray(x), dtype=dtype)


def _random_cos(rng, b=6, c=7):
    return rng.uniform(-0.95, 0.95, size=(b, c))


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_cosine_matches_normalised_product(dtype, tol):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(4, 5)), rng.normal(size=(5, 3))
    got = margins.cosine(_tf(x, "float32"), _tf(w, "float32"))
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), ref.cosine(x, w), atol=1e-6)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("m", [0.5, 0.3, 1.0])
def test_arcface_target_including_fallback(dtype, tol, m):
    # θ across [0, π], densely past π − m where the fallback applies.
    th = np.concatenate([np.linspace(0, math.pi, 41), np.linspace(math.pi - m + 1e-3, math.pi, 9)])
    c = np.cos(th)
    assert np.any(th + m > math.pi) and np.any(th + m < math.pi)
    got = margins.arcface_target(_tf(c, dtype), m).numpy()
    np.testing.assert_allclose(got, ref.arcface_target(c, m), atol=max(tol, 1e-6 if dtype == "float32" else 0))


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_sphereface_psi_every_k_interval(dtype, tol):
    m = 4
    th = np.linspace(0.0, math.pi, 401)
    k = np.floor(m * th / math.pi)
    assert set(k.tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}  # every interval, and θ = π itself
    # Interior points of each interval and both sides of every boundary jπ/m.
    edges = np.array([j * math.pi / m for j in range(1, m)])
    th = np.concatenate([th, edges - 1e-4, edges + 1e-4])
    c = np.cos(th)
    got = margins.sphereface_psi(_tf(c, dtype), m).numpy()
    np.testing.assert_allclose(got, ref.psi(c, m), atol=tol * 50)
    # ψ is monotonically decreasing in θ (the property SphereFace's construction is for).
    order = np.argsort(th)
    assert np.all(np.diff(got[order]) <= 1e-6)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_sphereface_psi_other_margins(m):
    c = np.cos(np.linspace(0.0, math.pi, 97))
    np.testing.assert_allclose(margins.sphereface_psi(_tf(c, "float64"), m).numpy(), ref.psi(c, m), atol=1e-10)


def test_sphereface_lambda_schedule():
    iters = np.array([0, 1, 2, 10, 100, 1000, 1500, 5000, 100000])
    got = margins.sphereface_lambda(tf.constant(iters), 1000.0, 0.12, 1.0, 5.0).numpy()
    want = [ref.sphere_lambda(i) for i in iters]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert want[-1] == 5.0 and want[0] == 1000.0
    other = margins.sphereface_lambda(tf.constant(iters), 500.0, 0.05, 2.0, 1.0).numpy()
    np.testing.assert_allclose(other, [ref.sphere_lambda(i, 500.0, 0.05, 2.0, 1.0) for i in iters], rtol=1e-6)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("lam", [0.0, 5.0, 1000.0])
def test_sphereface_logits(dtype, tol, lam):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(6, 5)) * 3, rng.normal(size=(5, 4))
    labels = np.array([0, 1, 2, 3, 0, 1])
    c = ref.cosine(x, w)
    norms = np.linalg.norm(x, axis=1)
    got = margins.sphereface_logits(_tf(c, dtype), _tf(norms, dtype), tf.constant(labels), 4, lam)
    np.testing.assert_allclose(got.numpy(), ref.sphereface_logits(x, w, labels, 4, lam), atol=tol * 100)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_cosface_arcface_combined_logits(dtype, tol):
    rng = np.random.default_rng(2)
    c = _random_cos(rng)
    # Targets near π to exercise ArcFace's fallback.
    c[0, 3], c[1, 0] = -0.99, -0.9
    labels = np.array([3, 0, 2, 6, 1, 4])
    s = 64.0
    cases = [
        (margins.cosface_logits(_tf(c, dtype), labels, s, 0.35), lambda v: v - 0.35),
        (margins.arcface_logits(_tf(c, dtype), labels, s, 0.5), lambda v: ref.arcface_target(v, 0.5)),
        (
            margins.combined_margin_logits(_tf(c, dtype), labels, s, 1.0, 0.3, 0.2),
            lambda v: np.cos(ref.theta(v) + 0.3) - 0.2,
        ),
        (
            margins.combined_margin_logits(_tf(c, dtype), labels, s, 0.9, 0.4, 0.15),
            lambda v: np.cos(0.9 * ref.theta(v) + 0.4) - 0.15,
        ),
    ]
    for got, target in cases:
        np.testing.assert_allclose(got.numpy(), ref.margin_logits(c, labels, s, target), atol=s * tol * 10)


def _mv_cos():
    """Rows built so that both sides of the mask occur for both margin types, incl. a target
    with θ_y + m > π (arc fallback) and the zero-margin edge."""
    c = np.array(
        [
            [0.60, 0.40, 0.20, 0.58, -0.30],  # y=0: AM threshold 0.25 -> cols 1, 3 hard
            [0.10, 0.80, -0.20, 0.05, 0.30],  # y=1
            [-0.95, 0.10, -0.99, 0.20, -0.97],  # y=2: θ_y + 0.5 > π, arc fallback threshold
            [0.00, 0.00, 0.00, 0.90, 0.70],  # y=3
            [0.30, -0.40, 0.50, 0.35, 0.32],  # y=4
        ]
    )
    return c, np.array([0, 1, 2, 3, 4])


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("margin_type,m", [("am", 0.35), ("arc", 0.5)])
@pytest.mark.parametrize("adaptive,t", [(False, 0.25), (True, 0.2)])
def test_mv_softmax_mask_and_reweighting(dtype, tol, margin_type, m, adaptive, t):
    c, labels = _mv_cos()
    got = margins.mv_softmax_logits(_tf(c, dtype), tf.constant(labels), 32.0, m, t, margin_type, adaptive)
    want = ref.mv_softmax_logits(c, labels, 32.0, m, t, margin_type, adaptive)
    np.testing.assert_allclose(got.numpy(), want, atol=32 * tol * 10)
    # The mask really splits: some negatives re-weighted, some not.
    plain = 32.0 * c
    changed = ~np.isclose(want, plain)
    changed[np.arange(5), labels] = False
    assert 0 < changed.sum() < c.size - 5


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("which", ["curricular", "recurricular"])
def test_curricular_logits_with_fallback(dtype, tol, which):
    rng = np.random.default_rng(3)
    c = _random_cos(rng, 6, 6)
    labels = np.array([0, 1, 2, 3, 4, 5])
    c[2, 2] = -0.97  # θ_y + m > π: the target falls back, the mask uses cos(θ_y + m)
    c[2, 0] = -0.975  # below cos(θ_y + m) ≈ -0.968 (not hard), above the fallback (-1.21)
    c[3, 3] = 0.99
    t = 0.37
    if which == "curricular":
        got = margins.curricular_logits(_tf(c, dtype), tf.constant(labels), 64.0, 0.5, t)
        want = ref.curricular_logits(c, labels, 64.0, 0.5, t, ref.curricular_modulate)
    else:
        got = margins.recurricular_logits(_tf(c, dtype), tf.constant(labels), 64.0, 0.5, t, 1.1, 0.4)
        want = ref.curricular_logits(c, labels, 64.0, 0.5, t, ref.recurricular_modulate(1.1, 0.4))
    np.testing.assert_allclose(got.numpy(), want, atol=64 * tol * 10)


def test_ema():
    got = margins.ema(tf.constant(0.3, tf.float64), tf.constant(0.7, tf.float64), 0.01).numpy()
    assert got == pytest.approx(0.01 * 0.7 + 0.99 * 0.3)


def _finite_difference(f, c, h=1e-6):
    """Gradient of sum(weights * f(c)) by central differences (float64)."""
    grad = np.zeros_like(c)
    for idx in np.ndindex(*c.shape):
        up, down = c.copy(), c.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)).sum() / (2 * h)
    return grad


@pytest.mark.parametrize(
    "name",
    ["cosface", "arcface", "arcface_fallback", "combined", "combined_m1", "sphereface", "mv_am", "mv_arc_fixed", "curricular", "recurricular"],
)
def test_gradients_match_finite_differences_of_reference(name):
    """The custom gradients (target-only scatter, hard-negative re-weighting) equal the
    derivative of the reference formula (the mask and t held constant, as in the papers' code)."""
    rng = np.random.default_rng(4)
    c = rng.uniform(-0.9, 0.9, size=(4, 5))
    labels = np.array([1, 0, 4, 2])
    if name == "arcface_fallback":
        c[0, 1] = -0.97
    weights = rng.normal(size=c.shape)
    s, t = 2.0, 0.3
    funcs = {
        "cosface": (
            lambda x: margins.cosface_logits(x, labels, s, 0.35),
            lambda v: ref.margin_logits(v, labels, s, lambda u: u - 0.35),
        ),
        "arcface": (
            lambda x: margins.arcface_logits(x, labels, s, 0.5),
            lambda v: ref.margin_logits(v, labels, s, lambda u: ref.arcface_target(u, 0.5)),
        ),
        "combined": (
            lambda x: margins.combined_margin_logits(x, labels, s, 1.0, 0.3, 0.1),
            lambda v: ref.margin_logits(v, labels, s, lambda u: np.cos(ref.theta(u) + 0.3) - 0.1),
        ),
        "combined_m1": (
            lambda x: margins.combined_margin_logits(x, labels, s, 1.2, 0.3, 0.1),
            lambda v: ref.margin_logits(v, labels, s, lambda u: np.cos(1.2 * ref.theta(u) + 0.3) - 0.1),
        ),
        "sphereface": (
            lambda x: margins.sphereface_logits(x, tf.ones(4, tf.float64), labels, 4, 5.0),
            lambda v: ref.margin_logits(v, labels, 1.0, lambda u: (5.0 * u + ref.psi(u, 4)) / 6.0),
        ),
        "mv_am": (
            lambda x: margins.mv_softmax_logits(x, labels, s, 0.35, t, "am", True),
            lambda v: ref.mv_softmax_logits(v, labels, s, 0.35, t, "am", True),
        ),
        "mv_arc_fixed": (
            lambda x: margins.mv_softmax_logits(x, labels, s, 0.5, t, "arc", False),
            lambda v: ref.mv_softmax_logits(v, labels, s, 0.5, t, "arc", False),
        ),
        "curricular": (
            lambda x: margins.curricular_logits(x, labels, s, 0.5, t),
            lambda v: ref.curricular_logits(v, labels, s, 0.5, t, ref.curricular_modulate),
        ),
        "recurricular": (
            lambda x: margins.recurricular_logits(x, labels, s, 0.5, t, 1.1, 0.4),
            lambda v: ref.curricular_logits(v, labels, s, 0.5, t, ref.recurricular_modulate(1.1, 0.4)),
        ),
    }
    funcs["arcface_fallback"] = funcs["arcface"]
    tf_fn, np_fn = funcs[name]
    x = tf.constant(c, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(weights * tf_fn(x))
    got = tape.gradient(y, x).numpy()
    want = _finite_difference(lambda v: weights * np_fn(v), c)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_sin_and_acos_guards_at_plus_minus_one():
    c = tf.constant([-1.0, -1.0 + 1e-7, 0.0, 1.0 - 1e-7, 1.0, 1.0000001], tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(c)
        sin = margins.sin_from_cos(c)
        acos = margins.safe_acos(c)
    for value, grad in [(sin, tape.gradient(sin, c)), (acos, tape.gradient(acos, c))]:
        assert np.all(np.isfinite(value.numpy())) and np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(acos.numpy()[[0, 2, 4, 5]], [math.pi, math.pi / 2, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(sin.numpy()[[0, 2, 4]], [0.0, 1.0, 0.0], atol=1e-6)


# Two of the four kinds: the fused and unfused paths share `_hard_value`/`_hard_slope`, so these
# check the fused wiring (mask, select, scatter, gradient) without an XLA compile per kind.
@pytest.mark.parametrize("name", ["mv_arc_fixed", "recurricular"])
def test_fused_hard_negative_kernel_matches_reference(name):
    """The XLA-fused path (used from FUSE_MIN_CLASSES classes on) gives the reference values and
    the same gradients as the unfused path."""
    c, labels = _mv_cos()
    weights = np.random.default_rng(5).normal(size=c.shape)
    t = 0.3
    tf_fns = {
        "mv_am_adaptive": lambda x, fuse: margins.mv_softmax_logits(x, labels, 32.0, 0.35, t, "am", True, fuse=fuse),
        "mv_arc_fixed": lambda x, fuse: margins.mv_softmax_logits(x, labels, 32.0, 0.5, t, "arc", False, fuse=fuse),
        "curricular": lambda x, fuse: margins.curricular_logits(x, labels, 32.0, 0.5, t, fuse=fuse),
        "recurricular": lambda x, fuse: margins.recurricular_logits(x, labels, 32.0, 0.5, t, 1.1, 0.4, fuse=fuse),
    }
    want = {
        "mv_am_adaptive": ref.mv_softmax_logits(c, labels, 32.0, 0.35, t, "am", True),
        "mv_arc_fixed": ref.mv_softmax_logits(c, labels, 32.0, 0.5, t, "arc", False),
        "curricular": ref.curricular_logits(c, labels, 32.0, 0.5, t, ref.curricular_modulate),
        "recurricular": ref.curricular_logits(c, labels, 32.0, 0.5, t, ref.recurricular_modulate(1.1, 0.4)),
    }[name]
    results = []
    for fuse in (True, False):
        x = tf.constant(c, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf_fns[name](x, fuse)
            total = tf.reduce_sum(weights.astype("float32") * out)
        results.append((out.numpy(), tape.gradient(total, x).numpy()))
    np.testing.assert_allclose(results[0][0], want, atol=1e-4)
    np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-5)
