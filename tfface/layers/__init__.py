"""tfface.layers: stateful helpers shared by losses.

``ClassCentres`` owns the class centres of Centre Loss and Minimum Margin Loss;
``replica`` holds the cross-replica helpers for batch-level losses.
"""

from tfface.layers.centres import ClassCentres

__all__ = ["ClassCentres"]
