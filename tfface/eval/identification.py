"""Identification (rank-k / CMC) against a gallery plus a stream of distractors, and verification
TAR@FAR on the same features (MegaFace / Trillion-Pairs / TinyFace style).

The distractors are never held in memory as a whole: they are read in float32 chunks (a numpy
array or ``np.memmap`` is sliced; a generator yields chunks), each chunk is scored against all
probes with one matrix product, and only two small summaries survive the chunk:

* per probe, the ``K = max(ranks)`` highest competitor similarities (exact rank up to ``K``);
* over all probe-distractor pairs, the highest impostor similarities, as many as the lowest
  requested FAR's ``k = floor(FAR * N_impostor)`` needs: the top k+1, since the threshold is the
  impostor score s_k (exact TAR@FAR, as :func:`tfface.eval.verification.tar_at_far` defines it:
  accept strictly above s_k; k = 0 is the FAR = 0 point).

Both are maintained with a threshold filter (only scores above the current K-th best are looked
at), so after the first chunks the work per chunk is the matrix product and one comparison.

Scores are cosine similarities (features are L2-normalised; squared Euclidean distance on
normalised features, 2 - 2cos, ranks identically). Ties are counted against the mate: a
distractor as similar as the mate ranks ahead of it.
"""
import math
import warnings

import numpy as np

from tfface.eval.verification import far_k, threshold_at_k

DEFAULT_RANKS = (1, 5, 10)
DEFAULT_FAR = (1e-3, 1e-4, 1e-5, 1e-6)
PROTOCOLS = ("closed", "megaface")


def _normalize_rows(x, eps=1e-12):
    x = np.asarray(x, dtype=np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.maximum(norm, eps)[:, None]


def _as_features(x, name, dim=None):
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must be a numeric 2-D array (items, features), got "
                         f"shape {x.shape} dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} features (as the probes), got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _as_labels(labels, n, name):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of {n} identity labels, got shape "
                         f"{labels.shape}")
    return labels


def iter_chunks(distractors, chunk_size, dim):
    """Yield float32 ``(n, dim)`` chunks of at most ``chunk_size`` rows from an array / memmap
    (sliced, so a memmap is read one chunk at a time) or from an iterable of 2-D arrays."""
    if distractors is None:
        return
    if isinstance(distractors, np.ndarray):
        if distractors.ndim != 2 or distractors.shape[1] != dim:
            raise ValueError(f"distractors must have shape (N, {dim}), got {distractors.shape}")
        for start in range(0, distractors.shape[0], chunk_size):
            yield np.asarray(distractors[start:start + chunk_size], dtype=np.float32)
        return
    for i, chunk in enumerate(distractors):
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != dim:
            raise ValueError(f"distractor chunk {i} must have shape (n, {dim}), got {chunk.shape}")
        for start in range(0, chunk.shape[0], chunk_size):
            yield np.asarray(chunk[start:start + chunk_size], dtype=np.float32)


class _StreamTop:
    """Running per-row top-K and global top-B of the score matrices fed to :meth:`update`."""

    def __init__(self, rows, k, b):
        self.k = k
        self.b = b
        self.top = np.full((rows, k), -np.inf, dtype=np.float32)  # unsorted per row
        self.kth = np.full(rows, -np.inf, dtype=np.float32)
        self.buffer = np.empty(0, dtype=np.float32)
        self.gthr = np.float32(-np.inf)  # the b-th largest so far (-inf until b are seen)
        self.pending = []
        self.pending_n = 0
        self._mask = None

    def _merge_rows(self, rows, vals):
        """Merge candidate (row, value) pairs into the per-row top-K."""
        p, k = self.top.shape
        all_rows = np.concatenate([np.repeat(np.arange(p), k), rows])
        all_vals = np.concatenate([self.top.ravel(), vals])
        order = np.lexsort((-all_vals, all_rows))
        sorted_rows = all_rows[order]
        starts = np.searchsorted(sorted_rows, np.arange(p))
        pos = np.arange(sorted_rows.shape[0]) - starts[sorted_rows]
        keep = order[pos < k]
        self.top = all_vals[keep].reshape(p, k)
        self.kth = self.top.min(axis=1)

    def _flush(self):
        if not self.pending:
            return
        merged = np.concatenate([self.buffer] + self.pending)
        self.pending, self.pending_n = [], 0
        if merged.shape[0] > self.b:
            merged = np.partition(merged, merged.shape[0] - self.b)[-self.b:]
        self.buffer = merged
        if self.buffer.shape[0] >= self.b:
            self.gthr = self.buffer.min()

    def update(self, s):
        """``s``: (rows, n) float32 scores; -inf entries are ignored (masked pairs)."""
        rows, n = s.shape
        need_rows = True
        need_glob = bool(self.b)
        if not np.isfinite(self.kth).all():
            # Some row is not full yet: everything beats -inf, so select by partitioning.
            part = s if n <= self.k else np.partition(s, n - self.k, axis=1)[:, n - self.k:]
            both = np.concatenate([self.top, part], axis=1)
            self.top = np.partition(both, both.shape[1] - self.k, axis=1)[:, -self.k:]
            self.kth = self.top.min(axis=1)
            need_rows = False
        if need_glob and not np.isfinite(self.gthr):
            flat = s[np.isfinite(s)]
            if flat.shape[0] > self.b:
                flat = np.partition(flat, flat.shape[0] - self.b)[-self.b:]
            self.pending.append(flat)
            self._flush()
            need_glob = False
        if not (need_rows or need_glob):
            return
        if need_rows and need_glob:
            thr = np.minimum(self.kth, self.gthr)[:, None]
        elif need_rows:
            thr = self.kth[:, None]
        else:
            thr = self.gthr
        # Reused mask buffer: a fresh (rows, n) allocation per chunk costs page faults.
        if self._mask is None or self._mask.shape != s.shape:
            self._mask = np.empty(s.shape, dtype=bool)
        mask = np.greater(s, thr, out=self._mask)
        if not mask.any():
            return
        # flatnonzero + integer division: 2-D np.nonzero is several times slower on a mostly-False mask.
        flat = np.flatnonzero(mask)
        r = flat // n
        vals = s.ravel()[flat]
        if need_rows:
            sel = vals > self.kth[r]
            if sel.any():
                self._merge_rows(r[sel], vals[sel])
        if need_glob:
            g = vals[vals > self.gthr]
            if g.shape[0]:
                self.pending.append(g)
                self.pending_n += g.shape[0]
                if self.pending_n >= self.b:
                    self._flush()

    def finish(self):
        self._flush()
        return np.sort(self.top, axis=1)[:, ::-1], np.sort(self.buffer)[::-1]


