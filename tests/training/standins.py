"""Small stand-ins for the heads/losses/backbones of other areas, used only by the training tests
while those areas have not landed on main."""
import keras
import numpy as np
from keras import ops


class CosHead(keras.layers.Layer):
    """s·(cos θ − m·onehot) with a monitored EMA of the target cosine (like CurricularFace's t)."""

    def __init__(self, num_classes, scale=8.0, margin=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.scale, self.margin = num_classes, scale, margin

    def build(self, embeddings_shape, labels_shape=None):
        self.kernel = self.add_weight(shape=(embeddings_shape[-1], self.num_classes), name="kernel")
        self.t = self.add_weight(shape=(), initializer="zeros", trainable=False, name="t")

    def call(self, embeddings, labels=None, training=None):
        cos = ops.matmul(ops.normalize(embeddings, axis=-1), ops.normalize(self.kernel, axis=0))
        if labels is None:
            return self.scale * cos
        onehot = ops.one_hot(labels, self.num_classes)
        if training:
            self.t.assign(0.99 * self.t + 0.01 * ops.mean(ops.sum(cos * onehot, -1)))
        return self.scale * (cos - self.margin * onehot)

    def monitored(self):
        return {"t": self.t}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "scale": self.scale, "margin": self.margin}


class Centres(keras.layers.Layer):
    def __init__(self, num_classes, alpha=0.5, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.alpha = num_classes, alpha

    def build(self, embeddings_shape, labels_shape=None):
        self.centres = self.add_weight(shape=(self.num_classes, embeddings_shape[-1]), initializer="zeros",
                                       trainable=False, name="centres")

    def call(self, embeddings, labels, training=None):
        if training:
            onehot = ops.one_hot(labels, self.num_classes)
            counts = ops.sum(onehot, 0)[:, None]
            diff = self.centres * counts - ops.matmul(ops.transpose(onehot), embeddings)
            self.centres.assign(self.centres - self.alpha * diff / (1.0 + counts))
        return self.centres


class CentreLoss(keras.losses.Loss):
    def __init__(self, centres, **kwargs):
        super().__init__(**kwargs)
        self.centres = centres

    def call(self, y_true, y_pred):
        c = ops.take(self.centres.centres, ops.cast(y_true, "int32"), axis=0)
        return 0.5 * ops.sum(ops.square(y_pred - c), -1)

    def get_config(self):
        return {**super().get_config(), "centres": keras.saving.serialize_keras_object(self.centres)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["centres"] = keras.saving.deserialize_keras_object(config["centres"])
        return cls(**config)


def tiny_backbone(input_shape=(16, 16, 3), dim=8, dropout=0.0):
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(dim)(x)
    return keras.Model(inputs, x, name="tiny_standin")


def separable_set(num_classes=4, per_class=8, size=16, seed=0):
    """Images whose mean colour encodes the class (linearly separable after pooling)."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0, 255, size=(num_classes, 3))
    labels = np.repeat(np.arange(num_classes), per_class).astype("int32")
    images = colours[labels][:, None, None, :] + rng.normal(0, 10, size=(len(labels), size, size, 3))
    return np.clip(images, 0, 255).astype("float32"), labels
