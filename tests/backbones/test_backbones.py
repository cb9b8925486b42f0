"""Parametrised checks over every registered backbone, plus the architecture details the papers
fix (parameter counts, stage shapes, layer settings).

Big models are built once at their native size (``_native``, through ``registry.build`` exactly
as the recipe builder calls it) and only counted/inspected; the forward pass, ``mixed_float16``, a
``fit`` step and the ``.keras`` round trip run at a small input from the shared component table
(``tests/components.py``, ``tests/test_components.py``).
"""
import functools

import keras
import numpy as np
import pytest

from tfface import backbones, registry
from tfface.registry import Component

# Independent figures: facenet's Inception-ResNet-v1 and insightface's IResNets as quoted in
# issue 4 (count_params() includes batch-norm moving statistics), the others from the analytic
# counts below.
EXPECTED_PARAMS = {
    ("inception_resnet_v1", 512): 23_497_424,
    ("inception_resnet_v1", 128): 22_808_144,
    ("iresnet18", 512): 24_040_320,
    ("iresnet34", 512): 34_165_184,
    ("iresnet50", 512): 43_628_992,
    ("iresnet100", 512): 65_225_792,
    # Documented in attentionnet_irse.py / docs/backbones.md (derived architecture, no paper figure).
    ("attentionnet_irse", 512): 84_281_808,
}
# insightface's sum(p.numel() for p in model.parameters()): no moving statistics, but the frozen
# scale of the last batch norm counts.
EXPECTED_PARAMS_NO_MOVING_STATS = {
    "iresnet18": 24_025_600,
    "iresnet34": 34_139_328,
    "iresnet50": 43_590_848,
    "iresnet100": 65_156_160,
}


def _bn(c):
    return 4 * c  # gamma, beta, moving mean, moving variance


def mobilefacenet_count(d):
    """Parameters of MobileFaceNet from the paper's Table 1 (convs without bias, BN after every
    conv, PReLU with one slope per channel after the non-linear ones)."""
    total = 3 * 3 * 3 * 64 + _bn(64) + 64  # conv3×3/2 64
    total += 3 * 3 * 64 + _bn(64) + 64  # depthwise 3×3
    c_in = 64
    for t, c, n, _ in [(2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)]:
        for _ in range(n):
            e = t * c_in
            total += c_in * e + _bn(e) + e  # expand 1×1
            total += 9 * e + _bn(e) + e  # depthwise 3×3
            total += e * c + _bn(c)  # linear projection
            c_in = c
    total += 128 * 512 + _bn(512) + 512  # conv1×1 512
    total += 7 * 7 * 512 + _bn(512)  # linear GDConv7×7
    total += 512 * d + _bn(d)  # linear conv1×1 d
    return total


def tiny_count(d):
    return (27 * 16 + _bn(16)) + (9 * 16 * 32 + _bn(32)) + (9 * 32 * 64 + _bn(64)) + 64 * d + _bn(d)


EXPECTED_PARAMS[("mobilefacenet", 128)] = mobilefacenet_count(128)
EXPECTED_PARAMS[("mobilefacenet", 512)] = mobilefacenet_count(512)
EXPECTED_PARAMS[("tiny", 64)] = tiny_count(64)


@functools.lru_cache(maxsize=None)
def _native(name, embedding_size=None):
    # No embedding_size: the registered default must come out (512, or 64 for tiny).
    args = {} if embedding_size is None else {"embedding_size": embedding_size}
    input_shape = backbones.spec(name).input_shape
    return registry.build("backbone", Component(name, args), input_shape=input_shape)


def _images(shape, batch=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch,) + shape).astype("float32")


# ---------------------------------------------------------------------------------------------
# every backbone, native size, built but not run


@pytest.mark.parametrize("name", backbones.names())
def test_native_model(name):
    s = backbones.spec(name)
    model = _native(name)
    assert tuple(model.input.shape) == (None,) + s.input_shape
    assert tuple(model.output.shape) == (None, s.embedding_size)
    assert model.output.dtype == "float32"
    # The pixel normalisation is the first layer: exports need no preprocessing.
    first = model.layers[1]
    assert isinstance(first, keras.layers.Rescaling), type(first)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    if (name, s.embedding_size) in EXPECTED_PARAMS:
        assert model.count_params() == EXPECTED_PARAMS[(name, s.embedding_size)]
    if name in EXPECTED_PARAMS_NO_MOVING_STATS:
        without = sum(
            int(np.prod(w.shape))
            for w in model.weights
            if not w.path.endswith(("moving_mean", "moving_variance"))
        )
        assert without == EXPECTED_PARAMS_NO_MOVING_STATS[name]


@pytest.mark.parametrize("name, d", [("inception_resnet_v1", 128), ("mobilefacenet", 128)])
def test_other_embedding_sizes(name, d):
    model = backbones.get(name, embedding_size=d)
    assert tuple(model.output.shape) == (None, d)
    assert model.count_params() == EXPECTED_PARAMS[(name, d)]


# ---------------------------------------------------------------------------------------------
# architecture details


def _layers(model, cls):
    return [layer for layer in model.layers if type(layer) is cls]


