"""Property tests: for random shapes and values, including cos θ = ±1, a zero embedding, a zero
class-weight column, scale up to 64 and mixed_float16, every head's logits and gradients
(w.r.t. embeddings and kernel) are finite and the logits are float32."""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tfface import heads

SCALED = {"normface", "cosface", "arcface", "combined_margin", "mv_softmax", "curricularface", "recurricularface"}
EXTRA = {
    "sphereface": [{}, {"anneal": False}],
    "combined_margin": [{}, {"m1": 1.35, "m2": 0.2, "m3": 0.1}],
    "mv_softmax": [{}, {"margin_type": "arc", "margin": 0.5, "adaptive": False}],
}
SPECIALS = ["none", "zero_embedding", "zero_column", "parallel", "antiparallel", "all"]


@st.composite
def head_inputs(draw):
    b = draw(st.integers(1, 4))
    d = draw(st.integers(1, 5))
    c = draw(st.integers(1, 5))
    x = draw(arrays(np.float32, (b, d), elements=st.floats(-20, 20, width=32)))
    w = draw(arrays(np.float32, (d, c), elements=st.floats(-3, 3, width=32)))
    labels = draw(arrays(np.int32, (b,), elements=st.integers(0, c - 1)))
    special = draw(st.sampled_from(SPECIALS))
    y0 = labels[0]
    if special in ("zero_embedding", "all"):
        x[0] = 0.0
    if special in ("zero_column", "all"):
        w[:, (y0 + 1) % c] = 0.0
    if special in ("parallel", "all") and b > 1:
        x[-1] = 2.0 * w[:, labels[-1]]  # cos θ_y = 1 (unless that column is zero)
    if special == "antiparallel":
        x[0] = -w[:, y0]  # cos θ_y = -1: θ_y + m > π everywhere
    scale = draw(st.sampled_from([1.0, 30.0, 64.0]))
    variant = draw(st.integers(0, 1))
    return x, w, labels, scale, variant


def _logits_and_grads(name, x, w, labels, scale, variant, dtype=None):
    kwargs = dict(EXTRA.get(name, [{}])[variant % len(EXTRA.get(name, [{}]))])
    if name in SCALED:
        kwargs["scale"] = scale
    if dtype:
        kwargs["dtype"] = dtype
    head = heads.get(name, num_classes=w.shape[1], **kwargs)
    head.build((None, w.shape[0]))
    head.kernel.assign(w)
    emb = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(emb)
        # Two training steps so that stateful heads also run with a non-zero t / counter.
        head(emb, labels, training=True)
        logits = head(emb, labels, training=True)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        )
    grads = tape.gradient(loss, [emb, head.kernel])
    return head, logits, grads


def _assert_finite(name, head, logits, grads):
    assert logits.dtype == tf.float32, (name, logits.dtype)
    assert np.all(np.isfinite(logits.numpy())), (name, logits.numpy())
    for g in grads:
        assert g is not None
        assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), (name, g)
    for value in head.monitored().values():
        assert np.isfinite(float(value))


@pytest.mark.parametrize("name", heads.names())
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=head_inputs())
def test_finite_logits_and_gradients(name, inputs):
    x, w, labels, scale, variant = inputs
    _assert_finite(name, *_logits_and_grads(name, x, w, labels, scale, variant))


@pytest.mark.parametrize("name", heads.names())
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=head_inputs())
def test_finite_under_mixed_float16(name, inputs):
    x, w, labels, scale, variant = inputs
    head, logits, grads = _logits_and_grads(
        name, x, w, labels, scale, variant, dtype="mixed_float16"
    )
    assert head.compute_dtype == "float16"
    _assert_finite(name, head, logits, grads)


@pytest.mark.parametrize("name", heads.names())
def test_exact_plus_minus_one(name):
    """Embeddings exactly parallel and anti-parallel to their class weights (cos θ_y = ±1, i.e.
    θ_y = 0 and θ_y + m > π), at scale 64, in float32."""
    w = np.eye(3, dtype=np.float32)
    x = np.array([[1, 0, 0], [0, -1, 0], [0, 0, 0]], np.float32)
    _assert_finite(name, *_logits_and_grads(name, x, w, np.array([0, 1, 2], np.int32), 64.0, 0))
