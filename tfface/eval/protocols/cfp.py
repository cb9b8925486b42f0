"""CFP (Celebrities in Frontal-Profile, Sengupta et al., WACV 2016): ``cfp_fp`` (frontal vs
profile) and ``cfp_ff`` (frontal vs frontal).

Layout as published (http://www.cfpw.io/, ``cfp-dataset/``)::

    Protocol/Pair_list_F.txt            "1 ../Data/Images/001/frontal/01.jpg" (5,000 frontal images)
    Protocol/Pair_list_P.txt            "1 ../Data/Images/001/profile/01.jpg" (2,000 profile images)
    Protocol/Split/FP/01..10/same.txt   "frontal index,profile index" (350 per split)
    Protocol/Split/FP/01..10/diff.txt   (350 per split)
    Protocol/Split/FF/01..10/{same,diff}.txt   "frontal index,frontal index"
    Data/Images/<id>/{frontal,profile}/NN.jpg

``--data`` is the folder holding ``Protocol/`` and ``Data/`` (read by
:func:`tfface.data.pairsets.read_cfp`), or insightface's ``cfp_fp.bin`` / ``cfp_ff.bin`` (or a
folder holding it), which is evaluated by :func:`tfface.eval.protocols.binsets.evaluate_bin`
with insightface's 10 contiguous folds.

**Folds: the 10 published splits**, not contiguous slices of a list: for split k the threshold
is the one maximising accuracy on the other nine splits (every distinct score a candidate, the
strictest on ties), and the accuracy is measured on split k; ``accuracy`` / ``accuracy_std``
are the mean / population std over the ten splits (CFP's 10-split protocol, the LFW
protocol applied to the published splits).
``tar_at_far``, ``auc``, ``eer`` are computed on all 7,000 pairs together.

**Images**: ``Data/Images`` holds the raw, unaligned photographs. Align them first
(``tfface align DATA/Data/Images DST --split test``) and pass ``images=DST``, or use
``aligned=False`` to align in memory (see :mod:`tfface.eval.protocols.pairset_common`).
"""
import os

from tfface import registry
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols.pairset_common import bin_path, pair_result
from tfface.eval.verification import DEFAULT_FAR

__all__ = ["CFP", "CFPFP", "CFPFF"]


class CFP(Protocol):
    """One CFP protocol (``protocol`` = ``"FP"`` or ``"FF"``).

    Args:
        data: the CFP root (holding ``Protocol/`` and ``Data/``), or a ``.bin`` file.
        images: an image root standing for ``Data/Images`` (an aligned copy).
        aligned: True: the images are used as they are; False: aligned in memory first.
        align_mode, align_size: the on-the-fly alignment (``aligned=False``).
        far: the FARs of ``tar_at_far``.
        metric: ``"cosine"`` or ``"euclidean"``.
    """

    task = "verification"
    protocol = None

    def __init__(self, data, images=None, aligned=True, align_mode="arcface", align_size=112,
                 far=DEFAULT_FAR, metric="cosine"):
        super().__init__(data)
        data = os.fspath(data)
        self.name = f"cfp_{self.protocol.lower()}"
        self.bin = None
        if os.path.isfile(data) or not os.path.isdir(os.path.join(data, "Protocol")):
            self.bin = bin_path(data, f"{self.name}.bin")
            if self.bin is None:
                raise FileNotFoundError(
                    f"{self.name}: {data} is neither CFP's folder (with Protocol/ and Data/) nor "
                    f"an insightface .bin (nor a folder holding {self.name}.bin)")
        self.root = data
        self.images = None if images is None else os.fspath(images)
        self.aligned = bool(aligned)
        self.align_mode = align_mode
        self.align_size = align_size
        self.far = tuple(far)
        self.metric = metric

    def read(self):
        """``(paths, issame, folds)`` of the published layout (folds = split index)."""
        from tfface.data.pairsets import read_cfp

        return read_cfp(self.root, self.protocol, images=self.images)

    def evaluate(self, embed, progress=None):
        if self.bin is not None:
            from tfface.eval.protocols.binsets import evaluate_bin

            return evaluate_bin(self.bin, embed, folds=10, far=self.far, key=f"{self.name}/bin",
                                metric=self.metric, progress=progress)
        paths, issame, folds = self.read()
        return pair_result(paths, issame, folds, embed, f"{self.name}/images", self.far,
                           metric=self.metric, aligned=self.aligned, align_mode=self.align_mode,
                           align_size=self.align_size, progress=progress)


@registry.register("protocol", "cfp_fp", inject=("data",))
class CFPFP(CFP):
    """CFP frontal-profile: 10 splits of 350 same + 350 different frontal/profile pairs."""

    protocol = "FP"


@registry.register("protocol", "cfp_ff", inject=("data",))
class CFPFF(CFP):
    """CFP frontal-frontal: 10 splits of 350 same + 350 different frontal/frontal pairs."""

    protocol = "FF"
