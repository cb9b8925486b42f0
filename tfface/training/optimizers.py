"""The optimizers a recipe can name (registry kind ``"optimizer"``).

Each is a small builder over the Keras optimizer with the arguments the papers' settings use;
the learning rate (a schedule) is injected by the builder. None of them takes Keras' decoupled
``weight_decay``: tfface's weight decay is the coupled L2 of ``FaceModel`` (the papers' Caffe /
PyTorch ``weight_decay``), set by the recipe's ``weight_decay`` and ``decay_scope``, and two decays
at once would be a silent double penalty.
"""
import keras

from tfface import registry


def _clip(clipnorm, clipvalue):
    return {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue)) if v is not None}


@registry.register("optimizer", "sgd", inject=("learning_rate",), aliases=("SGD",))
def sgd(learning_rate, momentum=0.9, nesterov=False, clipnorm=None, clipvalue=None):
    """SGD with momentum (every paper's optimizer but MML's)."""
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                                **_clip(clipnorm, clipvalue))


@registry.register("optimizer", "adam", inject=("learning_rate",), aliases=("Adam",))
def adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None):
    """Adam (facenet's VGGFace2 classifier, hence the MML recipes, with epsilon 0.1)."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                 amsgrad=amsgrad, **_clip(clipnorm, clipvalue))


@registry.register("optimizer", "rmsprop", inject=("learning_rate",), aliases=("RMSprop",))
def rmsprop(learning_rate, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, clipnorm=None, clipvalue=None):
    """RMSprop (facenet's other published optimizer choice)."""
    return keras.optimizers.RMSprop(learning_rate=learning_rate, rho=rho, momentum=momentum, epsilon=epsilon,
                                    centered=centered, **_clip(clipnorm, clipvalue))


@registry.register("optimizer", "adamw", inject=("learning_rate",), aliases=("AdamW",))
def adamw(learning_rate, decoupled_weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, clipnorm=None,
          clipvalue=None):
    """AdamW: Adam with *decoupled* weight decay ``decoupled_weight_decay`` (set the recipe's
    coupled ``weight_decay`` to 0 with it, or both apply)."""
    return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=decoupled_weight_decay, beta_1=beta_1,
                                  beta_2=beta_2, epsilon=epsilon, **_clip(clipnorm, clipvalue))
