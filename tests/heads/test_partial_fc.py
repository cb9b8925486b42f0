"""PartialFC: sharded, sampled class centres under MirroredStrategy.

The reference is the unsharded head on one device with Keras' SGD, and numpy for the sampling
and the distributed softmax; nothing here is derived from PartialFC's own code.
"""
import numpy as np
import pytest
import tensorflow as tf

import keras

from tfface import heads
from tfface.heads import PartialFC
from tfface.heads import partial_fc_ops
from tfface.testing import mirrored_strategy

D, C, B = 6, 10, 8
LR, MOMENTUM = 0.5, 0.9

HEADS = [
    (heads.Softmax, {}),
    (heads.Softmax, {"use_bias": False}),
    (heads.NormFace, {"scale": 8.0}),
    (heads.SphereFace, {"margin": 4}),
    (heads.CosFace, {"scale": 8.0, "margin": 0.35}),
    (heads.ArcFace, {"scale": 8.0, "margin": 0.5}),
    (heads.CombinedMargin, {"scale": 8.0, "m1": 0.9, "m2": 0.4, "m3": 0.15}),
    (heads.MVSoftmax, {"scale": 8.0, "margin_type": "arc", "adaptive": True}),
    (heads.MVSoftmax, {"scale": 8.0, "margin_type": "am", "adaptive": False}),
    (heads.CurricularFace, {"scale": 8.0, "momentum": 0.3}),
    (heads.ReCurricularFace, {"scale": 8.0, "momentum": 0.3}),
]


def _batch(seed, batch=B, classes=C):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(batch, D)).astype("float32")
    labels = rng.integers(0, classes, size=batch).astype("int32")
    return emb, labels


def _kernel(seed=7, classes=C):
    return np.random.default_rng(seed).normal(size=(D, classes)).astype("float32") * 0.5


def _reference(cls, kwargs, kernel, bias, batches, steps):
    """The unsharded head: ``steps`` SGD-momentum steps on the global batches, eagerly."""
    head = cls(num_classes=C, **kwargs)
    head.build((None, D))
    head.kernel.assign(kernel)
    if getattr(head, "bias", None) is not None:
        head.bias.assign(bias)
    opt = keras.optimizers.SGD(LR, momentum=MOMENTUM)
    out = []
    for emb, labels in batches[:steps]:
        emb = tf.constant(emb)
        with tf.GradientTape() as tape:
            tape.watch(emb)
            logits = head(emb, labels, training=True)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        variables = [v.value for v in head.trainable_weights]
        grads = tape.gradient(loss, [emb] + variables)
        opt.apply(grads[1:], head.trainable_weights)
        out.append({"loss": float(loss), "grad_emb": grads[0].numpy(), "logits": logits.numpy()})
    state = {w.name: np.array(w) for w in head.non_trainable_weights}
    bias_value = np.array(head.bias) if getattr(head, "bias", None) is not None else None
    return out, np.array(head.kernel), bias_value, state


def _sharded(strategy, cls, kwargs, kernel, bias, batches, steps, sample_rate=1.0):
    with strategy.scope():
        pfc = PartialFC(cls(num_classes=C, **kwargs), sample_rate=sample_rate)
        pfc.build((None, D))
    pfc.set_kernel(kernel, bias)
    replicas = strategy.num_replicas_in_sync
    per = B // replicas

    @tf.function
    def step(emb, labels, i):
        def fn(emb, labels):
            with tf.GradientTape() as tape:
                tape.watch(emb)
                loss, sampled = pfc.train_loss(emb, labels, step=i)
            targets = [emb, sampled.rows] + ([sampled.bias] if sampled.bias is not None else [])
            grads = tape.gradient(loss, targets)
            pfc.apply_gradients(
                sampled, grads[1], grads[2] if len(grads) > 2 else None, learning_rate=LR,
                momentum=MOMENTUM,
            )
            return loss, grads[0], sampled.logits

        return strategy.run(fn, args=(emb, labels))

    out = []
    for i, (emb, labels) in enumerate(batches[:steps]):
        demb = strategy.experimental_distribute_values_from_function(
            lambda ctx, e=emb: tf.constant(e[ctx.replica_id_in_sync_group * per:][:per])
        )
        dlab = strategy.experimental_distribute_values_from_function(
            lambda ctx, l=labels: tf.constant(l[ctx.replica_id_in_sync_group * per:][:per])
        )
        loss, grad, logits = step(demb, dlab, tf.constant(i, tf.int64))
        losses = strategy.experimental_local_results(loss)
        out.append(
            {
                "loss": float(sum(np.asarray(x) for x in losses)),
                "grad_emb": np.concatenate([np.asarray(g) for g in strategy.experimental_local_results(grad)]),
                "logits": [np.asarray(x) for x in strategy.experimental_local_results(logits)],
            }
        )
    return pfc, out


