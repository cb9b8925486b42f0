"""Approximate search with FAISS (the optional ``search`` extra: ``pip install faiss-cpu``), for
galleries where an exact pass per query is too slow.

:func:`build_faiss` builds an inner-product index over unit-length rows (inner product = cosine):
``"flat"`` (exact, FAISS's BLAS kernels) or ``"ivf"`` (an inverted file: the gallery is
clustered into ``nlist`` cells by k-means on a sample, and a query visits the ``nprobe`` cells
nearest to it; recall rises with ``nprobe``, time with it). :func:`recall_at_1` measures the
fraction of queries whose FAISS top-1 is the exact top-1 (:func:`tfface.search.exact.exact_topk`);
``tfface enrol --faiss`` records it in the index and warns below :data:`MIN_RECALL`.
"""
import math

import numpy as np

from tfface.search.exact import exact_topk

KINDS = ("flat", "ivf")
MIN_RECALL = 0.95


def import_faiss():
    """The ``faiss`` module, or an ImportError that says how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError("FAISS search needs the 'faiss-cpu' package: pip install 'tfface[search]' "
                          "(or pip install faiss-cpu)") from err
    return faiss


def default_nlist(n):
    """Cells of an IVF index for ``n`` rows: about ``sqrt(n)`` (1,000 for a million: the setting
    of benchmarks/search.py; FAISS suggests up to 4-16·sqrt(n) for faster queries, at a k-means
    cost that grows with it), at least 1 and at most ``n // 39`` (k-means wants ~39 training
    points per centroid)."""
    return int(max(1, min(round(math.sqrt(n)), n // 39)))


def build_faiss(gallery, kind="ivf", nlist=None, nprobe=32, train_size=None, seed=0):
    """A FAISS inner-product index over ``gallery`` (N, D), whose rows must be unit length.

    ``kind``: "flat" or "ivf"; ``nlist`` (ivf): cells, default :func:`default_nlist`;
    ``nprobe`` (ivf): cells visited per query; ``train_size``: rows sampled (seeded) to train the
    k-means, default ``min(N, 64·nlist)``."""
    faiss = import_faiss()
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; expected one of {KINDS}")
    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    n, d = gallery.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(gallery)
        return index
    nlist = int(nlist or default_nlist(n))
    if not 1 <= nlist <= n:
        raise ValueError(f"nlist={nlist}; expected 1..{n} (the gallery's size)")
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    train_size = min(n, int(train_size or 64 * nlist))
    rows = np.sort(np.random.default_rng(seed).choice(n, size=train_size, replace=False))
    index.cp.seed = int(seed)
    index.train(gallery[rows])
    for start in range(0, n, 262144):
        index.add(gallery[start:start + 262144])
    index.nprobe = int(min(nprobe, nlist))
    return index


def faiss_topk(index, queries, k=5):
    """``(scores, indices)`` of a FAISS index for normalised ``queries`` (Q, D); rows FAISS could
    not fill (fewer than ``k`` in the visited cells) have index -1 and score -inf."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    scores, indices = index.search(queries, int(min(k, index.ntotal)))
    scores = np.where(indices < 0, -np.inf, scores).astype(np.float32)
    return scores, indices.astype(np.int64)


def recall_at_1(index, gallery, queries, chunk=65536):
    """Fraction of ``queries`` (normalised) whose FAISS top-1 row is the exact top-1 row of
    ``gallery`` (normalised); a tie at the top counts as found when FAISS's row scores the same."""
    exact_s, exact_i = exact_topk(queries, gallery, k=1, chunk=chunk, normalised=True)
    approx_s, approx_i = faiss_topk(index, queries, k=1)
    same = (approx_i[:, 0] == exact_i[:, 0]) | np.isclose(approx_s[:, 0], exact_s[:, 0], rtol=0, atol=1e-6)
    return float(np.mean(same))


def serialise(index):
    """A FAISS index as bytes (the caller writes them atomically, via :mod:`tfface.files`)."""
    faiss = import_faiss()
    return faiss.serialize_index(index).tobytes()


def read_index(path):
    faiss = import_faiss()
    return faiss.read_index(str(path))
