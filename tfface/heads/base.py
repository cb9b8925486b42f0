"""``MarginHead``: the base class of every classification head.

A head maps embeddings ``(B, D)`` (and, in training, integer labels ``(B,)``) to float32 logits
``(B, C)`` for ``SparseCategoricalCrossentropy(from_logits=True)``. The base owns the class
weights ``kernel (D, C)``, the validation of the inputs and the float32/mixed-precision rules;
subclasses only implement ``plain_logits_from_cosine`` (no labels: no margin, no state update)
and ``margin_logits_from_cosine`` (labels known), both from the similarity matrix ``cos`` (the
cosines, or ``x·W + b`` for the unnormalised ``Softmax``). Keeping the margin separate from the
class weights, as insightface's arcface_torch does, lets ``PartialFC`` reuse every head on its
sharded, sampled class weights.

How a head takes part in a training step is the *training hook* of :class:`TrainingHead`, which
``MarginHead`` inherits and ``PartialFC`` overrides; ``tfface.FaceModel.train_step`` calls only
the hook, so a head with its own way of computing the loss or updating its weights plugs in
without any change to ``tfface.training``:

* ``check_training(optimizer, loss)`` at ``compile``: refuse an optimizer or logits loss the
  head cannot train with;
* ``training_loss(embeddings, labels, logits_loss, step) -> HeadLoss`` inside the gradient tape;
* ``apply_own_gradients(result, gradients, *, learning_rate, optimizer, weight_decay)`` after
  the optimizer's update, with the gradients of ``result.own_sources``.
"""
import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfface.heads import margins


@dataclasses.dataclass(frozen=True)
class HeadLoss:
    """What a head's :meth:`TrainingHead.training_loss` hands the training step.

    Attributes:
        loss: float32 scalar, this replica's share of the logits loss (the shares of all
            replicas add up to the loss on the global batch, Keras' convention).
        correct: float32 ``(N,)``, 1 where a sample is classified correctly and 0 elsewhere;
            the model's ``accuracy`` metric is its mean. ``N`` is the samples the head judges
            (this replica's batch for an ordinary head, the global batch for ``PartialFC``).
        own_sources: tensors whose gradients the head applies itself
            (:meth:`TrainingHead.apply_own_gradients`), e.g. reads of (trainable) plain
            ``tf.Variable`` objects that are not Keras weights, so the optimizer never sees them;
            the step's tape must record them (a read of a ``trainable=False`` variable is not
            recorded and gets no gradient). Empty for an ordinary head.
        state: the head's own payload, passed back to ``apply_own_gradients`` unchanged (a
            dataclass of the head's choosing, e.g. ``PartialFCSample``; ``None`` for ordinary
            heads).
    """

    loss: Any
    correct: Any
    own_sources: tuple = ()
    state: Any = None

    def __post_init__(self):
        object.__setattr__(self, "own_sources", tuple(self.own_sources))