def test_inception_resnet_v1_structure():
    model = _native("inception_resnet_v1")
    # Shapes at 160×160, worked out by hand from facenet's strides and paddings.
    shapes = {
        "Conv2d_4b_3x3_relu": (17, 17, 256),
        "Repeat_block35_5_relu": (17, 17, 256),
        "Mixed_6a_concat": (8, 8, 896),
        "Repeat_1_block17_10_relu": (8, 8, 896),
        "Mixed_7a_concat": (3, 3, 1792),
        "Block8_add": (3, 3, 1792),
    }
    for layer, shape in shapes.items():
        assert tuple(model.get_layer(layer).output.shape[1:]) == shape, layer
    scales = [layer.scale for layer in _layers(model, keras.layers.Rescaling)[1:]]
    assert scales == [0.17] * 5 + [0.10] * 10 + [0.20] * 5  # the final Block8 has scale 1
    # The final Block8 has no activation: the pool reads the residual sum directly.
    assert model.get_layer("AvgPool_1a").input is model.get_layer("Block8_add").output
    for bn in _layers(model, keras.layers.BatchNormalization):
        assert (bn.momentum, bn.epsilon, bn.center, bn.scale) == (0.995, 1e-3, True, False)
    assert not model.get_layer("Bottleneck").use_bias
    assert model.get_layer("Dropout").rate == pytest.approx(1.0 - 0.8)  # keep probability 0.8
    for conv in _layers(model, keras.layers.Conv2D):
        assert conv.use_bias == conv.name.endswith("_up"), conv.name


def test_iresnet_structure():
    model = _native("iresnet50")
    for stage, (side, width) in enumerate([(56, 64), (28, 128), (14, 256), (7, 512)], start=1):
        out = model.get_layer(f"stage{stage}_unit1_add").output
        assert tuple(out.shape[1:]) == (side, side, width)
    units = [layer for layer in model.layers if layer.name.endswith("_add")]
    assert len(units) == 3 + 4 + 14 + 3
    for prelu in _layers(model, keras.layers.PReLU):
        assert tuple(prelu.alpha.shape) == (1, 1, prelu.input.shape[-1])  # one per channel
    for conv in _layers(model, keras.layers.Conv2D):
        assert not conv.use_bias
    for bn in _layers(model, keras.layers.BatchNormalization):
        assert (bn.epsilon, bn.momentum) == (1e-5, 0.9)
    assert model.get_layer("output_fc").use_bias
    assert tuple(model.get_layer("output_fc").kernel.shape) == (7 * 7 * 512, 512)
    features = model.get_layer("features")
    assert isinstance(features, backbones.FrozenScaleBatchNormalization)
    assert not features.gamma.trainable
    assert all(w is not features.gamma for w in model.trainable_weights)


def test_mobilefacenet_structure():
    model = _native("mobilefacenet")
    shapes = {
        "conv1_prelu": (56, 56, 64),
        "conv2_dw_prelu": (56, 56, 64),
        "bottleneck1_5_add": (28, 28, 64),
        "bottleneck2_1_project_bn": (14, 14, 128),
        "bottleneck3_6_add": (14, 14, 128),
        "bottleneck4_1_project_bn": (7, 7, 128),
        "bottleneck5_2_add": (7, 7, 128),
        "conv3_prelu": (7, 7, 512),
        "gdconv_bn": (1, 1, 512),
    }
    for layer, shape in shapes.items():
        assert tuple(model.get_layer(layer).output.shape[1:]) == shape, layer
    assert tuple(model.get_layer("gdconv").kernel_size) == (7, 7)
    # The last two layers are linear: no PReLU after GDConv or the embedding conv.
    assert model.get_layer("flatten").input is model.get_layer("linear_conv_bn").output


def test_attentionnet_irse_structure():
    model = _native("attentionnet_irse")
    shapes = {
        "stem_prelu": (56, 56, 64),
        "attention1_last_add": (56, 56, 256),
        "attention1_bottom_add": (7, 7, 256),  # three mask levels below 56×56
        "attention2_last_add": (28, 28, 512),
        "attention2_bottom_add": (7, 7, 512),
        "attention3_last_add": (14, 14, 1024),
        "attention3_bottom_add": (7, 7, 1024),
        "final3_add": (7, 7, 2048),
    }
    for layer, shape in shapes.items():
        assert tuple(model.get_layer(layer).output.shape[1:]) == shape, layer
    se = model.get_layer("final3_se_fc1")
    assert tuple(se.kernel.shape) == (2048, 2048 // 16)


# ---------------------------------------------------------------------------------------------
# tf.distribute


def test_mirrored_step_equals_single_device_step():
    """One SGD step under MirroredStrategy(2) on a global batch of 8 equals the single-device
    step on the same 8 images.

    Batch norm in training mode normalises with the statistics of the batch it sees; under
    MirroredStrategy each replica sees 4 images, so plain BN differs from the single-device step
    (mean of per-replica statistics ≠ statistics of the global batch for the variance, and the
    gradients follow). ``sync_bn=True`` (Keras ``synchronized=True``) all-reduces the batch
    statistics across replicas, which makes the step equal to the single-device one.
    """
    from tfface.testing import mirrored_strategy

    x = _images((32, 32, 3), batch=8, seed=1)
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3], dtype="int32")

    def make():
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [backbones.get("tiny", embedding_size=8, sync_bn=True), keras.layers.Dense(4)]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        return model

    single = make()
    with mirrored_strategy(2).scope():
        mirrored = make()
    mirrored.set_weights(single.get_weights())
    initial = [np.array(w) for w in single.weights]

    single.fit(x, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    mirrored.fit(x, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for w_single, w_mirrored, w0 in zip(single.weights, mirrored.weights, initial):
        assert not np.allclose(np.array(w_single), w0) or "moving_variance" in w_single.path
        np.testing.assert_allclose(
            np.array(w_mirrored), np.array(w_single), rtol=1e-4, atol=1e-5, err_msg=w_single.path
        )
