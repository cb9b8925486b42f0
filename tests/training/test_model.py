"""FaceModel: the training step against independent computations, with the real heads/losses."""
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from training_helpers import dense_backbone, separable, vectors
from tfface import heads, layers, losses
from tfface.testing import dtype_policy, mirrored_strategy
from tfface.training import FaceModel, StepWeight


def test_coupled_weight_decay_one_sgd_step_matches_numpy():
    lr, wd = 0.5, 0.1
    x, y = vectors()
    model = FaceModel(dense_backbone(), heads.CosFace(5, scale=4.0, margin=0.2), weight_decay=wd)
    model.compile(keras.optimizers.SGD(lr))
    fc = model.backbone.get_layer("fc")
    kernel, bias, head_kernel = fc.kernel, fc.bias, model.head.kernel
    assert {id(v) for v in model.decay_variables} == {id(kernel), id(head_kernel)}
    before = [np.array(v) for v in (kernel, bias, head_kernel)]
    # g: gradient of the data loss alone (mean cross-entropy of the margin logits), no decay.
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = ce(y, model.head(model.backbone(x), y, training=True))
    grads = [np.array(g) for g in tape.gradient(loss, [kernel, bias, head_kernel])]
    model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(np.array(kernel), before[0] - lr * (grads[0] + wd * before[0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(bias), before[1] - lr * grads[1], rtol=1e-5, atol=1e-6)  # not decayed
    np.testing.assert_allclose(np.array(head_kernel), before[2] - lr * (grads[2] + wd * before[2]), rtol=1e-5, atol=1e-6)


HEAD_ARGS = {
    "softmax": {},
    "normface": {"scale": 8.0},
    "sphereface": {"lambda_base": 5.0},
    "cosface": {"scale": 8.0, "margin": 0.2},
    "arcface": {"scale": 8.0, "margin": 0.2},
    "combined_margin": {"scale": 8.0, "m1": 1.0, "m2": 0.1, "m3": 0.05},
    "mv_softmax": {"scale": 8.0, "margin": 0.2},
    "curricularface": {"scale": 8.0, "margin": 0.2},
    "recurricularface": {"scale": 8.0, "margin": 0.2},
}
MONITORED = {"curricularface": "t", "recurricularface": "t", "sphereface": "lambda"}


@pytest.mark.parametrize("name", heads.names())
def test_fit_with_every_head_logs_metrics_and_learns(name):
    assert name in HEAD_ARGS, f"add test settings for the new head {name!r}"
    x, y = separable()
    model = FaceModel(dense_backbone(dim_out=8), heads.get(name, num_classes=4, **HEAD_ARGS[name]))
    # Eager: nine heads, a few steps each; tracing nine graphs would dominate the test's time
    # (the graph path is covered by the other tests).
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), run_eagerly=True)
    history = model.fit(x, y, batch_size=16, epochs=8, shuffle=False, verbose=0).history
    for key in ("loss", "accuracy", "learning_rate") + ((MONITORED[name],) if name in MONITORED else ()):
        assert key in history, f"{name}: {key} not logged ({sorted(history)})"
    assert history["loss"][-1] < 0.7 * history["loss"][0], f"{name}: loss {history['loss']}"
    assert np.all(np.isfinite(history["loss"]))
    np.testing.assert_allclose(model.predict(x[:3], verbose=0), model.backbone(x[:3]).numpy(), rtol=1e-6)


def test_centre_and_minimum_margin_losses_with_a_step_weight_and_keras_roundtrip():
    x, y = separable(per_class=6)
    centres = layers.ClassCentres(4, alpha=0.5)
    model = FaceModel(
        dense_backbone(dim_out=8),
        heads.CosFace(4, scale=8.0, margin=0.2),
        aux_losses={
            "centre": (losses.CentreLoss(centres), 0.01),
            "mml": (losses.MinimumMarginLoss(centres, margin=20.0), StepWeight({0: 0.0, 3: 1e-3})),
        },
        centres=centres,
        weight_decay=5e-4,
    )
    assert model.centres is centres and model.class_centres == [centres]
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9))
    history = model.fit(x, y, batch_size=12, epochs=4, shuffle=False, verbose=0).history
    for key in ("loss", "accuracy", "centre", "mml", "l2", "learning_rate"):
        assert key in history, f"{key} not logged ({sorted(history)})"
    assert history["loss"][-1] < history["loss"][0]
    # The centres moved by the layer's update (they start at zero), once per step.
    assert np.abs(np.array(centres.centres)).sum() > 0
    # The total loss is the weighted sum of its logged terms (weights at the epochs' steps).
    assert history["mml"][0] > 0

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "face_model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert len(restored.class_centres) == 1
    shared = restored.class_centres[0]
    assert all(loss.centres is shared for loss, _ in restored.aux_losses.values())
    np.testing.assert_array_equal(np.array(shared.centres), np.array(centres.centres))
    assert restored.optimizer is not None and int(restored.optimizer.iterations) == int(model.optimizer.iterations)
    assert isinstance(restored.aux_losses["mml"][1], StepWeight)


