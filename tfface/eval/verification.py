"""Pair verification: LFW-style k-fold accuracy, TAR@FAR, ROC, AUC and EER.

Everything here is exact and vectorised numpy (no TensorFlow), so evaluating the 6,000 LFW pairs
takes milliseconds. The protocol definitions (docs/eval.md) in short:

* scores: ``metric="cosine"`` is the cosine similarity (higher = same person);
  ``metric="euclidean"`` is the squared Euclidean distance (lower = same person), on
  L2-normalised features unless ``normalize=False`` (raw features, e.g. the MML paper's
  concatenated features).
* k-fold accuracy: folds are contiguous blocks of the pair list (``np.array_split`` sizes: the
  first ``N % folds`` folds hold one pair more). For each fold the threshold is chosen on the other
  folds among *every distinct score* of those folds, maximising accuracy; among equally accurate
  thresholds the strictest wins (largest similarity / smallest distance). A pair is accepted when
  its similarity is >= the threshold (distance <= the threshold).
* TAR@FAR: the largest accepted set whose false accept rate is at most the target. With the
  impostor similarities sorted in decreasing order s_0 >= s_1 >= ... and
  ``k = floor(FAR * N_impostor)``, the threshold is s_k (0-based: the (k+1)-th largest) and a
  pair is accepted when its similarity is strictly greater, so at most k impostors are accepted
  (ties at s_k are rejected: the FAR never exceeds the target). ``k = 0`` is the FAR = 0 point
  (threshold = the largest impostor similarity); it is reported, with the set's resolution
  ``1 / N_impostor`` beside it (``far_resolution``). ``k = N_impostor`` (FAR = 1) accepts
  everything.
* ROC: one point per distinct score (accept >= score), starting at (0, 0); AUC is the exact area
  under it (ties count one half, the Mann-Whitney statistic); EER is where FPR = FNR on the
  linearly interpolated ROC.
"""
import math

import numpy as np

DEFAULT_FAR = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
METRICS = ("cosine", "euclidean")


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _as_features(x, name):
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (pairs, features), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _check_finite(scores, emb_a, emb_b):
    # NaN/inf in a feature makes its pair's score non-finite; checking the N scores is cheaper
    # than checking the N x D features.
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        which = "emb_a" if not np.isfinite(emb_a[bad[0]]).all() else "emb_b"
        raise ValueError(f"{which} contains NaN or infinite values (pair {bad[0]})")


def l2_normalize(x, axis=-1, eps=1e-12):
    """``x / max(||x||, eps)`` (the guard keeps an all-zero feature at zero instead of NaN)."""
    x = np.asarray(x)
    norm = np.sqrt(np.sum(np.square(x), axis=axis, keepdims=True))
    return x / np.maximum(norm, eps)


def _rowdot(a, b):
    # float64 accumulation whatever the input precision (float32 embeddings are the usual case).
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def pair_scores(emb_a, emb_b, metric="cosine", normalize=True, eps=1e-12):
    """Score of each pair (row i of ``emb_a`` with row i of ``emb_b``) in the metric's own units:
    cosine similarity, or squared Euclidean distance (on L2-normalised features unless
    ``normalize=False``). ``normalize`` has no effect on the cosine, which is scale-free.
    Computed in float64 from row dot products, without materialising normalised copies."""
    _check_metric(metric)
    a = _as_features(emb_a, "emb_a")
    b = _as_features(emb_b, "emb_b")
    if a.shape != b.shape:
        raise ValueError(f"emb_a and emb_b must have the same shape, got {a.shape} and {b.shape}")
    if metric == "euclidean" and not normalize:
        diff = a.astype(np.float64) - b
        out = np.einsum("ij,ij->i", diff, diff)
        _check_finite(out, a, b)
        return out
    ab = _rowdot(a, b)
    aa = _rowdot(a, a)
    bb = _rowdot(b, b)
    with np.errstate(invalid="ignore", over="ignore"):
        na = np.maximum(np.sqrt(aa), eps)
        nb = np.maximum(np.sqrt(bb), eps)
        cos = ab / (na * nb)
        _check_finite(cos, a, b)
    if metric == "cosine":
        return cos
    # ||a/|a| - b/|b|||^2 expanded; the squared norms are 1 except for all-zero features.
    return np.maximum(aa / (na * na) + bb / (nb * nb) - 2.0 * cos, 0.0)


def _as_issame(issame, n):
    issame = np.asarray(issame)
    if issame.ndim != 1 or issame.shape[0] != n:
        raise ValueError(f"issame must be a 1-D array of {n} booleans, got shape {issame.shape}")
    if issame.dtype != bool:
        if not np.all(np.isin(issame, (0, 1))):
            raise ValueError("issame must hold booleans (or 0/1)")
        issame = issame.astype(bool)
    return issame


