"""Inception-ResNet-v1 as in facenet (``src/models/inception_resnet_v1.py``), the MML paper's
backbone.

Structure (160×160 input; shapes at 160):

=====================  ======================================================  =============
stage                  layers                                                  output
=====================  ======================================================  =============
stem                   conv3×3/2 32 valid, conv3×3 32 valid, conv3×3 64 same,  17×17×256
                       maxpool3×3/2 valid, conv1×1 80, conv3×3 192 valid,
                       conv3×3/2 256 valid
5 × Block35 (0.17)     [1×1 32 | 1×1 32→3×3 32 | 1×1 32→3×3 32→3×3 32]          17×17×256
                       → 1×1 256 (bias, linear), x + 0.17·up, ReLU
Reduction-A            [3×3/2 384 | 1×1 192→3×3 192→3×3/2 256 | maxpool/2]       8×8×896
10 × Block17 (0.10)    [1×1 128 | 1×1 128→1×7 128→7×1 128] → 1×1 896            8×8×896
Reduction-B            [1×1 256→3×3/2 384 | 1×1 256→3×3/2 256 |                3×3×1792
                       1×1 256→3×3 256→3×3/2 256 | maxpool/2]
5 × Block8 (0.20)      [1×1 192 | 1×1 192→1×3 192→3×1 192] → 1×1 1792           3×3×1792
Block8 (1.0, linear)   the same block, scale 1, no activation                 3×3×1792
head                   global average pool, dropout, bottleneck FC without     D
                       bias + batch norm (no scale)
=====================  ======================================================  =============

Every convolution except the blocks' ``up`` projections is bias-free and followed by batch
norm with facenet's parameters (decay 0.995, epsilon 1e-3, centre, no scale — slim's defaults)
and ReLU; ``up`` has a bias and no norm. Parameter count (``count_params()``, including the
batch-norm moving statistics): 23,497,424 at D=512, 22,808,144 at D=128 — facenet's figures.
"""
import keras

from tfface import registry
from tfface.backbones import common

BN_MOMENTUM = 0.995
BN_EPSILON = 1e-3
MIN_INPUT_SIZE = 75


class _Builder:
    """Holds the options shared by every conv so the block functions stay short."""

    def __init__(self, sync_bn):
        self.sync_bn = sync_bn

    def bn(self, name):
        return common.batch_norm(name, BN_MOMENTUM, BN_EPSILON, scale=False, sync=self.sync_bn)

    def conv(self, x, filters, kernel, name, strides=1, padding="same"):
        """slim.conv2d with facenet's arg scope: conv (no bias) → BN (no scale) → ReLU."""
        x = keras.layers.Conv2D(
            filters, kernel, strides=strides, padding=padding, use_bias=False, name=name
        )(x)
        x = self.bn(f"{name}_bn")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x)

    def residual(self, x, branches, scale, activation, name):
        """Concatenate the branches, project back with a linear 1×1 conv (with bias, no norm),
        add ``scale·up`` to the input, then ReLU unless ``activation`` is False."""
        mixed = keras.layers.Concatenate(name=f"{name}_concat")(branches)
        up = keras.layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_up")(mixed)
        if scale != 1.0:
            up = keras.layers.Rescaling(scale, name=f"{name}_scale")(up)
        x = keras.layers.Add(name=f"{name}_add")([x, up])
        if activation:
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
        return x

    def block35(self, x, scale, name, activation=True):
        b0 = self.conv(x, 32, 1, f"{name}_b0_1x1")
        b1 = self.conv(x, 32, 1, f"{name}_b1_0a_1x1")
        b1 = self.conv(b1, 32, 3, f"{name}_b1_0b_3x3")
        b2 = self.conv(x, 32, 1, f"{name}_b2_0a_1x1")
        b2 = self.conv(b2, 32, 3, f"{name}_b2_0b_3x3")
        b2 = self.conv(b2, 32, 3, f"{name}_b2_0c_3x3")
        return self.residual(x, [b0, b1, b2], scale, activation, name)

    def block17(self, x, scale, name, activation=True):
        b0 = self.conv(x, 128, 1, f"{name}_b0_1x1")
        b1 = self.conv(x, 128, 1, f"{name}_b1_0a_1x1")
        b1 = self.conv(b1, 128, (1, 7), f"{name}_b1_0b_1x7")
        b1 = self.conv(b1, 128, (7, 1), f"{name}_b1_0c_7x1")
        return self.residual(x, [b0, b1], scale, activation, name)

    def block8(self, x, scale, name, activation=True):
        b0 = self.conv(x, 192, 1, f"{name}_b0_1x1")
        b1 = self.conv(x, 192, 1, f"{name}_b1_0a_1x1")
        b1 = self.conv(b1, 192, (1, 3), f"{name}_b1_0b_1x3")
        b1 = self.conv(b1, 192, (3, 1), f"{name}_b1_0c_3x1")
        return self.residual(x, [b0, b1], scale, activation, name)

    def reduction_a(self, x, k, l, m, n, name):
        b0 = self.conv(x, n, 3, f"{name}_b0_1a_3x3", strides=2, padding="valid")
        b1 = self.conv(x, k, 1, f"{name}_b1_0a_1x1")
        b1 = self.conv(b1, l, 3, f"{name}_b1_0b_3x3")
        b1 = self.conv(b1, m, 3, f"{name}_b1_1a_3x3", strides=2, padding="valid")
        b2 = keras.layers.MaxPooling2D(3, 2, padding="valid", name=f"{name}_b2_pool")(x)
        return keras.layers.Concatenate(name=f"{name}_concat")([b0, b1, b2])

    def reduction_b(self, x, name):
        b0 = self.conv(x, 256, 1, f"{name}_b0_0a_1x1")
        b0 = self.conv(b0, 384, 3, f"{name}_b0_1a_3x3", strides=2, padding="valid")
        b1 = self.conv(x, 256, 1, f"{name}_b1_0a_1x1")
        b1 = self.conv(b1, 256, 3, f"{name}_b1_1a_3x3", strides=2, padding="valid")
        b2 = self.conv(x, 256, 1, f"{name}_b2_0a_1x1")
        b2 = self.conv(b2, 256, 3, f"{name}_b2_0b_3x3")
        b2 = self.conv(b2, 256, 3, f"{name}_b2_1a_3x3", strides=2, padding="valid")
        b3 = keras.layers.MaxPooling2D(3, 2, padding="valid", name=f"{name}_b3_pool")(x)
        return keras.layers.Concatenate(name=f"{name}_concat")([b0, b1, b2, b3])


