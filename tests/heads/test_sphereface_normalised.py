"""SphereFace's normalised form (``scale=s``), as the MV-Softmax paper's A-Softmax baseline runs it.

The reference is a float64 numpy transcription of the MV-Softmax official ``FC`` layer with
``fc_type='SphereFace'``, written here independently of tfface: features and class weights
L2-normalised, ``iter += 1`` before the weight ``λ = max(5, 1000·(1 + 1e-4·iter)^−2)``, target
``(λ·cos θ + (−1)^k cos(mθ) − 2k) / (1 + λ)`` with ``k = ⌊mθ/π⌋``, every logit times s = 32.
"""
import math
import os
import tempfile

import keras
import numpy as np
import pytest

from tfface import heads
from tfface.testing import run_head_test

# The values the MV-Softmax A-Softmax recipe sets (paper §"Experimental settings": m1 = 3, s = 32
# for all methods; official code: base 1000, alpha 1e-4, power 2, lambda_min 5).
MV_A_SOFTMAX = {
    "margin": 3,
    "scale": 32.0,
    "lambda_base": 1000.0,
    "lambda_gamma": 1e-4,
    "lambda_power": 2.0,
    "lambda_min": 5.0,
}


def official_lambda(iteration):
    return max(5.0, 1000.0 * (1.0 + 0.0001 * iteration) ** (-2))


def official_logits(x, w, labels, m, iteration, s=32.0):
    """float64 transcription of the official forward pass at a given (already incremented) iter."""
    x = np.asarray(x, np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    w = np.asarray(w, np.float64)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    cos = np.clip(x @ w, -1.0, 1.0)
    rows = np.arange(len(labels))
    gt = cos[rows, labels]
    lam = official_lambda(iteration)
    theta = np.arccos(gt)
    k = np.floor(m * theta / math.pi)
    phi = (-1.0) ** k * np.cos(m * theta) - 2.0 * k
    out = cos.copy()
    out[rows, labels] = (lam * gt + phi) / (1.0 + lam)
    return s * out


def _batch(n=12, d=8, c=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32") * 3.0  # norms far from 1: the scale must win
    y = (np.arange(n) % c).astype("int32")
    return x, y


@pytest.mark.parametrize("margin", [3, 4])
def test_normalised_form_equals_the_official_code_over_training_steps(margin):
    x, y = _batch()
    head = heads.SphereFace(6, **{**MV_A_SOFTMAX, "margin": margin})
    head.build((None, x.shape[1]))
    w = head.kernel.numpy()
    for step in (1, 2, 3):
        got = head(x, y, training=True).numpy()
        np.testing.assert_allclose(got, official_logits(x, w, y, margin, step), rtol=1e-4, atol=1e-3)
    assert float(head.monitored()["lambda"]) == pytest.approx(official_lambda(3), rel=1e-6)
    # Late in training λ reaches its floor of 5 (at iter ≈ 131 000 with these constants).
    for iteration in (50_000, 131_000, 500_000):
        head.iteration.assign(iteration)
        np.testing.assert_allclose(
            head(x, y, training=False).numpy(), official_logits(x, w, y, margin, iteration), rtol=1e-4, atol=1e-3
        )
    # Without labels: s·cos θ for every class.
    want = 32.0 * (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0))
    np.testing.assert_allclose(head(x).numpy(), want, rtol=1e-4, atol=1e-4)


def test_scale_none_keeps_the_feature_norm():
    x, y = _batch()
    by_norm = heads.SphereFace(6)
    by_norm.build((None, x.shape[1]))
    scaled = heads.SphereFace(6, scale=1.0)
    scaled.build((None, x.shape[1]))
    scaled.kernel.assign(by_norm.kernel)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(by_norm(x).numpy(), norms * scaled(x).numpy(), rtol=1e-5, atol=1e-5)
    assert by_norm.get_config()["scale"] is None


def test_normalised_form_in_the_shared_harness_and_a_keras_file():
    run_head_test(heads.SphereFace, {"num_classes": 5, **MV_A_SOFTMAX}, mixed_precision=True)
    head = heads.SphereFace(5, **MV_A_SOFTMAX)
    x, y = _batch(c=5)
    inputs = keras.Input((x.shape[1],))
    model = keras.Model(inputs, head(inputs))
    head.iteration.assign(7)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(os.path.join(tmp, "m.keras"))
        loaded = keras.saving.load_model(os.path.join(tmp, "m.keras"))
    restored = loaded.layers[-1]
    assert restored.scale == 32.0 and restored.get_config() == head.get_config()
    np.testing.assert_allclose(restored(x, y, training=False).numpy(), head(x, y, training=False).numpy(), rtol=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1.0, True, "32"])
def test_bad_scale_is_named(scale):
    with pytest.raises((ValueError, TypeError), match="scale"):
        heads.SphereFace(3, scale=scale)
