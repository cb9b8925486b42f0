"""tfface.layers: stateful helpers shared by losses.

``ClassCentres`` owns the class centres of Centre Loss and Minimum Margin Loss (registered as
component kind ``"centres"``, name ``"class_centres"``); ``centre_ops`` holds the centre maths
the layer and the centre losses share (``tfface.losses`` imports it; nothing here imports
``tfface.losses``). The cross-replica helpers live in ``tfface.replica``.
"""

from tfface.layers import centre_ops
from tfface.layers.centres import ClassCentres

__all__ = ["ClassCentres", "centre_ops"]
