"""Cross-replica helpers for losses and layers whose value depends on the whole batch.

Keras runs a training step once per replica on that replica's slice of the global batch and
sums the gradients. A per-sample loss reduced by a mean is already right under that scheme
(Keras divides it by the number of replicas). A loss over *pairs or classes of the batch*
(Minimum Margin, Marginal, Range, OHEM) and the centre update are not: they must see the global
batch. ``global_batch`` gathers it (differentiably: the gradient of ``all_gather`` hands each
replica the summed gradient of its own rows), and ``replica_share`` divides a batch-level value
by the number of replicas, so that Keras's sum over replicas gives the single-device value and
gradient.
"""

import tensorflow as tf


def num_replicas():
    """Replicas of the current ``tf.distribute`` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def global_batch(*tensors):
    """The global batch of each tensor (concatenated along axis 0 in replica order) when called
    in the replica context of a multi-replica strategy; the tensors unchanged otherwise."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensors
    # One collective per tensor: all_gather's gradient is defined per call, and integer labels
    # must not share a call with float features that carry a gradient.
    return tuple(context.all_gather(t, axis=0) for t in tensors)


def replica_share(value):
    """``value / num_replicas`` — the per-replica share of a batch-level value, the convention
    Keras uses for its own mean losses (``reduce_values`` scales them the same way)."""
    replicas = num_replicas()
    if replicas == 1:
        return value
    return value * tf.cast(1.0 / replicas, value.dtype)
