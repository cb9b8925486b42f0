"""AttentionNet-IRSE: the MV-Softmax paper's backbone (Wang et al., AAAI 2020, §4.1 "CNN
Architecture").

The paper takes the Residual Attention Network (F. Wang et al., CVPR 2017) with stage depths
[1, 1, 1] (one attention module per stage, as in Attention-56), replaces its residual units with
IR-SE units (ArcFace's improved residual unit with squeeze-and-excitation), and outputs a 512-d
feature. It gives no more detail; this is the structure tfface derives from the two papers and
FaceX-Zoo's face version of the Residual Attention Network (112×112 input, stem conv7×7/2, no
max-pool, 7×7×2048 flattened into the embedding):

* stem: conv7×7/2 64 → BN → PReLU — 56×56×64;
* unit(256); attention stage 1 (256 channels, 3 mask down/up levels) — 56×56×256;
* unit(512, /2); attention stage 2 (512, 2 levels) — 28×28×512;
* unit(1024, /2); attention stage 3 (1024, 1 level) — 14×14×1024;
* unit(2048, /2), unit(2048), unit(2048) — 7×7×2048;
* output (ArcFace's "E" block, as in IResNet): BN → dropout → flatten → FC 512 → BN (scale
  frozen at 1).

An IR-SE bottleneck unit ``unit(c, stride)`` is
``BN → conv1×1 c/4 → BN → PReLU → conv3×3 c/4 (stride) → BN → PReLU → conv1×1 c → BN → SE``
plus the shortcut (identity, or conv1×1 (stride) + BN when the shape changes); SE is global
average pool → FC c/16 → ReLU → FC c → sigmoid, scaling the channels. The bottleneck form keeps
the Residual Attention Network's widths affordable (basic 3×3-3×3 units at 2048 channels would
cost 75M parameters per unit).

An attention module with ``L`` levels: ``x ← unit(x)``; trunk ``T = unit(unit(x))``; the mask
branch goes down ``L`` times (max-pool 3×3/2, then one unit, and one more unit as the skip
connection of that level; the deepest level has two units instead), comes back up by bilinear
resizing, adding the level's features and its skip at each scale, then adds ``T`` and applies
``BN → PReLU → conv1×1 → BN → PReLU → conv1×1 → sigmoid`` to get the mask ``M``; the output is
``unit((1 + M)·T)`` (attention residual learning, the RAN paper's eq. 3).

Parameter count at 112×112, 512-d: 84,281,808 (``count_params()``, including BN moving
statistics; 84,156,368 trainable) — the 7·7·2048 × 512 FC alone holds 51.4M.
"""
import keras

from tfface import registry
from tfface.backbones import common

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
SE_REDUCTION = 16
# (channels, mask levels) of the three attention stages, stage depths [1, 1, 1].
STAGES = ((256, 3), (512, 2), (1024, 1))