def test_mixed_precision_uses_a_loss_scale_optimizer_and_stays_finite():
    x, y = separable()
    with dtype_policy("mixed_float16"):
        model = FaceModel(dense_backbone(dim_out=8), heads.ArcFace(4, scale=16.0, margin=0.3))
        model.compile(keras.optimizers.SGD(0.05))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))


def test_labels_outside_the_head_fail_with_a_clear_message():
    x, y = vectors(classes=5)
    model = FaceModel(dense_backbone(), heads.CosFace(3))
    model.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(Exception, match="num_classes"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def _train_two_steps(strategy, x, y, initial_centres=None):
    with strategy.scope():
        centres = layers.ClassCentres(5, alpha=0.5)
        model = FaceModel(
            dense_backbone(seed=3),
            heads.CurricularFace(5, scale=8.0, margin=0.2),
            aux_losses={"centre": (losses.CentreLoss(centres), 0.05),
                        "mml": (losses.MinimumMarginLoss(centres, margin=10.0), 1e-2)},
            centres=centres,
            weight_decay=5e-3,
        )
        model.head.kernel.assign(np.random.default_rng(5).normal(size=(4, 5)).astype("float32"))
        model.compile(keras.optimizers.SGD(0.3, momentum=0.9))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    logs = model.fit(ds, epochs=2, verbose=0).history
    return [(v.path, np.array(v)) for v in model.variables], model, logs


def test_mirrored_equals_one_device_on_the_same_global_batch():
    x, y = vectors(16)
    single, _, single_logs = _train_two_steps(tf.distribute.get_strategy(), x, y)
    mirrored, model, mirrored_logs = _train_two_steps(mirrored_strategy(2), x, y)
    assert model.distribute_strategy.num_replicas_in_sync == 2
    assert len(single) == len(mirrored)
    # Everything: weights, CurricularFace's t, the class centres.
    for (key, a), (_, b) in zip(single, mirrored):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=key)
    keys = [k for k, _ in single]
    assert any(k.endswith("/centres") for k in keys) and any(k.endswith("/t") for k in keys)
    for key in ("loss", "centre", "mml", "t"):
        np.testing.assert_allclose(mirrored_logs[key], single_logs[key], rtol=1e-5, err_msg=key)


def test_explicit_xla_single_device_and_per_replica_under_mirrored():
    x, y = separable(per_class=4)
    results = {}
    for strategy, jit in ((tf.distribute.get_strategy(), True), (mirrored_strategy(2), False), (mirrored_strategy(2), True)):
        with strategy.scope():
            model = FaceModel(dense_backbone(dim_out=8, seed=2), heads.CosFace(4, scale=8.0, margin=0.2))
            model.head.kernel.assign(np.random.default_rng(4).normal(size=(8, 4)).astype("float32"))
            model.compile(keras.optimizers.SGD(0.1), jit_compile=jit)
        # Keras' "auto" would refuse XLA here (the heads declare supports_jit=False, and Keras
        # never enables it under tf.distribute); an explicit True is honoured.
        replicas = strategy.num_replicas_in_sync
        assert model.jit_compile is (jit and replicas == 1)
        assert model._replica_jit is (jit and replicas > 1)
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results[(replicas, jit)] = [np.array(v) for v in model.trainable_variables]
    for a, b in zip(results[(2, False)], results[(2, True)]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for a, b in zip(results[(2, False)], results[(1, True)]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
