"""CALFW, CPLFW (Zheng & Deng: cross-age / cross-pose LFW) and SLLFW (Deng et al.:
similar-looking LFW), the LFW-derived pair lists of Weihong Deng's group, 10-fold as LFW.

Layouts as published (http://whdeng.cn/CALFW, /CPLFW, /SLLFW):

* ``calfw``: ``calfw/pairs_CALFW.txt`` and ``calfw/aligned images/<Name>_NNNN.jpg``; ``cplfw``:
  ``cplfw/pairs_CPLFW.txt`` and ``cplfw/aligned images/`` (or ``images/``). Two consecutive
  ``IMAGE LABEL`` lines per pair, label 0 = different people (read by
  :func:`tfface.data.pairsets.read_two_line_pairs`). The release lists the 3,000 positive pairs
  first, then the 3,000 negative ones; fold k = the k-th 300 positives + the k-th 300
  negatives (FaceX-Zoo's reading of the lists). ``--data`` may also be insightface's
  ``calfw.bin`` / ``cplfw.bin`` (or a folder holding it), evaluated by
  :func:`tfface.eval.protocols.binsets.evaluate_bin` (10 contiguous folds).
* ``sllfw``: ``pair_SLLFW.txt`` (one LFW image ``name/name_NNNN.jpg`` per line, two lines per
  pair, same person when both are in the same folder; 10 folds of 300 + 300 in file order,
  read by :func:`tfface.data.pairsets.read_sllfw`) beside LFW's images (``lfw/``,
  ``lfw-deepfunneled/`` or ``lfw_funneled/`` under ``--data``, else ``images=``).

**Images.** CALFW's ``aligned images`` are the authors' aligned crops and are used as they are
(resized to the model's input). CPLFW's release ships aligned crops too where present
(``aligned images/``); its ``images/`` folder, and LFW's images for SLLFW, are unaligned
250×250 crops: align them first (``tfface align SRC DST --split test``, then ``images=DST``) or
use ``aligned=False`` (:mod:`tfface.eval.protocols.pairset_common`).

Metrics as LFW: ``accuracy``, ``accuracy_std``, ``threshold``, ``tar_at_far``, ``auc``, ``eer``.
"""
import os

from tfface import registry
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols.pairset_common import bin_path, pair_result
from tfface.eval.verification import DEFAULT_FAR

__all__ = ["CALFW", "CPLFW", "SLLFW", "TwoLinePairs"]

#: LFW's image folders, tried in this order under SLLFW's ``--data``.
LFW_IMAGE_ROOTS = ("lfw", "lfw-deepfunneled", "lfw_funneled")


def _first_dir(root, names):
    for name in names:
        candidate = os.path.join(root, name)
        if os.path.isdir(candidate):
            return candidate
    return None


class _PairList(Protocol):
    task = "verification"
    name = None

    def __init__(self, data, pairs, images, aligned, align_mode, align_size, folds, far,
                 metric):
        super().__init__(data)
        self.images = None if images is None else os.fspath(images)
        self.aligned = bool(aligned)
        self.align_mode = align_mode
        self.align_size = align_size
        self.folds = folds
        self.far = tuple(far)
        self.metric = metric

    def _metrics(self, paths, issame, folds, embed, progress):
        return pair_result(paths, issame, folds, embed, f"{self.name}/images", self.far,
                           metric=self.metric, aligned=self.aligned, align_mode=self.align_mode,
                           align_size=self.align_size, progress=progress)