def fold_slices(n, folds):
    """The contiguous folds of ``n`` pairs: ``np.array_split`` sizes (sklearn ``KFold`` without
    shuffling, as insightface and facenet use), as a list of ``slice`` objects."""
    if not isinstance(folds, (int, np.integer)) or folds < 2 or folds > n:
        raise ValueError(f"folds must be an integer in [2, number of pairs={n}], got {folds!r}")
    sizes = np.full(folds, n // folds)
    sizes[: n % folds] += 1
    ends = np.cumsum(sizes)
    return [slice(int(e - s), int(e)) for s, e in zip(sizes, ends)]


def _kfold_accuracy(sim, issame, folds):
    """k-fold protocol on similarities (higher = same). Returns (test accuracies, thresholds).

    One descending sort of all scores serves every fold: for fold f, cumulative counts of its
    *training* genuine/impostor pairs along that order give, at the last position of each group
    of equal scores, the training accuracy of accepting everything >= that score. Memory is a
    few arrays of the number of pairs, whatever the number of folds."""
    n = sim.shape[0]
    if isinstance(folds, np.ndarray):
        # Explicit fold of every pair (e.g. the split column of YTF's splits.txt).
        fold_of = folds
        folds = int(fold_of.max()) + 1
    else:
        fold_of = np.empty(n, dtype=np.int64)
        for f, s in enumerate(fold_slices(n, folds)):
            fold_of[s] = f
    order = np.argsort(-sim, kind="stable")
    s_sorted = sim[order]
    g_sorted = issame[order]
    f_sorted = fold_of[order]
    new_group = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
    group_end = np.r_[new_group[1:], True]
    group_id = np.cumsum(new_group) - 1
    n_groups = int(group_id[-1]) + 1
    accuracies = np.empty(folds)
    thresholds = np.empty(folds)
    for f in range(folds):
        train = f_sorted != f
        tp = np.cumsum(train & g_sorted)
        fp = np.cumsum(train & ~g_sorted)
        correct = tp + (fp[-1] - fp)
        # Candidates: ends of groups of equal scores holding at least one training pair (a score
        # seen only in the test fold is not a candidate).
        has_train = np.bincount(group_id, weights=train, minlength=n_groups) > 0
        candidate = group_end & has_train[group_id]
        # argmax returns the first maximum: the largest similarity among equally accurate ones.
        best = int(np.argmax(np.where(candidate, correct, -1)))
        thresholds[f] = s_sorted[best]
        test = fold_of == f
        accuracies[f] = np.mean((sim[test] >= thresholds[f]) == issame[test])
    return accuracies, thresholds


def roc_curve(sim, issame):
    """ROC over every distinct similarity (accept ``>=``): ``(fpr, tpr, thresholds)``, starting at
    (0, 0) with threshold ``+inf``; ``thresholds`` are similarities, in decreasing order."""
    order = np.argsort(-sim, kind="stable")
    s_sorted = sim[order]
    g_sorted = issame[order]
    tp = np.cumsum(g_sorted)
    fp = np.cumsum(~g_sorted)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    n_gen = tp[-1]
    n_imp = fp[-1]
    tpr = np.r_[0.0, tp[last] / n_gen]
    fpr = np.r_[0.0, fp[last] / n_imp]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thresholds


def _auc(fpr, tpr):
    # Trapezoids over the tie-grouped ROC = P(s_gen > s_imp) + 0.5 P(s_gen = s_imp).
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _eer(fpr, tpr):
    """FPR where FPR = FNR on the piecewise-linear ROC (the segment where FPR - FNR changes sign;
    linear interpolation along it)."""
    fnr = 1.0 - tpr
    d = fpr - fnr  # increases from -1 to 1 along the curve
    i = int(np.argmax(d >= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i])
    d0, d1 = d[i - 1], d[i]
    w = -d0 / (d1 - d0)
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def far_k(far, n_imp):
    """``k = floor(far * n_imp)``: how many impostors a FAR of ``far`` allows on ``n_imp``.
    ``far`` must lie in (0, 1]."""
    f = float(far)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"far values must lie in (0, 1], got {far!r}")
    # The small relative slack keeps e.g. floor(0.001 * 3000) at 3 despite 0.001*3000=2.9999..
    return min(int(math.floor(f * n_imp * (1 + 1e-12))), int(n_imp))


def threshold_at_k(imp_desc, k):
    """The TAR@FAR threshold s_k of impostor similarities sorted in decreasing order: accept
    strictly greater. ``k = len(imp_desc)`` (FAR = 1) accepts everything: ``-inf``."""
    return float(imp_desc[k]) if k < imp_desc.shape[0] else float("-inf")


