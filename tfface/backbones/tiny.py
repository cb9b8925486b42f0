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
def tiny(input_shape=(32, 32, 3), embedding_size=64, sync_bn=False, widths=WIDTHS, pooling="avg",
         convs_per_stage=1, activation="relu", dropout=0.0):
    """A small conv net (see the module docstring).

    Args:
      input_shape: ``(H, W, 3)``, at least 32×32.
      embedding_size: D (64 by default).
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute`` (needed for
        a distributed step to equal the single-device step on the same global batch).
      widths: channels of the stride-2 convolutions, one per convolution (default 16, 32, 64).
      pooling: ``"avg"`` (global average pool) or ``"flatten"`` (BN → flatten → FC → BN).
      convs_per_stage: convolutions per width (default 1): the first is stride 2, the others
        stride-1 conv3×3 + BN + activation at the same width.
      activation: ``"relu"`` (default) or ``"prelu"`` (one learnt slope per channel).
      dropout: dropout rate before the FC (default 0: none).
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
    if not isinstance(convs_per_stage, int) or isinstance(convs_per_stage, bool) or convs_per_stage < 1:
        raise ValueError(f"{name}: convs_per_stage must be an int >= 1, got {convs_per_stage!r}")
    if activation not in ("relu", "prelu"):
        raise ValueError(f"{name}: activation must be 'relu' or 'prelu', got {activation!r}")
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: dropout must be a number in [0, 1), got {dropout!r}")

    def act(layer_name):
        if activation == "prelu":
            return keras.layers.PReLU(shared_axes=[1, 2], name=layer_name)
        return keras.layers.ReLU(name=layer_name)

    images, x = common.image_input(input_shape)
    for i, width in enumerate(widths, start=1):
        for j in range(convs_per_stage):
            # The first convolution of a stage keeps the names of the one-conv network.
            tag = f"conv{i}" if j == 0 else f"conv{i}_{j + 1}"
            x = keras.layers.Conv2D(
                width, 3, strides=2 if j == 0 else 1, padding="same", use_bias=False, name=tag
            )(x)
            x = common.batch_norm(f"{tag}_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
            x = act(f"{tag}_{activation}" if activation != "relu" else f"{tag}_relu")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = common.batch_norm("pool_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
        x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(embedding_size, use_bias=False, name="fc")(x)
    x = common.batch_norm("fc_bn", BN_MOMENTUM, BN_EPSILON, sync=sync_bn)(x)
    return keras.Model(images, common.embedding_output(x), name=name)