# ---------------------------------------------------------------------------------------------
# pure parts against numpy


def test_shard_bounds_are_contiguous_and_cover_all_classes():
    for classes, shards in [(10, 2), (10, 4), (7, 3), (1_000_000, 8)]:
        bounds = partial_fc_ops.shard_bounds(classes, shards)
        starts = [s for s, _ in bounds]
        sizes = [n for _, n in bounds]
        assert sum(sizes) == classes and starts[0] == 0
        assert all(starts[i] + sizes[i] == starts[i + 1] for i in range(shards - 1))
        assert all(n > 0 for n in sizes)
    with pytest.raises(ValueError, match="num_classes=3"):
        partial_fc_ops.shard_bounds(3, 4)


def test_sampling_keeps_every_positive_and_maps_labels():
    num_local, k = 1000, 100
    rng = np.random.default_rng(0)
    local = rng.integers(-500, 1500, size=64).astype("int32")  # some owned, some elsewhere
    index, position = partial_fc_ops.sample_classes(tf.constant(local), num_local, k, tf.constant([3, 4]))
    index, position = index.numpy(), position.numpy()
    assert index.shape == (k,) and np.all(np.diff(index) > 0)
    owned = (local >= 0) & (local < num_local)
    assert set(local[owned]) <= set(index.tolist())
    np.testing.assert_array_equal(index[position[owned]], local[owned])
    assert np.all(position[~owned] == -1)
    # Different steps draw different negatives.
    other, _ = partial_fc_ops.sample_classes(tf.constant(local), num_local, k, tf.constant([3, 5]))
    assert not np.array_equal(other.numpy(), index)


def test_num_sampled_never_drops_positives():
    assert partial_fc_ops.num_sampled(1000, 0.1, 64) == 100
    assert partial_fc_ops.num_sampled(1000, 0.01, 64) == 64
    assert partial_fc_ops.num_sampled(50, 0.1, 64) == 50


