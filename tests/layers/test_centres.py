"""ClassCentres: the eq. 14–15 update, state saving, label checks, and a MirroredStrategy step
of Softmax + Centre + MML that must equal the one-device step on the same global batch."""

import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface import testing
from tfface.layers import ClassCentres
from tfface.losses import CentreLoss, MinimumMarginLoss


def np_centre_update(centres, f, labels, alpha):
    # MML paper eqs. 14-15, written class by class.
    new = centres.copy()
    for j in range(len(centres)):
        members = [i for i in range(len(f)) if labels[i] == j]
        if members:
            delta = sum(centres[j] - f[i] for i in members) / (1.0 + len(members))
            new[j] = centres[j] - alpha * delta
    return new


def make_layer(num_classes=6, dim=3, alpha=0.5, seed=0):
    layer = ClassCentres(num_classes, alpha=alpha)
    layer.build((None, dim))
    layer.centres.assign(
        np.random.default_rng(seed).normal(size=(num_classes, dim)).astype("float32")
    )
    return layer


def test_update_follows_eq_14_15_and_only_in_training():
    layer = make_layer(alpha=0.3)
    start = np.asarray(layer.centres, np.float64)
    rng = np.random.default_rng(1)
    f = rng.normal(size=(7, 3)).astype("float32")
    y = np.array([0, 2, 2, 5, 0, 2, 1], "int32")

    out = layer(f, y, training=False)
    np.testing.assert_allclose(out, start[y], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(layer.centres), start.astype("float32"))

    out = layer(f, y, training=True)
    np.testing.assert_allclose(out, start[y], rtol=1e-6)  # returns the centres before the update
    np.testing.assert_allclose(
        np.asarray(layer.centres), np_centre_update(start, f, y, 0.3), rtol=1e-5, atol=1e-6
    )

    # inside a compiled function too, twice in a row
    step = tf.function(lambda f, y: layer(f, y, training=True))
    expected = np.asarray(layer.centres, np.float64)
    for _ in range(2):
        step(f, y)
        expected = np_centre_update(expected, f, y, 0.3)
    np.testing.assert_allclose(np.asarray(layer.centres), expected, rtol=1e-5, atol=1e-6)
    assert not layer.centres.trainable and layer.trainable_weights == []


def test_config_and_bad_arguments():
    layer = ClassCentres(10, alpha=0.25, name="c")
    config = testing.assert_config_complete(layer)
    assert config["num_classes"] == 10 and config["alpha"] == 0.25
    testing.assert_config_roundtrip(layer)
    with pytest.raises(ValueError, match="num_classes"):
        ClassCentres(0)
    with pytest.raises(ValueError, match="alpha"):
        ClassCentres(3, alpha=2.0)


def test_out_of_range_labels_raise_with_the_label_and_num_classes():
    layer = make_layer(num_classes=4)
    f = np.ones((2, 3), "float32")
    for bad in (4, -2):
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"(?s)num_classes=4.*{bad}"):
            layer(f, np.array([0, bad], "int32"), training=True)
    step = tf.function(lambda f, y: layer(f, y, training=True))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)num_classes=4.*\b11\b"):
        step(f, tf.constant([11, 0], tf.int32))


def test_centres_survive_keras_save_and_checkpoint_restore():
    dim = 3
    emb = keras.Input((dim,))
    lab = keras.Input((), dtype="int32")
    centres = ClassCentres(6, name="class_centres")
    model = keras.Model([emb, lab], centres(emb, lab))
    values = np.random.default_rng(2).normal(size=(6, dim)).astype("float32")
    centres.centres.assign(values)
    f = np.ones((2, dim), "float32")
    y = np.array([1, 4], "int32")
    restored = testing.assert_keras_roundtrip(model, [f, y])
    np.testing.assert_array_equal(np.asarray(restored.get_layer("class_centres").centres), values)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = tf.train.Checkpoint(model=model)
        path = checkpoint.save(os.path.join(tmp, "ckpt"))
        centres(f, y, training=True)
        assert not np.allclose(np.asarray(centres.centres), values)
        checkpoint.restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(np.asarray(centres.centres), values)


# ---------------------------------------------------------------------------------------------
# MirroredStrategy: one Softmax + Centre + MML step equals one device on the global batch

NUM_CLASSES, IN_DIM, EMB_DIM, GLOBAL_BATCH = 7, 5, 4, 12
CENTRE_WEIGHT, MML_WEIGHT, MARGIN = 0.05, 0.01, 30.0


