"""IResNet-18/34/50/100: ArcFace's improved residual network (insightface ``arcface_torch``'s
``iresnet.py``), the backbone of CurricularFace (ResNet-50/100), Hard-Mining and
ReCurricularFace (ResNet-18).

Structure (112×112 input):

* stem: conv3×3/1 64 (no bias) → BN → PReLU (one slope per channel) — 112×112×64;
* four stages of improved basic units with widths 64, 128, 256, 512 and depths
  [2,2,2,2] (r18), [3,4,6,3] (r34), [3,4,14,3] (r50), [3,13,30,3] (r100). A unit is
  ``BN → conv3×3 → BN → PReLU → conv3×3 (stride) → BN``, plus the shortcut; the first unit of
  every stage has stride 2 and a conv1×1/2 + BN shortcut — 56, 28, 14, 7;
* output (insightface's "E" block): BN → dropout → flatten (7·7·512) → FC 512 (with bias) → BN
  whose scale is frozen at 1.

All convolutions are bias-free with insightface's explicit zero padding of 1 (so a stride-2
conv sees the same pixels as PyTorch's); batch norm uses epsilon 1e-5 and PyTorch's default
momentum 0.1 (Keras ``momentum=0.9``). ``count_params()`` (including batch-norm moving
statistics and the frozen scale): r18 24,040,320, r34 34,165,184, r50 43,628,992,
r100 65,225,792 — insightface's parameters plus buffers exactly.
"""
import keras

from tfface import registry
from tfface.backbones import common

BN_MOMENTUM = 0.9  # PyTorch momentum 0.1: running = 0.9·running + 0.1·batch
BN_EPSILON = 1e-5
WIDTHS = (64, 128, 256, 512)
DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _bn(name, sync):
    return common.batch_norm(name, BN_MOMENTUM, BN_EPSILON, sync=sync)


def _prelu(name):
    # One slope per channel (PyTorch's nn.PReLU(channels)), initialised to 0.25 like PyTorch.
    return keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
    )


def _conv3x3(x, filters, strides, name):
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=name)(x)


def _unit(x, filters, strides, name, sync):
    """Improved basic unit: BN-conv3×3-BN-PReLU-conv3×3(stride)-BN + shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=strides, use_bias=False, name=f"{name}_down_conv"
        )(x)
        shortcut = _bn(f"{name}_down_bn", sync)(shortcut)
    y = _bn(f"{name}_bn1", sync)(x)
    y = _conv3x3(y, filters, 1, f"{name}_conv1")
    y = _bn(f"{name}_bn2", sync)(y)
    y = _prelu(f"{name}_prelu")(y)
    y = _conv3x3(y, filters, strides, f"{name}_conv2")
    y = _bn(f"{name}_bn3", sync)(y)
    return keras.layers.Add(name=f"{name}_add")([y, shortcut])


def build_iresnet(depths, input_shape, embedding_size, dropout=0.0, sync_bn=False, name="iresnet"):
    """An IResNet with ``depths`` units per stage (see the module docstring).

    Args:
      depths: four ints, units per stage.
      input_shape: ``(H, W, 3)``, at least 16×16 (four stride-2 stages); 112×112 is native
        (the FC then sees 7×7×512).
      embedding_size: FC output size (512 in the papers).
      dropout: dropout rate before the FC (insightface's default 0; its Glint360K configs 0.4).
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute``.
    """
    input_shape = common.check_input_shape(name, input_shape, 16)
    embedding_size = common.check_embedding_size(name, embedding_size)
    dropout = common.check_rate(name, "dropout", dropout)
    if len(depths) != 4 or any(int(d) < 1 for d in depths):
        raise ValueError(f"{name}: depths must be four positive ints, got {depths!r}")

    images, x = common.image_input(input_shape)
    x = _conv3x3(x, WIDTHS[0], 1, "stem_conv")
    x = _bn("stem_bn", sync_bn)(x)
    x = _prelu("stem_prelu")(x)
    for stage, (filters, depth) in enumerate(zip(WIDTHS, depths), start=1):
        for unit in range(int(depth)):
            x = _unit(x, filters, 2 if unit == 0 else 1, f"stage{stage}_unit{unit + 1}", sync_bn)
    x = _bn("output_bn", sync_bn)(x)
    x = keras.layers.Dropout(dropout, name="output_dropout")(x)
    x = keras.layers.Flatten(name="output_flatten")(x)
    x = keras.layers.Dense(embedding_size, use_bias=True, name="output_fc")(x)
    x = common.FrozenScaleBatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=sync_bn, name="features"
    )(x)
    return keras.Model(images, common.embedding_output(x), name=name)


def _make(variant):
    depths = DEPTHS[variant]

    def builder(input_shape=(112, 112, 3), embedding_size=512, dropout=0.0, sync_bn=False):
        return build_iresnet(
            depths, input_shape, embedding_size, dropout=dropout, sync_bn=sync_bn, name=variant
        )

    builder.__name__ = builder.__qualname__ = variant
    builder.__doc__ = (
        f"{variant}: IResNet with stage depths {list(depths)}; arguments as in "
        ":func:`build_iresnet` (input 112×112, 512-d by default)."
    )
    return registry.register(
        "backbone",
        variant,
        inject=("input_shape",),
        input_shape=(112, 112, 3),
        embedding_size=512,
        min_input_size=16,
    )(builder)


iresnet18 = _make("iresnet18")
iresnet34 = _make("iresnet34")
iresnet50 = _make("iresnet50")
iresnet100 = _make("iresnet100")
