"""The nine heads as layers: the shared harness, the stateful heads against numpy loops, the
registry, and the input checks."""
import os
import re
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heads_reference as ref  # noqa: E402

from tfface import heads  # noqa: E402

HEAD_CASES = [
    (heads.Softmax, {"num_classes": 5}),
    (heads.NormFace, {"num_classes": 5, "scale": 16.0}),
    (heads.SphereFace, {"num_classes": 5, "margin": 4}),
    (heads.CosFace, {"num_classes": 5}),
    (heads.ArcFace, {"num_classes": 5}),
    (heads.CombinedMargin, {"num_classes": 5, "m1": 0.9, "m2": 0.4, "m3": 0.15}),
    (heads.MVSoftmax, {"num_classes": 5, "margin_type": "arc", "margin": 0.5, "adaptive": False}),
    (heads.CurricularFace, {"num_classes": 5}),
    (heads.ReCurricularFace, {"num_classes": 5}),
]


# The shared harness (config, .keras reload, fit, mixed_float16) runs for every registered head
# from the component table: tests/components.py, tests/test_components.py.


def test_registry():
    assert heads.names() == [
        "softmax",
        "normface",
        "sphereface",
        "cosface",
        "arcface",
        "combined_margin",
        "mv_softmax",
        "curricularface",
        "recurricularface",
    ]
    for name, (cls, _) in zip(heads.names(), HEAD_CASES):
        assert type(heads.get(name, num_classes=3)) is cls
        assert type(heads.get(cls.__name__, num_classes=3)) is cls
        assert issubclass(cls, heads.MarginHead)
    with pytest.raises(ValueError, match="Unknown head 'arc_face'.*arcface"):
        heads.get("arc_face", num_classes=3)


def test_heads_are_built_through_the_shared_registry():
    from tfface import registry

    assert registry.names("head") == heads.names()
    head = registry.build("head", registry.Component("arcface", {"margin": 0.3}), num_classes=5)
    assert type(head) is heads.ArcFace and (head.num_classes, head.margin) == (5, 0.3)
    assert registry.entry("head", "SphereFace").name == "sphereface"
    assert registry.entry("head", "cosface").inject == ("num_classes",)
    with pytest.raises(registry.RegistryError, match="head.num_classes: set by the builder"):
        registry.build("head", {"name": "cosface", "num_classes": 3}, key="head", num_classes=3)
    with pytest.raises(registry.RegistryError, match="margn"):
        registry.build("head", {"name": "cosface", "margn": 0.2}, key="head", num_classes=3)
    # PartialFC wraps a head; it is not one of the registered heads.
    assert "partial_fc" not in heads.names() and "PartialFC" not in heads.names()
    with pytest.raises(registry.RegistryError, match="unknown head 'PartialFC'"):
        registry.entry("head", "PartialFC")


def test_defaults_follow_the_contract():
    assert heads.NormFace(3).scale == 64.0
    assert (heads.CosFace(3).scale, heads.CosFace(3).margin) == (64.0, 0.35)
    assert (heads.ArcFace(3).scale, heads.ArcFace(3).margin) == (64.0, 0.5)
    cm = heads.CombinedMargin(3)
    assert (cm.scale, cm.m1, cm.m2, cm.m3) == (64.0, 1.0, 0.5, 0.0)
    mv = heads.MVSoftmax(3)
    assert (mv.scale, mv.margin, mv.t, mv.margin_type, mv.adaptive) == (32.0, 0.35, 0.2, "am", True)
    cf = heads.CurricularFace(3)
    assert (cf.scale, cf.margin, cf.momentum) == (64.0, 0.5, 0.01)
    rc = heads.ReCurricularFace(3)
    assert (rc.a, rc.b, rc.momentum) == (1.1, 0.4, 0.01)
    sf = heads.SphereFace(3)
    assert (sf.margin, sf.anneal, sf.lambda_base, sf.lambda_gamma, sf.lambda_power, sf.lambda_min) == (
        4, True, 1000.0, 0.12, 1.0, 5.0
    )
    assert heads.Softmax(3).use_bias is True