class TwoLinePairs(_PairList):
    """CALFW / CPLFW (see the module docstring).

    Args:
        data: the folder holding the pair list (or the list itself, or a ``.bin``).
        pairs: the pair list's name in ``data``.
        images: the image folder (default: ``aligned images/``, ``aligned_images/`` or
            ``images/`` under ``data``).
        aligned: True: images used as they are; False: aligned in memory first.
        align_mode, align_size: the on-the-fly alignment.
        folds: number of folds (10).
        far: the FARs of ``tar_at_far``.
        metric: ``"cosine"`` or ``"euclidean"``.
    """

    pairs_name = None
    image_dirs = ("aligned images", "aligned_images", "images")

    def __init__(self, data, pairs=None, images=None, aligned=True, align_mode="arcface",
                 align_size=112, folds=10, far=DEFAULT_FAR, metric="cosine"):
        super().__init__(data, pairs, images, aligned, align_mode, align_size, folds, far,
                         metric)
        data = os.fspath(data)
        pairs = pairs or self.pairs_name
        self.bin = None
        if os.path.isfile(data) and data.lower().endswith(".bin"):
            self.bin = data
            return
        if os.path.isfile(data):
            self.pairs_txt = data
            root = os.path.dirname(os.path.abspath(data))
        else:
            self.pairs_txt = os.path.join(data, pairs)
            root = data
        if not os.path.isfile(self.pairs_txt):
            self.bin = bin_path(data, f"{self.name}.bin") if os.path.isdir(data) else None
            if self.bin is None:
                raise FileNotFoundError(
                    f"{self.name}: {self.pairs_txt} does not exist; expected the published "
                    f"{pairs} (with its image folder) or insightface's {self.name}.bin in {data}")
            return
        if self.images is None:
            self.images = _first_dir(root, self.image_dirs)
            if self.images is None:
                raise FileNotFoundError(
                    f"{self.name}: no image folder under {root}; expected one of "
                    f"{', '.join(repr(d) for d in self.image_dirs)} (or give images=)")

    def read(self):
        """``(paths, issame, folds)`` of the published pair list."""
        from tfface.data.pairsets import read_two_line_pairs

        return read_two_line_pairs(self.pairs_txt, self.images, folds=self.folds)

    def evaluate(self, embed, progress=None):
        if self.bin is not None:
            from tfface.eval.protocols.binsets import evaluate_bin

            return evaluate_bin(self.bin, embed, folds=self.folds, far=self.far,
                                key=f"{self.name}/bin", metric=self.metric, progress=progress)
        paths, issame, folds = self.read()
        return self._metrics(paths, issame, folds, embed, progress)


@registry.register("protocol", "calfw", inject=("data",))
class CALFW(TwoLinePairs):
    """Cross-Age LFW: 6,000 pairs (3,000 positive with an age gap), 10 folds."""

    name = "calfw"
    pairs_name = "pairs_CALFW.txt"


@registry.register("protocol", "cplfw", inject=("data",))
class CPLFW(TwoLinePairs):
    """Cross-Pose LFW: 6,000 pairs (3,000 positive across pose), 10 folds."""

    name = "cplfw"
    pairs_name = "pairs_CPLFW.txt"


@registry.register("protocol", "sllfw", inject=("data",))
class SLLFW(_PairList):
    """Similar-Looking LFW: LFW's 3,000 positive pairs and 3,000 negative pairs of look-alikes,
    10 folds of 300 + 300 in file order.

    Args:
        data: the folder holding ``pair_SLLFW.txt`` (or the list itself).
        pairs: the pair list's name in ``data``.
        images: LFW's image folder (default: ``lfw/``, ``lfw-deepfunneled/``, ``lfw_funneled/``
            under ``data``, else ``data``); give an aligned copy here.
        aligned, align_mode, align_size, folds, far, metric: as :class:`TwoLinePairs`.
    """

    name = "sllfw"

    def __init__(self, data, pairs="pair_SLLFW.txt", images=None, aligned=True,
                 align_mode="arcface", align_size=112, folds=10, far=DEFAULT_FAR,
                 metric="cosine"):
        super().__init__(data, pairs, images, aligned, align_mode, align_size, folds, far,
                         metric)
        data = os.fspath(data)
        if os.path.isfile(data):
            self.pairs_txt = data
            root = os.path.dirname(os.path.abspath(data))
        else:
            self.pairs_txt = os.path.join(data, pairs)
            root = data
        if not os.path.isfile(self.pairs_txt):
            raise FileNotFoundError(f"sllfw: {self.pairs_txt} does not exist; expected SLLFW's "
                                    f"{pairs} in the --data folder")
        if self.images is None:
            self.images = _first_dir(root, LFW_IMAGE_ROOTS) or root

    def read(self):
        """``(paths, issame, folds)`` of ``pair_SLLFW.txt``."""
        from tfface.data.pairsets import read_sllfw

        return read_sllfw(self.pairs_txt, self.images, folds=self.folds)

    def evaluate(self, embed, progress=None):
        paths, issame, folds = self.read()
        return self._metrics(paths, issame, folds, embed, progress)