def test_distributed_cross_entropy_equals_full_softmax():
    strategy = mirrored_strategy(2)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 8)).astype("float32") * 3
    labels = np.array([0, 3, 4, 7, 5])
    exp = np.exp(logits - logits.max(1, keepdims=True))
    expected = -np.log(exp[np.arange(5), labels] / exp.sum(1))

    def fn():
        ctx = tf.distribute.get_replica_context()
        r = tf.get_static_value(ctx.replica_id_in_sync_group)
        part = tf.constant(logits[:, 4 * r: 4 * r + 4])
        mask = tf.constant(np.eye(8, dtype=bool)[labels][:, 4 * r: 4 * r + 4])
        return partial_fc_ops.distributed_cross_entropy(part, mask, ctx)

    shares = strategy.experimental_local_results(strategy.run(tf.function(fn)))
    np.testing.assert_allclose(sum(np.asarray(s) for s in shares), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# sample_rate 1.0 equals the unsharded head


@pytest.mark.parametrize("cls,kwargs", HEADS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_sample_rate_one_equals_plain_head_on_two_replicas(cls, kwargs):
    strategy = mirrored_strategy(2)
    batches = [_batch(10), _batch(11)]
    kernel = _kernel()
    bias = np.linspace(-0.2, 0.3, C).astype("float32")
    ref, ref_kernel, ref_bias, ref_state = _reference(cls, kwargs, kernel, bias, batches, 2)
    pfc, got = _sharded(strategy, cls, kwargs, kernel, bias, batches, 2)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g["loss"], r["loss"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g["grad_emb"], r["grad_emb"], rtol=1e-4, atol=1e-5)
        full = np.concatenate(g["logits"], axis=1)  # shard columns in class order
        np.testing.assert_allclose(full, r["logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(pfc.kernel), ref_kernel, rtol=1e-4, atol=1e-5)
    if ref_bias is not None:
        got_bias = np.concatenate([np.asarray(pfc.shard_bias(r)) for r in range(2)])
        np.testing.assert_allclose(got_bias, ref_bias, rtol=1e-4, atol=1e-5)
    for w in pfc.head.non_trainable_weights:
        for local in strategy.experimental_local_results(w.value):
            np.testing.assert_allclose(np.asarray(local), ref_state[w.name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,kwargs", [HEADS[5], HEADS[9]], ids=["ArcFace", "CurricularFace"])
def test_sample_rate_one_equals_plain_head_on_four_replicas(cls, kwargs):
    strategy = mirrored_strategy(4)
    batches = [_batch(20), _batch(21)]
    kernel = _kernel(3)
    ref, ref_kernel, _, ref_state = _reference(cls, kwargs, kernel, None, batches, 2)
    pfc, got = _sharded(strategy, cls, kwargs, kernel, None, batches, 2)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g["loss"], r["loss"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g["grad_emb"], r["grad_emb"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pfc.kernel), ref_kernel, rtol=1e-4, atol=1e-5)
    for w in pfc.head.non_trainable_weights:
        np.testing.assert_allclose(
            np.asarray(strategy.experimental_local_results(w.value)[-1]), ref_state[w.name], rtol=1e-5
        )


# ---------------------------------------------------------------------------------------------
# sharding, sampling, checkpoints, learning


def test_each_replica_holds_only_its_shard():
    strategy = mirrored_strategy(4)
    with strategy.scope():
        pfc = PartialFC(heads.ArcFace(num_classes=10), sample_rate=0.5)
        pfc.build((None, D))
    devices = strategy.extended.worker_devices
    assert [pfc.shard(r).shape[0] for r in range(4)] == [3, 3, 3, 1]
    for r in range(4):
        shard = pfc.shard(r)
        assert not isinstance(shard, tf.distribute.DistributedValues)
        assert tf.DeviceSpec.from_string(shard.device) == tf.DeviceSpec.from_string(devices[r])
    # The wrapped head has no full kernel of its own.
    assert not hasattr(pfc.head, "kernel")
    assert sum(int(np.prod(v.shape)) for v in pfc.head.weights) == 0


def test_positives_are_always_kept_when_sampling():
    strategy = mirrored_strategy(2)
    classes = 400
    with strategy.scope():
        pfc = PartialFC(heads.CosFace(num_classes=classes), sample_rate=0.05)
        pfc.build((None, D))
    rng = np.random.default_rng(5)
    labels = rng.integers(0, classes, size=B).astype("int32")
    emb = rng.normal(size=(B, D)).astype("float32")

    @tf.function
    def fn(e, l):
        _, sampled = pfc.train_loss(e, l, step=3)
        return sampled.index

    demb = strategy.experimental_distribute_values_from_function(lambda c: emb[c.replica_id_in_sync_group * 4:][:4])
    dlab = strategy.experimental_distribute_values_from_function(lambda c: labels[c.replica_id_in_sync_group * 4:][:4])
    indices = strategy.experimental_local_results(strategy.run(fn, args=(demb, dlab)))
    kept = set()
    for r, index in enumerate(indices):
        start, size = pfc.shard_bounds[r]
        assert len(np.asarray(index)) == max(int(np.ceil(0.05 * size)), B)
        kept |= set((np.asarray(index) + start).tolist())
    assert set(labels.tolist()) <= kept


def test_checkpoint_restores_shards_to_their_owners(tmp_path):
    strategy = mirrored_strategy(2)
    with strategy.scope():
        pfc = PartialFC(heads.CurricularFace(num_classes=C), sample_rate=1.0)
        pfc.build((None, D))
    kernel = _kernel(9)
    pfc.set_kernel(kernel)
    pfc.head.t.assign(0.25)
    path = tf.train.Checkpoint(head=pfc).save(str(tmp_path / "ckpt"))
    pfc.set_kernel(np.zeros_like(kernel))
    pfc.head.t.assign(0.0)
    tf.train.Checkpoint(head=pfc).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(np.asarray(pfc.kernel), kernel)
    assert [float(v) for v in strategy.experimental_local_results(pfc.head.t.value)] == [0.25, 0.25]
    names = [name for name, _ in tf.train.list_variables(path)]
    assert any("partial_fc_shards" in n for n in names) and not any("shard_0" in n for n in names)


def test_sampled_training_on_one_device_learns():
    classes, dim = 500, 16
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(classes, dim)).astype("float32")
    pfc = PartialFC(heads.CosFace(num_classes=classes, scale=16.0, margin=0.2), sample_rate=0.1)
    pfc.build((None, dim))
    projection = tf.Variable(tf.eye(dim))

    @tf.function
    def step(x, y, i):
        with tf.GradientTape() as tape:
            loss, sampled = pfc.train_loss(tf.matmul(x, projection), y, step=i)
        g_proj, g_rows = tape.gradient(loss, [projection, sampled.rows])
        projection.assign_sub(0.05 * g_proj)
        pfc.apply_gradients(sampled, g_rows, learning_rate=1.0, momentum=0.9)
        return loss, sampled.index

    losses = []
    for i in range(60):
        y = rng.integers(0, classes, size=32).astype("int32")
        x = centres[y] + 0.3 * rng.normal(size=(32, dim)).astype("float32")
        loss, index = step(x, y, tf.constant(i, tf.int64))
        assert index.shape == (50,)
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="sample_rate"):
        PartialFC(heads.ArcFace(num_classes=5), sample_rate=0.0)
    with pytest.raises(TypeError, match="MarginHead"):
        PartialFC(keras.layers.Dense(5))
    pfc = PartialFC(heads.ArcFace(num_classes=5), sample_rate=1.0)
    pfc.build((None, D))
    with pytest.raises(ValueError, match="FaceModel"):
        pfc(np.zeros((2, D), "float32"), np.array([1, 2], "int32"), training=True)
    with pytest.raises(ValueError, match="num_classes=5"):
        pfc.train_loss(np.zeros((2, D), "float32"), np.array([1, 7], "int32"), step=0)


def test_config_round_trip():
    pfc = PartialFC(heads.MVSoftmax(num_classes=7, scale=16.0), sample_rate=0.3, seed=4)
    clone = PartialFC.from_config(pfc.get_config())
    assert clone.get_config() == pfc.get_config()
    assert isinstance(clone.head, heads.MVSoftmax) and clone.head.scale == 16.0


def test_checkpoint_holds_the_full_matrix_and_reshards_on_restore(tmp_path):
    # Written on 2 replicas (with a Softmax bias), restored onto 4 and onto one device; the
    # saved tensors are the full matrices in class order.
    rng = np.random.default_rng(12)
    values = {"kernel": rng.normal(size=(C, D)), "momentum": rng.normal(size=(C, D)),
              "bias": rng.normal(size=(C,)), "bias_momentum": rng.normal(size=(C,))}
    values = {k: v.astype("float32") for k, v in values.items()}

    def new(strategy, classes=C):
        with strategy.scope():
            pfc = PartialFC(heads.Softmax(num_classes=classes), sample_rate=1.0)
            pfc.build((None, D))
        return pfc

    pfc = new(mirrored_strategy(2))
    for kind, value in values.items():
        pfc.assign_full_value(kind, value)
    # The shards alone (what a checkpoint of lists of Keras variables must add for the head).
    path = tf.train.Checkpoint(shards=pfc.partial_fc_shards).save(str(tmp_path / "ckpt"))
    stored = {name.split("/")[2]: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
              if name.startswith("shards/")}  # shards/.ATTRIBUTES/<kind>
    for kind, value in values.items():
        np.testing.assert_array_equal(stored[kind], value)
    for strategy, shards in ((mirrored_strategy(4), 4), (tf.distribute.get_strategy(), 1)):
        other = new(strategy)
        assert other.num_shards == shards
        tf.train.Checkpoint(shards=other.partial_fc_shards).restore(path).assert_existing_objects_matched()
        for kind, value in values.items():
            np.testing.assert_array_equal(np.asarray(other.full_value(kind)), value)
    wrong = new(tf.distribute.get_strategy(), classes=C + 1)
    with pytest.raises(ValueError, match="kernel has shape"):
        tf.train.Checkpoint(shards=wrong.partial_fc_shards).restore(path)
