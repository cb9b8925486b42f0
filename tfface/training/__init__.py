"""tfface.training: ``FaceModel`` for ``model.fit``, schedules, recipes, distribution, resume.

    centres = tfface.layers.ClassCentres(num_classes)
    model = tfface.FaceModel(backbone, head, aux_losses={"centre": (CentreLoss(centres), 5e-5)},
                             centres=centres, weight_decay=5e-4)
    model.compile(optimizer=keras.optimizers.SGD(StepDecay(0.1, [28, 38, 46], steps_per_epoch=S)),
                  loss=tfface.losses.HardMining())
    model.fit(ds, epochs=50)

    summary = tfface.training.train("smoke", "runs/smoke")   # what `tfface train` runs
"""
from tfface.training import schedules
from tfface.training.builder import DataError, TrainingRun, build
from tfface.training.callbacks import NonFiniteLossError, ProgressPrinter, StepCheckpoint, init_from
from tfface.training.distribution import default_strategy
from tfface.training.model import FaceModel
from tfface.recipe import Recipe, RecipeError, list_recipes, load_recipe
from tfface.training.runner import train
from tfface.training.schedules import StepDecay, StepWeight

__all__ = [
    "DataError",
    "FaceModel",
    "NonFiniteLossError",
    "ProgressPrinter",
    "Recipe",
    "RecipeError",
    "StepCheckpoint",
    "StepDecay",
    "StepWeight",
    "TrainingRun",
    "build",
    "default_strategy",
    "init_from",
    "list_recipes",
    "load_recipe",
    "schedules",
    "train",
]
