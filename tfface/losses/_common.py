"""Helpers shared by the loss classes (not public API)."""

import keras
import tensorflow as tf

from tfface.losses import functional as F


def resolve_base(base):
    """The per-sample loss wrapped by HardMining/OHEM: a ``keras.losses.Loss`` (used
    un-reduced through its ``call``), a registered loss name or function, or ``None`` for
    sparse cross-entropy from logits."""
    if base is None:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if isinstance(base, dict):
        return keras.losses.deserialize(base)
    if isinstance(base, str):
        return keras.losses.get(base)
    if callable(base):
        return base
    raise TypeError(f"base must be a keras loss, a loss name or a callable, got {base!r}")


def per_sample(base, y_true, y_pred):
    values = (
        base.call(y_true, y_pred) if isinstance(base, keras.losses.Loss) else base(y_true, y_pred)
    )
    return F._float(values)


def serialize_base(base):
    return keras.losses.serialize(base)


def centres_config(centres):
    """A description of the ClassCentres layer (its class and constructor config).

    The centre *values* belong to the model that owns the layer and are saved with it; a loss
    rebuilt from this config holds a fresh, unbuilt layer and must be re-attached to the
    model's layer (``loss.centres = model_layer``) before training.
    """
    config = keras.saving.serialize_keras_object(centres)
    config.pop("build_config", None)
    return config


def centres_from_config(config):
    import tfface.layers  # noqa: F401  (registers ClassCentres for deserialisation)

    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


def check_centres(centres, who):
    import tfface.layers

    if not isinstance(centres, tfface.layers.ClassCentres):
        raise TypeError(
            f"{who}: centres must be a tfface.layers.ClassCentres layer, got {centres!r}"
        )
    return centres


def centres_value(centres, embeddings, who):
    """The centre weight, building the layer from the embeddings' shape on first use (as Keras
    builds any layer on its first call)."""
    if not centres.built:
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            raise ValueError(
                f"{who}: the ClassCentres layer {centres.name!r} is not built; under "
                "tf.distribute build it (or the model owning it) in strategy.scope() before "
                "training: weights cannot be created inside a replica's step"
            )
        centres.build(embeddings.shape)
    value = F._centre_table(centres.centres)
    if value.shape[-1] != embeddings.shape[-1] and embeddings.shape[-1] is not None:
        raise ValueError(
            f"{who}: embeddings have {embeddings.shape[-1]} dimensions but the ClassCentres "
            f"layer {centres.name!r} holds {value.shape[-1]}-d centres"
        )
    return value
