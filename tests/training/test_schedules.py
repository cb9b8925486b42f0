"""Learning-rate and loss-weight schedules against hand-computed values."""
import keras
import numpy as np
import pytest

from tfface.training.schedules import StepDecay, StepWeight


def test_step_decay_by_epoch_matches_multistep_by_hand():
    # lr 0.1, ÷10 at epochs 2 and 3, 5 steps per epoch: steps 0–9 at 0.1, 10–14 at 0.01, then 0.001.
    schedule = StepDecay(0.1, boundaries=[2, 3], factor=0.1, steps_per_epoch=5)
    expected = {0: 0.1, 9: 0.1, 10: 0.01, 14: 0.01, 15: 0.001, 1000: 0.001}
    for step, lr in expected.items():
        np.testing.assert_allclose(float(schedule(step)), lr, rtol=1e-6)


def test_step_decay_by_step_with_explicit_values_and_warmup():
    # Boundaries in steps; explicit values; 4 warm-up steps rising linearly from 0.
    schedule = StepDecay(0.05, boundaries=[6, 8], values=[0.05, 0.005, 0.0005], warmup=4)
    expected = {0: 0.0, 1: 0.0125, 2: 0.025, 3: 0.0375, 4: 0.05, 5: 0.05, 6: 0.005, 8: 0.0005}
    for step, lr in expected.items():
        np.testing.assert_allclose(float(schedule(step)), lr, rtol=1e-6, atol=1e-9)


def test_step_decay_fractional_epochs_and_config_roundtrip():
    schedule = StepDecay(1.0, boundaries=[0.5], factor=0.5, warmup=0.25, warmup_start=0.2, steps_per_epoch=8)
    # warm-up 2 steps from 0.2 to 1.0; boundary at step 4
    for step, lr in {0: 0.2, 1: 0.6, 2: 1.0, 3: 1.0, 4: 0.5}.items():
        np.testing.assert_allclose(float(schedule(step)), lr, rtol=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()
    assert float(restored(3)) == float(schedule(3))


def test_step_decay_rejects_bad_arguments():
    with pytest.raises(ValueError, match="strictly increasing"):
        StepDecay(0.1, boundaries=[3, 2])
    with pytest.raises(ValueError, match="one more entry"):
        StepDecay(0.1, boundaries=[3], values=[0.1])


def test_step_weight_switches_at_the_given_step():
    weight = StepWeight({0: 0.0, 100: 5e-8})
    assert float(weight(0)) == 0.0
    assert float(weight(99)) == 0.0
    np.testing.assert_allclose(float(weight(100)), 5e-8, rtol=1e-6)
    np.testing.assert_allclose(float(weight(10**6)), 5e-8, rtol=1e-6)
    # JSON keys are strings; before the first key the weight is 0.
    late = StepWeight({"10": 2.0, "20": 3.0})
    assert [float(late(s)) for s in (0, 9, 10, 19, 20)] == [0.0, 0.0, 2.0, 2.0, 3.0]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(late))
    assert float(restored(15)) == 2.0


def test_step_weight_rejects_bad_keys():
    with pytest.raises(ValueError, match="integer steps"):
        StepWeight({"ten": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        StepWeight({0: float("nan")})
