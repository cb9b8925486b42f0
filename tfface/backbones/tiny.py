"""``tiny``: a few small convolutions, for tests, the smoke recipe and the demo.

Structure: conv3×3/2 16 → BN → ReLU → conv3×3/2 32 → BN → ReLU → conv3×3/2 64 → BN → ReLU →
global average pool → FC D (no bias) → BN. Any input of at least 32×32; 64-d by default;
``count_params()`` 28,272 at 64-d (independent of the input size).
"""
import keras

from tfface import registry
from tfface.backbones import common

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
WIDTHS = (16, 32, 64)


@registry.register(
    "backbone",
    "tiny",
    inject=("input_shape",),
    input_shape=(32, 32, 3),
    embedding_size=64,
    min_input_size=32,
)
def tiny(input_shape=(32, 32, 3), embedding_size=64, sync_bn=False):
    """A small conv net (see the module docstring).

    Args:
      input_shape: ``(H, W, 3)``, at least 32×32.
      embedding_size: D (64 by default).
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute`` (needed for
        a distributed step to equal the single-device step on the same global batch).
    """
    name = "tiny"
    input_shape = common.check_input_shape(name, input_shape, 32)
    embedding_size = common.check_embedding_size(name, embedding_size)

    images, x = common.image_input(input_shape)
    for i, width in enumerate(WIDTHS, start=1):
        x = keras.layers.Conv2D(
            width, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}"
        )(x)
        x = common.batch_norm(f"conv{i}_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(embedding_size, use_bias=False, name="fc")(x)
    x = common.batch_norm("fc_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
    return keras.Model(images, common.embedding_output(x), name=name)
