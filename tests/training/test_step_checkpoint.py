"""StepCheckpoint's per-batch hook: the data position and the checkpoint steps, one step per
call or several (``steps_per_execution``), against the step arithmetic written out by hand."""
import keras
import pytest
import tensorflow as tf

from training_helpers import dense_backbone, vectors
from tfface import heads
from tfface.training import FaceModel
from tfface.training.callbacks import StepCheckpoint, make_checkpoint


@pytest.mark.parametrize("per_call, saved", [(1, [4, 8, 12]), (3, [6, 9, 12])])
def test_positions_and_checkpoints_with_steps_per_execution(tmp_path, per_call, saved):
    x, y = vectors(n=40)
    model = FaceModel(dense_backbone(), heads.CosFace(5))
    model.compile(keras.optimizers.SGD(0.1), steps_per_execution=per_call)
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(make_checkpoint(model, step), str(tmp_path), max_to_keep=None)
    guard = StepCheckpoint(manager, step, every=4, total_steps=12)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    # Two epochs of 6 steps; with 3 steps per call an epoch is two calls (steps 1-3, 4-6), and a
    # multiple of 4 passed inside a call is saved at the call's end (6 for 4, 9 for 8).
    model.fit(ds, epochs=2, steps_per_epoch=6, callbacks=[guard], verbose=0)
    assert int(step.numpy()) == 12 == int(model.optimizer.iterations.numpy())
    assert [int(path.rsplit("-", 1)[1]) for path in manager.checkpoints] == saved
    # A further fit call (a run extended to 15 steps) continues from the variable's position.
    guard.total_steps = 15
    model.fit(ds, initial_epoch=2, epochs=3, steps_per_epoch=3, callbacks=[guard], verbose=0)
    assert int(step.numpy()) == 15 and int(manager.checkpoints[-1].rsplit("-", 1)[1]) == 15
