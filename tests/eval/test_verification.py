"""Verification protocols against a brute-force numpy transcription of the protocol as written
in docs/eval.md (loops over folds and candidate thresholds), on synthetic scores."""
import math

import numpy as np
import pytest

from tfface.eval.verification import pair_scores, verify, verify_scores


def reference_kfold(sim, issame, folds):
    """Brute force: contiguous folds, every distinct training score tried, ties -> largest."""
    n = len(sim)
    sizes = [n // folds + (1 if f < n % folds else 0) for f in range(folds)]
    starts = np.cumsum([0] + sizes)
    accs, thrs = [], []
    for f in range(folds):
        test = np.zeros(n, bool)
        test[starts[f]:starts[f + 1]] = True
        best_acc, best_t = -1.0, None
        for t in sorted(set(sim[~test].tolist())):  # ascending: later equal accuracies are stricter
            acc = np.mean((sim[~test] >= t) == issame[~test])
            if acc >= best_acc:
                best_acc, best_t = acc, t
        thrs.append(best_t)
        accs.append(np.mean((sim[test] >= best_t) == issame[test]))
    return np.array(accs), np.array(thrs)


def reference_auc(sim, issame):
    g = sim[issame][:, None]
    i = sim[~issame][None, :]
    return np.mean((g > i) + 0.5 * (g == i))


def check_against_reference(sim, issame, folds=10):
    res = verify_scores(sim, issame, metric="cosine", folds=folds)
    accs, thrs = reference_kfold(sim, issame, folds)
    np.testing.assert_allclose(res["fold_accuracies"], accs, atol=1e-12)
    np.testing.assert_allclose(res["thresholds"], thrs, atol=0)
    assert res["accuracy"] == pytest.approx(accs.mean())
    assert res["accuracy_std"] == pytest.approx(accs.std())
    assert res["auc"] == pytest.approx(reference_auc(sim, issame), abs=1e-12)
    # The same protocol on distances: negated scores, negated thresholds, same accuracies.
    dist = verify_scores(-sim, issame, metric="euclidean", folds=folds)
    np.testing.assert_allclose(dist["fold_accuracies"], accs, atol=1e-12)
    np.testing.assert_allclose(dist["thresholds"], -thrs, atol=0)
    return res


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kfold_random_scores_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 203  # not a multiple of 10: uneven folds
    issame = rng.random(n) < 0.5
    # Quantised scores: many ties, including ties between genuine and impostor pairs.
    sim = np.round(rng.normal(issame * 0.8, 1.0, n), 1)
    check_against_reference(sim, issame)


def test_kfold_perfectly_separable():
    rng = np.random.default_rng(3)
    issame = np.tile([True] * 5 + [False] * 5, 10)
    sim = np.where(issame, rng.uniform(0.6, 1.0, 100), rng.uniform(-1.0, 0.4, 100))
    res = check_against_reference(sim, issame)
    assert res["auc"] == 1.0 and res["eer"] == 0.0
    # The strictest threshold may reject a test-fold genuine pair below every training one, so
    # perfect test accuracy is guaranteed only when all genuine scores are equal.
    perfect = check_against_reference(np.where(issame, 0.8, sim), issame)
    assert perfect["accuracy"] == 1.0 and perfect["accuracy_std"] == 0.0
    # Strictest perfect threshold: the smallest genuine score of the training folds.
    for f, t in enumerate(res["thresholds"]):
        train = np.ones(100, bool)
        train[10 * f:10 * f + 10] = False
        assert t == sim[train & issame].min()


def test_kfold_inseparable_all_equal():
    issame = np.tile([True, False, False], 20)
    sim = np.zeros(60)
    res = check_against_reference(sim, issame)
    # Only one candidate (0): everything accepted, accuracy = share of matched pairs.
    assert res["accuracy"] == pytest.approx(1 / 3)
    assert res["auc"] == 0.5
    assert res["eer"] == pytest.approx(0.5)


def reference_tar_at_far(sim, issame, far):
    """The definition, transcribed by brute force: the largest accepted set whose FAR is at most
    the target. Candidates: every impostor score (accept strictly greater) and -inf (accept all);
    the loosest candidate whose accepted impostors number at most floor(far * N_imp) wins."""
    imp = [s for s, g in zip(sim, issame) if not g]
    gen = [s for s, g in zip(sim, issame) if g]
    allowed = int(math.floor(far * len(imp) + 1e-9))
    best = None
    for t in sorted(set(imp)) + [-math.inf]:
        if sum(1 for s in imp if s > t) <= allowed and (best is None or t < best):
            best = t
    return sum(1 for s in gen if s > best) / len(gen), best


def test_tar_at_far_by_hand():
    # 10 impostors, 4 genuine.
    imp = [0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    gen = [0.95, 0.85, 0.8, 0.75]
    sim = np.array(imp + gen)
    issame = np.array([False] * 10 + [True] * 4)
    fars = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)
    res = verify_scores(sim, issame, folds=0, far=fars)
    # Threshold s_k (0-based, decreasing), accept strictly greater:
    # FAR 1: k=10 -> everything (-inf) -> 1.0
    # FAR 0.5: k=5, s_5 = 0.5; genuine > 0.5: all 4 -> 1.0 (5 impostors accepted)
    # FAR 0.3: k=3, s_3 = 0.7; all 4 genuine > 0.7 -> 1.0 (3 impostors accepted)
    # FAR 0.2: k=2, s_2 = 0.8 = s_1 (tie, rejected): 0.95, 0.85 -> 0.5 (1 impostor accepted)
    # FAR 0.1: k=1, s_1 = 0.8 -> 0.5
    # FAR 0.05: k=0: the FAR = 0 point, threshold s_0 = 0.9 -> 0.25, resolution 1/10
    assert res["far_k"] == {1.0: 10, 0.5: 5, 0.3: 3, 0.2: 2, 0.1: 1, 0.05: 0}
    assert res["far_thresholds"] == {1.0: -math.inf, 0.5: 0.5, 0.3: 0.7, 0.2: 0.8, 0.1: 0.8,
                                     0.05: 0.9}
    assert res["tar_at_far"] == {1.0: 1.0, 0.5: 1.0, 0.3: 1.0, 0.2: 0.5, 0.1: 0.5, 0.05: 0.25}
    assert res["far_resolution"] == 0.1
    for f in fars:
        assert res["tar_at_far"][f] == reference_tar_at_far(sim, issame, f)[0]
    # Distances: the same pairs as distance = 1 - similarity give the same TARs.
    res_d = verify_scores(1 - sim, issame, metric="euclidean", folds=0, far=(0.3, 0.05))
    assert res_d["tar_at_far"] == {0.3: 1.0, 0.05: 0.25}
    assert res_d["far_thresholds"][0.05] == pytest.approx(0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tar_at_far_random_with_ties(seed):
    rng = np.random.default_rng(seed)
    issame = rng.random(400) < 0.3
    sim = np.round(rng.normal(issame * 1.0, 1.0), 1)  # many ties, genuine and impostor
    fars = (1.0, 0.5, 0.1, 0.05, 0.01, 1e-3, 1e-6)
    res = verify_scores(sim, issame, folds=0, far=fars)
    n_imp = int((~issame).sum())
    for f in fars:
        tar, thr = reference_tar_at_far(sim, issame, f)
        assert res["tar_at_far"][f] == tar, f
        assert res["far_thresholds"][f] == thr, f
        # Never more impostors accepted than the FAR allows.
        assert np.sum(sim[~issame] > res["far_thresholds"][f]) <= math.floor(f * n_imp + 1e-9)


def test_roc_and_eer_by_hand():
    # genuine 3, 1 ; impostor 2, 0  -> ROC points (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    sim = np.array([3.0, 1.0, 2.0, 0.0])
    issame = np.array([True, True, False, False])
    res = verify_scores(sim, issame, folds=2)
    fpr, tpr, thr = res["roc"]
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 3, 2, 1, 0])
    assert res["auc"] == 0.75
    assert res["eer"] == 0.5