class TrainingHead:
    """The training hook of a head: how ``FaceModel.train_step`` turns embeddings and labels
    into the loss, and what the head updates itself after the step.

    The defaults are those of an ordinary head whose weights are Keras variables updated by the
    optimizer: ``logits = self(embeddings, labels, training=True)``, ``loss =
    logits_loss(labels, logits)``, correctness from the arg-max of the logits, nothing of its own
    to update and any optimizer or logits loss accepted. Mix it into any Keras layer that should
    serve as a ``FaceModel`` head.
    """

    def check_training(self, optimizer, loss):
        """Called by ``FaceModel.compile`` with the (resolved) optimizer and logits loss; raise
        ``ValueError`` naming what the head cannot train with. The default accepts anything."""

    def training_loss(self, embeddings, labels, logits_loss, step):
        """This replica's share of the logits loss and the per-sample correctness, as a
        :class:`HeadLoss`. Called inside the step's gradient tape, once per replica.

        Args:
            embeddings: float32 ``(B, D)`` of this replica.
            labels: int32 ``(B,)`` (already range-checked when the model checks labels).
            logits_loss: the compiled loss, ``logits_loss(labels, logits)`` -> this replica's
                share of the mean loss.
            step: the optimizer's iteration count (int64 scalar tensor).
        """
        logits = self(embeddings, labels, training=True)
        loss = tf.cast(logits_loss(labels, logits), tf.float32)
        predicted = tf.argmax(tf.cast(logits, tf.float32), axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32)
        return HeadLoss(loss=loss, correct=tf.stop_gradient(correct))

    def checkpoint_objects(self):
        """Extra objects a training checkpoint must hold for this head, ``{name: trackable}``,
        beside its Keras variables (PartialFC: its class shards, saved as full matrices so they
        restore onto any replica layout). The default is none."""
        return {}

    def apply_own_gradients(self, result, gradients, *, learning_rate, optimizer, weight_decay):
        """Apply ``gradients`` (of the step's total loss with respect to ``result.own_sources``,
        in that order, already unscaled under mixed precision) to the head's own weights. Called
        after the optimizer's update, in the same replica context as :meth:`training_loss`.

        Args:
            result: the :class:`HeadLoss` this head returned for the step.
            gradients: list of tensors (or ``None`` where a source got no gradient).
            learning_rate: float32 scalar, the optimizer's learning rate at this step.
            optimizer: the model's optimizer (for its settings, such as SGD momentum).
            weight_decay: the model's coupled L2 coefficient, for the head to apply to its own
                weights (the model decays only the variables the optimizer updates).

        The default does nothing: an ordinary head has no own sources.
        """


