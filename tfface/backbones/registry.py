"""The backbone registry: a backbone is one builder function decorated with :func:`register`.

A builder takes ``input_shape`` and ``embedding_size`` (plus its own keyword arguments) and
returns a ``keras.Model`` from float pixels in [0, 255] ``(B, H, W, 3)`` to float32 embeddings
``(B, D)``. The registry records the backbone's native input shape and default embedding size so
that ``get(name)`` builds the paper's configuration, and the parametrised tests pick up a newly
registered backbone without new test code.
"""
import dataclasses


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


_REGISTRY = {}


def register(name, *, input_shape, embedding_size=512, min_input_size=32):
    """Decorator registering ``builder(input_shape=..., embedding_size=..., **kwargs)``.

    Registering a name twice is an error (two modules silently shadowing each other would make
    ``get`` depend on import order).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"backbone name must be a non-empty string, got {name!r}")

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(
                f"backbone {name!r} is already registered (by "
                f"{_REGISTRY[name].builder.__module__}.{_REGISTRY[name].builder.__name__})"
            )
        _REGISTRY[name] = BackboneSpec(
            name=name,
            builder=builder,
            input_shape=tuple(input_shape),
            embedding_size=int(embedding_size),
            min_input_size=int(min_input_size),
        )
        return builder

    return decorator


def names():
    """Registered backbone names, sorted."""
    return sorted(_REGISTRY)


def spec(name):
    """The :class:`BackboneSpec` of ``name`` (native input shape, default embedding size, ...)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; known backbones: {', '.join(names())}"
        ) from None


def get(name, input_shape=None, embedding_size=None, **kwargs):
    """Build the backbone ``name`` as a ``keras.Model``.

    Args:
      name: a registered name (see :func:`names`).
      input_shape: ``(H, W, 3)``; ``None`` means the backbone's native size (e.g. 112×112 for
        the IResNets, 160×160 for Inception-ResNet-v1).
      embedding_size: output dimension ``D``; ``None`` means the backbone's default (512 for the
        paper backbones, 64 for ``tiny``).
      **kwargs: builder-specific options (``dropout``, ``dropout_keep``, ``bn_synchronized``...).

    Returns:
      ``keras.Model`` mapping float pixels in [0, 255] ``(B, H, W, 3)`` to float32 ``(B, D)``
      embeddings (not L2-normalised).
    """
    s = spec(name)
    return s.builder(
        input_shape=s.input_shape if input_shape is None else input_shape,
        embedding_size=s.embedding_size if embedding_size is None else embedding_size,
        **kwargs,
    )
