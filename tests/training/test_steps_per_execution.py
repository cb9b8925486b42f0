"""Several training steps per call of the compiled step (Keras' ``steps_per_execution``): the
recipe's choice, TensorBoard's step axis, and a resume from a checkpoint between two calls'
ends, against step arithmetic written out by hand."""
import glob
import os
import shutil

import keras
import pytest
import tensorflow as tf

from training_helpers import dense_backbone, vectors
from tfface import heads
from tfface.recipe import RecipeError, load_recipe
from tfface.training import FaceModel, train
from tfface.training.builder import steps_per_execution
from tfface.training.callbacks import StepTensorBoard, list_checkpoints


@pytest.mark.parametrize("epoch, total, expected", [
    (100, 300, 25),   # divisors of gcd 100 up to 32: 25
    (6, 8, 2),        # gcd 2
    (64, 640, 32),    # capped at 32
    (37, 74, 1),      # 37 is prime and above the cap
    (7, 7, 7),
])
def test_auto_is_the_largest_divisor_of_every_call_up_to_32(epoch, total, expected):
    chosen = steps_per_execution("auto", epoch, total)
    assert chosen == expected
    assert epoch % chosen == 0 and total % chosen == 0


def test_a_given_count_must_divide_the_epoch_and_the_run():
    assert steps_per_execution(4, 100, 300) == 4
    with pytest.raises(RecipeError, match=r"steps_per_execution: 3 does not divide steps_per_epoch \(100\)"):
        steps_per_execution(3, 100, 300)


@pytest.mark.parametrize("value", ["fast", 0, -2, True, 1.5])
def test_the_recipe_refuses_anything_but_auto_or_a_positive_integer(value):
    with pytest.raises(RecipeError, match="steps_per_execution"):
        load_recipe("smoke", {"steps_per_execution": value})
    assert load_recipe("smoke", {"steps_per_execution": 4}).steps_per_execution == 4
    assert load_recipe("smoke").steps_per_execution == "auto"


def _event_steps(log_dir, tag):
    steps = []
    for path in sorted(glob.glob(os.path.join(log_dir, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return sorted(steps)


def test_tensorboard_batch_axis_counts_steps_not_calls(tmp_path):
    x, y = vectors(n=48)
    model = FaceModel(dense_backbone(), heads.CosFace(5))
    model.compile(keras.optimizers.SGD(0.1), steps_per_execution=3)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    # update_freq 5 steps rounds to 6 (two calls): logs at steps 6 and 12 of two 6-step epochs.
    board = StepTensorBoard(3, log_dir=str(tmp_path / "logs"), update_freq=5)
    assert board.update_freq == 6
    model.fit(ds, epochs=2, steps_per_epoch=6, callbacks=[board], verbose=0)
    assert _event_steps(str(tmp_path / "logs"), "batch_loss") == [6, 12]
    every = StepTensorBoard(3, log_dir=str(tmp_path / "every"), update_freq=1)
    model.fit(ds, epochs=2, steps_per_epoch=6, callbacks=[every], verbose=0)
    assert _event_steps(str(tmp_path / "every"), "batch_loss") == [3, 6, 9, 12]


def _overrides(data, **extra):
    values = {"data.train": data, "data.image_size": [32, 32], "data.batch_size": 8,
              "steps_per_epoch": 6, "checkpoint_every": 3, "jit_compile": False}
    values.update(extra)
    return values


def test_a_resume_between_two_calls_ends_runs_exactly_the_remaining_steps(tmp_path, small_synthetic):
    data = small_synthetic
    workdir = str(tmp_path / "run")
    summary = train("smoke", workdir, steps=6, progress=False, overrides=_overrides(data, steps_per_execution=3))
    checkpoints = os.path.join(workdir, "checkpoints")
    assert summary["steps"] == 6 and [s for s, _ in list_checkpoints(checkpoints)] == [6, 3]
    # Drop ckpt-6: the run resumes at step 3, which 6 steps per call do not reach; the run then
    # takes gcd(6, 3) = 3 steps per call: 3 to finish epoch 1, 6 for epoch 2, and stops at 12.
    for path in glob.glob(os.path.join(checkpoints, "ckpt-6.*")):
        os.remove(path)
    shutil.rmtree(os.path.join(workdir, "logs"))
    summary = train("smoke", workdir, steps=12, progress=False, overrides=_overrides(data, steps_per_execution=6))
    assert summary["resumed_from"] == 3 and summary["steps"] == 12
    reader = tf.train.load_checkpoint(os.path.join(checkpoints, "ckpt-12"))
    assert int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 12
    iterations = [k for k in reader.get_variable_to_shape_map() if "optimizer" in k and "iteration" in k]
    assert iterations and all(int(reader.get_tensor(k)) == 12 for k in iterations)
