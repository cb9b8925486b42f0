"""Lazy re-exports for sub-packages whose modules import TensorFlow (PEP 562).

A package lists ``{public name: defining module}`` and gets module-level ``__getattr__`` and
``__dir__`` functions, so ``import tfface.x`` stays cheap and free of side effects while
``tfface.x.Name`` works as if imported eagerly.
"""
import importlib


def lazy_exports(package, exports, namespace):
    """Return ``(__getattr__, __dir__)`` for the package called ``package`` whose module
    namespace is ``namespace`` (its ``globals()``)."""

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(list(namespace) + list(exports))

    return __getattr__, __dir__
