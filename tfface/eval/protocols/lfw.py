"""LFW (``pairs.txt`` + the image folder), and the pair-verification metrics every LFW-style set
reports.

Layout as published (http://vis-www.cs.umass.edu/lfw/): ``pairs.txt`` (first line ``10<TAB>300``,
then ten folds of 300 matched lines ``name n1 n2`` and 300 mismatched lines ``name1 n1 name2 n2``)
beside the extracted image archive, ``lfw/<name>/<name>_<nnnn>.jpg`` (or ``lfw-deepfunneled/``,
``lfw_funneled/``). ``--data`` is the folder holding ``pairs.txt``; the image root is the first of
``lfw/``, ``lfw-deepfunneled/``, ``lfw_funneled/`` found there, else the folder itself
(``tfface synth`` writes ``pairs.txt`` beside the identity folders). Images are used as they are,
resized to the model's input: LFW's own images are 250×250 unaligned crops, so run
``tfface align`` on them first and point ``root=`` at the aligned copy.

Metrics (:func:`pair_metrics`): 10-fold ``accuracy`` and ``accuracy_std`` (folds = the 10 blocks
of ``pairs.txt``), ``threshold`` (mean of the per-fold thresholds), ``tar_at_far`` (exact, see
:func:`tfface.eval.verification.tar_at_far`) with ``far_resolution``, ``auc``, ``eer``, and the
``roc`` curve for the plots.
"""
import os

import numpy as np

from tfface import registry
from tfface.eval.protocols.base import Protocol
from tfface.eval.verification import DEFAULT_FAR, verify

__all__ = ["LFW", "pair_metrics", "evaluate_pairs", "IMAGE_ROOTS"]

#: Folders the LFW archives extract to, tried in this order under ``--data``.
IMAGE_ROOTS = ("lfw", "lfw-deepfunneled", "lfw_funneled")

_KEEP = ("accuracy", "accuracy_std", "threshold", "thresholds", "fold_accuracies", "folds",
         "tar_at_far", "far_thresholds", "far_resolution", "auc", "eer", "roc", "metric",
         "num_pairs", "num_genuine", "num_impostor")


def pair_metrics(emb_a, emb_b, issame, folds=10, far=DEFAULT_FAR, metric="cosine",
                 normalize=True):
    """The LFW-style verification metrics of pairs ``(emb_a[i], emb_b[i])``: what every
    verification protocol reports. ``folds``: a number of contiguous folds (insightface / sklearn
    ``KFold`` without shuffling) or one fold id per pair (published splits)."""
    res = verify(emb_a, emb_b, issame, metric=metric, folds=folds, far=tuple(far),
                 normalize=normalize)
    out = {k: res[k] for k in _KEEP if k in res}
    fpr, tpr, thr = res["roc"]
    out["roc"] = {"fpr": np.asarray(fpr).tolist(), "tpr": np.asarray(tpr).tolist()}
    return out


def evaluate_pairs(images, issame, embed, key, folds=10, far=DEFAULT_FAR, metric="cosine",
                   normalize=True, progress=None):
    """Embed the 2·N ``images`` (pair ``i`` = images ``2i``, ``2i+1``) once under ``key`` and
    return :func:`pair_metrics`."""
    issame = np.asarray(issame, dtype=bool)
    if len(images) != 2 * issame.shape[0]:
        raise ValueError(f"{key}: {len(images)} images for {issame.shape[0]} pairs; expected "
                         f"{2 * issame.shape[0]}")
    if progress:
        progress(f"{key}: embedding {len(images)} images")
    emb = np.asarray(embed(images, key))
    if emb.ndim != 2 or emb.shape[0] != len(images):
        raise ValueError(f"{key}: embed returned shape {emb.shape} for {len(images)} images")
    return pair_metrics(emb[0::2], emb[1::2], issame, folds=folds, far=far, metric=metric,
                        normalize=normalize)


def find_image_root(data):
    for name in IMAGE_ROOTS:
        candidate = os.path.join(data, name)
        if os.path.isdir(candidate):
            return candidate
    return data


@registry.register("protocol", "lfw", inject=("data",))
class LFW(Protocol):
    """LFW's unrestricted 10-fold verification protocol.

    Args:
        data: the folder holding ``pairs.txt`` (or the ``pairs.txt`` file itself).
        pairs: the pair list's name inside ``data`` (``pairsDevTest.txt`` for the dev view).
        root: the image root (default: ``lfw/``, ``lfw-deepfunneled/`` or ``lfw_funneled/`` under
            ``data``, else ``data``); give an aligned copy here.
        ext: the image extension.
        far: the FARs of ``tar_at_far``.
        metric: ``"cosine"`` or ``"euclidean"`` (squared, on L2-normalised features).
    """

    task = "verification"

    def __init__(self, data, pairs="pairs.txt", root=None, ext="jpg", far=DEFAULT_FAR,
                 metric="cosine"):
        super().__init__(data)
        data = os.fspath(data)
        if os.path.isfile(data):
            self.pairs_txt = data
            data = os.path.dirname(os.path.abspath(data))
        else:
            self.pairs_txt = os.path.join(data, pairs)
        if not os.path.isfile(self.pairs_txt):
            raise FileNotFoundError(f"lfw: {self.pairs_txt} does not exist; expected LFW's "
                                    "pairs.txt in the --data folder")
        self.root = os.fspath(root) if root is not None else find_image_root(data)
        self.ext = ext
        self.far = tuple(far)
        self.metric = metric

    def pairs(self):
        """``(images, issame)`` of the set (what ``tfface pack`` writes to a ``.bin``): 2·N image
        paths, pair ``i`` being images ``2i``, ``2i+1``."""
        from tfface.data.readers import read_pairs

        paths, issame = read_pairs(self.pairs_txt, self.root, ext=self.ext)
        return paths, issame

    def evaluate(self, embed, progress=None):
        from tfface.data.readers import read_pairs

        paths, issame, folds = read_pairs(self.pairs_txt, self.root, ext=self.ext,
                                          return_folds=True)
        # pairsDevTest.txt is one block: fall back to 10 contiguous folds.
        fold_arg = folds if np.unique(folds).shape[0] >= 2 else 10
        return evaluate_pairs(paths, issame, embed, "lfw/images", folds=fold_arg, far=self.far,
                              metric=self.metric, progress=progress)