class _Builder:
    def __init__(self, sync_bn):
        self.sync_bn = sync_bn

    def bn(self, name):
        return common.batch_norm(name, BN_MOMENTUM, BN_EPSILON, sync=self.sync_bn)

    @staticmethod
    def prelu(name):
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
        )

    def se(self, x, name):
        channels = x.shape[-1]
        s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
        s = keras.layers.Dense(channels // SE_REDUCTION, activation="relu", name=f"{name}_fc1")(s)
        s = keras.layers.Dense(channels, activation="sigmoid", name=f"{name}_fc2")(s)
        return keras.layers.Multiply(name=f"{name}_scale")([x, s])

    def unit(self, x, channels, name, strides=1):
        """IR-SE bottleneck unit (see the module docstring)."""
        shortcut = x
        if strides != 1 or x.shape[-1] != channels:
            shortcut = keras.layers.Conv2D(
                channels, 1, strides=strides, use_bias=False, name=f"{name}_down_conv"
            )(x)
            shortcut = self.bn(f"{name}_down_bn")(shortcut)
        inner = channels // 4
        y = self.bn(f"{name}_bn1")(x)
        y = keras.layers.Conv2D(inner, 1, use_bias=False, name=f"{name}_conv1")(y)
        y = self.bn(f"{name}_bn2")(y)
        y = self.prelu(f"{name}_prelu1")(y)
        y = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(y)
        y = keras.layers.Conv2D(inner, 3, strides=strides, use_bias=False, name=f"{name}_conv2")(y)
        y = self.bn(f"{name}_bn3")(y)
        y = self.prelu(f"{name}_prelu2")(y)
        y = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_conv3")(y)
        y = self.bn(f"{name}_bn4")(y)
        y = self.se(y, f"{name}_se")
        return keras.layers.Add(name=f"{name}_add")([y, shortcut])

    def upsample(self, x, like, name):
        h, w = like.shape[1:3]
        if tuple(x.shape[1:3]) == (h, w):
            return x
        return keras.layers.Resizing(h, w, interpolation="bilinear", name=name)(x)

    def attention(self, x, channels, levels, name):
        """Attention module with ``levels`` mask down/up levels (see the module docstring)."""
        x = self.unit(x, channels, f"{name}_first")
        trunk = self.unit(x, channels, f"{name}_trunk1")
        trunk = self.unit(trunk, channels, f"{name}_trunk2")

        y = x
        encoder = []
        for level in range(1, levels + 1):
            y = keras.layers.MaxPooling2D(3, 2, padding="same", name=f"{name}_pool{level}")(y)
            y = self.unit(y, channels, f"{name}_down{level}")
            if level < levels:
                encoder.append((y, self.unit(y, channels, f"{name}_skip{level}")))
            else:
                y = self.unit(y, channels, f"{name}_bottom")
        for level in range(levels - 1, 0, -1):
            features, skip = encoder[level - 1]
            y = self.upsample(y, features, f"{name}_up{level + 1}")
            y = keras.layers.Add(name=f"{name}_merge{level}")([y, features, skip])
            y = self.unit(y, channels, f"{name}_up{level}")
        y = self.upsample(y, trunk, f"{name}_up1_resize")
        y = keras.layers.Add(name=f"{name}_merge0")([y, trunk])

        m = self.bn(f"{name}_mask_bn1")(y)
        m = self.prelu(f"{name}_mask_prelu1")(m)
        m = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_mask_conv1")(m)
        m = self.bn(f"{name}_mask_bn2")(m)
        m = self.prelu(f"{name}_mask_prelu2")(m)
        m = keras.layers.Conv2D(
            channels, 1, use_bias=False, activation="sigmoid", name=f"{name}_mask_conv2"
        )(m)
        # (1 + M)·T: the mask can only amplify the trunk, so stacking modules cannot erase it.
        attended = keras.layers.Multiply(name=f"{name}_mask_apply")([m, trunk])
        out = keras.layers.Add(name=f"{name}_residual")([trunk, attended])
        return self.unit(out, channels, f"{name}_last")


@registry.register(
    "backbone",
    "attentionnet_irse",
    inject=("input_shape",),
    input_shape=(112, 112, 3),
    embedding_size=512,
    min_input_size=16,
)
def attentionnet_irse(input_shape=(112, 112, 3), embedding_size=512, dropout=0.0, sync_bn=False):
    """AttentionNet-IRSE with stage depths [1, 1, 1] (see the module docstring).

    Args:
      input_shape: ``(H, W, 3)``, at least 16×16 (four stride-2 layers); 112×112 native
        (the MV-Softmax paper crops 144×144; pass that to train at its size).
      embedding_size: D (512 in the paper).
      dropout: dropout rate before the FC.
      sync_bn: batch-norm statistics over the global batch under ``tf.distribute``.
    """
    name = "attentionnet_irse"
    input_shape = common.check_input_shape(name, input_shape, 16)
    embedding_size = common.check_embedding_size(name, embedding_size)
    dropout = common.check_rate(name, "dropout", dropout)
    b = _Builder(sync_bn)

    images, x = common.image_input(input_shape)
    x = keras.layers.ZeroPadding2D(3, name="stem_pad")(x)
    x = keras.layers.Conv2D(64, 7, strides=2, use_bias=False, name="stem_conv")(x)
    x = b.bn("stem_bn")(x)
    x = b.prelu("stem_prelu")(x)
    for stage, (channels, levels) in enumerate(STAGES, start=1):
        x = b.unit(x, channels, f"transition{stage}", strides=1 if stage == 1 else 2)
        x = b.attention(x, channels, levels, f"attention{stage}")
    x = b.unit(x, 2048, "final1", strides=2)
    x = b.unit(x, 2048, "final2")
    x = b.unit(x, 2048, "final3")
    x = b.bn("output_bn")(x)
    x = keras.layers.Dropout(dropout, name="output_dropout")(x)
    x = keras.layers.Flatten(name="output_flatten")(x)
    x = keras.layers.Dense(embedding_size, use_bias=True, name="output_fc")(x)
    x = common.FrozenScaleBatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=sync_bn, name="features"
    )(x)
    return keras.Model(images, common.embedding_output(x), name=name)
