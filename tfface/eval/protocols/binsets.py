"""insightface verification ``.bin`` sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``,
``calfw.bin``, ``cplfw.bin``, ``vgg2_fp.bin``, ...), evaluated as LFW.

Layout as published (insightface's ``faces_emore`` / ``faces_webface_112x112`` /
``ms1m-retinaface`` archives): each ``<name>.bin`` is a pickle of ``(bins, issame_list)``, 2·N
JPEG/PNG-encoded 112×112 images *already aligned* with the ArcFace 5-point template (pair ``i``
is images ``2i``, ``2i+1``) and N booleans. Images are used as they are (resized to the model's
input when it is not 112×112).

Fold protocol of insightface's ``recognition/eval/verification.py``: sklearn ``KFold(10,
shuffle=False)`` over the pair list, i.e. contiguous blocks (the first ``N % 10`` folds one pair
larger), the threshold chosen on the other nine folds. tfface searches every distinct score
instead of insightface's 0.01 grid of distances (exact; the same folds).

:func:`evaluate_bin` is the shared helper: the pair-list protocols (``calfw``, ``cplfw``,
``cfp_fp``, ``cfp_ff``) call it when ``--data`` is a ``.bin`` file. Registered here: ``lfw_bin``,
``agedb_30``, ``vgg2_fp``; ``--data`` is the ``.bin`` file or a folder holding ``<name>.bin``.
"""
import os

from tfface import registry
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols.lfw import evaluate_pairs
from tfface.eval.verification import DEFAULT_FAR

__all__ = ["evaluate_bin", "find_bin", "BinSet", "AgeDB30", "VGG2FP", "LFWBin"]


def find_bin(data, filename):
    """The ``.bin`` file of ``data``: ``data`` itself when it is a file, else ``data/filename``.
    Raises ``FileNotFoundError`` naming what was expected."""
    data = os.fspath(data)
    if os.path.isfile(data):
        return data
    candidate = os.path.join(data, filename)
    if os.path.isfile(candidate):
        return candidate
    raise FileNotFoundError(f"{data}: expected an insightface .bin file or a folder holding "
                            f"{filename}")


def evaluate_bin(path, embed, folds=10, far=DEFAULT_FAR, key=None, metric="cosine",
                 progress=None):
    """Verification metrics of one insightface ``.bin`` (see the module docstring).

    Args:
        path: the ``.bin`` file (read by :func:`tfface.data.read_bin`, plain data only).
        embed: ``embed(images, key) -> (N, D)`` (the runner's).
        folds: number of contiguous folds (insightface: 10).
        far: FARs of ``tar_at_far``.
        key: the image set's name in the cache and progress (default ``"<file stem>/bin"``).
        metric: ``"cosine"`` or ``"euclidean"``.

    Returns the metrics of :func:`tfface.eval.protocols.lfw.pair_metrics`: ``accuracy``,
    ``accuracy_std``, ``threshold``, ``tar_at_far``, ``far_resolution``, ``auc``, ``eer``,
    ``roc``, ...
    """
    from tfface.data.readers import read_bin

    path = os.fspath(path)
    if key is None:
        key = os.path.splitext(os.path.basename(path))[0] + "/bin"
    if progress:
        progress(f"{key}: reading {path}")
    images, issame = read_bin(path)
    return evaluate_pairs(images, issame, embed, key, folds=folds, far=far, metric=metric,
                          progress=progress)


class BinSet(Protocol):
    """A ``.bin``-only benchmark: ``--data`` is ``<filename>`` or a folder holding it."""

    task = "verification"
    filename = None

    def __init__(self, data, folds=10, far=DEFAULT_FAR, metric="cosine"):
        super().__init__(data)
        self.path = find_bin(data, self.filename)
        self.folds = folds
        self.far = tuple(far)
        self.metric = metric

    def pairs(self):
        """``(images, issame)``: the encoded images and flags of the ``.bin``."""
        from tfface.data.readers import read_bin

        return read_bin(self.path)

    def evaluate(self, embed, progress=None):
        return evaluate_bin(self.path, embed, folds=self.folds, far=self.far,
                            key=os.path.splitext(self.filename)[0] + "/bin", metric=self.metric,
                            progress=progress)


@registry.register("protocol", "lfw_bin", inject=("data",))
class LFWBin(BinSet):
    """insightface's ``lfw.bin`` (6,000 aligned LFW pairs), 10 contiguous folds."""

    filename = "lfw.bin"


@registry.register("protocol", "agedb_30", inject=("data",))
class AgeDB30(BinSet):
    """AgeDB-30 as distributed by insightface: ``agedb_30.bin`` (6,000 pairs, age gap 30),
    10 contiguous folds."""

    filename = "agedb_30.bin"


@registry.register("protocol", "vgg2_fp", inject=("data",))
class VGG2FP(BinSet):
    """VGGFace2 frontal-profile pairs as distributed by insightface: ``vgg2_fp.bin``,
    10 contiguous folds."""

    filename = "vgg2_fp.bin"
