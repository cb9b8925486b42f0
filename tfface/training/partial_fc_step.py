"""The training step of a ``FaceModel`` whose head is a ``tfface.heads.PartialFC``.

It differs from the ordinary step in three ways, all forced by the sharded head:

* the head returns this replica's share of the softmax cross-entropy over the sampled classes
  of all shards (``PartialFC.train_loss``), so the compiled logits loss is not used (only plain
  sparse categorical cross-entropy is meaningful here, and ``FaceModel.compile`` checks that);
* the class rows are not Keras variables: their gradient (with respect to the gathered rows) is
  applied by the head itself, with the optimizer's learning rate and momentum, and only to the
  sampled rows; the optimizer updates the backbone (and any other trainable weights) as usual;
* accuracy is that of the global batch over the sampled classes (a target logit at least as
  large as every sampled logit of every shard).
"""
import keras
import tensorflow as tf
from keras import ops

from tfface.heads import partial_fc_ops


def sgd_settings(optimizer):
    """``(momentum, nesterov)`` of an SGD optimizer (through a LossScaleOptimizer); any other
    optimizer is refused with a clear error: the shards are updated by PartialFC itself."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not isinstance(inner, keras.optimizers.SGD):
        raise ValueError(
            "A FaceModel with a PartialFC head needs keras.optimizers.SGD (the papers' optimizer; "
            f"PartialFC updates its class shards with SGD-momentum itself), got {type(inner).__name__}"
        )
    return float(inner.momentum), bool(inner.nesterov)


def global_accuracy(logits, mask):
    """Per-sample correctness over the sampled classes of all replicas, (B_global,) float32."""
    ctx = partial_fc_ops.replica_context()
    logits = tf.stop_gradient(tf.cast(logits, tf.float32))
    row_max = partial_fc_ops.all_reduce_max(tf.reduce_max(logits, axis=1), ctx)
    target = partial_fc_ops.all_reduce_sum(tf.reduce_sum(tf.where(mask, logits, 0.0), axis=1), ctx)
    return tf.cast(target >= row_max, tf.float32)


def train_step(model, images, labels, step, learning_rate, aux_weights, replicas):
    """One step; returns ``(share, aux_values, l2)`` for the model's trackers."""
    optimizer = model.optimizer
    momentum, nesterov = sgd_settings(optimizer)
    head = model.head
    with tf.GradientTape() as tape:
        embeddings = ops.cast(model._train_forward(images), "float32")  # noqa: SLF001
        # Already this replica's share of the global loss (not divided by the replicas again).
        share, sampled = head.train_loss(embeddings, labels, step=step, training=True)
        # The shards' weight decay is applied with their sparse update (on the sampled rows).
        extra, aux_values, l2 = model._auxiliary_terms(labels, embeddings, aux_weights, replicas)  # noqa: SLF001
        share = share + extra
        objective = optimizer.scale_loss(share)

    variables = model.trainable_variables
    extra = [sampled["rows"]] + ([sampled["bias"]] if sampled["bias"] is not None else [])
    gradients = tape.gradient(objective, list(variables) + extra)
    optimizer.apply_gradients(zip(gradients[: len(variables)], variables))
    # Undo the loss scale of mixed precision (1 without it) on the rows' gradients.
    unscale = 1.0 / ops.cast(optimizer.scale_loss(tf.constant(1.0)), "float32")
    shard_grads = [g * unscale for g in gradients[len(variables):]]
    head.apply_gradients(
        sampled,
        shard_grads[0],
        shard_grads[1] if len(shard_grads) > 1 else None,
        learning_rate=learning_rate,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=model.weight_decay,
    )
    detached = ops.stop_gradient(embeddings)
    for layer in model.class_centres:
        layer(detached, labels, training=True)
    correct = global_accuracy(sampled["logits"], sampled["mask"])
    return share, aux_values, l2, correct
