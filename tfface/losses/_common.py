"""Helpers shared by the loss classes (not public API)."""

import keras
import tensorflow as tf

from tfface import registry
from tfface.layers import ClassCentres, centre_ops
from tfface.losses.cross_entropy import cross_entropy


def resolve_base(base):
    """The per-sample loss wrapped by HardMining/OHEM, from any of:

    * ``None``: sparse cross-entropy from logits (the registered ``cross_entropy``);
    * a tfface component, as a recipe writes it: a registered loss name (``"focal"``), a
      ``{"name": "focal", "gamma": 1.0}`` dict or a ``registry.Component``;
    * a serialised Keras loss (the ``base`` entry of ``get_config()``), a Keras loss name
      (``"sparse_categorical_crossentropy"``), a ``keras.losses.Loss`` (used un-reduced through
      its ``call``) or any callable ``(labels, logits) -> (B,)``.
    """
    if base is None:
        return cross_entropy()
    if isinstance(base, registry.Component):
        return _build_base(base)
    if isinstance(base, dict):
        if "class_name" in base:
            return keras.losses.deserialize(base)
        return _build_base(base)
    if isinstance(base, str):
        try:
            registry.entry("loss", base)
        except registry.RegistryError:
            return keras.losses.get(base)
        return _build_base(base)
    if callable(base):
        return base
    raise TypeError(f"base must be a keras loss, a loss name or a callable, got {base!r}")


def _build_base(component):
    component = registry.Component.from_dict(component, "base")
    if registry.entry("loss", component.name, "base").meta.get("takes") != "logits":
        raise registry.RegistryError(
            f"base: {component.name!r} is not a per-sample loss over logits; valid: "
            + ", ".join(n for n in registry.names("loss") if registry.entry("loss", n).meta.get("takes") == "logits")
        )
    return registry.build("loss", component, "base")


def per_sample(base, y_true, y_pred):
    values = (
        base.call(y_true, y_pred) if isinstance(base, keras.losses.Loss) else base(y_true, y_pred)
    )
    return centre_ops.as_float(values)


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
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


def check_centres(centres, who):
    if not isinstance(centres, ClassCentres):
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
    value = centre_ops.centre_table(centres.centres)
    if value.shape[-1] != embeddings.shape[-1] and embeddings.shape[-1] is not None:
        raise ValueError(
            f"{who}: embeddings have {embeddings.shape[-1]} dimensions but the ClassCentres "
            f"layer {centres.name!r} holds {value.shape[-1]}-d centres"
        )
    return value
