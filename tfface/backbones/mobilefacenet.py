"""MobileFaceNet (Chen et al., "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices", 2018, Table 1) — the backbone of CurricularFace's convergence
study.

Structure (112×112 input; bottleneck rows are [expansion t, channels c, repeats n, stride s]):

=========================  ==========================  ==========
layer                      t, c, n, s                  output
=========================  ==========================  ==========
conv3×3                    -, 64, 1, 2                 56×56×64
depthwise conv3×3          -, 64, 1, 1                 56×56×64
bottleneck                 2, 64, 5, 2                 28×28×64
bottleneck                 4, 128, 1, 2                14×14×128
bottleneck                 2, 128, 6, 1                14×14×128
bottleneck                 4, 128, 1, 2                7×7×128
bottleneck                 2, 128, 2, 1                7×7×128
conv1×1                    -, 512, 1, 1                7×7×512
linear GDConv7×7           -, 512, 1, 1                1×1×512
linear conv1×1             -, D, 1, 1                  D
=========================  ==========================  ==========

A bottleneck is MobileNetV2's inverted residual: conv1×1 to t·c_in → BN → PReLU → depthwise
3×3 (stride s on the first of the n repeats) → BN → PReLU → linear conv1×1 to c → BN, with an
identity shortcut when the stride is 1 and the channels match. Every conv is bias-free and
followed by BN (epsilon 1e-5, PyTorch momentum 0.1); the non-linearity is PReLU (one slope per
channel) as in the paper; the last two layers are linear (BN, no activation). The global
depthwise conv (GDConv) covers the whole last feature map, 7×7 at 112×112 (its kernel follows
the input size, so smaller test inputs work).

``count_params()`` (including BN moving statistics): 1,022,720 at D=128, of which 1,003,136
trainable (the paper reports "0.99M" parameters), and 1,220,864 at D=512 (1,200,512 trainable).
"""
import keras

from tfface import registry
from tfface.backbones import common

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
# (t, c, n, s) of the paper's Table 1.
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def _bn(name, sync):
    return common.batch_norm(name, BN_MOMENTUM, BN_EPSILON, sync=sync)


def _prelu(name):
    return keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
    )


def _pad(x, name):
    # PyTorch-style symmetric padding of 1 for 3×3 kernels (Keras "same" pads stride-2 convs
    # only at the bottom/right), so weights ported from PyTorch see the same pixels.
    return keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)


def _conv_bn(x, filters, kernel, strides, name, sync, activation=True):
    if kernel == 3:
        x = _pad(x, name)
    x = keras.layers.Conv2D(filters, kernel, strides=strides, use_bias=False, name=name)(x)
    x = _bn(f"{name}_bn", sync)(x)
    return _prelu(f"{name}_prelu")(x) if activation else x


def _depthwise_bn(x, strides, name, sync, kernel=3, activation=True):
    if kernel == 3:
        x = _pad(x, name)
    x = keras.layers.DepthwiseConv2D(kernel, strides=strides, use_bias=False, name=name)(x)
    x = _bn(f"{name}_bn", sync)(x)
    return _prelu(f"{name}_prelu")(x) if activation else x


def _bottleneck(x, t, c, strides, name, sync):
    y = _conv_bn(x, t * x.shape[-1], 1, 1, f"{name}_expand", sync)
    y = _depthwise_bn(y, strides, f"{name}_dw", sync)
    y = _conv_bn(y, c, 1, 1, f"{name}_project", sync, activation=False)
    if strides == 1 and x.shape[-1] == c:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


@registry.register(
    "backbone",
    "mobilefacenet",
    inject=("input_shape",),
    input_shape=(112, 112, 3),
    embedding_size=512,
    min_input_size=16,
)
def mobilefacenet(input_shape=(112, 112, 3), embedding_size=512, sync_bn=False):
    """MobileFaceNet (see the module docstring).

    Args:
      input_shape: ``(H, W, 3)``, at least 16×16 (four stride-2 layers); 112×112 is native.
      embedding_size: D, the paper's 128 or insightface's 512 (the default here).
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute``.
    """
    name = "mobilefacenet"
    input_shape = common.check_input_shape(name, input_shape, 16)
    embedding_size = common.check_embedding_size(name, embedding_size)

    images, x = common.image_input(input_shape)
    x = _conv_bn(x, 64, 3, 2, "conv1", sync_bn)
    x = _depthwise_bn(x, 1, "conv2_dw", sync_bn)
    for stage, (t, c, n, s) in enumerate(BOTTLENECKS, start=1):
        for i in range(n):
            x = _bottleneck(x, t, c, s if i == 0 else 1, f"bottleneck{stage}_{i + 1}", sync_bn)
    x = _conv_bn(x, 512, 1, 1, "conv3", sync_bn)
    # Global depthwise conv: one kernel the size of the whole feature map, linear.
    x = _depthwise_bn(x, 1, "gdconv", sync_bn, kernel=tuple(x.shape[1:3]), activation=False)
    x = _conv_bn(x, embedding_size, 1, 1, "linear_conv", sync_bn, activation=False)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(images, common.embedding_output(x), name=name)
