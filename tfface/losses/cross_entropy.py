"""Sparse categorical cross-entropy from logits: the plain softmax loss over any head's logits."""

import keras

from tfface.registry import register


@register("loss", "cross_entropy", takes="logits")
def cross_entropy(ignore_class=None, reduction="sum_over_batch_size", name="cross_entropy"):
    """Softmax cross-entropy of integer labels and a head's logits (``from_logits=True``).

    Returns Keras' own ``SparseCategoricalCrossentropy``, so a saved model reloads without
    tfface; the arguments are Keras'. Heads return logits, hence no ``from_logits`` argument.
    """
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=ignore_class, reduction=reduction, name=name
    )
