"""FAISS against exact search: a flat index finds what numpy finds; an IVF index's recall@1 is
what counting agreements with a numpy brute force gives, and reaches 1 when every cell is
visited."""
import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from tfface.search import ann  # noqa: E402


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(20, 32)))
    gallery = _unit(centres[rng.integers(20, size=4000)] + 0.3 * rng.normal(size=(4000, 32)))
    queries = _unit(gallery[rng.choice(4000, 200, replace=False)] + 0.05 * rng.normal(size=(200, 32)))
    return gallery, queries


def _numpy_top1(queries, gallery):
    return np.argmax(queries.astype(np.float64) @ gallery.astype(np.float64).T, axis=1)


def test_flat_index_matches_numpy(data):
    gallery, queries = data
    index = ann.build_faiss(gallery, kind="flat")
    s, i = ann.faiss_topk(index, queries, k=3)
    ref = queries.astype(np.float64) @ gallery.astype(np.float64).T
    np.testing.assert_array_equal(i[:, 0], _numpy_top1(queries, gallery))
    np.testing.assert_allclose(s, np.take_along_axis(ref, i, axis=1), atol=1e-5)
    assert ann.recall_at_1(index, gallery, queries) == 1.0


def test_ivf_recall_counts_agreements_with_brute_force(data):
    gallery, queries = data
    index = ann.build_faiss(gallery, kind="ivf", nlist=64, nprobe=1, seed=0)
    _, i = ann.faiss_topk(index, queries, k=1)
    expected = float(np.mean(i[:, 0] == _numpy_top1(queries, gallery)))
    assert ann.recall_at_1(index, gallery, queries) == pytest.approx(expected)
    assert expected < 1.0  # one cell of 64 misses some neighbours: the check can fail
    index.nprobe = 64  # every cell: exhaustive
    assert ann.recall_at_1(index, gallery, queries) == 1.0


def test_bad_arguments(data):
    gallery, _ = data
    with pytest.raises(ValueError, match="kind"):
        ann.build_faiss(gallery, kind="hnsw")
    with pytest.raises(ValueError, match="nlist"):
        ann.build_faiss(gallery[:10], kind="ivf", nlist=11)
