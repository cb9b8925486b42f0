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
    # MML's margin (200) is far above the squared centre distances this model reaches, so the
    # hinge is active at every step whatever the initial weights (at margin 20 it is already
    # satisfied for some seeds, and the logged term is a true 0).
    keras.utils.set_random_seed(0)
    x, y = separable(per_class=6)
    centres = layers.ClassCentres(4, alpha=0.5)
    model = FaceModel(
        dense_backbone(dim_out=8),
        heads.CosFace(4, scale=8.0, margin=0.2),
        aux_losses={
            "centre": (losses.CentreLoss(centres), 0.01),
            "mml": (losses.MinimumMarginLoss(centres, margin=200.0), StepWeight({0: 0.0, 3: 1e-3})),
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
    # Each auxiliary term is logged as it enters the loss, with its weight at the step: the
    # MML weight is 0 for steps 0-2 (epoch 1: steps 0, 1) and 1e-3 from step 3 on.
    assert history["mml"][0] == 0 and history["mml"][1] > 0
    for epoch in range(4):
        total = sum(history[key][epoch] for key in ("head_loss", "centre", "mml", "l2"))
        np.testing.assert_allclose(history["loss"][epoch], total, rtol=1e-5)

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
    for key in ("loss", "head_loss", "centre", "mml", "l2", "t"):
        np.testing.assert_allclose(mirrored_logs[key], single_logs[key], rtol=1e-5, err_msg=key)
    # The logged terms are global-batch values under the strategy too: they sum to the loss.
    total = sum(np.array(mirrored_logs[key]) for key in ("head_loss", "centre", "mml", "l2"))
    np.testing.assert_allclose(mirrored_logs["loss"], total, rtol=1e-5)


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


# ---------------------------------------------------------------------------------------------
# the heads' training hook: a head with its own loss and its own weights plugs into fit


class _ToyOwnWeightsHead(heads.TrainingHead, keras.layers.Layer):
    """Logits ``x·T`` over a class table ``T`` that the optimizer never sees: the head computes
    its loss from ``T`` and moves ``T`` itself by plain gradient descent at half the rate."""

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(table.shape[1])
        # A plain (trainable) tf.Variable: the tape records its reads, Keras does not list it.
        self.table = tf.Variable(table)
        self.checked = []

    def call(self, embeddings, labels=None, training=None):
        return tf.matmul(embeddings, self.table)

    def check_training(self, optimizer, loss):
        self.checked.append((type(optimizer).__name__, type(loss).__name__))
        if isinstance(optimizer, keras.optimizers.Adam):
            raise ValueError("toy head: no Adam")

    def training_loss(self, embeddings, labels, logits_loss, step):
        table = tf.convert_to_tensor(self.table)
        logits = tf.matmul(embeddings, table)
        # Correct counted as "the target logit is positive", to see that the model uses it.
        correct = tf.cast(tf.gather(logits, labels, batch_dims=1) > 0, tf.float32)
        return heads.HeadLoss(loss=logits_loss(labels, logits), correct=correct, own_sources=(table,), state=step)

    def apply_own_gradients(self, result, gradients, *, learning_rate, optimizer, weight_decay):
        self.table.assign_sub(0.5 * learning_rate * (gradients[0] + weight_decay * self.table))


def test_a_custom_head_with_its_own_loss_and_weights_trains_through_the_one_step():
    lr, wd = 0.4, 0.1
    x, y = vectors()
    table = np.random.default_rng(3).normal(size=(4, 5)).astype("float32")
    head = _ToyOwnWeightsHead(table)
    model = FaceModel(dense_backbone(), head, weight_decay=wd)
    with pytest.raises(ValueError, match="no Adam"):
        model.compile(keras.optimizers.Adam())
    model.compile(keras.optimizers.SGD(lr))
    assert head.checked[-1] == ("SGD", "SparseCategoricalCrossentropy")
    fc = model.backbone.get_layer("fc")
    assert {id(v) for v in model.trainable_variables} == {id(fc.kernel), id(fc.bias)}
    kernel0, bias0 = np.array(fc.kernel), np.array(fc.bias)

    # By hand: the data loss and the coupled L2 of the backbone's kernel (the table is the head's).
    t = tf.constant(table)
    k, b = tf.constant(kernel0), tf.constant(bias0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        tape.watch([t, k, b])
        logits = tf.matmul(tf.matmul(x, k) + b, t)
        loss = ce(y, logits)
    g_t, g_k, g_b = [np.array(g) for g in tape.gradient(loss, [t, k, b])]
    correct = np.mean(np.take_along_axis(logits.numpy(), y[:, None], 1) > 0)

    history = model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0).history
    np.testing.assert_allclose(np.array(head.table), table - 0.5 * lr * (g_t + wd * table), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(fc.kernel), kernel0 - lr * (g_k + wd * kernel0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(fc.bias), bias0 - lr * g_b, rtol=1e-5, atol=1e-6)
    l2 = 0.5 * wd * np.sum(kernel0.astype(np.float64) ** 2)
    np.testing.assert_allclose(history["loss"][0], float(loss) + l2, rtol=1e-5)
    np.testing.assert_allclose(history["accuracy"][0], correct, rtol=1e-6)


def test_a_layer_without_the_hook_is_refused_naming_it():
    with pytest.raises(ValueError, match="training hook.*Dense"):
        FaceModel(dense_backbone(), keras.layers.Dense(3))


def test_training_does_not_know_partial_fc():
    import pathlib

    import tfface.training

    root = pathlib.Path(tfface.training.__file__).parent
    assert not (root / "partial_fc_step.py").exists()
    for path in root.glob("*.py"):
        assert "PartialFC" not in path.read_text(), path.name


# ---------------------------------------------------------------------------------------------
# decay_scope against a hand computation


def _decay_model(scope, wd):
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, name="fc")(inputs)
    h = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), name="prelu")(h)
    h = keras.layers.BatchNormalization(
        name="bn", gamma_initializer=keras.initializers.Constant(1.3), beta_initializer=keras.initializers.Constant(0.2)
    )(h)
    backbone = keras.Model(inputs, h, name="decay_backbone")
    head = heads.Softmax(5)  # kernel and bias
    return FaceModel(backbone, head, weight_decay=wd, decay_scope=scope)


