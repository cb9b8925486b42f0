"""``tiny``: a few small convolutions, for tests, the smoke recipe and the demo.

Structure: conv3×3/2 16 → BN → ReLU → conv3×3/2 32 → BN → ReLU → conv3×3/2 64 → BN → ReLU →
global average pool → FC D (no bias) → BN. Any input of at least 32×32; 64-d by default;
``count_params()`` 28,272 at 64-d (independent of the input size).

``widths`` sets the convolutions (one stride-2 conv3×3 + BN + ReLU each). ``pooling="flatten"``
replaces the global average pool by the face-network output block (BN → flatten → FC → BN, as
IResNet's and MobileFaceNet's): the FC sees *where* each feature is, which a global average
throws away (the demo's held-out accuracy rises from about 0.88 to above 0.92 with it); its
size then depends on the input size.
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
def tiny(input_shape=(32, 32, 3), embedding_size=64, sync_bn=False, widths=WIDTHS, pooling="avg"):
    """A small conv net (see the module docstring).

    Args:
      input_shape: ``(H, W, 3)``, at least 32×32.
      embedding_size: D (64 by default).
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute`` (needed for
        a distributed step to equal the single-device step on the same global batch).
      widths: channels of the stride-2 convolutions, one per convolution (default 16, 32, 64).
      pooling: ``"avg"`` (global average pool) or ``"flatten"`` (BN → flatten → FC → BN).
    """
    name = "tiny"
    input_shape = common.check_input_shape(name, input_shape, 32)
    embedding_size = common.check_embedding_size(name, embedding_size)
    try:
        widths = tuple(int(w) for w in widths)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: widths must be a list of positive ints, got {widths!r}") from None
    if not widths or min(widths) < 1 or 2 ** len(widths) > min(input_shape[:2]):
        raise ValueError(f"{name}: widths must be 1..{int(min(input_shape[:2])).bit_length() - 1} positive ints "
                         f"for a {input_shape[0]}x{input_shape[1]} input, got {list(widths)}")
    if pooling not in ("avg", "flatten"):
        raise ValueError(f"{name}: pooling must be 'avg' or 'flatten', got {pooling!r}")

    images, x = common.image_input(input_shape)
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(
            width, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}"
        )(x)
        x = common.batch_norm(f"conv{i}_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = common.batch_norm("pool_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
        x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(embedding_size, use_bias=False, name="fc")(x)
    x = common.batch_norm("fc_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
    return keras.Model(images, common.embedding_output(x), name=name)
