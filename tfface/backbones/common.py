"""Pieces shared by the backbones: input checking, the pixel normalisation inside the model,
batch norm, and the float32 embedding output.

Every backbone starts with :func:`image_input` (float pixels in [0, 255], normalised *inside* the
model as ``(x − 127.5) / 128`` — the papers' preprocessing — so an exported model needs none) and
ends with :func:`embedding_output` (a float32 cast, so embeddings are float32 under
``mixed_float16`` too).
"""
import numbers

import keras

# (x − 127.5) / 128, as in insightface, facenet's "fixed_image_standardization" and MV-Softmax §4.
PIXEL_OFFSET = 127.5
PIXEL_SCALE = 128.0


def check_input_shape(name, input_shape, min_size):
    """Validate ``input_shape`` = ``(H, W, 3)`` with ``H, W >= min_size``; return it as a tuple."""
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: input_shape must be (height, width, 3) integers, got {input_shape!r}"
        ) from None
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"{name}: input_shape must be (height, width, 3), got {input_shape!r}")
    if shape[0] < min_size or shape[1] < min_size:
        raise ValueError(
            f"{name}: input_shape {shape} is too small; the architecture needs height and width "
            f">= {min_size}"
        )
    return shape


def check_embedding_size(name, embedding_size):
    if (
        isinstance(embedding_size, bool)
        or not isinstance(embedding_size, numbers.Integral)
        or embedding_size < 1
    ):
        raise ValueError(f"{name}: embedding_size must be a positive int, got {embedding_size!r}")
    return int(embedding_size)


def check_rate(name, arg, value):
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: {arg} must be in [0, 1), got {value!r}")
    return float(value)


def image_input(input_shape):
    """``(images, normalised)``: the model input and ``(x − 127.5) / 128`` as a layer."""
    images = keras.Input(shape=input_shape, dtype="float32", name="images")
    x = keras.layers.Rescaling(
        scale=1.0 / PIXEL_SCALE, offset=-PIXEL_OFFSET / PIXEL_SCALE, name="normalise"
    )(images)
    return images, x


def embedding_output(x):
    """Cast to float32 (a no-op in float32; under ``mixed_float16`` the embeddings, and hence the
    margin heads' ``s·cos θ``, stay float32)."""
    return keras.layers.Activation("linear", dtype="float32", name="embedding")(x)


@keras.saving.register_keras_serializable(package="tfface")
class FrozenScaleBatchNormalization(keras.layers.BatchNormalization):
    """Batch norm whose scale ``gamma`` exists but is frozen (non-trainable, initialised to 1).

    insightface's IResNet ends with ``BatchNorm1d(512)`` whose weight is set to 1 and excluded
    from training (``requires_grad = False``); the weight still exists (it is in the checkpoint
    and in the parameter count), which ``scale=False`` would not reproduce.
    """

    def __init__(self, **kwargs):
        kwargs["scale"] = True
        kwargs.setdefault("gamma_initializer", "ones")
        super().__init__(**kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self.gamma.trainable = False

    def get_config(self):
        config = super().get_config()
        # Always True here; dropping it keeps from_config from passing it twice.
        config.pop("scale", None)
        return config


def batch_norm(name, momentum, epsilon, scale=True, center=True, sync=False):
    """A ``BatchNormalization`` layer (``sync``: statistics over the global batch under
    ``tf.distribute``, equal to single-device training on the same batch)."""
    return keras.layers.BatchNormalization(
        momentum=momentum,
        epsilon=epsilon,
        scale=scale,
        center=center,
        synchronized=sync,
        name=name,
    )