def test_eer_interpolated():
    # ROC (0,0) (0,1/3)? build: genuine 0.9 0.6 0.5 ; impostor 0.7 0.4
    sim = np.array([0.9, 0.6, 0.5, 0.7, 0.4])
    issame = np.array([True, True, True, False, False])
    fpr, tpr, _ = verify_scores(sim, issame, folds=0)["roc"]
    # points: (0,0) (0,1/3) (.5,1/3) (.5,2/3) (.5,1) (1,1); FNR = 1 - tpr.
    # FPR - FNR: -1, -2/3, -1/6, 1/6 ... crosses between (.5,1/3) and (.5,2/3): EER = 0.5
    assert verify_scores(sim, issame, folds=0)["eer"] == pytest.approx(0.5)
    # A diagonal crossing: genuine 0.9, 0.1 ; impostor 0.5 -> (0,0)(0,.5)(1,.5)(1,1)
    # segment (0,.5)->(1,.5): FPR - FNR goes -0.5 -> 0.5, zero at FPR=0.5.
    res = verify_scores(np.array([0.9, 0.1, 0.5]), np.array([True, True, False]), folds=0)
    assert res["eer"] == pytest.approx(0.5)


def test_metrics_from_embeddings():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(40, 8))
    b = rng.normal(size=(40, 8)) * 3
    cos = np.array([x @ y / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(a, b)])
    np.testing.assert_allclose(pair_scores(a, b, "cosine"), cos)
    sq = np.array([np.sum((x / np.linalg.norm(x) - y / np.linalg.norm(y)) ** 2) for x, y in zip(a, b)])
    np.testing.assert_allclose(pair_scores(a, b, "euclidean"), sq)
    raw = np.array([np.sum((x - y) ** 2) for x, y in zip(a, b)])
    np.testing.assert_allclose(pair_scores(a, b, "euclidean", normalize=False), raw)
    issame = rng.random(40) < 0.5
    # Squared distance on unit vectors = 2 - 2 cos: the same decisions, hence the same accuracy.
    r_cos = verify(a, b, issame, "cosine", folds=4)
    r_euc = verify(a, b, issame, "euclidean", folds=4)
    assert r_cos["accuracy"] == pytest.approx(r_euc["accuracy"])
    np.testing.assert_allclose(r_euc["thresholds"], 2 - 2 * np.array(r_cos["thresholds"]), atol=1e-12)


