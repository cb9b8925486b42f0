"""MegaFace challenge 1: FaceScrub probes against 10 ... 10^6 MegaFace distractors, as the devkit
(``run_experiment.py`` + its ``Identification``/``FuseResults`` programs) evaluates it.

Identification (the devkit's CMC): for every FaceScrub identity and every ordered pair (i, j) of
its images, i ≠ j, image i is put into the gallery together with the N distractors and image j is
the probe; the query's rank is 1 + the number of distractors at least as similar to j as i is
(ties count against the mate). ``rank1`` is the share of such queries at rank 1 — the MegaFace
paper's "identification rate" — for every distractor list
``megaface_features_list.json_<N>_<set>`` present. This is
:func:`tfface.eval.identification.identify` with ``protocol="megaface"`` (no gallery: the
FaceScrub set plays both roles), which streams the distractors.

Verification (the devkit's ROC, reported at FAR = 1e-6): genuine pairs are the same ordered
FaceScrub pairs, impostors every probe-distractor pair; TAR@FAR as
:func:`tfface.eval.verification.tar_at_far` defines it (the one definition), which ``identify``
computes exactly from the k + 1 highest impostor scores it keeps while streaming.

Images: used as they are and resized by the runner to the model's input (``align="none"``: the
folders hold aligned crops, e.g. insightface's ``megaface_testpack`` or a ``tfface align`` run),
or ``align="landmarks"``: aligned onto the ArcFace template with the five landmarks of the JSON
file beside each image (:func:`tfface.data.megaface.align_listed`), written once to
``aligned_dir``.

Noise lists (insightface's ``facescrub_noises.txt`` / ``megaface_noises.txt``, used when present):
``noises="remove"`` drops the listed images from the probes and the distractors;
``"insightface"`` reproduces insightface's ``remove_noises.py``: a listed FaceScrub image's
feature becomes its identity's centre (the normalised sum of the identity's clean normalised
features; insightface adds a ±0.001 jitter, left out here) and listed distractors are dropped
(insightface pushes them out of reach with a 100-valued extra feature); ``"none"`` ignores them.
"""
import os

import numpy as np

from tfface import registry
from tfface.data import megaface as mf
from tfface.eval.identification import identify
from tfface.eval.protocols.base import Protocol

NOISE_MODES = ("remove", "insightface", "none")
ALIGN_MODES = ("none", "landmarks")


