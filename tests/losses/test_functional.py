"""tfface.losses.functional against float64 numpy transcriptions of the papers' formulas.

Each reference below is written from the paper's equation (loops, not the code's vectorised
tricks), so a wrong mask, weight or reduction in the implementation shows up here.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfface.losses import functional as F

# ---------------------------------------------------------------------------------------------
# numpy references (float64)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_hm_algorithm1(L, alpha=1.5, beta=1.1, A=35.0, B=0.75):
    # Hard-Mining paper, Algorithm 1 steps 2-5.
    x = beta * L
    y = A * (x - B)
    z = np_sigmoid(y)
    return alpha * x * z


def np_hm_eq2(L, alpha=1.5, beta=1.1, A=35.0, B=0.75):
    # Eq. 2 with Eq. 3's sigma(x) = 1 / (1 + exp(-A (x - B))) applied to x = beta L.
    return alpha * L * (1.0 / (1.0 + np.exp(-A * (beta * L - B))))


def np_log_softmax(logits):
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def np_focal(labels, logits, gamma):
    out = []
    for i, y in enumerate(labels):
        logp = np_log_softmax(logits[i : i + 1])[0, y]
        out.append(-((1.0 - np.exp(logp)) ** gamma) * logp)
    return np.array(out)


def np_ohem(per_sample, keep):
    k = math.ceil(keep * len(per_sample))
    return np.sort(per_sample)[::-1][:k].mean()


def np_centre_loss(centres, f, labels):
    return np.array([0.5 * np.sum((f[i] - centres[labels[i]]) ** 2) for i in range(len(f))])


def np_centre_update(centres, f, labels, alpha):
    # MML eqs. 14-15, class by class.
    new = centres.copy()
    for j in range(len(centres)):
        members = [i for i in range(len(f)) if labels[i] == j]
        if not members:
            continue
        delta = sum(centres[j] - f[i] for i in members) / (1.0 + len(members))
        new[j] = centres[j] - alpha * delta
    return new


def np_mml(centres, f, labels, alpha, margin):
    c = np_centre_update(centres, f, labels, alpha)
    classes = sorted(set(labels.tolist()))
    total = 0.0
    for a in range(len(classes)):
        for b in range(a + 1, len(classes)):
            d = np.sum((c[classes[a]] - c[classes[b]]) ** 2)
            total += max(margin - d, 0.0)
    return total


def np_range(f, labels, k, margin, alpha, beta):
    classes = sorted(set(labels.tolist()))
    intra = 0.0
    for c in classes:
        idx = [i for i in range(len(f)) if labels[i] == c]
        dists = [np.sum((f[a] - f[b]) ** 2) for ai, a in enumerate(idx) for b in idx[ai + 1 :]]
        top = sorted(dists, reverse=True)[:k]
        if top:
            intra += len(top) / sum(1.0 / d for d in top)
    inter = 0.0
    if len(classes) > 1:
        means = {c: f[labels == c].mean(axis=0) for c in classes}
        nearest = min(
            np.sum((means[a] - means[b]) ** 2) for a in classes for b in classes if a != b
        )
        inter = max(margin - nearest, 0.0)
    return alpha * intra + beta * inter


def np_marginal(f, labels, theta, xi):
    n = len(f)
    if n < 2:
        return 0.0
    fh = f / np.linalg.norm(f, axis=1, keepdims=True)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            y = 1.0 if labels[i] == labels[j] else -1.0
            d = np.sum((fh[i] - fh[j]) ** 2)
            total += max(xi - y * (theta - d), 0.0)
    return total / (n * n - n)


def finite_difference(fn, x, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (fn(up) - fn(down)) / (2 * eps)
    return grad


def tf_grad(fn, x):
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fn(x)
    return np.asarray(tape.gradient(value, x), np.float64)


@pytest.fixture
def batch():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(9, 5))
    labels = np.array([0, 2, 0, 1, 2, 0, 4, 1, 2])
    centres = rng.normal(size=(6, 5))
    return f, labels, centres


# ---------------------------------------------------------------------------------------------
# Hard-Mining, focal, OHEM


def test_hard_mining_matches_algorithm1_and_eq2():
    L = np.linspace(0.0, 6.0, 41)
    np.testing.assert_allclose(F.hard_mining(L), np_hm_algorithm1(L), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.hard_mining(L, form="eq2"), np_hm_eq2(L), rtol=1e-5, atol=1e-6)
    custom = dict(alpha=2.0, beta=0.5, A=10.0, B=0.3)
    np.testing.assert_allclose(
        F.hard_mining(L, **custom), np_hm_algorithm1(L, **custom), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="form"):
        F.hard_mining(L, form="eq3")


def test_hard_mining_easy_and_hard_cross_near_half():
    # Fig. 1: with alpha=1.5, beta=1.1, A=35, B=0.75 the Hard-Mining CE is above CE for hard
    # samples (p < 0.5) and below it for easy ones (p > 0.5).
    p = np.linspace(0.02, 0.98, 97)
    ce = -np.log(p)
    hm = np.asarray(F.hard_mining(ce, 1.5, 1.1, 35.0, 0.75))
    diff = hm - ce
    assert np.all(diff[p <= 0.45] > 0), "hard samples must get a larger loss"
    assert np.all(diff[p >= 0.55] < 0), "easy samples must get a smaller loss"
    crossing = p[np.nonzero(np.diff(np.sign(diff)))[0][0]]
    assert abs(crossing - 0.5) < 0.05, crossing


def test_focal_per_sample():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 5)) * 3
    labels = rng.integers(0, 5, size=7)
    for gamma in (0.0, 2.0, 0.5):
        np.testing.assert_allclose(
            F.focal(labels, logits, gamma), np_focal(labels, logits, gamma), rtol=1e-5, atol=1e-6
        )
    # gamma = 0 is plain cross-entropy
    np.testing.assert_allclose(
        F.focal(labels, logits, 0.0), F.sparse_cross_entropy(labels, logits), rtol=1e-6
    )


def test_ohem_keeps_the_hardest():
    rng = np.random.default_rng(3)
    for n, keep in ((10, 0.9), (7, 0.5), (1, 0.9), (9, 1.0)):
        values = rng.uniform(0, 5, size=n)
        np.testing.assert_allclose(F.ohem(values, keep), np_ohem(values, keep), rtol=1e-6)
    with pytest.raises(ValueError, match="keep_ratio"):
        F.ohem(values, 0.0)


# ---------------------------------------------------------------------------------------------
# centre, MML


def test_centre_loss_and_update(batch):
    f, labels, centres = batch
    np.testing.assert_allclose(
        F.centre_loss(centres, f, labels), np_centre_loss(centres, f, labels), rtol=1e-5
    )
    np.testing.assert_allclose(
        F.centre_update(centres, f, labels, 0.5),
        np_centre_update(centres, f, labels, 0.5),
        rtol=1e-5,
        atol=1e-6,
    )
    # class 3 and 5 are absent: unchanged
    np.testing.assert_allclose(F.centre_update(centres, f, labels, 0.5)[3], centres[3], rtol=1e-6)


def test_minimum_margin_loss_value(batch):
    f, labels, centres = batch
    updated = np_centre_update(centres, f, labels, 0.5)
    distances = [
        np.sum((updated[a] - updated[b]) ** 2) for a in (0, 1, 2, 4) for b in (0, 1, 2, 4) if a < b
    ]
    # a margin between the distances so some class pairs are penalised and some are not
    margin = float(np.median(distances)) + 0.1
    got = float(F.minimum_margin_loss(centres, f, labels, 0.5, margin))
    want = np_mml(centres, f, labels, 0.5, margin)
    assert want > 0
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_centre_gradient_matches_finite_differences(batch):
    f, labels, centres = batch
    got = tf_grad(lambda x: tf.reduce_sum(F.centre_loss(centres, x, labels)), f)
    want = finite_difference(lambda x: np_centre_loss(centres, x, labels).sum(), f)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_mml_gradient_reaches_features_through_the_update(batch):
    f, labels, centres = batch
    margin = 6.0
    got = tf_grad(lambda x: F.minimum_margin_loss(centres, x, labels, 0.5, margin), f)
    want = finite_difference(lambda x: np_mml(centres, x, labels, 0.5, margin), f)
    assert np.abs(want).max() > 0.1, "test needs active pairs"
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# range, marginal


def test_range_loss_value(batch):
    f, labels, _ = batch
    labels = np.array([0, 2, 0, 1, 2, 0, 4, 1, 2])  # class 4 has one sample (no pairs)
    for k, margin in ((2, 50.0), (1, 1.0), (3, 50.0)):
        got = float(F.range_loss(f, labels, k, margin, 0.7, 1.3))
        np.testing.assert_allclose(got, np_range(f, labels, k, margin, 0.7, 1.3), rtol=1e-5)


def test_marginal_loss_value_and_gradient(batch):
    f, labels, _ = batch
    got = float(F.marginal_loss(f, labels, 1.2, 0.3))
    np.testing.assert_allclose(got, np_marginal(f, labels, 1.2, 0.3), rtol=1e-5)
    g = tf_grad(lambda x: F.marginal_loss(x, labels, 1.2, 0.3), f)
    want = finite_difference(lambda x: np_marginal(x, labels, 1.2, 0.3), f)
    np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-4)


def test_range_gradient_matches_finite_differences(batch):
    f, labels, _ = batch
    g = tf_grad(lambda x: F.range_loss(x, labels, 2, 50.0, 0.7, 1.3), f)
    want = finite_difference(lambda x: np_range(x, labels, 2, 50.0, 0.7, 1.3), f)
    np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# degenerate batches


@pytest.mark.parametrize(
    "f, labels",
    [
        (np.ones((1, 4)), np.array([3])),  # a single sample
        (np.arange(12.0).reshape(3, 4), np.array([2, 2, 2])),  # a single class
        (np.ones((3, 4)), np.array([2, 2, 1])),  # coincident features (zero distances)
        (np.zeros((2, 4)), np.array([0, 1])),  # zero features
    ],
)
def test_degenerate_batches_are_finite(f, labels):
    centres = np.zeros((5, 4))
    fns = {
        "range": lambda x: F.range_loss(x, labels, 2, 10.0, 1.0, 1.0),
        "marginal": lambda x: F.marginal_loss(x, labels),
        "mml": lambda x: F.minimum_margin_loss(centres, x, labels, 0.5, 10.0),
        "centre": lambda x: tf.reduce_sum(F.centre_loss(centres, x, labels)),
    }
    for name, fn in fns.items():
        value = float(fn(tf.constant(f, tf.float32)))
        grad = tf_grad(fn, f)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), name
    if len(set(labels.tolist())) == 1:
        assert float(fns["mml"](tf.constant(f, tf.float32))) == 0.0
    if len(f) == 1:
        assert float(fns["marginal"](tf.constant(f, tf.float32))) == 0.0
        assert float(fns["range"](tf.constant(f, tf.float32))) == 0.0


def test_out_of_range_labels_are_named():
    centres = np.zeros((5, 3))
    f = np.ones((2, 3))
    for fn in (F.centre_loss, F.centre_update, F.minimum_margin_loss):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)num_classes=5.*\b7\b"):
            fn(centres, f, np.array([1, 7]))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)num_classes=5.*-1"):
            fn(centres, f, np.array([-1, 0]))
