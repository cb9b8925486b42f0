"""tfface.replica: the cross-replica helpers, outside any strategy and on two replicas."""
import numpy as np
import tensorflow as tf

from tfface import replica, testing


def test_outside_a_strategy_every_collective_is_the_identity():
    x = tf.constant([[1.0, -2.0], [3.0, 0.5]])
    assert replica.num_replicas() == 1 and not replica.multi_worker()
    assert replica.replica_context() is None and replica.replica_id() == 0
    for fn in (replica.all_gather, replica.all_reduce_sum, replica.all_reduce_max):
        np.testing.assert_array_equal(fn(x).numpy(), x.numpy())
    (gathered,) = replica.global_batch(x)
    assert gathered is x
    assert replica.replica_share(x) is x


def test_two_replicas_gather_reduce_and_share():
    strategy = testing.mirrored_strategy(2)
    rows = np.arange(8, dtype="float32").reshape(4, 2)

    def fn():
        ctx = tf.distribute.get_replica_context()
        rid = replica.replica_id()
        local = tf.constant(rows)[2 * rid : 2 * rid + 2] * tf.cast(rid + 1, tf.float32)
        (whole,) = replica.global_batch(local)
        return (
            whole,
            replica.all_reduce_sum(local, ctx),
            replica.all_reduce_max(local),
            replica.replica_share(tf.constant(6.0)),
            tf.constant(rid),
            tf.constant(replica.num_replicas()),
        )

    with strategy.scope():
        results = strategy.run(tf.function(fn))
    local = [rows[:2] * 1, rows[2:] * 2]
    for r in range(2):
        whole, total, biggest, share, rid, count = (strategy.experimental_local_results(v)[r].numpy() for v in results)
        np.testing.assert_array_equal(whole, np.concatenate(local))
        np.testing.assert_array_equal(total, local[0] + local[1])
        np.testing.assert_array_equal(biggest, np.maximum(local[0], local[1]))
        assert share == 3.0 and rid == r and count == 2
