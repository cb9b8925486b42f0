"""TinyFace (Cheng et al., ACCV 2018) closed-set identification: ``Testing_Set/Probe`` against
``Gallery_Match`` + ``Gallery_Distractor``, as the official evaluation computes it.

Layout (``ROOT`` is ``tinyface/`` or the folder that contains it)::

    ROOT/Testing_Set/Probe/<id>_<n>.jpg             3,728 probes
    ROOT/Testing_Set/Gallery_Match/<id>_<n>.jpg     4,443 gallery images of the probes' identities
    ROOT/Testing_Set/Gallery_Distractor/*.jpg       153,428 distractors (no identity)
    ROOT/Testing_Set/{probe,gallery_match}_img_ID_pairs.mat   (optional: the official id lists)

The identity is the file name's part before the first ``_`` (the official ``.mat`` lists give the
same ids; ``labels="mat"`` reads them instead, with scipy). Images are used as they are (tiny
native-resolution crops, no alignment) and resized by the runner to the model's input.

Metrics, as the official evaluation (a Market-1501-style MATLAB script; its Python ports compute
``compute_AP`` over the gallery sorted by distance): every probe ranks the whole gallery
(matches and distractors; distractors carry the id -100) by similarity (cosine of L2-normalised
features, the order of the official Euclidean distance on them). ``rank{1,5,10,20}``: the share of
probes whose first same-identity gallery image is within the first r; ``map``: the mean over
probes of the trapezoidal average precision
``AP = Σ_i (1/n_good)·(p(n_i − 1) + p(n_i))/2`` over the positions n_i of the probe's mates,
p(n) the precision at position n (p(0) = 1). Ties count against the probe: a non-mate exactly as
similar as a mate is ranked ahead of it (the official ``argsort`` leaves tie order unspecified).
"""
import os

import numpy as np

from tfface import registry
from tfface.data.images import IMAGE_EXTENSIONS
from tfface.eval.protocols.base import Protocol

DISTRACTOR_ID = -100
SUBSETS = ("Probe", "Gallery_Match", "Gallery_Distractor")


