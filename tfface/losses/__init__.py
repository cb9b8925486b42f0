"""tfface.losses: mining and auxiliary losses, each a thin ``keras.losses.Loss`` over a pure
function in ``tfface.losses.functional``.

Logits losses are called ``loss(labels, logits)`` (``HardMining``, ``Focal``, ``OHEM``);
feature losses ``loss(labels, embeddings)`` (``CentreLoss``, ``RangeLoss``, ``MarginalLoss``,
``MinimumMarginLoss``). The centre losses read a ``tfface.layers.ClassCentres`` layer owned by
the model.

Every loss is registered in ``tfface.registry`` as kind ``"loss"`` (``registry.names("loss")``):
``cross_entropy``, ``hard_mining``, ``focal``, ``ohem``, ``centre``, ``range``, ``marginal``,
``minimum_margin``. Each entry's ``meta["takes"]`` says what it is called with (``"logits"`` or
``"embeddings"``); the centre losses declare ``inject=("centres",)`` and ``requires_centres``.
"""

from tfface.losses import functional
from tfface.losses.centre import CentreLoss
from tfface.losses.cross_entropy import cross_entropy
from tfface.losses.focal import Focal
from tfface.losses.hard_mining import HardMining
from tfface.losses.marginal import MarginalLoss
from tfface.losses.minimum_margin import MinimumMarginLoss
from tfface.losses.ohem import OHEM
from tfface.losses.range import RangeLoss

__all__ = [
    "CentreLoss",
    "Focal",
    "HardMining",
    "MarginalLoss",
    "MinimumMarginLoss",
    "OHEM",
    "RangeLoss",
    "cross_entropy",
    "functional",
]