def tar_at_far(sim, issame, far=DEFAULT_FAR):
    """``{far: (tar, threshold, k)}`` on similarities (higher = same).

    The largest accepted set whose false accept rate is at most ``far``: impostor similarities
    sorted in decreasing order s_0 >= s_1 >= ..., ``k = floor(far * N_impostor)``, threshold
    s_k, a pair accepted when its similarity is strictly greater (ties at s_k are rejected, so at
    most k impostors are accepted). ``k = 0`` is the FAR = 0 point (threshold = the largest
    impostor similarity; its resolution is ``1 / N_impostor``); ``k = N_impostor`` accepts
    every pair (threshold ``-inf``)."""
    sim = np.asarray(sim, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    imp = np.sort(sim[~issame])[::-1]
    gen = np.sort(sim[issame])
    n_imp = imp.shape[0]
    if n_imp == 0 or gen.shape[0] == 0:
        raise ValueError(f"tar_at_far needs genuine and impostor scores, got {gen.shape[0]} "
                         f"genuine and {n_imp} impostor")
    out = {}
    for f in far:
        k = far_k(f, n_imp)
        thr = threshold_at_k(imp, k)
        accepted = gen.shape[0] - np.searchsorted(gen, thr, side="right")
        out[float(f)] = (float(accepted / gen.shape[0]), thr, k)
    return out


def verify_scores(scores, issame, metric="cosine", folds=10, far=DEFAULT_FAR):
    """The verification protocols on precomputed pair scores in ``metric``'s units (cosine
    similarity, or a distance for ``"euclidean"``). See :func:`verify` for the result."""
    _check_metric(metric)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (one per pair), got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    issame = _as_issame(issame, scores.shape[0])
    n_gen = int(issame.sum())
    n_imp = int(issame.shape[0] - n_gen)
    if n_gen == 0 or n_imp == 0:
        raise ValueError(
            f"issame needs at least one matched and one mismatched pair, got {n_gen} matched "
            f"and {n_imp} mismatched")
    # One code path on similarities; distances are negated and converted back on output.
    sign = 1.0 if metric == "cosine" else -1.0
    sim = sign * scores

    result = {"metric": metric, "num_pairs": int(scores.shape[0]), "num_genuine": n_gen,
              "num_impostor": n_imp}
    if folds is not None and not isinstance(folds, (int, np.integer)):
        folds = np.asarray(folds)
        if folds.shape != scores.shape or not np.issubdtype(folds.dtype, np.integer):
            raise ValueError(f"folds must be a number of contiguous folds or one integer fold id "
                             f"per pair ({scores.shape[0]}), got shape {folds.shape} dtype "
                             f"{folds.dtype}")
        ids, folds = np.unique(folds, return_inverse=True)
        folds = folds.ravel()
        if ids.shape[0] < 2:
            raise ValueError(f"folds names only {ids.shape[0]} fold; at least 2 are needed")
        acc, thr = _kfold_accuracy(sim, issame, folds)
        n_folds = int(ids.shape[0])
    elif folds:
        acc, thr = _kfold_accuracy(sim, issame, folds)
        n_folds = int(folds)
    else:
        acc = None
    if acc is not None:
        result.update(
            accuracy=float(acc.mean()),
            accuracy_std=float(acc.std()),
            fold_accuracies=acc.tolist(),
            thresholds=(sign * thr).tolist(),
            threshold=float(sign * thr.mean()),
            folds=n_folds,
        )
    fpr, tpr, roc_thr = roc_curve(sim, issame)
    result["auc"] = _auc(fpr, tpr)
    result["eer"] = _eer(fpr, tpr)
    result["roc"] = (fpr, tpr, sign * roc_thr)
    tars = tar_at_far(sim, issame, far)
    result["tar_at_far"] = {f: v[0] for f, v in tars.items()}
    result["far_thresholds"] = {f: float(sign * v[1]) for f, v in tars.items()}
    result["far_k"] = {f: v[2] for f, v in tars.items()}
    result["far_resolution"] = 1.0 / n_imp
    return result


def verify(emb_a, emb_b, issame, metric="cosine", folds=10, far=DEFAULT_FAR, normalize=True):
    """Verification of pairs ``(emb_a[i], emb_b[i])`` with ground truth ``issame[i]``.

    Returns a dict with ``accuracy`` (mean over the folds), ``accuracy_std`` (population std, as
    insightface/facenet report), ``fold_accuracies``, ``thresholds`` (per fold, in the metric's
    units), ``threshold`` (their mean), ``tar_at_far`` ``{far: tar}`` (``far <
    1/N_impostor`` gives the FAR = 0 point), ``far_thresholds``, ``far_k``, ``far_resolution``
    (``1 / N_impostor``), ``auc``, ``eer``, ``roc``
    ``(fpr, tpr, thresholds)`` and the pair counts. ``folds`` is a number of contiguous folds,
    or an integer array giving each pair's fold (e.g. YTF's split column; folds in sorted id
    order); ``folds=0`` (or None) skips the k-fold part.
    """
    scores = pair_scores(emb_a, emb_b, metric=metric, normalize=normalize)
    return verify_scores(scores, issame, metric=metric, folds=folds, far=far)