def _normalize(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@registry.register("protocol", "megaface", inject=("data",))
class MegaFace(Protocol):
    """MegaFace challenge 1 (FaceScrub probes, MegaFace distractors, the devkit's lists).

    Args:
        data: the root (``templatelists/``, ``FaceScrub/``, ``MegaFace/``; see
            :mod:`tfface.data.megaface`).
        sizes: distractor counts to run (default: every ``megaface_features_list.json_<N>_<set>``
            present).
        set_index: the ``<set>`` of the distractor lists (the devkit ships set 1).
        noises: "remove" (default), "insightface" or "none" (see the module docstring).
        far: FARs of the verification figure (default 1e-6, the challenge's).
        ranks: the CMC (``cmc``: rates at ranks 1 … max(ranks), a list) runs to max(ranks).
        align: "none" (images as they are) or "landmarks" (needs ``aligned_dir``).
        aligned_dir: where ``align="landmarks"`` writes (and reuses) the crops.
        image_size: crop size for ``align="landmarks"``.
        landmark_order: JSON landmark keys of left eye, right eye, nose, left/right mouth.
        templatelists, facescrub, megaface: the folders, when not at the default places.
        chunk_size: distractors scored per matrix product.
    """

    task = "identification"

    def __init__(self, data, sizes=None, set_index=1, noises="remove", far=(1e-6,),
                 ranks=(1, 5, 10), align="none", aligned_dir=None, image_size=112,
                 landmark_order=(0, 1, 2, 3, 4), templatelists=None, facescrub=None, megaface=None, chunk_size=8192):
        super().__init__(data)
        if noises not in NOISE_MODES:
            raise ValueError(f"noises={noises!r}: expected one of {NOISE_MODES}")
        if align not in ALIGN_MODES:
            raise ValueError(f"align={align!r}: expected one of {ALIGN_MODES}")
        if align == "landmarks" and not aligned_dir:
            raise ValueError("align='landmarks' writes the crops once: pass aligned_dir")
        self.sizes = None if sizes is None else tuple(int(s) for s in sizes)
        self.set_index = int(set_index)
        self.noises = noises
        self.far = tuple(float(f) for f in far)
        self.ranks = tuple(sorted({1, *(int(r) for r in ranks)}))
        self.align = align
        self.aligned_dir = aligned_dir
        self.image_size = image_size
        self.landmark_order = tuple(landmark_order)
        self.folders = dict(templatelists=templatelists, facescrub=facescrub, megaface=megaface)
        self.chunk_size = int(chunk_size)

    def _images(self, root, rel, source, subdir):
        paths = mf.resolve_images(root, rel, source)
        if self.align == "landmarks":
            paths = mf.align_listed(paths, os.path.join(self.aligned_dir, subdir), rel,
                                    self.image_size, self.landmark_order)
        return paths

    def _rows(self, features, index):
        """The distractor rows of one list without copying 10^6 × D features at once: the array
        itself when the list is all of it in order, else a generator of gathered chunks."""
        if index.shape[0] == features.shape[0] and np.array_equal(index, np.arange(index.shape[0])):
            return features
        cs = self.chunk_size
        return (features[index[a:a + cs]] for a in range(0, index.shape[0], cs))

    def evaluate(self, embed, progress=None):
        say = progress or (lambda message: None)
        layout = mf.find_megaface(self.data, **self.folders)
        lists_dir = layout["templatelists"]
        fs_list = f"{lists_dir}/facescrub_features_list.json"
        fs_rel, fs_ids = mf.read_feature_list(fs_list, need_ids=True)
        available = mf.distractor_lists(lists_dir, self.set_index)
        sizes = tuple(sorted(set(self.sizes if self.sizes is not None else available)))
        missing = [s for s in sizes if s not in available]
        if not sizes or missing:
            raise FileNotFoundError(
                f"{lists_dir}: no distractor list megaface_features_list.json_<N>_{self.set_index} "
                f"for N in {missing or list(mf.DISTRACTOR_SIZES)}; present: {sorted(available)}")

        fs_noise, mf_noise = set(), set()
        if self.noises != "none":
            if layout["facescrub_noises"]:
                fs_noise = mf.read_facescrub_noises(layout["facescrub_noises"])
            if layout["megaface_noises"]:
                mf_noise = mf.read_megaface_noises(layout["megaface_noises"])
        noisy = np.array([mf.noise_key(p, 1) in fs_noise for p in fs_rel], bool)
        keep = ~noisy if self.noises == "remove" else np.ones(len(fs_rel), bool)
        fs_rel_kept = [p for p, k in zip(fs_rel, keep) if k]
        fs_ids_kept = [i for i, k in zip(fs_ids, keep) if k]

        # One embedding pass over the union of the requested distractor lists.
        lists = {}
        union, index = [], {}
        dropped = set()
        for s in reversed(sizes):  # the largest list first: its rows are the array itself
            rel = mf.read_feature_list(available[s])[0]
            kept_rel = []
            for p in rel:
                if mf.noise_key(p, 3) in mf_noise:
                    dropped.add(p)
                    continue
                kept_rel.append(p)
                if p not in index:
                    index[p] = len(union)
                    union.append(p)
            lists[s] = np.array([index[p] for p in kept_rel], dtype=np.int64)

        say(f"megaface: {len(fs_rel_kept)} FaceScrub images, {len(union)} distractors")
        fs_images = self._images(layout["facescrub"], fs_rel_kept, fs_list, "facescrub")
        fs_emb = np.asarray(embed(fs_images, "megaface/facescrub"), dtype=np.float32)
        mf_emb = np.asarray(embed(self._images(layout["megaface"], union, lists_dir, "megaface"),
                                  "megaface/distractors"), dtype=np.float32)

        labels = np.unique(np.array(fs_ids_kept), return_inverse=True)[1].ravel()
        if self.noises == "insightface" and noisy.any():
            fs_emb = _normalize(fs_emb)
            clean = ~noisy
            for lab in np.unique(labels[noisy]):
                members = labels == lab
                if not (members & clean).any():
                    raise ValueError(f"{fs_list}: every image of identity "
                                     f"{fs_ids_kept[int(np.flatnonzero(members)[0])]!r} is in the "
                                     "noise list; no centre to replace them with")
                centre = fs_emb[members & clean].sum(axis=0)
                fs_emb[members & noisy] = centre / max(np.linalg.norm(centre), 1e-12)

        result = {"rank1_by_distractors": {}, "cmc_by_distractors": {},
                  "tar_at_far_by_distractors": {}, "num_distractors": {}}
        for s in sizes:
            say(f"megaface: {s} distractors")
            r = identify(fs_emb, labels, distractors=self._rows(mf_emb, lists[s]),
                         num_distractors=lists[s].shape[0], protocol="megaface",
                         ranks=self.ranks, far=self.far, chunk_size=self.chunk_size)
            result["rank1_by_distractors"][s] = r["rank1"]
            q = r["query_ranks"]
            result["cmc_by_distractors"][s] = [float(np.mean(q <= k))
                                               for k in range(1, max(self.ranks) + 1)]
            result["tar_at_far_by_distractors"][s] = r["tar_at_far"]
            result["num_distractors"][s] = r["num_distractors"]
            last = r
        top = sizes[-1]  # the headline figures: the largest distractor set run (10^6 in papers)
        result.update(
            rank1=result["rank1_by_distractors"][top],
            cmc=result["cmc_by_distractors"][top],
            tar_at_far=result["tar_at_far_by_distractors"][top],
            far_resolution=last["far_resolution"],
            distractors=top,
            num_probes=int(fs_emb.shape[0]),
            num_identities=int(labels.max() + 1) if labels.size else 0,
            num_queries=last["num_queries"],
            noise_images={"facescrub": int(noisy.sum()), "megaface": len(dropped)},
            noises=self.noises,
        )
        return result
