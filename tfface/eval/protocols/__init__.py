"""The benchmarks of the papers' tables, each a registered :class:`Protocol` (kind ``"protocol"``).

Importing this package registers every protocol module listed below (``tfface.registry`` imports
it when the ``protocol`` kind is first asked for).
"""
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols import megaface  # noqa: F401
from tfface.eval.protocols import tinyface  # noqa: F401

__all__ = ["Protocol"]