@registry.register(
    "backbone",
    "inception_resnet_v1",
    inject=("input_shape",),
    input_shape=(160, 160, 3),
    embedding_size=512,
    min_input_size=MIN_INPUT_SIZE,
)
def inception_resnet_v1(
    input_shape=(160, 160, 3), embedding_size=512, dropout_keep=0.8, sync_bn=False
):
    """facenet's Inception-ResNet-v1 (see the module docstring for the structure).

    Args:
      input_shape: ``(H, W, 3)``, at least 75×75 (the stem and reductions use valid padding);
        facenet trains on 160×160 MTCNN crops.
      embedding_size: bottleneck size D (facenet's ``bottleneck_layer_size``; the MML paper
        uses 512).
      dropout_keep: keep probability of the dropout before the bottleneck (facenet's
        ``keep_probability``; facenet's default 0.8, the MML paper's recipe 0.4).
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute``.
    """
    name = "inception_resnet_v1"
    input_shape = common.check_input_shape(name, input_shape, MIN_INPUT_SIZE)
    embedding_size = common.check_embedding_size(name, embedding_size)
    if not 0.0 < float(dropout_keep) <= 1.0:
        raise ValueError(f"{name}: dropout_keep must be in (0, 1], got {dropout_keep!r}")
    b = _Builder(sync_bn)

    images, x = common.image_input(input_shape)
    x = b.conv(x, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = b.conv(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = b.conv(x, 64, 3, "Conv2d_2b_3x3")
    x = keras.layers.MaxPooling2D(3, 2, padding="valid", name="MaxPool_3a_3x3")(x)
    x = b.conv(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = b.conv(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    x = b.conv(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
    for i in range(5):
        x = b.block35(x, 0.17, f"Repeat_block35_{i + 1}")
    x = b.reduction_a(x, 192, 192, 256, 384, "Mixed_6a")
    for i in range(10):
        x = b.block17(x, 0.10, f"Repeat_1_block17_{i + 1}")
    x = b.reduction_b(x, "Mixed_7a")
    for i in range(5):
        x = b.block8(x, 0.20, f"Repeat_2_block8_{i + 1}")
    # facenet calls block8(net, activation_fn=None) with the default scale 1.0.
    x = b.block8(x, 1.0, "Block8", activation=False)
    x = keras.layers.GlobalAveragePooling2D(name="AvgPool_1a")(x)
    x = keras.layers.Dropout(1.0 - float(dropout_keep), name="Dropout")(x)
    x = keras.layers.Dense(embedding_size, use_bias=False, name="Bottleneck")(x)
    x = b.bn("Bottleneck_bn")(x)
    return keras.Model(images, common.embedding_output(x), name=name)
