"""Class centres, the one owner of centre state (Centre Loss and Minimum Margin Loss)."""

import keras
import tensorflow as tf

from tfface.layers import centre_ops
from tfface.registry import register
from tfface.replica import global_batch


@register("centres", "class_centres", inject=("num_classes",))
@keras.saving.register_keras_serializable(package="tfface")
class ClassCentres(keras.layers.Layer):
    """Class centres ``(num_classes, D)`` moved by MML paper eqs. 14–15 at rate ``alpha``:
    ``c_j ← c_j − α·Σ_{i:y_i=j}(c_j − f_i)/(1 + n_j)`` (not by the optimizer).

    ``layer(embeddings, labels, training=True)`` performs one update from the batch and returns
    the centres of the batch's labels *before* the update, ``(B, D)``; with ``training`` false
    it only returns them. Under ``tf.distribute`` the update is computed from the global batch
    (features and labels gathered across replicas) and then assigned identically on every
    replica, so it equals the single-device update on the global batch — applied once, not per
    replica. The weight ``centres`` is non-trainable, starts at zero (as in Wen et al.), is
    saved in checkpoints and ``.keras`` files, and is mirrored with ``aggregation =
    "only_first_replica"`` (every replica writes the same value).

    The layer always computes in float32, whatever the global dtype policy: squared distances
    of un-normalised features overflow float16.
    """

    def __init__(self, num_classes, alpha=0.5, **kwargs):
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(
                f"ClassCentres: num_classes must be a positive integer, got {num_classes!r}"
            )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(
                f"ClassCentres: alpha (the centre learning rate) must be in [0, 1], got {alpha!r}"
            )
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)

    def build(self, embeddings_shape, labels_shape=None):
        dim = embeddings_shape[-1]
        if dim is None:
            raise ValueError(
                f"ClassCentres: the embedding size must be known, got shape {embeddings_shape}"
            )
        self.centres = self.add_weight(
            name="centres",
            shape=(self.num_classes, int(dim)),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )

    def call(self, embeddings, labels, training=None):
        labels = centre_ops.check_labels(labels, self.num_classes, f"ClassCentres {self.name!r}")
        before = centre_ops.centre_rows(self._table(), labels)
        if training:
            self.update(embeddings, labels)
        return before

    def update(self, embeddings, labels):
        """Assign one eq. 14–15 step from ``(embeddings, labels)`` (the global batch under
        ``tf.distribute``); returns the assign op's variable."""
        f, y = global_batch(
            tf.stop_gradient(tf.cast(embeddings, tf.float32)),
            tf.reshape(tf.cast(labels, tf.int32), [-1]),
        )
        y = centre_ops.check_labels(y, self.num_classes, f"ClassCentres {self.name!r}")
        variable = self._table()
        rows = centre_ops.updated_rows(variable, f, y, self.alpha)
        # Only the rows of the batch's classes change: a sparse write, not a (C, D) copy.
        # Duplicate labels carry identical rows, so their write order does not matter.
        return variable.scatter_update(tf.IndexedSlices(rows, y))

    def _table(self):
        """The ``tf.Variable`` behind the keras weight: gathers and scatters on it touch B rows
        instead of reading the whole (C, D) table (reading it whole costs a full copy per step
        on a scatter's copy-on-write)."""
        return centre_ops.centre_table(self.centres)

    def compute_output_shape(self, embeddings_shape, labels_shape=None):
        return tuple(embeddings_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, alpha=self.alpha)
        return config
