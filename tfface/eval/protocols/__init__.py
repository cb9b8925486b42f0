"""The benchmarks of the papers' tables, each a registered :class:`Protocol` (kind ``"protocol"``).

Importing this package registers every protocol module listed below (``tfface.registry`` imports
it when the ``protocol`` kind is first asked for).
"""
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols import cfp  # noqa: F401  (registers cfp_fp, cfp_ff)
from tfface.eval.protocols import pairlists  # noqa: F401  (registers calfw, cplfw, sllfw)
from tfface.eval.protocols import rfw  # noqa: F401  (registers rfw_african, _asian, _caucasian, _indian)
from tfface.eval.protocols import ytf  # noqa: F401  (registers ytf)

__all__ = ["Protocol"]
