"""Views of the backbones in the shared registry (:mod:`tfface.registry`, kind ``"backbone"``).

A backbone is one builder function registered there::

    @registry.register("backbone", "tiny", inject=("input_shape",),
                       input_shape=(32, 32, 3), embedding_size=64, min_input_size=32)
    def tiny(input_shape=(32, 32, 3), embedding_size=64, sync_bn=False): ...

The builder takes ``input_shape`` (provided by whoever builds it, never a recipe argument) and
``embedding_size`` (plus its own keyword arguments) and returns a ``keras.Model`` from float
pixels in [0, 255] ``(B, H, W, 3)`` to float32 embeddings ``(B, D)``. The entry's ``meta``
records the native ``input_shape``, the default ``embedding_size`` (the same as the builder's
own default, so ``registry.build`` without ``embedding_size`` gives it) and ``min_input_size``.
This module only reads the shared registry: :func:`names`, :func:`spec` and :func:`get`.
"""
import dataclasses

from tfface import registry


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about a backbone.

    ``input_shape`` is the native ``(H, W, 3)``; ``min_input_size`` the smallest square side the
    architecture accepts (its stride / valid-padding budget); ``embedding_size`` the default.
    """

    name: str
    builder: object
    input_shape: tuple
    embedding_size: int
    min_input_size: int


def names():
    """Registered backbone names, sorted."""
    return sorted(registry.names("backbone"))


def spec(name):
    """The :class:`BackboneSpec` of ``name`` (native input shape, default embedding size, ...)."""
    found = registry.entry("backbone", name)
    meta = found.meta
    return BackboneSpec(
        name=found.name,
        builder=found.target,
        input_shape=tuple(meta["input_shape"]),
        embedding_size=int(meta["embedding_size"]),
        min_input_size=int(meta["min_input_size"]),
    )


def get(name, input_shape=None, embedding_size=None, **kwargs):
    """Build the backbone ``name`` as a ``keras.Model`` (through ``registry.build``).

    Args:
      name: a registered name (see :func:`names`).
      input_shape: ``(H, W, 3)``; ``None`` means the backbone's native size (e.g. 112×112 for
        the IResNets, 160×160 for Inception-ResNet-v1).
      embedding_size: output dimension ``D``; ``None`` means the backbone's default (512 for the
        paper backbones, 64 for ``tiny``).
      **kwargs: builder-specific options (``dropout``, ``dropout_keep``, ``sync_bn``...).

    Returns:
      ``keras.Model`` mapping float pixels in [0, 255] ``(B, H, W, 3)`` to float32 ``(B, D)``
      embeddings (not L2-normalised).
    """
    s = spec(name)
    args = dict(kwargs)
    if embedding_size is not None:
        args["embedding_size"] = embedding_size
    return registry.build(
        "backbone",
        registry.Component(s.name, args),
        input_shape=s.input_shape if input_shape is None else input_shape,
    )
