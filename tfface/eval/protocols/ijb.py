"""IJB-B and IJB-C: 1:1 template verification (``ijbb``, ``ijbc``) and 1:N open-set
identification (``ijbb_1n``, ``ijbc_1n``) from insightface's ``IJB_release`` layout
(:mod:`tfface.data.ijb`).

Images: every loose crop listed in ``meta/*_name_5pts_score.txt`` is aligned with *its own* five
landmarks from that file (no detection), by default the similarity transform onto the ArcFace
112×112 template (:class:`tfface.align.FaceAligner`, ``mode="arcface"``), as insightface's
evaluation does; ``mode="facenet"`` crops a box estimated from the landmarks with a margin, and
``mode="none"`` feeds the loose crops as they are (resized by the extractor). The aligned uint8
crops are embedded ``batch_images`` at a time; the runner applies the flip fusion.

Pooling, as insightface's ``ijb_11.py`` (``image2template_feature``): image feature (optionally
L2-normalised first, ``normalize_first``; optionally times the detector score,
``detector_score``, insightface's default) → mean over the images of each media of the
template → sum (equivalently the mean) of the media features → L2 normalisation. Scores are cosine
similarities of the template features, in float64.

1:1: ``tar_at_far`` at 1e-6 … 1e-1 by :func:`tfface.eval.verification.tar_at_far` (the issue's
definition), ``auc`` (exact), ``roc`` (exact ROC vertices, decimated to ``roc_points`` for the
plot) and the counts.

1:N: for each gallery (G1, G2 for IJB-C; S1, S2 for IJB-B), every mixed-probe template is a
search. A search is *mated* when its subject is in the gallery; its rank is 1 + the number of
non-mate gallery templates at least as similar as its best mate (ties count against the mate,
as :func:`tfface.eval.identify`). ``rank1/5/10`` (and ``cmc``) are the shares of mated searches
within that rank. Open set: a *non-mated* search (subject not in the gallery) raises a false
alarm at threshold t when its top gallery score is > t; the threshold of FPIR f is
:func:`tar_at_far`'s on the non-mated top scores (the largest set with FPIR ≤ f), and TPIR is the
share of mated searches whose mate is rank 1 *and* scores > t. ``gallery="both"`` (default)
reports the mean of the two galleries (each under ``galleries``); ``"G1"``/``"G2"`` (or
``"S1"``/``"S2"``) one gallery; ``"union"`` is insightface's ``ijb_1n.py`` closed set (G1 ∪ G2,
every probe mated; ranks only).
"""
import os

import numpy as np

from tfface import registry
from tfface.data import ijb as ijb_data
from tfface.eval.protocols.base import Protocol
from tfface.eval.verification import tar_at_far

FAR_11 = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
FPIR_1N = (1e-2, 1e-1)
RANKS_1N = (1, 5, 10)
ALIGN_MODES = ("arcface", "facenet", "none")


# --- pure maths ------------------------------------------------------------------------------

def pool_templates(features, template_index, media_ids, num_templates, weights=None,
                   normalize_first=False, chunk=32768):
    """Template features (float64 ``(num_templates, D)``, not normalised) as insightface's
    ``image2template_feature``: ``sum over the template's media of the mean over the media's
    images of w_i · f_i`` (``w_i`` = ``weights``, e.g. detector scores, or 1; ``f_i``
    L2-normalised first with ``normalize_first``).

    ``template_index``: each image's template as an index in ``[0, num_templates)``;
    ``media_ids``: each image's media id (grouped within its template). The images are read
    ``chunk`` rows at a time, so only one float64 chunk is alive beside the result (IJB-C's
    469k × 512 float32 features are not copied)."""
    n = features.shape[0]
    template_index = np.asarray(template_index, np.int64)
    media_ids = np.asarray(media_ids)
    if template_index.shape != (n,) or media_ids.shape != (n,):
        raise ValueError(f"template_index and media_ids must hold one entry per image ({n}), got "
                         f"{template_index.shape} and {media_ids.shape}")
    # Image weight 1 / (images in its (template, media) group): the media mean, summed.
    m_ids, m_index = np.unique(media_ids, return_inverse=True)
    _, group = np.unique(template_index * m_ids.shape[0] + m_index.ravel(), return_inverse=True)
    group = group.ravel()
    w = 1.0 / np.bincount(group)[group]
    if weights is not None:
        w = w * np.asarray(weights, np.float64)
    order = np.argsort(template_index, kind="stable")
    out = np.zeros((num_templates, features.shape[1]))
    for a in range(0, n, chunk):
        idx = order[a:a + chunk]
        f = np.asarray(features[idx], np.float64)
        if normalize_first:
            f /= np.maximum(np.sqrt(np.einsum("ij,ij->i", f, f)), 1e-12)[:, None]
        f *= w[idx, None]
        t = template_index[idx]
        starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
        # Runs of one template inside a sorted chunk are distinct, so += does not collide.
        out[t[starts]] += np.add.reduceat(f, starts, axis=0)
    return out


