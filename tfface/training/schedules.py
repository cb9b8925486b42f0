"""Learning-rate and loss-weight schedules keyed on the optimizer's step.

``StepDecay`` is the schedule of every paper tfface reproduces: a constant learning rate divided
by a factor at given epochs or iterations (Caffe's ``multistep``, PyTorch's ``MultiStepLR``,
facenet's learning-rate file), optionally preceded by a linear warm-up. Boundaries may be given
in epochs: with ``steps_per_epoch`` they are converted to steps once, so the schedule is a pure
function of ``optimizer.iterations`` and a run resumed mid-epoch gets the same rates.

``StepWeight`` is a piecewise-constant weight for an auxiliary loss (the Minimum Margin paper's
two-stage training is ``StepWeight({0: 0.0, 100000: 5e-8})``).
"""
import math

import keras
from keras import ops

from tfface import registry


def _to_steps(value, steps_per_epoch, what):
    steps = value * steps_per_epoch
    rounded = int(round(steps))
    if rounded < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return rounded


@keras.saving.register_keras_serializable(package="tfface")
@registry.register("schedule", "step_decay", inject=("steps_per_epoch",))
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant learning rate with an optional linear warm-up.

    The rate is ``values[i]`` for ``boundary[i-1] <= step < boundary[i]`` where
    ``values = [lr, lr·factor, lr·factor², ...]`` unless ``values`` is given explicitly
    (one more value than boundaries). So ``StepDecay(0.1, [28, 38, 46], steps_per_epoch=S)``
    trains epochs 0–27 at 0.1 and epoch 28 (the 29th) onwards at 0.01, as ``MultiStepLR``.

    During the first ``warmup`` units (same unit as the boundaries) the rate rises linearly from
    ``warmup_start`` at step 0 to the scheduled rate at step ``warmup·steps_per_epoch``
    (Keras' ``CosineDecay`` warm-up convention).

    Args:
        learning_rate: initial rate.
        boundaries: increasing list of epochs (or steps when ``steps_per_epoch=1``).
        factor: multiplier applied at each boundary (0.1 = "divide by 10").
        values: explicit rates per interval; overrides ``learning_rate``/``factor``.
        warmup: warm-up length in the boundaries' unit.
        warmup_start: rate at step 0 of the warm-up.
        steps_per_epoch: steps per boundary unit (1: boundaries are steps).
    """

    def __init__(
        self,
        learning_rate,
        boundaries=(),
        factor=0.1,
        values=None,
        warmup=0,
        warmup_start=0.0,
        steps_per_epoch=1,
        name="step_decay",
    ):
        self.learning_rate = float(learning_rate)
        self.boundaries = [float(b) if not float(b).is_integer() else int(b) for b in boundaries]
        self.factor = float(factor)
        self.values = None if values is None else [float(v) for v in values]
        self.warmup = warmup
        self.warmup_start = float(warmup_start)
        self.steps_per_epoch = steps_per_epoch
        self.name = name
        if steps_per_epoch is None or steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be a positive number, got {steps_per_epoch!r}")
        if any(b1 >= b2 for b1, b2 in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {list(boundaries)}")
        if self.values is not None and len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"values needs one more entry than boundaries ({len(self.boundaries) + 1}), "
                f"got {len(self.values)}"
            )
        self.boundary_steps = [
            _to_steps(b, steps_per_epoch, "a boundary") for b in self.boundaries
        ]
        self.warmup_steps = _to_steps(warmup, steps_per_epoch, "warmup")
        if self.values is None:
            self.rates = [self.learning_rate * self.factor**i for i in range(len(self.boundaries) + 1)]
        else:
            self.rates = list(self.values)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = ops.convert_to_tensor(self.rates[0], "float32")
        for boundary, rate in zip(self.boundary_steps, self.rates[1:]):
            lr = ops.where(step >= boundary, ops.cast(rate, "float32"), lr)
        if self.warmup_steps > 0:
            ramp = self.warmup_start + (lr - self.warmup_start) * step / float(self.warmup_steps)
            lr = ops.where(step < self.warmup_steps, ramp, lr)
        return lr

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "boundaries": list(self.boundaries),
            "factor": self.factor,
            "values": None if self.values is None else list(self.values),
            "warmup": self.warmup,
            "warmup_start": self.warmup_start,
            "steps_per_epoch": self.steps_per_epoch,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="tfface")
class StepWeight(keras.optimizers.schedules.LearningRateSchedule):
    """A piecewise-constant weight: ``values[k]`` from step ``k`` until the next key.

    ``StepWeight({0: 0.0, 100000: 5e-8})`` is 0 for steps 0–99999 and 5e-8 afterwards. Before
    the smallest key the weight is 0 (so ``StepWeight({100000: 5e-8})`` means the same). Keys
    may be ints or strings of ints (JSON objects have string keys).
    """

    def __init__(self, values, name="step_weight"):
        if not isinstance(values, dict) or not values:
            raise ValueError(f"StepWeight needs a non-empty dict {{step: weight}}, got {values!r}")
        parsed = {}
        for key, weight in values.items():
            try:
                step = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"StepWeight keys must be integer steps, got {key!r}") from None
            if step < 0 or (isinstance(key, float) and not key.is_integer()):
                raise ValueError(f"StepWeight keys must be integer steps >= 0, got {key!r}")
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight):
                raise ValueError(f"StepWeight weight for step {key!r} must be a finite number, got {weight!r}")
            parsed[step] = float(weight)
        self.values = dict(sorted(parsed.items()))
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "int64")
        weight = ops.convert_to_tensor(0.0, "float32")
        for key, value in self.values.items():
            weight = ops.where(step >= key, ops.cast(value, "float32"), weight)
        return weight

    def get_config(self):
        return {"values": {str(k): v for k, v in self.values.items()}, "name": self.name}