@pytest.mark.parametrize("scope", ["kernels", "all_but_batchnorm"])
def test_decay_scope_one_sgd_step_matches_a_hand_computation(scope):
    lr, wd = 0.5, 0.1
    x, y = vectors()
    model = _decay_model(scope, wd)
    model.compile(keras.optimizers.SGD(lr))
    bb = model.backbone
    named = {
        "fc.kernel": bb.get_layer("fc").kernel,
        "fc.bias": bb.get_layer("fc").bias,
        "prelu.alpha": bb.get_layer("prelu").alpha,
        "bn.gamma": bb.get_layer("bn").gamma,
        "bn.beta": bb.get_layer("bn").beta,
        "head.kernel": model.head.kernel,
        "head.bias": model.head.bias,
    }
    decayed = {"kernels": {"fc.kernel", "head.kernel"},
               "all_but_batchnorm": {"fc.kernel", "fc.bias", "prelu.alpha", "head.kernel", "head.bias"}}[scope]
    assert {id(v) for v in model.decay_variables} == {id(named[k]) for k in decayed}
    assert len(model.trainable_variables) == len(named)
    before = {k: np.array(v) for k, v in named.items()}
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = ce(y, model.head(bb(x, training=True), y, training=True))
    grads = dict(zip(named, [np.array(g) for g in tape.gradient(loss, list(named.values()))]))
    history = model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0).history
    for key, variable in named.items():
        g = grads[key] + (wd * before[key] if key in decayed else 0.0)
        np.testing.assert_allclose(np.array(variable), before[key] - lr * g, rtol=1e-5, atol=1e-6, err_msg=key)
    l2 = 0.5 * wd * sum(np.sum(before[k].astype(np.float64) ** 2) for k in decayed)
    np.testing.assert_allclose(history["l2"][0], l2, rtol=1e-5)


def test_decay_scope_is_checked_and_saved():
    with pytest.raises(ValueError, match="decay_scope.*all_but_batchnorm"):
        FaceModel(dense_backbone(), heads.CosFace(3), decay_scope="everything")
    model = _decay_model("all_but_batchnorm", 5e-4)
    clone = FaceModel.from_config(model.get_config())
    assert clone.decay_scope == "all_but_batchnorm" and clone.weight_decay == 5e-4


# ---------------------------------------------------------------------------------------------
# the class centres: one layer, handed explicitly


def test_centre_losses_need_the_models_centres_layer():
    centres = layers.ClassCentres(4)
    aux = {"centre": (losses.CentreLoss(centres), 0.01)}
    with pytest.raises(ValueError, match=r"aux_losses\['centre'\].*centres="):
        FaceModel(dense_backbone(dim_out=8), heads.CosFace(4), aux_losses=aux)
    with pytest.raises(ValueError, match=r"aux_losses\['centre'\]"):
        FaceModel(dense_backbone(dim_out=8), heads.CosFace(4), aux_losses=aux, centres=layers.ClassCentres(4))
    with pytest.raises(ValueError, match="ClassCentres"):
        FaceModel(dense_backbone(dim_out=8), heads.CosFace(4), centres=losses.CentreLoss(centres))