@keras.saving.register_keras_serializable(package="tfface")
class MarginHead(TrainingHead, keras.layers.Layer):
    """Base class of the heads: class weights ``kernel (D, C)``, input checks, float32 logits.

    Args:
        num_classes: number of identities ``C`` (a positive integer).
    """

    # The similarity is the cosine between L2-normalised embeddings and class weights.
    normalized = True

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or (
            num_classes < 1
        ):
            raise ValueError(
                f"{type(self).__name__}: num_classes must be a positive integer, got {num_classes!r}"
            )
        self.num_classes = int(num_classes)
        # XLA compiles tf.debugging assertions to no-ops, so inside a compiled step the range
        # check of validate_labels is dropped. The labels are checked where XLA cannot drop the
        # check instead: when a data set is opened (labels.json against num_classes), in the
        # input pipeline (make_dataset(num_classes=...)) and by FaceModel(check_labels=True)
        # outside its compiled part. So the heads are XLA-compatible (Keras' "auto" may compile
        # them).

    # -- weights ------------------------------------------------------------------------------

    def build(self, embeddings_shape, labels_shape=None):
        if len(embeddings_shape) != 2 or embeddings_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__}: embeddings must have shape (batch, embedding_dim) with a "
                f"known embedding_dim, got shape {tuple(embeddings_shape)}"
            )
        # The kernel stays float32 under mixed precision (autocast=False): norms and the margin
        # maths need its full precision; `margins.cosine` casts only the matmul operands.
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(embeddings_shape[-1]), self.num_classes),
            initializer="glorot_uniform",
            autocast=False,
        )
        self.build_state()

    def build_state(self):
        """Create extra weights (biases, non-trainable state). Called at the end of ``build``."""

    # -- call ---------------------------------------------------------------------------------

    def call(self, embeddings, labels=None, training=None):
        embeddings = self.validate_embeddings(embeddings)
        if labels is None:
            return self.plain_logits(embeddings)
        labels = self.validate_labels(labels, embeddings)
        return self.margin_logits(embeddings, labels, training=bool(training))

    def plain_logits(self, embeddings):
        """Logits without margin and without state update (inference, ``labels=None``)."""
        return self.plain_logits_from_cosine(self.similarity(embeddings), embeddings)

    def margin_logits(self, embeddings, labels, training):
        """Logits with the head's margin for validated int32 ``labels`` ``(B,)``."""
        return self.margin_logits_from_cosine(
            self.similarity(embeddings), embeddings, labels, training
        )

    def plain_logits_from_cosine(self, cos, embeddings):
        """Plain logits from the similarity matrix ``cos`` ``(B, K)`` over any K classes."""
        raise NotImplementedError(f"{type(self).__name__} must implement plain_logits_from_cosine")

    def margin_logits_from_cosine(self, cos, embeddings, labels, training):
        """Margin logits from ``cos`` ``(B, K)``; ``labels`` index its columns (``PartialFC``
        passes sampled columns plus a column holding the target of samples owned elsewhere).
        State (``t``, the iteration counter) is updated here when ``training``."""
        raise NotImplementedError(f"{type(self).__name__} must implement margin_logits_from_cosine")

    def similarity(self, embeddings):
        """The matrix the margin acts on: ``cos θ`` for the normalised heads."""
        return self.cosine(embeddings)

    def cosine(self, embeddings):
        """``cos θ`` between the embeddings and every class weight, float32 ``(B, C)``."""
        return margins.cosine(embeddings, self.kernel, self.compute_dtype)

    def monitored(self):
        """State worth logging, ``{name: scalar tensor}`` (empty for stateless heads)."""
        return {}

    def compute_output_shape(self, embeddings_shape, labels_shape=None):
        return (embeddings_shape[0], self.num_classes)

    def compute_output_spec(self, embeddings, labels=None, training=None):
        return keras.KerasTensor((embeddings.shape[0], self.num_classes), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config

    # -- input checks -------------------------------------------------------------------------

    def validate_embeddings(self, embeddings):
        """``embeddings`` unchanged; raises naming the head when they are not ``(B, D)`` with the
        head's ``D``."""
        shape = embeddings.shape
        if shape.rank is not None and shape.rank != 2:
            raise ValueError(
                f"{type(self).__name__}: embeddings must have shape (batch, embedding_dim), got "
                f"shape {tuple(shape)}"
            )
        dim = self.kernel.shape[0]
        if shape.rank == 2 and shape[-1] is not None and shape[-1] != dim:
            raise ValueError(
                f"{type(self).__name__}: embeddings have dimension {shape[-1]}, but the head was "
                f"built for embedding_dim={dim}"
            )
        return embeddings

    def validate_labels(self, labels, embeddings):
        """``labels`` as int32 ``(B,)``; raises naming the head and the bad labels when one is
        outside ``[0, num_classes)`` (in graph mode, through a runtime assertion) or when their
        number differs from the embeddings'."""
        name = type(self).__name__
        labels = tf.convert_to_tensor(labels)
        if not labels.dtype.is_integer:
            raise TypeError(
                f"{name}: labels must be integer class indices, got dtype {labels.dtype.name}"
            )
        rank = labels.shape.rank
        if rank == 2 and labels.shape[-1] == 1:
            labels = tf.squeeze(labels, axis=-1)
        elif rank is None or rank != 1:
            raise ValueError(
                f"{name}: labels must have shape (batch,) or (batch, 1), got shape "
                f"{tuple(labels.shape) if rank is not None else 'of unknown rank'}"
            )
        labels = tf.cast(labels, tf.int32)

        batch, label_batch = embeddings.shape[0], labels.shape[0]
        if batch is not None and label_batch is not None and batch != label_batch:
            raise ValueError(
                f"{name}: got {label_batch} labels for a batch of {batch} embeddings"
            )
        expected = f"expected 0 <= label < num_classes={self.num_classes}"
        if tf.executing_eagerly():
            values = labels.numpy()
            bad = values[(values < 0) | (values >= self.num_classes)]
            if bad.size:
                raise ValueError(
                    f"{name}: label(s) out of range: {bad[:10].tolist()}"
                    f"{' ...' if bad.size > 10 else ''}; {expected}"
                )
            return labels
        # Graph mode: the same message from a runtime assertion, raised before any gather on the
        # bad index can fail with a less helpful error.
        in_range = (labels >= 0) & (labels < self.num_classes)
        checks = [
            tf.debugging.Assert(
                tf.reduce_all(in_range),
                [f"{name}: label(s) out of range:", tf.boolean_mask(labels, ~in_range), expected],
                summarize=10,
            ),
            tf.debugging.assert_equal(
                tf.shape(labels)[0],
                tf.shape(embeddings)[0],
                message=f"{name}: the number of labels differs from the number of embeddings",
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(labels)
