"""jit_compile="auto": on a CPU (and wherever Keras does not compile the whole step) FaceModel
compiles the head and its logits loss with XLA; the results equal the uncompiled step's, and a
label out of range still stops training with an error (outside the compiled part, and in the
input pipeline)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from training_helpers import dense_backbone, separable
from tfface import heads
from tfface.recipe import Recipe, RecipeError, load_recipe
from tfface.testing import mirrored_strategy
from tfface.training import FaceModel

CPU_ONLY = not tf.config.list_physical_devices("GPU")


def _train(jit, strategy=None, labels=None, epochs=2):
    x, y = separable(per_class=4)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = FaceModel(dense_backbone(dim_out=8, seed=2), heads.CurricularFace(4, scale=8.0, margin=0.3))
        model.head.kernel.assign(np.random.default_rng(4).normal(size=(8, 4)).astype("float32"))
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=jit)
    history = model.fit(x, y if labels is None else labels, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return model, history.history


@pytest.mark.skipif(not CPU_ONLY, reason="on a GPU Keras' 'auto' compiles the whole step instead")
def test_auto_compiles_head_and_loss_with_the_same_results():
    plain, plain_logs = _train(False)
    auto, auto_logs = _train("auto")
    assert not plain.head_jit_compile and auto.head_jit_compile and auto.jit_compile is False
    for a, b in zip(plain.weights, auto.weights):  # the weights and CurricularFace's t
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=a.path)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(auto_logs[key], plain_logs[key], rtol=1e-5, err_msg=key)


def test_auto_leaves_the_head_uncompiled_under_mirrored_strategy():
    model, _ = _train("auto", strategy=mirrored_strategy(2), epochs=1)
    assert not model.head_jit_compile and model.jit_compile is False and not model._replica_jit


def test_compile_refuses_other_jit_values():
    model = FaceModel(dense_backbone(dim_out=8), heads.CosFace(4))
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto'"):
        model.compile("sgd", jit_compile="yes")


def test_heads_are_xla_compatible_but_partial_fc_is_not():
    assert heads.CurricularFace(4).supports_jit and heads.ArcFace(4).supports_jit
    assert not heads.PartialFC(heads.ArcFace(4), sample_rate=0.5).supports_jit


@pytest.mark.parametrize("wrong", [9, -1])
def test_out_of_range_label_still_stops_the_auto_step(wrong):
    x, y = separable(per_class=4)
    bad = np.array(y).copy()
    bad[3] = wrong
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label is >= the head.{1,3}s num_classes \(4\)"):
        _train("auto", labels=bad, epochs=1)


def test_recipe_jit_compile_defaults_to_auto():
    recipe = load_recipe("smoke")
    assert Recipe.__dataclass_fields__["jit_compile"].default == "auto"
    assert load_recipe("smoke", {"jit_compile": False}).jit_compile is False
    # "auto" turns XLA off under determinism; only an explicit true clashes with it.
    assert load_recipe("smoke", {"deterministic": True}).jit_compile == "auto"
    with pytest.raises(RecipeError, match="jit_compile, deterministic"):
        load_recipe("smoke", {"deterministic": True, "jit_compile": True})
    with pytest.raises(RecipeError, match="jit_compile"):
        load_recipe("smoke", {"jit_compile": "fast"})
    assert recipe.jit_compile in (True, False, "auto")
