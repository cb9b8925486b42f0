"""Exact cosine search over a gallery of embeddings, in numpy.

* :func:`normalise` — rows scaled to unit length (float32; a zero row stays zero).
* :func:`exact_topk` — the ``k`` best gallery rows of every query by cosine similarity, exact:
  the gallery is walked in chunks (``chunk`` rows at a time, so the score matrix of a chunk is
  ``queries x chunk``, never ``queries x gallery``), each chunk's best ``k`` are kept with
  ``argpartition`` and merged with the running best. Ties are broken by the lower gallery row,
  so the result is deterministic and equals a full sort of ``-score, row``.
* :func:`identity_templates` — one template per identity: the mean of the identity's
  L2-normalised embeddings, normalised again (so a search score is a cosine similarity, on the
  same scale as a verification threshold).

Memory: a gallery of N x D float32 takes 4·N·D bytes (1,000,000 x 512: 2 GB); the search itself
adds ``queries x chunk`` scores (64 x 65,536 float32: 16 MB by default).
"""
import numpy as np

DEFAULT_CHUNK = 65536


def normalise(x, epsilon=1e-12):
    """``x`` (N, D) as float32 with unit-length rows; rows of norm below ``epsilon`` stay zero."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings of shape {x.shape}; expected (N, D)")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, epsilon)


def _merge(best_s, best_i, s, i, k):
    """The ``k`` best of two candidate sets per row, ordered by (-score, index)."""
    s = np.concatenate([best_s, s], axis=1)
    i = np.concatenate([best_i, i], axis=1)
    # lexsort: last key is primary. Candidate sets are small (2k), so a full sort is cheap.
    order = np.lexsort((i, -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)


def exact_topk(queries, gallery, k=5, chunk=DEFAULT_CHUNK, normalised=False):
    """``(scores, indices)``, each ``(Q, min(k, N))``: the ``k`` gallery rows of highest cosine
    similarity to each query, best first (ties: lower row first).

    ``queries`` (Q, D) and ``gallery`` (N, D) are normalised here unless ``normalised=True``
    says they already are (a memory-mapped gallery of unit rows is then read chunk by chunk,
    never copied whole)."""
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None]
    if queries.ndim != 2 or gallery.ndim != 2:
        raise ValueError(f"queries {queries.shape} and gallery {gallery.shape}: expected (Q, D) and (N, D)")
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} dimensions, the gallery {gallery.shape[1]}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r}; expected a positive integer")
    if not normalised:
        queries = normalise(queries)
    n = gallery.shape[0]
    k = min(int(k), n)
    q = queries.shape[0]
    best_s = np.full((q, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((q, 0), dtype=np.int64)
    for start in range(0, n, chunk):
        block = np.asarray(gallery[start:start + chunk], dtype=np.float32)
        if not normalised:
            block = normalise(block)
        scores = queries @ block.T
        m = scores.shape[1]
        if m > k:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            # argpartition may cut a tie at the k-th score arbitrarily; take every column tied
            # with the k-th score too, so the merge can prefer the lower row.
            kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
            if np.count_nonzero(scores >= kth) > k * q:
                rows, cols = np.nonzero(scores >= kth)
                part_s = np.full((q, m), -np.inf, dtype=np.float32)
                part_s[rows, cols] = scores[rows, cols]
                order = np.lexsort((np.broadcast_to(np.arange(m), (q, m)), -part_s), axis=1)[:, :k]
                part = order
            cand_s = np.take_along_axis(scores, part, axis=1)
            cand_i = part.astype(np.int64) + start
        else:
            cand_s = scores
            cand_i = np.broadcast_to(np.arange(start, start + m, dtype=np.int64), (q, m))
        best_s, best_i = _merge(best_s, best_i, cand_s, cand_i, k)
    return best_s, best_i


def identity_templates(embeddings, labels, num_identities=None):
    """``(templates, counts)``: per label, the normalised mean of the normalised embeddings of that
    label (``templates[c]``, unit length) and how many embeddings it averages. Labels with no
    embedding get a zero template and count 0."""
    emb = normalise(embeddings)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (emb.shape[0],):
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} labels for {emb.shape[0]} embeddings")
    if len(labels) and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    c = int(num_identities if num_identities is not None else (labels.max() + 1 if len(labels) else 0))
    sums = np.zeros((c, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, emb)
    counts = np.bincount(labels, minlength=c)
    return normalise(sums.astype(np.float32)), counts
