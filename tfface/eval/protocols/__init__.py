"""The benchmarks of the papers' tables, each a registered :class:`Protocol` (kind ``"protocol"``).

Importing this package registers every protocol module listed below (``tfface.registry`` imports
it when the ``protocol`` kind is first asked for). The protocol modules are numpy only at import;
:func:`evaluate_protocol` (the runner, which extracts embeddings with TensorFlow) is resolved
lazily.
"""
from tfface._lazy import lazy_exports
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols import lfw  # noqa: F401  (registers lfw)
from tfface.eval.protocols import binsets  # noqa: F401  (registers lfw_bin, agedb_30, vgg2_fp)
from tfface.eval.protocols import cfp  # noqa: F401  (registers cfp_fp, cfp_ff)
from tfface.eval.protocols import pairlists  # noqa: F401  (registers calfw, cplfw, sllfw)
from tfface.eval.protocols import rfw  # noqa: F401  (registers rfw_african, _asian, _caucasian, _indian)
from tfface.eval.protocols import ytf  # noqa: F401  (registers ytf)
from tfface.eval.protocols import ijb  # noqa: F401  (ijbb, ijbc, ijbb_1n, ijbc_1n)
from tfface.eval.protocols import megaface  # noqa: F401  (registers megaface)
from tfface.eval.protocols import tinyface  # noqa: F401  (registers tinyface)

_EXPORTS = {
    "evaluate_protocol": "tfface.eval.protocols.runner",
    "make_embed": "tfface.eval.protocols.runner",
    "evaluate_bin": "tfface.eval.protocols.binsets",
    "evaluate_pairs": "tfface.eval.protocols.lfw",
    "pair_metrics": "tfface.eval.protocols.lfw",
}

__all__ = ["Protocol", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