def _list_images(folder):
    out = []
    for dirpath, _, files in os.walk(folder):
        out += [os.path.join(dirpath, f) for f in files
                if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    return sorted(out)


def tinyface_label(path):
    """The identity of a TinyFace probe or gallery-match image: the file name before its first
    ``_`` (``123_4.jpg`` -> 123)."""
    name = os.path.basename(path)
    head = name.split("_", 1)[0]
    try:
        return int(head)
    except ValueError:
        raise ValueError(f"{path}: TinyFace probe/gallery names start with the identity number "
                         f"('<id>_<n>.jpg'), got {name!r}") from None


def find_tinyface(root):
    """``ROOT/Testing_Set`` (``root`` may be ``tinyface/`` or its parent)."""
    root = os.fspath(root)
    for base in (root, os.path.join(root, "tinyface")):
        ts = os.path.join(base, "Testing_Set")
        if all(os.path.isdir(os.path.join(ts, s)) for s in SUBSETS):
            return ts
    raise FileNotFoundError(f"{root}: expected Testing_Set/{{{','.join(SUBSETS)}}} (TinyFace as "
                            "distributed) under it or under its tinyface/ folder")


def read_tinyface(root, labels="filename"):
    """``{"probe": (paths, ids), "match": (paths, ids), "distractor": paths}``."""
    ts = find_tinyface(root)
    probe = _list_images(os.path.join(ts, "Probe"))
    match = _list_images(os.path.join(ts, "Gallery_Match"))
    distractor = _list_images(os.path.join(ts, "Gallery_Distractor"))
    for name, paths in (("Probe", probe), ("Gallery_Match", match)):
        if not paths:
            raise FileNotFoundError(f"{os.path.join(ts, name)}: no images")
    if labels == "filename":
        pid = np.array([tinyface_label(p) for p in probe])
        mid = np.array([tinyface_label(p) for p in match])
    elif labels == "mat":
        pid = _mat_ids(os.path.join(ts, "probe_img_ID_pairs.mat"), "probe", probe)
        mid = _mat_ids(os.path.join(ts, "gallery_match_img_ID_pairs.mat"), "gallery", match)
    else:
        raise ValueError(f"labels={labels!r}: expected 'filename' or 'mat'")
    return {"probe": (probe, pid), "match": (match, mid), "distractor": distractor}


def _mat_ids(path, kind, paths):
    from scipy.io import loadmat

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the official id list is missing (labels='mat')")
    mat = loadmat(path)
    if f"{kind}_set" not in mat or f"{kind}_ids" not in mat:
        raise ValueError(f"{path}: expected the variables {kind}_set and {kind}_ids")
    names = [str(np.ravel(x)[0]) for x in np.ravel(mat[f"{kind}_set"])]
    ids = dict(zip(names, (int(v) for v in np.ravel(mat[f"{kind}_ids"]))))
    missing = [p for p in paths if os.path.basename(p) not in ids]
    if missing:
        raise ValueError(f"{path}: no id for {len(missing)} image(s), e.g. {missing[0]}")
    return np.array([ids[os.path.basename(p)] for p in paths])


def _normalize(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mate_positions(probes, probe_labels, gallery, gallery_labels, chunk=256):
    """For every probe, the 1-based positions of its mates in the gallery sorted by decreasing
    similarity (ties against the mates: non-mates at a mate's score come first). Returns a list of
    int arrays (increasing)."""
    p, g = _normalize(probes), _normalize(gallery)
    probe_labels, gallery_labels = np.asarray(probe_labels), np.asarray(gallery_labels)
    out = []
    for start in range(0, p.shape[0], chunk):
        s = p[start:start + chunk] @ g.T
        for i, (row, lab) in enumerate(zip(s, probe_labels[start:start + chunk])):
            mates = gallery_labels == lab
            if not mates.any():
                raise ValueError(f"probe {start + i} (identity {lab}) has no image in "
                                 "Gallery_Match; TinyFace's closed-set protocol needs one")
            ms = np.sort(row[mates])[::-1]
            # non-mates >= each mate score: all gallery items >= it minus the mates >= it
            # (a few comparison passes per probe instead of sorting 150k scores)
            ge = np.count_nonzero(row[None, :] >= ms[:, None], axis=1)
            ahead = ge - np.count_nonzero(ms[None, :] >= ms[:, None], axis=1)
            out.append(ahead + np.arange(1, ms.shape[0] + 1))
    return out


def average_precision(positions):
    """The official trapezoidal AP of one probe from its mates' 1-based positions."""
    pos = np.asarray(positions, dtype=np.float64)
    hits = np.arange(1, pos.shape[0] + 1, dtype=np.float64)
    prec = hits / pos
    prev = np.where(pos > 1, (hits - 1) / np.maximum(pos - 1, 1), 1.0)
    return float(np.sum((prev + prec) / 2) / pos.shape[0])


@registry.register("protocol", "tinyface", inject=("data",))
class TinyFace(Protocol):
    """TinyFace closed-set identification (``rank1``, ``rank5``, ``rank10``, ``rank20``, ``map``).

    Args:
        data: ``tinyface/`` (or its parent) as distributed.
        ranks: the CMC ranks reported as ``rank<r>``.
        labels: "filename" (the id before the first ``_``) or "mat" (the official ``.mat`` lists).
        distractors: False leaves ``Gallery_Distractor`` out (a check, not the benchmark).
    """

    task = "identification"

    def __init__(self, data, ranks=(1, 5, 10, 20), labels="filename", distractors=True):
        super().__init__(data)
        self.ranks = tuple(int(r) for r in ranks)
        self.labels = labels
        self.distractors = bool(distractors)

    def evaluate(self, embed, progress=None):
        say = progress or (lambda message: None)
        sets = read_tinyface(self.data, self.labels)
        probe, pid = sets["probe"]
        match, mid = sets["match"]
        distractor = sets["distractor"] if self.distractors else []
        say(f"tinyface: {len(probe)} probes, {len(match)} matches, {len(distractor)} distractors")
        p = embed(probe, "tinyface/probe")
        g = embed(match, "tinyface/gallery_match")
        gl = mid
        if distractor:
            d = embed(distractor, "tinyface/gallery_distractor")
            g = np.concatenate([np.asarray(g), np.asarray(d)])
            gl = np.concatenate([mid, np.full(len(distractor), DISTRACTOR_ID)])
        positions = mate_positions(p, pid, g, gl)
        first = np.array([x[0] for x in positions])
        result = {f"rank{r}": float(np.mean(first <= r)) for r in self.ranks}
        result["map"] = float(np.mean([average_precision(x) for x in positions]))
        result["cmc"] = [float(np.mean(first <= r)) for r in range(1, max(self.ranks) + 1)]
        result.update(num_probes=len(probe), num_gallery=len(match),
                      num_distractors=len(distractor))
        return result
