"""Class-centre maths shared by ``ClassCentres`` and the centre-based losses (TensorFlow ops, no
state): label checking, reading centre rows, and the MML paper's eq. 14–15 update.

It lives beside the layer that owns the centres so that imports go one way only:
``tfface.losses`` imports from here, ``tfface.layers`` never imports ``tfface.losses``.
All maths is float32 (squared distances of un-normalised features lose too much in float16).
"""

import tensorflow as tf


def as_float(x):
    """``x`` as a float32 tensor (inputs under ``mixed_float16`` are cast up)."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)


def flat_labels(labels):
    """Integer class indices as int32 ``(B,)``; Keras hands sparse targets over as ``(B,)`` or
    ``(B, 1)``, and sometimes as floats."""
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_floating:
        labels = tf.cast(labels, tf.int32)
    return tf.reshape(tf.cast(labels, tf.int32), [-1])


def check_labels(labels, num_classes, who="labels"):
    """Return ``labels`` as int32 ``(B,)`` after asserting ``0 <= label < num_classes``.

    ``tf.gather`` returns zeros for an out-of-range index on GPU instead of failing, so the
    centre-based losses would silently train on a wrong centre without this check. (Under XLA,
    assertions are compiled out; validate the data set's labels once instead, e.g. with
    ``tfface.data.pipeline.num_classes``.)
    """
    labels = flat_labels(labels)
    bad = tf.logical_or(labels < 0, labels >= num_classes)
    message = f"{who}: every label must be in [0, num_classes={num_classes}); got label"
    if tf.executing_eagerly():
        if bool(tf.reduce_any(bad)):
            first = int(tf.boolean_mask(labels, bad)[0])
            raise tf.errors.InvalidArgumentError(None, None, f"{message} {first}")
        return labels
    first_bad = tf.gather(labels, tf.reshape(tf.where(bad), [-1])[:1])
    assertion = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        [message, first_bad],
        summarize=1,
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(labels)


def centre_table(centres):
    """``centres`` as something ``tf.gather`` reads rows from: a ``tf.Variable`` is kept as is
    (a sparse read of B rows, not a copy of the whole (C, D) table every step), anything else
    becomes a float32 tensor."""
    if isinstance(centres, tf.Variable):
        return centres
    value = getattr(centres, "value", None)  # a keras.Variable wraps a tf.Variable
    if isinstance(value, tf.Variable):
        return value
    return as_float(centres)


def num_classes(centres):
    """Rows of a centre table (static when known)."""
    return centres.shape[0] if centres.shape[0] is not None else tf.shape(centres)[0]


def centre_rows(centres, labels):
    """``c_{y_i}`` ``(B, D)`` float32, without gradient (centres move by eqs. 14–15 only)."""
    return tf.stop_gradient(as_float(tf.gather(centres, labels)))


def same_class(labels):
    """``(B, B)`` float matrix, 1 where samples i and j share a class (diagonal included)."""
    return tf.cast(tf.equal(labels[:, None], labels[None, :]), tf.float32)


def updated_rows(centres, embeddings, labels, alpha):
    """Per sample, the updated centre of its class, ``c'_{y_i}`` ``(B, D)`` (MML eqs. 14–15):
    ``c'_j = c_j − α·Σ_{i:y_i=j}(c_j − f_i) / (1 + n_j)``. Differentiable in ``embeddings``
    (Minimum Margin Loss needs that gradient); ``labels`` must already be checked."""
    same = same_class(labels)
    counts = tf.reduce_sum(same, axis=1, keepdims=True)  # n_{y_i}
    feature_sums = tf.matmul(same, as_float(embeddings))  # Σ_{k: y_k = y_i} f_k
    c = centre_rows(centres, labels)
    delta = (counts * c - feature_sums) / (1.0 + counts)
    return c - alpha * delta


__all__ = [
    "as_float",
    "centre_rows",
    "centre_table",
    "check_labels",
    "flat_labels",
    "num_classes",
    "same_class",
    "updated_rows",
]
