"""Pure functions behind :class:`tfface.heads.PartialFC` (sharded, sampled class centres).

They run inside a replica context (``strategy.run``) or outside any strategy, where the collective
operations (``tfface.replica``) reduce over a single replica and are the identity.
"""
import math

import tensorflow as tf

from tfface.replica import all_reduce_max, all_reduce_sum


def shard_bounds(num_classes, num_shards):
    """Contiguous class ranges ``[(start, size), ...]``: shard r holds classes
    ``start_r .. start_r + size_r - 1``; sizes are ``ceil(C / R)`` except possibly the last."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if num_classes < num_shards:
        raise ValueError(
            f"PartialFC needs at least one class per shard: num_classes={num_classes} < "
            f"{num_shards} replicas"
        )
    per = math.ceil(num_classes / num_shards)
    bounds = []
    for r in range(num_shards):
        start = min(r * per, num_classes)
        bounds.append((start, max(0, min(per, num_classes - start))))
    if any(size == 0 for _, size in bounds):
        raise ValueError(
            f"num_classes={num_classes} does not split into {num_shards} non-empty contiguous shards"
        )
    return bounds


def num_sampled(num_local, sample_rate, global_batch):
    """Classes kept on a shard: ``ceil(rate * C_r)``, but never fewer than the global batch (so
    every positive class of the batch always fits) and never more than the shard."""
    want = math.ceil(sample_rate * num_local)
    if isinstance(global_batch, int):
        return int(min(num_local, max(want, global_batch)))
    # Batch size known only at run time: a scalar tensor.
    return tf.minimum(num_local, tf.maximum(want, tf.cast(global_batch, tf.int32)))


def sample_classes(local_labels, num_local, num_sample, seed):
    """Choose ``num_sample`` of a shard's ``num_local`` classes: every positive class of the batch
    plus uniformly random others.

    Args:
      local_labels: int32 (B,), the batch's labels relative to the shard start; entries outside
        ``[0, num_local)`` belong to other shards.
      seed: int32 (2,) stateless seed (changes every step).

    Returns:
      index: int32 (num_sample,) sorted shard-local class indices;
      position: int32 (B,) column of each sample's label in ``index``, or -1 when not on this shard.
    """
    owned = tf.logical_and(local_labels >= 0, local_labels < num_local)
    if isinstance(num_sample, int) and num_sample == num_local:
        index = tf.range(num_local, dtype=tf.int32)
        return index, tf.where(owned, local_labels, -1)
    scores = tf.random.stateless_uniform([num_local], seed=seed, dtype=tf.float32)
    positives = tf.boolean_mask(local_labels, owned)
    # Positives score 2 > any uniform draw, so top-k keeps them all (num_sample >= batch size).
    scores = tf.tensor_scatter_nd_update(
        scores, positives[:, None], tf.fill(tf.shape(positives), 2.0)
    )
    # (With a run-time num_sample equal to num_local this keeps every class, as it should.)
    index = tf.sort(tf.math.top_k(scores, k=num_sample, sorted=False).indices)
    position = tf.searchsorted(index, tf.where(owned, local_labels, 0), side="left")
    return index, tf.where(owned, tf.cast(position, tf.int32), -1)


def distributed_cross_entropy(logits, target_mask, ctx):
    """Per-sample softmax cross-entropy over the classes of *all* shards, from this shard's logits.

    The row maximum and the sum of exponentials are reduced across replicas; this replica
    contributes ``-z_target`` for the samples whose label it owns and ``logsumexp / R`` for every
    sample, so the contributions of the replicas add up to the full cross-entropy (and so do the
    gradients, which flow back through the all-reduce of the sum of exponentials).

    Returns (B,) float32, this replica's share of each sample's loss.
    """
    logits = tf.cast(logits, tf.float32)
    num_replicas = 1 if ctx is None else ctx.num_replicas_in_sync
    row_max = all_reduce_max(tf.reduce_max(logits, axis=1), ctx)
    row_max = tf.stop_gradient(row_max)
    sum_exp = all_reduce_sum(tf.reduce_sum(tf.exp(logits - row_max[:, None]), axis=1), ctx)
    log_z = tf.math.log(sum_exp) + row_max
    target = tf.reduce_sum(tf.where(target_mask, logits, 0.0), axis=1)
    return log_z / num_replicas - target


def sparse_momentum_update(weight, momentum_slot, index, grad_rows, learning_rate, momentum,
                           nesterov=False, weight_decay=0.0):
    """SGD with momentum on the sampled rows of a shard only (rows not sampled this step keep
    their weight and their momentum, as in insightface's Partial FC).

    Uses Keras' SGD convention (``v = μ·v − lr·g; w += v``; Nesterov ``w += μ·v − lr·g``) so that
    with every class sampled the update equals ``keras.optimizers.SGD`` on the full matrix.
    ``weight_decay`` is coupled L2 (added to the gradient). ``index=None`` updates every row.
    """
    if index is None:
        return _dense_momentum_update(
            weight, momentum_slot, grad_rows, learning_rate, momentum, nesterov, weight_decay
        )
    rows = tf.gather(weight, index)
    grad_rows = tf.cast(grad_rows, weight.dtype)
    if weight_decay:
        grad_rows = grad_rows + weight_decay * rows
    lr = tf.cast(learning_rate, weight.dtype)
    if momentum_slot is None:
        return weight.scatter_nd_sub(index[:, None], lr * grad_rows)
    velocity = momentum * tf.gather(momentum_slot, index) - lr * grad_rows
    momentum_slot.scatter_nd_update(index[:, None], velocity)
    step = momentum * velocity - lr * grad_rows if nesterov else velocity
    return weight.scatter_nd_add(index[:, None], step)


def _dense_momentum_update(weight, momentum_slot, grad, learning_rate, momentum, nesterov,
                           weight_decay):
    grad = tf.cast(grad, weight.dtype)
    if weight_decay:
        grad = grad + weight_decay * weight
    lr = tf.cast(learning_rate, weight.dtype)
    if momentum_slot is None:
        return weight.assign_sub(lr * grad)
    velocity = momentum_slot.assign(momentum * momentum_slot - lr * grad)
    step = momentum * velocity - lr * grad if nesterov else velocity
    return weight.assign_add(step)