def template_positions(ids, wanted, source):
    """Index of each of ``wanted`` in the sorted distinct ``ids`` (int32, computed by a lookup
    table when the ids are small non-negative integers, as IJB's are); an id that is not there
    is an error naming ``source``."""
    ids = np.asarray(ids)
    wanted = np.asarray(wanted)
    if ids.shape[0] and ids[0] >= 0 and ids[-1] < 1 << 26:
        lut = np.full(int(ids[-1]) + 1, -1, np.int32)
        lut[ids] = np.arange(ids.shape[0], dtype=np.int32)
        inside = (wanted >= 0) & (wanted <= ids[-1])
        pos = lut[np.where(inside, wanted, 0)]
        pos[~inside] = -1
    else:
        pos = np.searchsorted(ids, wanted).astype(np.int32)
        pos[pos >= ids.shape[0]] = -1
        pos[pos >= 0] = np.where(ids[pos[pos >= 0]] == wanted[pos >= 0], pos[pos >= 0], -1)
    if (pos < 0).any():
        bad = wanted.ravel()[np.flatnonzero(pos.ravel() < 0)[0]]
        raise ValueError(f"{source} names template {int(bad)}, which has no image in the "
                         "template/media list")
    return pos


def score_pairs(feats, i1, i2, chunk=65536, block_bytes=64 << 20):
    """Dot products ``feats[i1[p]] · feats[i2[p]]`` (float64) for every pair p, never gathering
    the ``(P, D)`` operands.

    When the pairs are dense among the templates they use (IJB: few gallery templates × many
    probes; IJB-C's 15.7M pairs cover 23% of its 3,531 × 19,593 products), blocks of first
    templates are multiplied against all second templates (one matrix product of at most
    ``block_bytes`` each) and the block's pairs picked from it; otherwise the pairs are scored
    ``chunk`` at a time by row dot products. Memory beyond the scores: a few bytes per pair."""
    n_pairs = i1.shape[0]
    n_t = feats.shape[0]
    scores = np.empty(n_pairs)
    if n_pairs == 0:
        return scores
    used1 = np.zeros(n_t, bool)
    used1[i1] = True
    used2 = np.zeros(n_t, bool)
    used2[i2] = True
    u1, u2 = np.flatnonzero(used1), np.flatnonzero(used2)
    if u1.shape[0] * u2.shape[0] > 16 * n_pairs:
        for a in range(0, n_pairs, chunk):
            scores[a:a + chunk] = np.einsum("ij,ij->i", feats[i1[a:a + chunk]],
                                            feats[i2[a:a + chunk]])
        return scores
    rows = (np.cumsum(used1, dtype=np.int32) - 1)[i1]
    col_of = np.cumsum(used2, dtype=np.int32) - 1
    right = np.ascontiguousarray(feats[u2].T)
    block_rows = max(1, min(u1.shape[0], block_bytes // (8 * u2.shape[0])))
    for r0 in range(0, u1.shape[0], block_rows):
        r1 = min(r0 + block_rows, u1.shape[0])
        # One pass over the row ids per block (no sort of the pairs).
        sel = np.flatnonzero((rows >= r0) & (rows < r1)) if r1 - r0 < u1.shape[0] else \
            np.arange(n_pairs)
        block = feats[u1[r0:r1]] @ right
        scores[sel] = block[rows[sel] - r0, col_of[i2[sel]]]
    return scores


def roc_points(scores, issame, max_points=2000):
    """Exact vertices of the ROC (accept ``score >= t``) for the plot, at most about
    ``max_points`` of them: the impostor counts are taken on a logarithmic grid, so FARs from
    ``1/N_impostor`` to 1 are all represented. Returns ``(fpr, tpr, thresholds, auc)``; the
    curve starts at (0, 0) with threshold +inf; ``auc`` is exact (ties count one half)."""
    imp = np.sort(scores[~issame])
    gen = np.sort(scores[issame])
    n_imp, n_gen = imp.shape[0], gen.shape[0]
    ks = np.unique(np.round(np.geomspace(1, n_imp, max_points)).astype(np.int64))
    # The k-th largest impostor scores, distinct, decreasing.
    thr = np.unique(imp[n_imp - ks])[::-1]
    if gen[0] < imp[0]:
        thr = np.r_[thr, gen[0]]  # the last vertex, (1, 1), lies below every impostor
    fpr = (n_imp - np.searchsorted(imp, thr, side="left")) / n_imp
    tpr = (n_gen - np.searchsorted(gen, thr, side="left")) / n_gen
    below = np.searchsorted(imp, gen, side="left")
    ties = np.searchsorted(imp, gen, side="right") - below
    auc = float((below.sum() + 0.5 * ties.sum()) / (n_imp * n_gen))
    return (np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thr], auc)


def open_set_identification(probe_feats, probe_subjects, gallery_feats, gallery_subjects,
                            ranks=RANKS_1N, fpir=FPIR_1N, chunk=4096):
    """1:N search of L2-normalised probe templates against a gallery (see the module docstring).

    Returns ``{"rank<k>", "cmc": {k: rate}, "tpir_at_fpir": {f: tpir}, "fpir_thresholds",
    "fpir_k", "fpir_resolution", "num_mated", "num_nonmated", "num_queries",
    "query_ranks"}``; the TPIR entries are absent when no search is non-mated."""
    probe_subjects = np.asarray(probe_subjects)
    gallery_subjects = np.asarray(gallery_subjects)
    n = probe_feats.shape[0]
    mated = np.isin(probe_subjects, gallery_subjects)
    mate_score = np.full(n, -np.inf)
    top = np.full(n, -np.inf)
    k_max = max(ranks)
    ahead = np.zeros(n, np.int64)
    for a in range(0, n, chunk):
        s = probe_feats[a:a + chunk] @ gallery_feats.T
        is_mate = probe_subjects[a:a + chunk, None] == gallery_subjects[None, :]
        m = np.where(is_mate, s, -np.inf).max(axis=1)
        others = np.where(is_mate, -np.inf, s)
        mate_score[a:a + chunk] = m
        top[a:a + chunk] = s.max(axis=1)
        ahead[a:a + chunk] = np.sum(others >= m[:, None], axis=1)
    query_ranks = ahead[mated] + 1
    out = {"num_mated": int(mated.sum()), "num_nonmated": int((~mated).sum()),
           "num_queries": int(n)}
    if out["num_mated"] == 0:
        raise ValueError("no probe template's subject is in the gallery: nothing to rank")
    cmc = {int(k): float(np.mean(query_ranks <= k)) for k in ranks}
    out.update({f"rank{k}": v for k, v in cmc.items()})
    out["cmc"] = cmc
    out["query_ranks"] = np.minimum(query_ranks, k_max + 1)
    if out["num_nonmated"]:
        # tar_at_far's threshold on the non-mated searches' top scores (the one TAR@FAR
        # definition); a mated search is a hit when its mate is rank 1 and strictly above it.
        sims = np.r_[mate_score[mated], top[~mated]]
        is_gen = np.r_[np.ones(out["num_mated"], bool), np.zeros(out["num_nonmated"], bool)]
        res = tar_at_far(sims, is_gen, fpir)
        hit_score = np.where(query_ranks == 1, mate_score[mated], -np.inf)
        out["tpir_at_fpir"] = {f: float(np.mean(hit_score > thr)) for f, (_, thr, _) in res.items()}
        out["fpir_thresholds"] = {f: float(thr) for f, (_, thr, _) in res.items()}
        out["fpir_k"] = {f: int(k) for f, (_, _, k) in res.items()}
        out["fpir_resolution"] = 1.0 / out["num_nonmated"]
    return out


# --- the protocols ---------------------------------------------------------------------------

class _IJB(Protocol):
    """Shared reading, alignment, embedding and pooling of the IJB protocols."""

    set_name = None

    def __init__(self, data, mode="arcface", image_size=None, margin=None, detector_score=True,
                 normalize_first=False, batch_images=2048, workers=None, image_dir="loose_crop"):
        super().__init__(data)
        if mode not in ALIGN_MODES:
            raise ValueError(f"mode={mode!r}; expected one of {ALIGN_MODES}")
        self.mode = mode
        self.image_size = image_size
        self.margin = margin
        self.detector_score = bool(detector_score)
        self.normalize_first = bool(normalize_first)
        if int(batch_images) < 1:
            raise ValueError(f"batch_images={batch_images!r}; expected a positive number")
        self.batch_images = int(batch_images)
        self.workers = workers
        self.image_dir = image_dir
        self._aligner = None
        self._root = None
        if mode != "none":
            from tfface.align.aligner import FaceAligner

            # Built now so that a bad size/margin fails before any image is read.
            self._aligner = FaceAligner(mode=mode, size=image_size, margin=margin)

    @property
    def root(self):
        if self._root is None:
            self._root = ijb_data.ijb_root(self.data, self.set_name)
        return self._root

    def _meta(self, kind):
        # For error messages: the meta file's path once the root is known.
        return ijb_data.meta_file(self._root or self.data, self.set_name, kind)

    def _align_one(self, path_and_landmarks):
        from tfface.data.images import read_image

        path, landmarks = path_and_landmarks
        try:
            image = read_image(path)
        except Exception as err:  # PIL raises several types for a broken file
            raise ValueError(f"{path}: cannot read the image ({err})") from None
        return self._aligner.align(image, landmarks=landmarks).image

    def image_features(self, images, embed, progress=None):
        """Embeddings (float32 ``(N, D)``) of every listed image, aligned ``batch_images`` at a
        time."""
        from concurrent.futures import ThreadPoolExecutor

        n = len(images.paths)
        workers = self.workers or min(4, os.cpu_count() or 1)
        feats = None
        size = "loose" if self._aligner is None else "x".join(map(str, self._aligner.size))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for a in range(0, n, self.batch_images):
                b = min(a + self.batch_images, n)
                if self._aligner is None:
                    batch = list(images.paths[a:b])
                else:
                    batch = np.stack(list(pool.map(
                        self._align_one, zip(images.paths[a:b], images.landmarks[a:b]))))
                f = np.asarray(embed(batch, f"{self.set_name}/{self.mode}-{size}/{a}-{b}"))
                if f.ndim != 2 or f.shape[0] != b - a:
                    raise ValueError(f"embed returned shape {f.shape} for {b - a} images")
                if feats is None:
                    feats = np.empty((n, f.shape[1]), np.float32)
                feats[a:b] = f
                if progress is not None:
                    progress(f"{self.set_name}: embedded {b}/{n} images")
        return feats

    def template_features(self, images, feats):
        """``(template ids (sorted), L2-normalised float64 features)`` of every template of the
        template/media list."""
        ids, t_index = np.unique(images.templates, return_inverse=True)
        pooled = pool_templates(feats, t_index.ravel(), images.medias, ids.shape[0],
                                weights=images.scores if self.detector_score else None,
                                normalize_first=self.normalize_first)
        pooled /= np.maximum(np.sqrt(np.einsum("ij,ij->i", pooled, pooled)), 1e-12)[:, None]
        return ids, pooled


class _IJB11(_IJB):
    """1:1 template verification. Options: see the module docstring; ``far`` the FARs."""

    task = "verification"

    def __init__(self, data, far=FAR_11, mode="arcface", image_size=None, margin=None,
                 detector_score=True, normalize_first=False, batch_images=2048, workers=None,
                 image_dir="loose_crop"):
        super().__init__(data, mode, image_size, margin, detector_score, normalize_first,
                         batch_images, workers, image_dir)
        self.far = tuple(float(f) for f in far)

    def evaluate(self, embed, progress=None):
        root = self.root
        t1, t2, issame = ijb_data.read_template_pairs(ijb_data.meta_file(root, self.set_name,
                                                                        "pairs"))
        images = ijb_data.read_ijb_images(root, self.set_name, self.image_dir)
        feats = self.image_features(images, embed, progress)
        return self.verify(images, feats, t1, t2, issame)

    def verify(self, images, feats, t1, t2, issame):
        """The 1:1 metrics from image features (the part timed by ``benchmarks/eval.py``)."""
        ids, tfeats = self.template_features(images, feats)
        source = self._meta("pairs")
        i1 = template_positions(ids, t1, source)
        i2 = template_positions(ids, t2, source)
        n = i1.shape[0]
        used = np.zeros(ids.shape[0], bool)
        used[i1] = True
        used[i2] = True
        scores = score_pairs(tfeats, i1, i2)
        del i1, i2, tfeats
        issame = np.asarray(issame, bool)
        n_gen = int(issame.sum())
        if n_gen == 0 or n_gen == n:
            raise ValueError(f"the pair list needs genuine and impostor pairs, got {n_gen} genuine"
                             f" of {n}")
        res = tar_at_far(scores, issame, self.far)
        fpr, tpr, thr, auc = roc_points(scores, issame)
        return {
            "tar_at_far": {f: v[0] for f, v in res.items()},
            "far_thresholds": {f: v[1] for f, v in res.items()},
            "far_k": {f: v[2] for f, v in res.items()},
            "far_resolution": 1.0 / (n - n_gen),
            "auc": auc,
            "roc": (fpr, tpr, thr),
            "num_pairs": int(n),
            "num_genuine": n_gen,
            "num_impostor": int(n - n_gen),
            "num_templates": int(used.sum()),
            "num_images": int(feats.shape[0]),
        }


class _IJB1N(_IJB):
    """1:N open-set identification on the mixed probes. ``gallery``: "both" (the mean of the two
    galleries), one gallery's name, or "union" (insightface's closed set over both)."""

    task = "identification"

    def __init__(self, data, gallery="both", ranks=RANKS_1N, fpir=FPIR_1N, mode="arcface",
                 image_size=None, margin=None, detector_score=True, normalize_first=False,
                 batch_images=2048, workers=None, image_dir="loose_crop"):
        super().__init__(data, mode, image_size, margin, detector_score, normalize_first,
                         batch_images, workers, image_dir)
        names = ijb_data.SETS[self.set_name][2]
        if gallery not in ("both", "union") + names:
            raise ValueError(f"gallery={gallery!r}; expected 'both', 'union' or one of {names}")
        self.gallery = gallery
        self.ranks = tuple(int(r) for r in ranks)
        self.fpir = tuple(float(f) for f in fpir)

    def evaluate(self, embed, progress=None):
        root = self.root
        names = ijb_data.SETS[self.set_name][2]
        galleries = {g: ijb_data.read_1n_csv(ijb_data.meta_file(root, self.set_name, g))
                     for g in names}
        probes = ijb_data.read_1n_csv(ijb_data.meta_file(root, self.set_name, "probe"))
        images = ijb_data.read_ijb_images(root, self.set_name, self.image_dir)
        feats = self.image_features(images, embed, progress)
        return self.identify(images, feats, galleries, probes)

    def identify(self, images, feats, galleries, probes):
        """The 1:N metrics from image features; ``galleries``: ``{name: (templates,
        subjects)}``, ``probes``: ``(templates, subjects)``."""
        ids, tfeats = self.template_features(images, feats)

        def select(templates, source):
            return tfeats[template_positions(ids, templates, source)]

        p_feats = select(probes[0], self._meta("probe"))
        if self.gallery == "union":
            g_t = np.concatenate([galleries[g][0] for g in galleries])
            g_s = np.concatenate([galleries[g][1] for g in galleries])
            res = open_set_identification(p_feats, probes[1], select(g_t, "the galleries"), g_s,
                                          self.ranks, ())
            if res["num_nonmated"]:
                raise ValueError(f"{res['num_nonmated']} probe templates have no subject in the "
                                 "union of the galleries; gallery='union' is a closed set")
            res.pop("query_ranks")
            return res
        chosen = list(galleries) if self.gallery == "both" else [self.gallery]
        per = {}
        for g in chosen:
            g_t, g_s = galleries[g]
            per[g] = open_set_identification(p_feats, probes[1],
                                             select(g_t, self._meta(g)), g_s,
                                             self.ranks, self.fpir)
            per[g].pop("query_ranks")
        if len(chosen) == 1:
            return per[chosen[0]]
        out = {f"rank{k}": float(np.mean([per[g][f"rank{k}"] for g in chosen]))
               for k in self.ranks}
        out["cmc"] = {k: out[f"rank{k}"] for k in self.ranks}
        if all("tpir_at_fpir" in per[g] for g in chosen):
            out["tpir_at_fpir"] = {f: float(np.mean([per[g]["tpir_at_fpir"][f] for g in chosen]))
                                   for f in self.fpir}
        out["num_queries"] = int(sum(per[g]["num_queries"] for g in chosen))
        out["galleries"] = per
        return out


@registry.register("protocol", "ijbb", inject=("data",))
class IJBB(_IJB11):
    """IJB-B 1:1 verification (8,010,270 template pairs) from insightface's IJB_release."""

    set_name = "ijbb"


@registry.register("protocol", "ijbc", inject=("data",))
class IJBC(_IJB11):
    """IJB-C 1:1 verification (15,658,489 template pairs) from insightface's IJB_release."""

    set_name = "ijbc"


@registry.register("protocol", "ijbb_1n", inject=("data",))
class IJBB1N(_IJB1N):
    """IJB-B 1:N identification: galleries S1/S2, the mixed probes."""

    set_name = "ijbb"


@registry.register("protocol", "ijbc_1n", inject=("data",))
class IJBC1N(_IJB1N):
    """IJB-C 1:N identification: galleries G1/G2, the mixed probes."""

    set_name = "ijbc"
