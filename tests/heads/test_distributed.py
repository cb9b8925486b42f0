"""A training step of every head under MirroredStrategy (two logical CPUs) equals the same step
on one device over the same global batch; CurricularFace's t is the global-batch mean, the same
on both replicas; SphereFace counts one iteration per global step."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface import heads
from tfface.testing import mirrored_strategy

GLOBAL_BATCH, DIM, CLASSES, REPLICAS = 8, 6, 5, 2

CASES = [
    ("softmax", {}),
    ("normface", {"scale": 8.0}),
    ("sphereface", {}),
    ("cosface", {"scale": 8.0}),
    ("arcface", {"scale": 8.0}),
    ("combined_margin", {"scale": 8.0, "m1": 0.9, "m2": 0.3, "m3": 0.1}),
    ("mv_softmax", {"scale": 8.0}),
    ("curricularface", {"scale": 8.0, "momentum": 0.3}),
    ("recurricularface", {"scale": 8.0, "momentum": 0.3}),
]


@pytest.fixture(scope="module")
def strategy():
    return mirrored_strategy(REPLICAS)


def _data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(GLOBAL_BATCH, DIM)).astype("float32")
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2], "int32")
    kernel = rng.normal(size=(DIM, CLASSES)).astype("float32")
    return x, y, kernel


def _make(name, kwargs, kernel):
    head = heads.get(name, num_classes=CLASSES, **kwargs)
    head.build((None, DIM))
    head.kernel.assign(kernel)
    optimizer = keras.optimizers.SGD(0.5)
    optimizer.build(head.trainable_weights)
    return head, optimizer


def _train_step(head, optimizer):
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = head(x, y, training=True)
            per_sample = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            # Sum over the local batch / global batch size: replica gradients add up to the
            # single-device gradient of the global mean.
            loss = tf.reduce_sum(per_sample) / GLOBAL_BATCH
        grads = tape.gradient(loss, head.trainable_weights)
        optimizer.apply_gradients(zip(grads, head.trainable_weights))
        return logits

    return step


def _local(variable):
    """The per-replica copies of a (mirrored) Keras variable, as numpy."""
    return [v.numpy() for v in getattr(variable.value, "values", (variable.value,))]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_mirrored_step_equals_single_device(strategy, name, kwargs):
    x, y, kernel = _data()
    single, single_opt = _make(name, kwargs, kernel)
    single_logits = _train_step(single, single_opt)(x, y).numpy()

    with strategy.scope():
        dist, dist_opt = _make(name, kwargs, kernel)
    step = _train_step(dist, dist_opt)
    local = GLOBAL_BATCH // REPLICAS

    def shard(array):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array[ctx.replica_id_in_sync_group * local :][:local])
        )

    run = tf.function(lambda a, b: strategy.run(step, args=(a, b)))
    per_replica = run(shard(x), shard(y))
    dist_logits = np.concatenate([t.numpy() for t in strategy.experimental_local_results(per_replica)])

    np.testing.assert_allclose(dist_logits, single_logits, rtol=1e-5, atol=1e-5)
    assert not np.allclose(single.kernel.numpy(), kernel)
    for copy in _local(dist.kernel):
        np.testing.assert_allclose(copy, single.kernel.numpy(), rtol=1e-5, atol=1e-6)

    if name in ("curricularface", "recurricularface"):
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        wn = kernel / np.linalg.norm(kernel, axis=0)
        expected_t = 0.3 * (xn @ wn)[np.arange(GLOBAL_BATCH), y].mean()
        copies = _local(dist.t)
        assert len(copies) == REPLICAS
        for t in copies:
            assert t == pytest.approx(expected_t, abs=1e-6)
            assert t == pytest.approx(float(single.t.numpy()), abs=1e-6)
        # The mean of the two local means would differ from the global one only with unequal
        # shards; check the per-replica means differ, so a local-mean t would have been caught.
        cos_y = (xn @ wn)[np.arange(GLOBAL_BATCH), y]
        assert abs(cos_y[:local].mean() - cos_y[local:].mean()) > 1e-3
    if name == "sphereface":
        assert _local(dist.iteration) == [1] * REPLICAS
