"""Exact top-k against a numpy brute force (a full sort), identity templates against a
hand-written mean, and the threshold decision."""
import numpy as np
import pytest

from tfface.search.exact import exact_topk, identity_templates, normalise
from tfface.search.index import UNKNOWN, decide, threshold_from_metadata


def brute_force(queries, gallery, k):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = q.astype(np.float64) @ g.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_exact_topk_equals_a_full_sort(chunk):
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(500, 24)).astype(np.float32)
    queries = rng.normal(size=(9, 24)).astype(np.float32)
    scores, idx = exact_topk(queries, gallery, k=10, chunk=chunk)
    ref_s, ref_i = brute_force(queries, gallery, 10)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)


def test_ties_prefer_the_lower_row_across_chunks():
    # Rows 3, 10, 17, 40 are the same vector: a query equal to it ties four ways.
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(50, 8)).astype(np.float32)
    for r in (10, 17, 40):
        gallery[r] = gallery[3]
    scores, idx = exact_topk(gallery[3:4] * 2.0, gallery, k=3, chunk=6)
    assert idx.tolist() == [[3, 10, 17]]
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)


def test_k_larger_than_the_gallery_and_bad_input():
    g = np.eye(3, dtype=np.float32)
    s, i = exact_topk(np.array([[1.0, 0.2, 0.0]]), g, k=10)
    assert i.tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError, match="dimensions"):
        exact_topk(np.ones((1, 4)), g, k=1)
    with pytest.raises(ValueError, match="k=0"):
        exact_topk(np.ones((1, 3)), g, k=0)


def test_memory_mapped_gallery_is_read_in_chunks(tmp_path):
    rng = np.random.default_rng(2)
    gallery = normalise(rng.normal(size=(300, 16)))
    np.save(tmp_path / "g.npy", gallery)
    mapped = np.load(tmp_path / "g.npy", mmap_mode="r")
    q = normalise(rng.normal(size=(4, 16)))
    s, i = exact_topk(q, mapped, k=5, chunk=50, normalised=True)
    np.testing.assert_array_equal(i, brute_force(q, gallery, 5)[1])


def test_identity_templates_are_normalised_means_of_normalised_embeddings():
    emb = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, -5.0]])
    labels = [0, 0, 1, 1]
    t, counts = identity_templates(emb, labels, num_identities=3)
    # identity 0: mean of (1,0) and (0,1) = (.5,.5) -> (1,1)/sqrt2; identity 1: (1/sqrt2, 1/sqrt2 - 1)/2
    a = np.array([1.0, 1.0]) / np.sqrt(2)
    b = np.array([1 / np.sqrt(2), 1 / np.sqrt(2) - 1.0])
    np.testing.assert_allclose(t[0], a, atol=1e-6)
    np.testing.assert_allclose(t[1], b / np.linalg.norm(b), atol=1e-6)
    np.testing.assert_array_equal(t[2], [0.0, 0.0])
    assert counts.tolist() == [2, 2, 0]


def test_decision_at_the_threshold():
    scores = np.array([[0.8, 0.3], [0.5, 0.4], [0.49, 0.1]])
    idx = np.array([[1, 0], [0, 1], [1, 0]])
    names = ["ann", "bob"]
    out = decide(scores, idx, names, threshold=0.5)
    assert [o["decision"] for o in out] == ["bob", "ann", UNKNOWN]
    assert out[0]["top"] == [{"identity": "bob", "score": 0.8}, {"identity": "ann", "score": 0.3}]
    assert all(o["decision"] is None for o in decide(scores, idx, names, threshold=None))


def test_threshold_from_metadata():
    meta = {"metric": "cosine", "far": {"1e-2": 0.2, "1e-3": 0.31}, "best_accuracy": 0.27}
    assert threshold_from_metadata(meta, far="0.001") == (0.31, "model metadata, FAR 1e-3")
    assert threshold_from_metadata(meta, far="1e-4")[0] == 0.27
    assert threshold_from_metadata(None) == (None, None)