def test_bad_inputs_are_named():
    a = np.zeros((4, 3))
    with pytest.raises(ValueError, match="metric"):
        verify(a, a, [1, 0, 1, 0], metric="l1")
    with pytest.raises(ValueError, match="emb_b"):
        verify(a, np.zeros((5, 3)), [1, 0, 1, 0])
    with pytest.raises(ValueError, match="issame"):
        verify(a, a, [1, 0, 1])
    with pytest.raises(ValueError, match="matched"):
        verify(a, a, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="folds"):
        verify(a, a, [1, 0, 1, 0], folds=5)
    with pytest.raises(ValueError, match="NaN"):
        verify(np.full((4, 3), np.nan), a, [1, 0, 1, 0])
    with pytest.raises(ValueError, match="far"):
        verify(a + 1, a + 1, [1, 0, 1, 0], folds=2, far=(0.0,))


def test_explicit_fold_ids():
    rng = np.random.default_rng(7)
    n = 90
    issame = rng.random(n) < 0.5
    sim = np.round(rng.normal(issame * 1.0, 1.0, n), 1)
    # Contiguous ids reproduce folds=k.
    ids = np.repeat(np.arange(3), 30)
    a = verify_scores(sim, issame, folds=ids)
    b = verify_scores(sim, issame, folds=3)
    assert a["fold_accuracies"] == b["fold_accuracies"] and a["thresholds"] == b["thresholds"]
    # Interleaved ids (e.g. a splits file not sorted by split): brute force per fold.
    ids = np.arange(n) % 3 + 5
    res = verify_scores(sim, issame, folds=ids)
    assert res["folds"] == 3
    for f, fid in enumerate((5, 6, 7)):
        test = ids == fid
        best_acc, best_t = -1.0, None
        for t in sorted(set(sim[~test].tolist())):
            acc = np.mean((sim[~test] >= t) == issame[~test])
            if acc >= best_acc:
                best_acc, best_t = acc, t
        assert res["thresholds"][f] == best_t
        assert res["fold_accuracies"][f] == pytest.approx(np.mean((sim[test] >= best_t) == issame[test]))
    with pytest.raises(ValueError, match="folds"):
        verify_scores(sim, issame, folds=np.zeros(n, int))
    with pytest.raises(ValueError, match="folds"):
        verify_scores(sim, issame, folds=np.zeros(5, int))