def _batch(b=6, d=8, c=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, d)).astype("float32"), rng.integers(0, c, size=b).astype("int32")


def test_plain_and_margin_logits_against_reference():
    x, y = _batch()
    for head, target, s in [
        (heads.NormFace(5, scale=16.0), None, 16.0),
        (heads.CosFace(5, scale=16.0), lambda c: c - 0.35, 16.0),
        (heads.ArcFace(5, scale=16.0), lambda c: ref.arcface_target(c, 0.5), 16.0),
    ]:
        head.build((None, 8))
        c = ref.cosine(x, head.kernel.numpy())
        np.testing.assert_allclose(head(x).numpy(), s * c, atol=1e-4)
        want = s * c if target is None else ref.margin_logits(c, y, s, target)
        np.testing.assert_allclose(head(x, y, training=True).numpy(), want, atol=1e-4)
    softmax = heads.Softmax(5)
    softmax.build((None, 8))
    softmax.bias.assign(np.arange(5, dtype="float32"))
    np.testing.assert_allclose(
        softmax(x, y).numpy(), x.astype(np.float64) @ softmax.kernel.numpy() + np.arange(5), atol=1e-4
    )


@pytest.mark.parametrize("cls", [heads.CurricularFace, heads.ReCurricularFace])
def test_curricular_t_after_several_steps(cls):
    """t follows the EMA of the batch-mean target cosine (numpy loop), computed before the
    modulation; the logits use the updated t; evaluation and plain calls leave t alone."""
    head = cls(6, momentum=0.1)
    head.build((None, 8))
    modulate = (
        ref.curricular_modulate if cls is heads.CurricularFace else ref.recurricular_modulate(1.1, 0.4)
    )
    kernel = head.kernel.numpy()
    t = 0.0
    for step in range(5):
        x, y = _batch(b=7, c=6, seed=step + 10)
        c = ref.cosine(x, kernel)
        t = 0.1 * c[np.arange(7), y].mean() + 0.9 * t
        got = head(x, y, training=True)
        assert head.t.numpy() == pytest.approx(t, abs=1e-6)
        np.testing.assert_allclose(
            got.numpy(), ref.curricular_logits(c, y, 64.0, 0.5, t, modulate), atol=5e-4
        )
    assert t != 0.0
    head(x, y, training=False)
    head(x, training=True)
    assert head.t.numpy() == pytest.approx(t, abs=1e-6)
    assert float(head.monitored()["t"]) == pytest.approx(t, abs=1e-6)
    # The stored t drives evaluation logits too.
    np.testing.assert_allclose(
        head(x, y, training=False).numpy(),
        ref.curricular_logits(ref.cosine(x, kernel), y, 64.0, 0.5, t, modulate),
        atol=5e-4,
    )


def test_curricular_t_saved_in_checkpoint_and_keras_file():
    head = heads.CurricularFace(5)
    x, y = _batch()
    for _ in range(3):
        head(x, y, training=True)
    t = head.t.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = tf.train.Checkpoint(head=head).save(os.path.join(tmp, "ckpt"))
        fresh = heads.CurricularFace(5)
        fresh.build((None, 8))
        tf.train.Checkpoint(head=fresh).restore(path).assert_consumed()
        assert fresh.t.numpy() == t
        emb = keras.Input((8,))
        lab = keras.Input((), dtype="int32")
        model = keras.Model([emb, lab], head(emb, lab))
        model.save(os.path.join(tmp, "m.keras"))
        loaded = keras.saving.load_model(os.path.join(tmp, "m.keras"))
        assert loaded.layers[-1].t.numpy() == t
        assert not loaded.layers[-1].t.trainable


