import numpy as np
import pytest

from tfface.eval.templates import template_features, verify_templates, video_features
from tfface.eval.verification import verify


def test_media_mean_then_template_mean():
    f = np.array([[1.0, 0], [3, 0], [0, 2], [10, 10], [0, 6]])
    tid = ["a", "a", "a", "b", "b"]
    mid = [0, 0, 1, 7, 8]
    ids, feats = template_features(f, tid, mid)
    assert list(ids) == ["a", "b"]
    # a: media 0 mean (2, 0), media 1 (0, 2) -> (1, 1);  b: (10,10) and (0,6) -> (5, 8)
    np.testing.assert_allclose(feats, [[1, 1], [5, 8]])
    # Without media: plain image means.
    _, plain = video_features(f, tid)
    np.testing.assert_allclose(plain, [[4 / 3, 2 / 3], [5, 8]])
    _, normed = video_features(f, tid, normalize_first=True)
    # b: (10,10) -> (0.7071, 0.7071), (0,6) -> (0, 1): mean (0.35355, 0.85355)
    np.testing.assert_allclose(normed[1], [np.sqrt(.5) / 2, np.sqrt(.5) / 2 + .5])


def test_verify_templates_equals_verify_on_means():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(60, 5))
    tid = rng.integers(0, 12, 60)
    tid[:12] = np.arange(12)
    mid = rng.integers(0, 3, 60)
    pairs = rng.integers(0, 12, (20, 2))
    issame = np.arange(20) % 2 == 0
    res = verify_templates(f, tid, pairs, issame, media_ids=mid, folds=4)
    means = {}
    for t in range(12):
        medias = [f[(tid == t) & (mid == m)].mean(0) for m in range(3) if ((tid == t) & (mid == m)).any()]
        means[t] = np.mean(medias, axis=0)
    ref = verify(np.array([means[a] for a, _ in pairs]), np.array([means[b] for _, b in pairs]),
                 issame, folds=4)
    assert res["accuracy"] == pytest.approx(ref["accuracy"])
    assert res["auc"] == pytest.approx(ref["auc"])
    with pytest.raises(ValueError, match="template 99"):
        verify_templates(f, tid, [[0, 99]] * 4, [1, 0, 1, 0], folds=2)
