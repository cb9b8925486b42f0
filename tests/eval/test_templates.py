import numpy as np
import pytest

from tfface.eval.templates import (template_features, verify_templates, video_features,
                                   video_pairs_to_templates)
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


def test_ytf_video_pairs_share_one_pass():
    v1, v2, v3 = ["a/0/1.jpg", "a/0/2.jpg"], ["a/1/1.jpg"], ["b/0/1.jpg", "b/0/2.jpg", "b/0/3.jpg"]
    frames, vid, pairs = video_pairs_to_templates([(v1, v2), (v1, v3), (v3, v2), (v2, v1)])
    assert frames == v1 + v2 + v3
    assert vid.tolist() == [0, 0, 1, 2, 2, 2]
    assert pairs.tolist() == [[0, 1], [0, 2], [2, 1], [1, 0]]
    # Frame features -> video means -> verification of the pairs.
    feats = np.array([[1.0, 0], [1, 0.2], [1, 0.1], [0, 1], [0.1, 1], [0, 1]])
    res = verify_templates(feats, vid, pairs, [True, False, False, True], folds=2)
    assert res["num_pairs"] == 4 and res["auc"] == 1.0