def test_sphereface_annealing_counts_training_steps():
    x, y = _batch(c=4)
    head = heads.SphereFace(4)
    head.build((None, 8))
    w = head.kernel.numpy()
    assert float(head.monitored()["lambda"]) == pytest.approx(1000.0)
    for step in range(1, 4):
        got = head(x, y, training=True).numpy()
        lam = ref.sphere_lambda(step)
        np.testing.assert_allclose(got, ref.sphereface_logits(x, w, y, 4, lam), rtol=1e-4, atol=1e-4)
    assert int(head.iteration.numpy()) == 3
    assert float(head.monitored()["lambda"]) == pytest.approx(ref.sphere_lambda(3), rel=1e-6)
    head(x, y, training=False)
    head(x)
    assert int(head.iteration.numpy()) == 3
    head.iteration.assign(10**6)
    np.testing.assert_allclose(
        head(x, y, training=False).numpy(), ref.sphereface_logits(x, w, y, 4, 5.0), rtol=1e-4, atol=1e-4
    )
    pure = heads.SphereFace(4, anneal=False)
    pure.build((None, 8))
    pure.kernel.assign(w)
    np.testing.assert_allclose(
        pure(x, y, training=True).numpy(), ref.sphereface_logits(x, w, y, 4, 0.0), rtol=1e-4, atol=1e-4
    )
    assert float(pure.monitored()["lambda"]) == 0.0


def test_monitored():
    for name in ["softmax", "normface", "cosface", "arcface", "combined_margin", "mv_softmax"]:
        assert heads.get(name, num_classes=3).monitored() == {}


# -- bad input ---------------------------------------------------------------------------------

BAD = [([0, 1, 5, 2, 0, 1], "5"), ([0, -1, 2, 2, 0, 1], "-1"), ([0, 1, 2, 7, 9, 1], "7, 9")]


@pytest.mark.parametrize("labels,shown", BAD)
def test_out_of_range_labels_eager(labels, shown):
    x, _ = _batch()
    head = heads.ArcFace(5)
    with pytest.raises(ValueError, match=rf"ArcFace: label\(s\) out of range: \[{shown}\].*num_classes=5"):
        head(x, np.array(labels, "int32"), training=True)


def test_out_of_range_labels_graph():
    x, _ = _batch()
    head = heads.CurricularFace(5)
    step = tf.function(lambda e, l: head(e, l, training=True))
    step(x, np.zeros(6, "int32"))
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        step(x, np.array([0, 1, 2, 11, 0, 1], "int32"))
    message = str(info.value)
    assert "out of range" in message and "11" in message and "num_classes=5" in message
    assert head.t.numpy() == head.t.numpy()  # t stays finite: the assertion ran before the update


def test_out_of_range_labels_in_fit_is_an_error_not_a_nan_loss():
    from tfface.testing import head_model

    x, _ = _batch()
    head = heads.CosFace(5)
    model = head_model(head, 8)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    bad = np.array([0, 1, 2, 3, 4, 5], "int32")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)out of range.*5.*num_classes=5"):
        model.fit([x, bad], np.clip(bad, 0, 4), batch_size=6, epochs=1, verbose=0)


def test_wrong_label_shapes_and_dtypes():
    x, y = _batch()
    head = heads.NormFace(5)
    with pytest.raises(ValueError, match=re.escape("labels must have shape (batch,) or (batch, 1), got shape (3, 2)")):
        head(x, np.zeros((3, 2), "int32"))
    with pytest.raises(ValueError, match=re.escape("got shape ()")):
        head(x, np.int32(1))
    with pytest.raises(ValueError, match="got 4 labels for a batch of 6 embeddings"):
        head(x, np.zeros(4, "int32"))
    with pytest.raises(TypeError, match="integer class indices, got dtype float32"):
        head(x, y.astype("float32"))
    # (batch, 1) labels are accepted, as Keras pipelines often produce them.
    np.testing.assert_allclose(head(x, y[:, None]).numpy(), head(x, y).numpy())
    with pytest.raises(ValueError, match="embeddings have dimension 3, but the head was built for embedding_dim=8"):
        head(x[:, :3])
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        heads.ArcFace(0)
    with pytest.raises(ValueError, match="margin must be a positive integer, got 1.5"):
        heads.SphereFace(3, margin=1.5)
    with pytest.raises(ValueError, match="margin_type must be 'am' or 'arc', got 'cos'"):
        heads.MVSoftmax(3, margin_type="cos")
