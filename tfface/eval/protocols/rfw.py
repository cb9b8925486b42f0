"""RFW (Racial Faces in-the-Wild, Wang et al., ICCV 2019): one verification protocol per race,
``rfw_african``, ``rfw_asian``, ``rfw_caucasian``, ``rfw_indian``.

Layout as published (http://whdeng.cn/RFW/testing.html, ``test.tar.gz``)::

    test/txts/<Race>/<Race>_pairs.txt     no header; "id<TAB>n1<TAB>n2" (matched),
                                          "id1<TAB>n1<TAB>id2<TAB>n2" (mismatched)
    test/txts/<Race>/<Race>_lmk.txt       5 landmarks per image (not used)
    test/data/<Race>/<id>/<id>_NNNN.jpg   ids are MS-Celeb freebase ids (m.0c7mh2)

``--data`` is the folder holding ``test/`` (or ``test/`` itself); read by
:func:`tfface.data.pairsets.read_rfw`. Each race's ~6,000 pairs are read as 10 contiguous
folds in file order (LFW's 10-fold protocol on RFW's LFW-style list, as the RFW readers we
checked do: fold = line // 600), the threshold chosen on the other nine; ``accuracy`` etc. as
LFW.

**Images**: ``test/data`` holds loose, unaligned crops. Align them first
(``tfface align DATA/test/data DST --split test``; with ``--landmarks`` built from the
``_lmk.txt`` files as fallback if wanted) and pass ``images=DST`` (the folder standing for
``test/data``, holding ``<Race>/``), or ``aligned=False`` to align in memory.
"""
import os

from tfface import registry
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols.pairset_common import pair_result
from tfface.eval.verification import DEFAULT_FAR

__all__ = ["RFW", "RFWAfrican", "RFWAsian", "RFWCaucasian", "RFWIndian"]


class RFW(Protocol):
    """One RFW race.

    Args:
        data: the RFW folder holding ``test/`` (or ``test/`` itself).
        images: a folder standing for ``test/data`` (holding ``<Race>/<id>/...``): an aligned
            copy.
        ext: the image extension.
        aligned: True: images used as they are; False: aligned in memory first.
        align_mode, align_size: the on-the-fly alignment.
        folds: number of contiguous folds (10).
        far: the FARs of ``tar_at_far``.
        metric: ``"cosine"`` or ``"euclidean"``.
    """

    task = "verification"
    race = None

    def __init__(self, data, images=None, ext="jpg", aligned=True, align_mode="arcface",
                 align_size=112, folds=10, far=DEFAULT_FAR, metric="cosine"):
        super().__init__(data)
        data = os.fspath(data)
        test = os.path.join(data, "test")
        test = test if os.path.isdir(test) else data
        self.pairs_txt = os.path.join(test, "txts", self.race, f"{self.race}_pairs.txt")
        if not os.path.isfile(self.pairs_txt):
            raise FileNotFoundError(
                f"rfw_{self.race.lower()}: {self.pairs_txt} does not exist; expected RFW's "
                f"test/txts/{self.race}/{self.race}_pairs.txt under {data}")
        data_root = os.fspath(images) if images is not None else os.path.join(test, "data")
        self.images = os.path.join(data_root, self.race)
        self.ext = ext
        self.aligned = bool(aligned)
        self.align_mode = align_mode
        self.align_size = align_size
        self.folds = folds
        self.far = tuple(far)
        self.metric = metric

    def read(self):
        """``(paths, issame, folds)`` of this race's pair list."""
        from tfface.data.pairsets import read_rfw

        return read_rfw(self.pairs_txt, self.images, ext=self.ext, folds=self.folds)

    def evaluate(self, embed, progress=None):
        paths, issame, folds = self.read()
        return pair_result(paths, issame, folds, embed, f"rfw_{self.race.lower()}/images",
                           self.far, metric=self.metric, aligned=self.aligned,
                           align_mode=self.align_mode, align_size=self.align_size,
                           progress=progress)


@registry.register("protocol", "rfw_african", inject=("data",))
class RFWAfrican(RFW):
    """RFW, African subset."""

    race = "African"


@registry.register("protocol", "rfw_asian", inject=("data",))
class RFWAsian(RFW):
    """RFW, Asian subset."""

    race = "Asian"


@registry.register("protocol", "rfw_caucasian", inject=("data",))
class RFWCaucasian(RFW):
    """RFW, Caucasian subset."""

    race = "Caucasian"


@registry.register("protocol", "rfw_indian", inject=("data",))
class RFWIndian(RFW):
    """RFW, Indian subset."""

    race = "Indian"
