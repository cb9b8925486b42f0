"""The loss classes: reduction, wiring to the pure functions, ``model.fit``.

The formulas themselves are checked against numpy in test_functional.py; here the reference is
the numpy mean/sum of the per-sample formula, or the functional value for batch-level losses.
The shared harness' fit, ``.keras`` and ``mixed_float16`` steps run once per registered loss in
tests/test_components.py (its table is tests/components.py); here each configuration goes
through the harness' config checks (``fit=False``).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface import testing
from tfface.layers import ClassCentres
from tfface.losses import (
    OHEM,
    CentreLoss,
    Focal,
    HardMining,
    MarginalLoss,
    MinimumMarginLoss,
    RangeLoss,
    functional as F,
)

C, D, B = 5, 4, 8


def np_ce(labels, logits):
    m = logits.max(axis=1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


def np_hm(L, alpha=1.5, beta=1.1, A=35.0, B=0.75):
    x = beta * L
    return alpha * x / (1.0 + np.exp(-A * (x - B)))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(B, C)) * 2).astype("float32")
    emb = (rng.normal(size=(B, D)) * 3).astype("float32")
    labels = np.array([0, 1, 0, 2, 1, 1, 3, 0], "int32")
    centres = ClassCentres(C, alpha=0.5, name="centres")
    centres.build((None, D))
    centres.centres.assign(rng.normal(size=(C, D)).astype("float32"))
    return logits, emb, labels, centres


def test_hard_mining(data):
    logits, _, labels, _ = data
    loss = HardMining()
    value = testing.run_loss_test(loss, labels, logits, fit=False)
    np.testing.assert_allclose(value, np_hm(np_ce(labels, logits)).mean(), rtol=1e-5)

    eq2 = HardMining(form="eq2", alpha=1.0, beta=2.0, A=5.0, B=0.5)
    value = testing.run_loss_test(eq2, labels, logits, fit=False)
    ce = np_ce(labels, logits)
    np.testing.assert_allclose(
        value, (ce / (1 + np.exp(-5.0 * (2.0 * ce - 0.5)))).mean(), rtol=1e-5
    )

    # any per-sample base, serialised with the loss
    over_focal = HardMining(base=Focal(gamma=1.0))
    value = testing.run_loss_test(over_focal, labels, logits, fit=False)
    # numpy: focal with γ=1, then Algorithm 1 on it.
    p_true = np.exp(-np_ce(labels, logits))
    np_focal_1 = -(1.0 - p_true) * np.log(p_true)
    np.testing.assert_allclose(value, np_hm(np_focal_1).mean(), rtol=1e-5)
    restored = HardMining.from_config(over_focal.get_config())
    assert isinstance(restored.base, Focal) and restored.base.gamma == 1.0

    probabilities = np.asarray(tf.nn.softmax(logits))
    by_name = HardMining(base="sparse_categorical_crossentropy")
    np.testing.assert_allclose(
        testing.run_loss_test(by_name, labels, probabilities), np_hm(ce).mean(), rtol=1e-4
    )
    with pytest.raises(ValueError, match="form"):
        HardMining(form="paper")


def test_focal_and_ohem(data):
    logits, _, labels, _ = data
    focal = Focal(gamma=2.0)
    p = np.exp(-np_ce(labels, logits))
    np.testing.assert_allclose(
        testing.run_loss_test(focal, labels, logits, fit=False),
        np.mean(-((1 - p) ** 2) * np.log(p)),
        rtol=1e-5,
    )
    ohem = OHEM(keep_ratio=0.6)
    ce = np_ce(labels, logits)
    k = math.ceil(0.6 * B)
    np.testing.assert_allclose(
        testing.run_loss_test(ohem, labels, logits, fit=False), np.sort(ce)[::-1][:k].mean(), rtol=1e-5
    )
    with pytest.raises(ValueError, match="keep_ratio"):
        OHEM(keep_ratio=1.5)


def test_centre_loss(data):
    _, emb, labels, centres = data
    c = np.asarray(centres.centres)
    per_sample = 0.5 * np.sum((emb - c[labels]) ** 2, axis=1)
    loss = CentreLoss(centres)
    np.testing.assert_allclose(
        testing.run_loss_test(loss, labels, emb, fit=False), per_sample.mean(), rtol=1e-5
    )
    # the paper's Eq. 2 is a sum over the batch
    np.testing.assert_allclose(
        CentreLoss(centres, reduction="sum")(labels, emb), per_sample.sum(), rtol=1e-5
    )
    # a rebuilt loss holds a fresh layer description; re-attaching it restores the values
    clone = CentreLoss.from_config(loss.get_config())
    assert clone.centres is not centres and clone.centres.num_classes == C
    clone.centres = centres
    np.testing.assert_allclose(clone(labels, emb), per_sample.mean(), rtol=1e-5)
    with pytest.raises(TypeError, match="ClassCentres"):
        CentreLoss(keras.layers.Dense(3))


def np_mml_centre_loss(centres, features, labels):
    """MML paper eq. 2, transcribed: L_C = 1/2 · Σ_{i=1..m} ‖f_i − c_{y_i}‖² (a sum over the
    batch, no division by m or D), in float64 with explicit loops."""
    total = 0.0
    for i in range(len(features)):
        total += 0.5 * sum(
            (float(features[i][d]) - float(centres[labels[i]][d])) ** 2
            for d in range(len(features[i]))
        )
    return total


def test_centre_loss_sum_is_mml_eq_2(data):
    _, emb, labels, centres = data
    c = np.asarray(centres.centres, np.float64)
    loss = CentreLoss(centres, reduction="sum")
    assert loss.get_config()["reduction"] == "sum"
    f = tf.constant(emb)
    with tf.GradientTape() as tape:
        tape.watch(f)
        value = loss(labels, f)
    np.testing.assert_allclose(float(value), np_mml_centre_loss(c, emb, labels), rtol=1e-6)
    # ∂L_C/∂f_i = f_i − c_{y_i} (the centres carry no gradient)
    np.testing.assert_allclose(tape.gradient(value, f), emb - c[labels], rtol=1e-5, atol=1e-6)
    # the default reduction is the batch mean: B times smaller
    np.testing.assert_allclose(
        float(CentreLoss(centres)(labels, emb)), np_mml_centre_loss(c, emb, labels) / B, rtol=1e-6
    )
    # the recipe form: the registered component with the reduction as a plain argument
    from tfface import registry

    built = registry.build("loss", {"name": "centre", "reduction": "sum"}, centres=centres)
    np.testing.assert_allclose(float(built(labels, emb)), float(value), rtol=1e-7)
    assert registry.resolved_args("loss", {"name": "centre"}).args["reduction"] == (
        "sum_over_batch_size"
    )


def test_base_loss_from_the_registry(data):
    logits, _, labels, _ = data
    from tfface import registry

    p_true = np.exp(-np_ce(labels, logits))
    for base in ("focal", {"name": "focal", "gamma": 1.0}, registry.Component("focal", {"gamma": 1.0})):
        loss = HardMining(base=base)
        assert isinstance(loss.base, Focal)
        gamma = 2.0 if base == "focal" else 1.0
        expected = -((1.0 - p_true) ** gamma) * np.log(p_true)
        np.testing.assert_allclose(loss(labels, logits), np_hm(expected).mean(), rtol=1e-5)
        restored = HardMining.from_config(loss.get_config())
        assert isinstance(restored.base, Focal) and restored.base.gamma == gamma
    np.testing.assert_allclose(
        OHEM(keep_ratio=1.0, base="focal")(labels, logits).numpy(),
        np.mean(-((1.0 - p_true) ** 2) * np.log(p_true)),
        rtol=1e-5,
    )
    # the default base is the registered cross_entropy
    assert HardMining().base.get_config()["from_logits"] is True
    with pytest.raises(registry.RegistryError, match=r"base: 'centre' is not a per-sample loss"):
        HardMining(base="centre")
    with pytest.raises(registry.RegistryError, match=r"base\.gama: loss 'focal' has no argument"):
        HardMining(base={"name": "focal", "gama": 1.0})


def test_minimum_margin_loss(data):
    _, emb, labels, centres = data
    loss = MinimumMarginLoss(centres, margin=40.0)
    value = testing.run_loss_test(loss, labels, emb, fit=False)
    expected = F.minimum_margin_loss(np.asarray(centres.centres), emb, labels, 0.5, 40.0)
    assert float(expected) > 0
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert loss.get_config()["margin"] == 40.0
    assert MinimumMarginLoss(centres).margin == 280.0


def test_range_and_marginal(data):
    _, emb, labels, _ = data
    rng_loss = RangeLoss(k=2, margin=100.0, alpha=0.5, beta=2.0)
    np.testing.assert_allclose(
        testing.run_loss_test(rng_loss, labels, emb, fit=False),
        F.range_loss(emb, labels, 2, 100.0, 0.5, 2.0),
        rtol=1e-6,
    )
    marginal = MarginalLoss(threshold=1.1, error_margin=0.2)
    np.testing.assert_allclose(
        testing.run_loss_test(marginal, labels, emb, fit=False),
        F.marginal_loss(emb, labels, 1.1, 0.2),
        rtol=1e-6,
    )


def test_feature_losses_accept_column_labels_and_float16(data):
    _, emb, labels, centres = data
    for loss in (
        CentreLoss(centres),
        MinimumMarginLoss(centres, 40.0),
        RangeLoss(margin=100.0),
        MarginalLoss(),
    ):
        flat = float(loss(labels, emb))
        column = float(loss(labels[:, None], emb))
        half = loss(labels, emb.astype("float16"))
        assert half.dtype == "float32"
        np.testing.assert_allclose(column, flat, rtol=1e-6)
        np.testing.assert_allclose(float(half), flat, rtol=1e-2)


def test_single_class_and_single_sample_batches_are_finite(data):
    _, emb, _, centres = data
    for loss in (
        MinimumMarginLoss(centres, 40.0),
        RangeLoss(margin=100.0),
        MarginalLoss(),
        CentreLoss(centres),
    ):
        for f, y in (
            (emb[:1], np.array([2])),
            (emb[:3], np.array([1, 1, 1])),
            (np.zeros_like(emb[:2]), np.array([0, 0])),
        ):
            f = tf.constant(f)
            with tf.GradientTape() as tape:
                tape.watch(f)
                value = loss(y, f)
            grad = tape.gradient(value, f)
            assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad))), type(
                loss
            ).__name__


def test_out_of_range_label_in_a_compiled_step(data):
    _, emb, _, centres = data
    loss = CentreLoss(centres)

    @tf.function
    def step(y, f):
        return loss(y, f)

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)num_classes=5.*\b9\b"):
        step(tf.constant([0, 9, 1], tf.int32), tf.constant(emb[:3]))


def test_hard_mining_and_ohem_in_fit_with_logits_model(data):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, D)).astype("float32")
    y = rng.integers(0, C, size=16).astype("int32")
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(C)])
    start = model.get_weights()
    for loss in (HardMining(), OHEM()):
        model.set_weights(start)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert not np.allclose(model.get_weights()[0], start[0])
        # the reported loss is the loss of the weights before the step
        model.set_weights(start)
        np.testing.assert_allclose(history.history["loss"][0], float(loss(y, model(x))), rtol=1e-5)


@pytest.mark.parametrize("head_name", ["arcface", "sphereface"])
def test_hard_mining_over_margin_heads_in_fit(head_name):
    # Hard-Mining ArcFace and Hard-Mining A-Softmax: the modulation applies per sample to the
    # cross-entropy of the head's margin logits.
    import tfface.heads

    rng = np.random.default_rng(11)
    emb = rng.normal(size=(12, D)).astype("float32")
    y = rng.integers(0, C, size=12).astype("int32")
    head = tfface.heads.get(head_name, num_classes=C)
    model = testing.head_model(head, D)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=HardMining())
    start = model.get_weights()
    history = model.fit([emb, y], y, batch_size=12, epochs=1, verbose=0)
    assert not np.allclose(np.asarray(head.kernel), start[0])

    model.set_weights(start)  # kernel and any head state (SphereFace's iteration) before the step
    logits = np.asarray(model([emb, y], training=True), np.float64)
    np.testing.assert_allclose(
        history.history["loss"][0], np_hm(np_ce(y, logits)).mean(), rtol=1e-4
    )


def test_centre_losses_build_an_unbuilt_layer_from_the_embeddings(data):
    _, emb, labels, _ = data
    centres = ClassCentres(C)
    np.testing.assert_allclose(
        CentreLoss(centres)(labels, emb), np.mean(0.5 * np.sum(emb**2, axis=1)), rtol=1e-5
    )
    assert centres.built and tuple(centres.centres.shape) == (C, D)
    with pytest.raises(ValueError, match="dimensions"):
        MinimumMarginLoss(centres)(labels, emb[:, :2])


def test_range_loss_margin_is_required():
    with pytest.raises(ValueError, match="margin"):
        RangeLoss()
