"""FaceModel: the training step against independent computations."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface.testing import mirrored_strategy
from tfface.training import FaceModel

from standins import CosHead


def dense_backbone(dim_in=6, dim_out=4, seed=0):
    inputs = keras.Input((dim_in,))
    outputs = keras.layers.Dense(dim_out, kernel_initializer=keras.initializers.GlorotUniform(seed), name="fc")(inputs)
    return keras.Model(inputs, outputs, name="dense_backbone")


def batch(n=8, dim=6, classes=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype("float32"), (np.arange(n) % classes).astype("int32")


def test_coupled_weight_decay_one_sgd_step_matches_numpy():
    lr, wd = 0.5, 0.1
    x, y = batch()
    model = FaceModel(dense_backbone(), CosHead(5, scale=4.0, margin=0.0), weight_decay=wd)
    model.compile(keras.optimizers.SGD(lr))
    kernel, bias, head_kernel = model.backbone.get_layer("fc").kernel, model.backbone.get_layer("fc").bias, model.head.kernel
    assert {id(v) for v in model.decay_variables} == {id(kernel), id(head_kernel)}
    before = [np.array(v) for v in (kernel, bias, head_kernel)]
    # g: gradient of the data loss alone (mean cross-entropy of the head's logits), no decay.
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = ce(y, model.head(model.backbone(x), y, training=False))
    grads = [np.array(g) for g in tape.gradient(loss, [kernel, bias, head_kernel])]
    model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    expected_kernel = before[0] - lr * (grads[0] + wd * before[0])
    expected_bias = before[1] - lr * grads[1]  # biases are not decayed
    expected_head = before[2] - lr * (grads[2] + wd * before[2])
    np.testing.assert_allclose(np.array(kernel), expected_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(bias), expected_bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(head_kernel), expected_head, rtol=1e-5, atol=1e-6)


def _train_two_steps(strategy, x, y, initial):
    with strategy.scope():
        model = FaceModel(dense_backbone(), CosHead(5, scale=4.0, margin=0.2), weight_decay=5e-3)
        model.compile(keras.optimizers.SGD(0.3, momentum=0.9))
        model.set_weights(initial)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model.fit(ds, epochs=2, verbose=0)
    return [np.array(v) for v in model.trainable_variables], model


def test_mirrored_equals_one_device_on_the_same_global_batch():
    x, y = batch(16)
    reference = FaceModel(dense_backbone(), CosHead(5, scale=4.0, margin=0.2))
    initial = reference.get_weights()
    single, _ = _train_two_steps(tf.distribute.get_strategy(), x, y, initial)
    mirrored, model = _train_two_steps(mirrored_strategy(2), x, y, initial)
    assert model.distribute_strategy.num_replicas_in_sync == 2
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert not np.allclose(single[0], initial[0])
    assert len(single) == 3