def _far_k(far, n_imp):
    # One definition of k = floor(FAR * N_impostor) (tfface.eval.verification.far_k).
    return [(float(f), far_k(f, n_imp)) for f in far]


def identify(probes, probe_labels, gallery=None, gallery_labels=None, distractors=None,
             protocol=None, ranks=DEFAULT_RANKS, far=DEFAULT_FAR, chunk_size=8192,
             num_distractors=None, max_impostor_buffer=2 ** 24, progress=False):
    """Rank-k identification and TAR@FAR of probes against a gallery plus distractors.

    protocol ``"closed"`` (the default when a gallery is given): one query per probe; its rank is
    1 + the number of competitors (gallery images of other identities and all distractors) at
    least as similar as its best gallery mate. Genuine pairs: probe-mate; impostors: probe with
    every non-mate gallery image and every distractor.

    protocol ``"megaface"`` (the default without a gallery): one query per (probe, mate) pair,
    where the mates are the gallery images of the probe's identity or, without a gallery, the
    *other* probes of its identity (MegaFace's FaceScrub set plays both roles); the rank is 1 +
    the number of distractors at least as similar as the mate. Genuine pairs: the (probe, mate)
    queries; impostors: probe-distractor pairs.

    ``distractors``: an ``(N, D)`` array or ``np.memmap`` (read ``chunk_size`` rows at a time) or
    an iterable of ``(n_i, D)`` chunks. For an iterable, pass ``num_distractors`` to size the
    impostor buffer; otherwise ``max_impostor_buffer`` scores are kept and a FAR that needs more
    is reported as NaN with a warning.

    Returns ``{"cmc": {rank: rate}, "rank1", "tar_at_far": {far: tar}, "far_thresholds",
    "far_k", "far_resolution" (1 / N_impostor), "query_ranks" (per query; ``max(ranks)+1`` means beyond the largest rank),
    "num_queries", "num_distractors", "num_genuine", "num_impostor", "protocol"}``.
    """
    ranks = tuple(int(r) for r in ranks)
    if not ranks or min(ranks) < 1:
        raise ValueError(f"ranks must be positive integers, got {ranks}")
    k_top = max(ranks)
    p = _as_features(probes, "probes")
    dim = p.shape[1]
    probe_labels = _as_labels(probe_labels, p.shape[0], "probe_labels")
    if protocol is None:
        protocol = "closed" if gallery is not None else "megaface"
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if gallery is not None:
        g = _normalize_rows(_as_features(gallery, "gallery", dim))
        gallery_labels = _as_labels(gallery_labels, g.shape[0], "gallery_labels")
    elif protocol == "closed":
        raise ValueError("protocol 'closed' needs a gallery (and gallery_labels)")
    if protocol == "megaface" and distractors is None:
        raise ValueError("protocol 'megaface' ranks mates against distractors: pass distractors")
    p = _normalize_rows(p)

    # Mates and genuine scores.
    if protocol == "closed":
        s_pg = p @ g.T
        is_mate = probe_labels[:, None] == gallery_labels[None, :]
        missing = np.flatnonzero(~is_mate.any(axis=1))
        if missing.size:
            raise ValueError(f"{missing.size} probes have no mate in the gallery (first: probe "
                             f"{missing[0]}, label {probe_labels[missing[0]]!r}); closed-set "
                             "identification needs one")
        genuine = s_pg[is_mate]
        query_probe = np.arange(p.shape[0])
        query_score = np.where(is_mate, s_pg, -np.inf).max(axis=1)
        competitors_gallery = np.where(is_mate, -np.inf, s_pg).astype(np.float32)
        n_imp_fixed = int((~is_mate).sum())
    else:
        if gallery is None:
            same = probe_labels[:, None] == probe_labels[None, :]
            np.fill_diagonal(same, False)
            qp, qm = np.nonzero(same)
            query_score = np.einsum("ij,ij->i", p[qp], p[qm])
        else:
            same = probe_labels[:, None] == gallery_labels[None, :]
            qp, qm = np.nonzero(same)
            query_score = np.einsum("ij,ij->i", p[qp], g[qm])
        if qp.size == 0:
            raise ValueError("no (probe, mate) pairs: every identity needs at least two images "
                             "(or a gallery image)")
        query_probe = qp
        genuine = query_score
        competitors_gallery = None
        n_imp_fixed = 0

    # Impostor buffer size: the largest k among the requested FARs.
    known_n = None
    if isinstance(distractors, np.ndarray):
        known_n = int(distractors.shape[0])
    elif num_distractors is not None:
        known_n = int(num_distractors)
    if known_n is not None:
        n_imp_planned = n_imp_fixed + p.shape[0] * known_n
        # The threshold is s_k (0-based): the top k+1 impostor scores are needed.
        ks = [min(k + 1, n_imp_planned) for _, k in _far_k(far, n_imp_planned)]
        b = max(ks, default=0)
        if b > max_impostor_buffer:
            raise ValueError(
                f"far={min(f for f, k in _far_k(far, n_imp_planned) if k + 1 > max_impostor_buffer)}"
                f" needs the top {b} of {n_imp_planned} impostor scores, more than "
                f"max_impostor_buffer={max_impostor_buffer}; drop that FAR or raise the buffer")
    else:
        _far_k(far, 1)
        b = max_impostor_buffer if len(far) else 0

    top = _StreamTop(p.shape[0], k_top, b)
    if competitors_gallery is not None and competitors_gallery.shape[1]:
        top.update(competitors_gallery)
    n_dis = 0
    chunks = iter_chunks(distractors, chunk_size, dim)
    if progress:
        from tqdm import tqdm

        total = None if known_n is None else math.ceil(known_n / chunk_size)
        chunks = tqdm(chunks, total=total, desc="distractors", unit="chunk")
    s = None
    for chunk in chunks:
        if not np.isfinite(chunk).all():
            raise ValueError(f"distractors rows {n_dis}..{n_dis + chunk.shape[0] - 1} contain "
                             "NaN or infinite values")
        chunk = _normalize_rows(chunk)
        if s is None or s.shape[1] != chunk.shape[0]:
            s = np.empty((p.shape[0], chunk.shape[0]), dtype=np.float32)
        np.matmul(p, chunk.T, out=s)
        top.update(s)
        n_dis += chunk.shape[0]
    if known_n is not None and num_distractors is not None and n_dis != known_n:
        raise ValueError(f"num_distractors={known_n} but the distractors yielded {n_dis} rows")
    top_k, imp_top = top.finish()

    # Ranks: 1 + competitors >= the mate's score, exact up to k_top.
    ahead = np.sum(top_k[query_probe] >= query_score[:, None].astype(np.float32), axis=1)
    query_ranks = ahead + 1
    cmc = {r: float(np.mean(query_ranks <= r)) for r in ranks}

    n_imp = n_imp_fixed + p.shape[0] * n_dis
    gen_sorted = np.sort(genuine.astype(np.float32))
    tar, thr_out, k_out = {}, {}, {}
    for f, k in _far_k(far, n_imp):
        k_out[f] = k
        if n_imp == 0:
            tar[f], thr_out[f] = float("nan"), float("nan")  # no impostor pair at all
            continue
        if imp_top.shape[0] <= k < n_imp:
            warnings.warn(f"far={f} needs the top {k + 1} impostor scores but only "
                          f"{imp_top.shape[0]} were kept (max_impostor_buffer); reported "
                          "as NaN", stacklevel=2)
            tar[f], thr_out[f] = float("nan"), float("nan")
            continue
        # TAR@FAR as tfface.eval.verification.tar_at_far: threshold s_k, accept strictly greater
        # (k = 0: the FAR = 0 point; k = N_impostor: everything).
        thr = threshold_at_k(imp_top, k)
        accepted = gen_sorted.shape[0] - np.searchsorted(gen_sorted, thr, side="right")
        tar[f], thr_out[f] = float(accepted / gen_sorted.shape[0]), float(thr)
    return {
        "protocol": protocol,
        "cmc": cmc,
        "rank1": float(np.mean(query_ranks <= 1)),
        "tar_at_far": tar,
        "far_thresholds": thr_out,
        "far_k": k_out,
        "far_resolution": 1.0 / n_imp if n_imp else float("nan"),
        "query_ranks": query_ranks,
        "num_queries": int(query_ranks.shape[0]),
        "num_probes": int(p.shape[0]),
        "num_distractors": int(n_dis),
        "num_genuine": int(genuine.shape[0]),
        "num_impostor": int(n_imp),
    }