class JointModel(keras.Model):
    """A tiny Dense 'backbone' + Dense classifier + ClassCentres, trained by a custom step."""

    def __init__(self):
        super().__init__()
        self.backbone = keras.layers.Dense(EMB_DIM, name="backbone")
        self.classifier = keras.layers.Dense(NUM_CLASSES, name="classifier")
        self.centres = ClassCentres(NUM_CLASSES, alpha=0.5, name="centres")
        self.softmax = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.centre_loss = CentreLoss(self.centres)
        self.mml = MinimumMarginLoss(self.centres, margin=MARGIN)

    def call(self, x):
        return self.classifier(self.backbone(x))

    def step(self, x, y):
        with tf.GradientTape() as tape:
            emb = self.backbone(x)
            loss = (
                self.softmax(y, self.classifier(emb))
                + CENTRE_WEIGHT * self.centre_loss(y, emb)
                + MML_WEIGHT * self.mml(y, emb)
            )
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        self.centres(emb, y, training=True)
        return loss


def build_joint(strategy, init):
    with strategy.scope():
        model = JointModel()
        model.centres.build((None, EMB_DIM))
        model(np.zeros((1, IN_DIM), "float32"))
        model.optimizer = keras.optimizers.SGD(0.5)
        model.optimizer.build(model.trainable_weights)
    if init is not None:
        model.set_weights(init)
    return model


def run_step(strategy, model, x, y):
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        share = len(x) // replicas

        def split(array):
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: tf.constant(array[ctx.replica_id_in_sync_group * share :][:share])
            )

        inputs = (split(x), split(y))
    else:
        inputs = (tf.constant(x), tf.constant(y))

    @tf.function
    def step(xs, ys):
        per_replica = strategy.run(model.step, args=(xs, ys))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return float(step(*inputs))


def test_mirrored_step_equals_single_device_step():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(GLOBAL_BATCH, IN_DIM)).astype("float32") * 2
    # classes spread over both halves, some only on one replica
    y = np.array([0, 1, 2, 0, 3, 1, 2, 4, 0, 5, 5, 2], "int32")

    single = build_joint(tf.distribute.get_strategy(), None)
    centres = rng.normal(size=(NUM_CLASSES, EMB_DIM)).astype("float32")
    single.centres.centres.assign(centres)
    init = single.get_weights()
    strategy = testing.mirrored_strategy(2)
    mirrored = build_joint(strategy, init)
    np.testing.assert_array_equal(np.asarray(mirrored.centres.centres), centres)

    loss_single = run_step(tf.distribute.get_strategy(), single, x, y)
    loss_mirrored = run_step(strategy, mirrored, x, y)

    # the MML term is active, so the comparison covers the gathered update and its gradient
    emb = x @ init[0] + init[1]
    assert float(MinimumMarginLoss(single.centres, margin=MARGIN)(y, emb)) > 0
    np.testing.assert_allclose(loss_mirrored, loss_single, rtol=1e-5)
    for name, a, b in zip(
        [w.path for w in single.weights], single.get_weights(), mirrored.get_weights()
    ):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)
    moved = [not np.allclose(a, b) for a, b in zip(init, single.get_weights())]
    assert all(moved), "every weight, centres included, must change in the step"
    # the centres moved exactly once, by the global-batch update
    np.testing.assert_allclose(
        np.asarray(mirrored.centres.centres),
        np_centre_update(centres.astype(np.float64), emb_after_forward(init, x), y, 0.5),
        rtol=1e-5,
        atol=1e-5,
    )


def emb_after_forward(init, x):
    # the embeddings of the step (computed before the weights moved)
    return x.astype(np.float64) @ init[0] + init[1]


def test_float32_centres_under_mixed_precision():
    with testing.dtype_policy("mixed_float16"):
        layer = ClassCentres(4, alpha=0.5)
        f = np.array([[1.0, 2.0], [3.0, -1.0]], "float16")
        y = np.array([1, 1], "int32")
        out = layer(f, y, training=True)
    assert layer.centres.dtype == "float32" and out.dtype == "float32"
    expected = np_centre_update(np.zeros((4, 2)), f.astype(np.float64), y, 0.5)
    np.testing.assert_allclose(np.asarray(layer.centres), expected, rtol=1e-6)
