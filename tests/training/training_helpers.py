"""Tiny models and data shared by the training tests."""
import keras
import numpy as np


def dense_backbone(dim_in=6, dim_out=4, seed=0):
    """A one-layer "backbone" on feature vectors: cheap to trace, exact to compare."""
    inputs = keras.Input((dim_in,))
    outputs = keras.layers.Dense(dim_out, kernel_initializer=keras.initializers.GlorotUniform(seed), name="fc")(inputs)
    return keras.Model(inputs, outputs, name="dense_backbone")


def vectors(n=8, dim=6, classes=5, seed=1):
    """Random features with every class present (labels cycle through the classes)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype("float32"), (np.arange(n) % classes).astype("int32")


def separable(classes=4, per_class=8, dim=6, seed=0, spread=0.3):
    """Well-separated class clusters of feature vectors."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dim)) * 3.0
    labels = np.repeat(np.arange(classes), per_class).astype("int32")
    x = means[labels] + rng.normal(scale=spread, size=(len(labels), dim))
    order = rng.permutation(len(labels))
    return x[order].astype("float32"), labels[order]