def test_one_centres_layer_is_built_saved_once_and_shared_after_a_keras_reload(tmp_path):
    x, y = separable(per_class=3)
    centres = layers.ClassCentres(4, alpha=0.5, name="the_centres")
    aux = {
        "centre": (losses.CentreLoss(centres), 0.01),
        "mml": (losses.MinimumMarginLoss(centres, margin=20.0), 1e-3),
    }
    model = FaceModel(dense_backbone(dim_out=8), heads.CosFace(4), aux_losses=aux, centres=centres)
    assert centres.built and tuple(centres.centres.shape) == (4, 8)
    assert all(loss.centres is model.centres for loss, _ in model.aux_losses.values())
    config = model.get_config()
    assert config["centres"]["class_name"] == "ClassCentres"
    model.compile(keras.optimizers.SGD(0.05))
    model.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0)
    # The model's weights hold the centre table once.
    assert sum(v is centres.centres for v in model.non_trainable_variables) == 1

    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.centres, layers.ClassCentres) and restored.centres is not centres
    assert all(loss.centres is restored.centres for loss, _ in restored.aux_losses.values())
    np.testing.assert_array_equal(np.array(restored.centres.centres), np.array(centres.centres))
    # Without centres the config says so.
    assert FaceModel(dense_backbone(), heads.CosFace(3)).get_config()["centres"] is None


# ---------------------------------------------------------------------------------------------
# the logged terms of the objective


def _np_logged_terms(x, y, fc_kernel, fc_bias, head_kernel, scale, margin, centre_weight, wd):
    """Each term of the objective for one batch, in float64 from the weights: CosFace
    cross-entropy, the weighted batch-mean centre loss (centres at zero), ½·wd·Σ‖W‖²."""
    f = x.astype(np.float64) @ fc_kernel + fc_bias
    cos = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (head_kernel / np.linalg.norm(head_kernel, axis=0))
    logits = scale * (cos - margin * np.eye(head_kernel.shape[1])[y])
    logits -= logits.max(axis=1, keepdims=True)
    head = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(y)), y])
    centre = centre_weight * np.mean(0.5 * np.sum(f**2, axis=1))
    l2 = 0.5 * wd * (np.sum(fc_kernel.astype(np.float64) ** 2) + np.sum(head_kernel.astype(np.float64) ** 2))
    return {"head_loss": head, "centre": centre, "l2": l2}


def test_logged_terms_match_a_hand_computation_and_sum_to_the_loss():
    x, y = vectors(n=10, classes=5)
    scale, margin, centre_weight, wd = 4.0, 0.2, 0.3, 0.05
    centres = layers.ClassCentres(5, alpha=0.5)
    model = FaceModel(dense_backbone(), heads.CosFace(5, scale=scale, margin=margin),
                      aux_losses={"centre": (losses.CentreLoss(centres), centre_weight)},
                      centres=centres, weight_decay=wd)
    model.compile(keras.optimizers.SGD(0.1))
    fc = model.backbone.get_layer("fc")
    weights = [np.array(v) for v in (fc.kernel, fc.bias, model.head.kernel)]
    # One step on the whole batch: the logged values are those at the weights before the step.
    history = model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0).history
    want = _np_logged_terms(x, y, *weights, scale, margin, centre_weight, wd)
    for key, value in want.items():
        np.testing.assert_allclose(history[key][0], value, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(history["loss"][0], sum(want.values()), rtol=1e-5)


def test_logged_terms_sum_to_the_loss_over_epochs_with_a_scheduled_weight():
    x, y = separable(per_class=6)
    centres = layers.ClassCentres(4, alpha=0.5)
    model = FaceModel(
        dense_backbone(dim_out=8), heads.ArcFace(4, scale=8.0, margin=0.2),
        aux_losses={"centre": (losses.CentreLoss(centres, reduction="sum"), StepWeight({0: 0.0, 3: 1e-2})),
                    "mml": (losses.MinimumMarginLoss(centres, margin=20.0), 1e-3)},
        centres=centres, weight_decay=1e-3,
    )
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9))
    # 4 steps per epoch; the centre weight switches on inside the first epoch.
    history = model.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0).history
    terms = ("head_loss", "centre", "mml", "l2")
    for epoch in range(2):
        total = sum(history[key][epoch] for key in terms)
        np.testing.assert_allclose(history["loss"][epoch], total, rtol=1e-5, err_msg=f"epoch {epoch}")
    assert 0 < history["centre"][0] < history["centre"][1]  # a quarter of epoch 1 had weight 0
    assert history["head_loss"][0] < history["loss"][0]
