"""Cross-replica helpers: the one place that talks to ``tf.distribute`` replica contexts.

Keras runs a training step once per replica on that replica's slice of the global batch and
sums the gradients. A per-sample loss reduced by a mean is already right under that scheme
(Keras divides it by the number of replicas). A value over *pairs or classes of the batch*
(Minimum Margin, Marginal, Range, OHEM losses; the centre update; CurricularFace's ``t``;
PartialFC's sharded softmax) is not: it must see the global batch. ``global_batch`` gathers it
(differentiably: the gradient of ``all_gather`` hands each replica the summed gradient of its own
rows), and ``replica_share`` divides a batch-level value by the number of replicas, so that
Keras' sum over replicas gives the single-device value and gradient.

Every function works outside any strategy (and in the default one-replica strategy), where the
collectives are the identity.
"""
import tensorflow as tf


def num_replicas():
    """Replicas of the current ``tf.distribute`` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def multi_worker():
    """Whether the current strategy spans several workers (``MultiWorkerMirroredStrategy`` in
    multi-worker mode)."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    # tf.distribute has no public query for this; a one-worker MultiWorkerMirroredStrategy is
    # a local strategy.
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


def local_replica_ids(strategy=None):
    """The global replica ids (``replica_id_in_sync_group``) of this worker's replicas, in the
    order of ``strategy.extended.worker_devices``: ``[0 .. R-1]`` on one worker, and for worker
    ``w`` of a ``MultiWorkerMirroredStrategy`` with ``L`` devices per worker ``[w·L .. w·L+L-1]``.
    Read from the strategy's own value context (public API), so it follows TensorFlow's
    numbering whatever it is."""
    strategy = strategy or tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync == 1:
        return [0]
    if not tf.distribute.in_cross_replica_context():
        # Inside strategy.run (a layer built lazily in a step): the strategy's own numbering.
        number = getattr(strategy.extended, "_get_replica_id_in_sync_group", None)
        if number is None:
            raise RuntimeError("local_replica_ids: call it in a cross-replica context")
        return [int(number(i)) for i in range(len(strategy.extended.worker_devices))]
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: ctx.replica_id_in_sync_group
    )
    return [int(v) for v in strategy.experimental_local_results(values)]


def gather_local_values(values, strategy=None):
    """Concatenate (along axis 0) one tensor per *replica of every worker*, in global replica
    order, from this worker's share ``values``: a dict ``{global replica id: tensor}`` holding one
    entry per local replica (all of the same shape). Called in a cross-replica context (eagerly
    or in a ``tf.function``); under ``MultiWorkerMirroredStrategy`` it is a collective, so every
    worker must call it, in the same order. The result is on this worker."""
    strategy = strategy or tf.distribute.get_strategy()
    ids = sorted(values)
    if strategy.num_replicas_in_sync == len(ids):
        # Every replica is local: no communication.
        return tf.concat([tf.convert_to_tensor(values[i]) for i in ids], axis=0)
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.identity(values[ctx.replica_id_in_sync_group])
    )
    return strategy.gather(per_replica, axis=0)


def replica_context():
    """The current replica context, or ``None`` in a cross-replica context or when there is a
    single replica (where every collective below is the identity)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return None
    return ctx


def replica_id(ctx=None):
    """The static id of this replica (0 without a multi-replica context). Raises when the id is
    only known at run time (a strategy other than ``MirroredStrategy``)."""
    ctx = replica_context() if ctx is None else ctx
    if ctx is None:
        return 0
    rid = tf.get_static_value(ctx.replica_id_in_sync_group)
    if rid is None:
        raise RuntimeError(
            "a static replica id is needed (MirroredStrategy, MultiWorkerMirroredStrategy or no strategy)"
        )
    return int(rid)


def all_gather(x, ctx=None):
    """``x`` of every replica concatenated along axis 0 in replica order (``x`` itself with one
    replica). Differentiable: each replica receives the summed gradient of its own rows."""
    ctx = replica_context() if ctx is None else ctx
    return x if ctx is None else ctx.all_gather(x, axis=0)


def all_reduce_sum(x, ctx=None):
    """Sum of ``x`` over the replicas (differentiable)."""
    ctx = replica_context() if ctx is None else ctx
    return x if ctx is None else ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def all_reduce_max(x, ctx=None):
    """Elementwise maximum across replicas, without gradient (tf.distribute has no MAX
    all-reduce: gather every replica's values and reduce)."""
    x = tf.stop_gradient(x)
    ctx = replica_context() if ctx is None else ctx
    if ctx is None:
        return x
    return tf.reduce_max(ctx.all_gather(x[None], axis=0), axis=0)


def global_batch(*tensors):
    """The global batch of each tensor (concatenated along axis 0 in replica order) when called
    in the replica context of a multi-replica strategy; the tensors unchanged otherwise."""
    ctx = replica_context()
    if ctx is None:
        return tensors
    # One collective per tensor: all_gather's gradient is defined per call, and integer labels
    # must not share a call with float features that carry a gradient.
    return tuple(ctx.all_gather(t, axis=0) for t in tensors)


def replica_share(value):
    """``value / num_replicas`` — the per-replica share of a batch-level value, the convention
    Keras uses for its own mean losses (``reduce_values`` scales them the same way)."""
    replicas = num_replicas()
    if replicas == 1:
        return value
    return value * tf.cast(1.0 / replicas, value.dtype)
