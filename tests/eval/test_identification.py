"""Identification against brute force on galleries small enough to score every pair."""
import itertools
import math

import numpy as np
import pytest

from tfface.eval.identification import identify


def unit_grid_features(rng, n):
    """4-d unit vectors with entries in {0, +-0.5, +-1}: exact float32 dot products -> real ties."""
    halves = np.array(list(itertools.product([-0.5, 0.5], repeat=4)))
    onehot = np.concatenate([np.eye(4), -np.eye(4)])
    pool = np.concatenate([halves, onehot]).astype(np.float32)
    return pool[rng.integers(0, len(pool), n)]


def unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ref_tar(genuine, impostor, far):
    """TAR@FAR by its definition (the largest accepted set whose FAR is at most the target),
    brute force: the loosest threshold among the impostor scores and -inf (accept strictly
    greater) that accepts at most floor(far * N_imp) impostors. k = 0 is the FAR = 0 point."""
    imp = np.sort(np.asarray(impostor, np.float32))
    gen = np.asarray(genuine, np.float32)
    out = {}
    for f in far:
        allowed = int(math.floor(f * len(imp) + 1e-9))
        ok = [t for t in np.r_[-np.inf, np.unique(imp)] if np.sum(imp > t) <= allowed]
        out[f] = float(np.mean(gen > min(ok)))
    return out


def ref_megaface(probes, labels, distractors, kmax, far):
    p, d = unit(probes), unit(distractors)
    ranks, genuine = [], []
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j and labels[i] == labels[j]:
                s = p[i] @ p[j]
                genuine.append(s)
                ahead = sum(1 for x in d if p[i] @ x >= s - 1e-12)
                ranks.append(min(ahead, kmax) + 1)
    impostor = (p @ d.T).ravel()
    return np.array(ranks), ref_tar(genuine, impostor, far)


def ref_closed(probes, plabels, gallery, glabels, distractors, kmax, far):
    p, g = unit(probes), unit(gallery)
    d = unit(distractors) if distractors is not None else np.zeros((0, p.shape[1]))
    ranks, genuine, impostor = [], [], []
    for i in range(len(p)):
        mate = max(p[i] @ g[j] for j in range(len(g)) if glabels[j] == plabels[i])
        comp = [p[i] @ g[j] for j in range(len(g)) if glabels[j] != plabels[i]]
        comp += [p[i] @ x for x in d]
        genuine += [p[i] @ g[j] for j in range(len(g)) if glabels[j] == plabels[i]]
        impostor += comp
        ranks.append(min(sum(1 for c in comp if c >= mate - 1e-12), kmax) + 1)
    return np.array(ranks), ref_tar(genuine, impostor, far)


def assert_tar_equal(got, want):
    assert set(got) == set(want)
    for f in want:
        if math.isnan(want[f]):
            assert math.isnan(got[f]), f
        else:
            assert got[f] == pytest.approx(want[f]), f


@pytest.mark.parametrize("chunk_size", [7, 100000])
def test_megaface_with_ties_matches_brute_force(chunk_size):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 3)
    probes = unit_grid_features(rng, 15)
    distractors = unit_grid_features(rng, 60)
    far = (0.5, 0.1, 0.01, 1e-4)
    res = identify(probes, labels, distractors=distractors, ranks=(1, 3, 5), far=far,
                   chunk_size=chunk_size)
    ranks, tar = ref_megaface(probes, labels, distractors, 5, far)
    assert res["protocol"] == "megaface"
    np.testing.assert_array_equal(res["query_ranks"], ranks)
    for r in (1, 3, 5):
        assert res["cmc"][r] == pytest.approx(np.mean(ranks <= r))
    assert_tar_equal(res["tar_at_far"], tar)
    assert res["num_queries"] == 5 * 3 * 2 and res["num_impostor"] == 15 * 60


def test_closed_set_random_matches_brute_force_and_chunking():
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(12, 16))
    glabels = np.arange(12) % 9  # some identities have two gallery images
    plabels = rng.integers(0, 9, 40)
    probes = gallery[plabels] + rng.normal(size=(40, 16)) * 1.2
    distractors = rng.normal(size=(300, 16)).astype(np.float32)
    far = (0.1, 0.01, 1e-3, 1e-5)
    ranks, tar = ref_closed(probes, plabels, gallery, glabels, distractors, 10, far)
    results = [
        identify(probes, plabels, gallery, glabels, distractors, ranks=(1, 10), far=far,
                 chunk_size=cs) for cs in (1, 13, 1000)
    ]
    # A generator of uneven chunks, told how many rows to expect.
    gen = (distractors[a:b] for a, b in [(0, 5), (5, 150), (150, 300)])
    results.append(identify(probes, plabels, gallery, glabels, gen, ranks=(1, 10), far=far,
                            chunk_size=64, num_distractors=300))
    for res in results:
        np.testing.assert_array_equal(res["query_ranks"], ranks)
        assert res["rank1"] == pytest.approx(np.mean(ranks == 1))
        assert res["cmc"][10] == pytest.approx(np.mean(ranks <= 10))
        assert_tar_equal(res["tar_at_far"], tar)
        assert res["num_impostor"] == 40 * (300 + 12) - res["num_genuine"]


def test_memmap_and_unsized_generator(tmp_path):
    rng = np.random.default_rng(2)
    probes = rng.normal(size=(20, 8)).astype(np.float32)
    labels = np.repeat(np.arange(10), 2)
    mm = np.lib.format.open_memmap(tmp_path / "d.npy", mode="w+", dtype=np.float32,
                                   shape=(500, 8))
    mm[:] = rng.normal(size=(500, 8))
    mm.flush()
    mm = np.load(tmp_path / "d.npy", mmap_mode="r")
    ref = identify(probes, labels, distractors=np.array(mm), far=(0.01,))
    got = identify(probes, labels, distractors=mm, chunk_size=33, far=(0.01,))
    np.testing.assert_array_equal(got["query_ranks"], ref["query_ranks"])
    assert got["tar_at_far"] == ref["tar_at_far"]
    # An unsized generator with a too-small buffer: the FAR it cannot measure is NaN + warning.
    chunks = (mm[i:i + 50] for i in range(0, 500, 50))
    with pytest.warns(UserWarning, match="far=0.01"):
        small = identify(probes, labels, distractors=chunks, far=(0.01, 1e-3),
                         max_impostor_buffer=20)
    assert math.isnan(small["tar_at_far"][0.01])
    assert small["tar_at_far"][1e-3] == ref_far(probes, labels, np.array(mm), 1e-3)


def ref_far(probes, labels, distractors, far):
    _, tar = ref_megaface(probes, labels, distractors, 1, (far,))
    return pytest.approx(tar[far])


def test_bad_inputs_are_named():
    p = np.ones((4, 3))
    with pytest.raises(ValueError, match="distractors"):
        identify(p, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="no mate"):
        identify(p, [0, 0, 1, 2], gallery=p[:2], gallery_labels=[0, 1])
    with pytest.raises(ValueError, match="shape"):
        identify(p, [0, 0, 1, 1], distractors=np.ones((5, 4)))
    with pytest.raises(ValueError, match="max_impostor_buffer"):
        identify(p, [0, 0, 1, 1], distractors=np.ones((50, 3)), far=(0.5,),
                 max_impostor_buffer=10)
    with pytest.raises(ValueError, match="probe_labels"):
        identify(p, [0, 0, 1], distractors=np.ones((5, 3)))
