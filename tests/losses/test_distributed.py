"""Batch-level losses under MirroredStrategy: the replicas' summed values and the input
gradients equal the single-device loss on the global batch, also for an uneven split."""

import numpy as np
import tensorflow as tf

from tfface import testing
from tfface.layers import ClassCentres
from tfface.losses import OHEM, CentreLoss, MarginalLoss, MinimumMarginLoss, RangeLoss


def test_batch_level_losses_match_the_global_batch():
    rng = np.random.default_rng(7)
    emb = (rng.normal(size=(9, 4)) * 3).astype("float32")
    logits = (rng.normal(size=(9, 6)) * 2).astype("float32")
    labels = np.array([0, 1, 0, 2, 1, 1, 3, 0, 2], "int32")
    strategy = testing.mirrored_strategy(2)
    with strategy.scope():
        centres = ClassCentres(6, alpha=0.5)
        centres.build((None, 4))
    centres.centres.assign(rng.normal(size=(6, 4)).astype("float32"))
    # Batch-level losses on an uneven split (5 + 4). The per-sample losses (HardMining, Focal,
    # CentreLoss) use Keras's own mean reduction, exact for an even split only; CentreLoss is
    # covered by the Softmax + Centre + MML step in tests/layers/test_centres.py. With
    # reduction="sum" (MML eq. 2) a per-sample loss is exact for any split: each replica sums
    # its slice, and the replicas' values add up to the global sum.
    groups = [
        (
            [
                (OHEM(keep_ratio=0.6), logits),
                (RangeLoss(margin=100.0), emb),
                (MarginalLoss(), emb),
                (MinimumMarginLoss(centres, margin=40.0), emb),
                (CentreLoss(centres, reduction="sum"), emb),
            ],
            [(0, 5), (5, 9)],
        ),
    ]
    for cases, bounds in groups:
        size = bounds[-1][1]
        y = labels[:size]

        def split(array):
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: tf.constant(array[slice(*bounds[ctx.replica_id_in_sync_group])])
            )

        def replica_fn(inputs, ys):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(inputs)
                values = [loss(ys, x) for (loss, _), x in zip(cases, inputs)]
            return values, [tape.gradient(v, x) for v, x in zip(values, inputs)]

        inputs = [split(x[:size]) for _, x in cases]
        values, grads = strategy.run(tf.function(replica_fn), args=(inputs, split(y)))
        for i, (loss, x) in enumerate(cases):
            x = tf.constant(x[:size])
            with tf.GradientTape() as tape:
                tape.watch(x)
                expected = loss(y, x)
            expected_grad = tape.gradient(expected, x)
            total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, values[i], axis=None))
            grad = np.concatenate(
                [np.asarray(g) for g in strategy.experimental_local_results(grads[i])]
            )
            name = type(loss).__name__
            np.testing.assert_allclose(total, float(expected), rtol=1e-5, err_msg=name)
            np.testing.assert_allclose(
                grad, np.asarray(expected_grad), rtol=1e-4, atol=1e-6, err_msg=name
            )


def test_centre_loss_sum_is_the_global_sum_of_mml_eq_2():
    """CentreLoss(reduction="sum") under MirroredStrategy(2), uneven split (5 + 4): the replicas'
    values add up to ½ Σ_i ‖f_i − c_{y_i}‖² over the global batch (numpy, written here), and each
    replica's gradient is f_i − c_{y_i} for its own rows."""
    rng = np.random.default_rng(8)
    emb = (rng.normal(size=(9, 4)) * 3).astype("float32")
    labels = np.array([0, 1, 0, 2, 1, 1, 3, 0, 2], "int32")
    strategy = testing.mirrored_strategy(2)
    with strategy.scope():
        centres = ClassCentres(4, alpha=0.5)
        centres.build((None, 4))
    start = rng.normal(size=(4, 4)).astype("float32")
    centres.centres.assign(start)
    loss = CentreLoss(centres, reduction="sum")
    bounds = [(0, 5), (5, 9)]

    def split(array):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array[slice(*bounds[ctx.replica_id_in_sync_group])])
        )

    def replica_fn(f, y):
        with tf.GradientTape() as tape:
            tape.watch(f)
            value = loss(y, f)
        return value, tape.gradient(value, f)

    values, grads = strategy.run(tf.function(replica_fn), args=(split(emb), split(labels)))
    total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None))
    diff = emb.astype(np.float64) - start.astype(np.float64)[labels]
    expected = 0.5 * np.sum(diff**2)
    np.testing.assert_allclose(total, expected, rtol=1e-6)
    grad = np.concatenate([np.asarray(g) for g in strategy.experimental_local_results(grads)])
    np.testing.assert_allclose(grad, diff, rtol=1e-5, atol=1e-6)
