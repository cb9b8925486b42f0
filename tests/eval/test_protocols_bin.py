"""insightface ``.bin`` sets: the writer (plain pickle, no globals), the shared ``evaluate_bin``
helper and the ``lfw_bin``/``agedb_30``/``vgg2_fp`` protocols, checked against a transcription of
insightface's ``recognition/eval/verification.py`` (``calculate_roc``: ``KFold(10,
shuffle=False)``, the threshold maximising training accuracy, accept ``dist < threshold``), with
its 0.01 grid replaced by every distinct training distance nudged up (the exact search tfface
does; the first maximum of an increasing grid is the strictest threshold)."""
import pickle
import pickletools

import numpy as np
import pytest

from tfface import registry
from tfface.data.binwriter import write_bin
from tfface.data.readers import read_bin
from tfface.eval.protocols.binsets import evaluate_bin


def insightface_accuracy(emb, issame, nrof_folds=10):
    """Transcription of insightface's calculate_roc accuracy part (squared L2 on normalised
    embeddings, contiguous KFold, best training threshold, dist < thr)."""
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    dist = np.sum(np.square(emb[0::2] - emb[1::2]), axis=1)
    n = len(issame)
    sizes = np.full(nrof_folds, n // nrof_folds)
    sizes[: n % nrof_folds] += 1
    stops = np.cumsum(sizes)
    accs = []
    for f in range(nrof_folds):
        test = np.zeros(n, bool)
        test[stops[f] - sizes[f]:stops[f]] = True
        train = ~test
        thresholds = np.nextafter(np.unique(dist[train]), np.inf)
        acc_train = [np.mean(np.less(dist[train], t) == issame[train]) for t in thresholds]
        best = thresholds[int(np.argmax(acc_train))]
        accs.append(np.mean(np.less(dist[test], best) == issame[test]))
    return float(np.mean(accs)), float(np.std(accs))


def make_set(n_pairs, seed, dim=8):
    rng = np.random.default_rng(seed)
    ids = rng.normal(size=(n_pairs, dim))
    issame = rng.random(n_pairs) < 0.5
    a = ids + 0.6 * rng.normal(size=ids.shape)
    b = np.where(issame[:, None], ids, rng.normal(size=ids.shape)) + 0.6 * rng.normal(size=ids.shape)
    emb = np.empty((2 * n_pairs, dim))
    emb[0::2], emb[1::2] = a, b
    # Quantised: ties between distances, genuine and impostor.
    emb = np.round(emb, 0)
    emb[np.all(emb == 0, axis=1)] = 1.0
    images = [f"img-{i}".encode() for i in range(2 * n_pairs)]
    return images, issame, emb


def fake_embed(images, emb):
    lookup = {b: e for b, e in zip(images, emb)}
    calls = []

    def embed(batch, key):
        calls.append(key)
        return np.stack([lookup[b] for b in batch]).astype(np.float32)

    return embed, calls


def test_write_bin_is_plain_pickle(tmp_path):
    images = [b"\xff\xd8jpeg0", b"\x89PNG1", b"a", b"b"]
    path = write_bin(tmp_path / "x.bin", images, np.array([True, False]))
    data = path and open(path, "rb").read()
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert not ops & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ",
                      "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"}
    with open(path, "rb") as f:
        bins, flags = pickle.load(f, encoding="bytes")  # insightface's load_bin
    assert bins == images and flags == [True, False]
    assert type(flags[0]) is bool and type(bins) is list and type(flags) is list
    got, issame = read_bin(path)
    assert got == images and issame.tolist() == [True, False]


def test_write_bin_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="expected 4"):
        write_bin(tmp_path / "x.bin", [b"a", b"b"], [True, False])
    with pytest.raises(ValueError, match="image 1"):
        write_bin(tmp_path / "x.bin", [b"a", np.zeros(3)], [True])
    with pytest.raises(ValueError, match=r"issame\[0\]"):
        write_bin(tmp_path / "x.bin", [b"a", b"b"], [2])


@pytest.mark.parametrize("n_pairs", [200, 203])
def test_evaluate_bin_matches_insightface(tmp_path, n_pairs):
    images, issame, emb = make_set(n_pairs, seed=n_pairs)
    path = write_bin(tmp_path / "agedb_30.bin", images, issame)
    embed, calls = fake_embed(images, emb)
    res = evaluate_bin(path, embed, metric="euclidean")
    acc, std = insightface_accuracy(emb, issame)
    assert res["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert res["accuracy_std"] == pytest.approx(std, abs=1e-12)
    assert calls == ["agedb_30/bin"]
    # cosine on normalised features orders pairs exactly as the squared distance does
    cos = evaluate_bin(path, fake_embed(images, emb)[0])
    assert cos["accuracy"] == pytest.approx(acc, abs=1e-12)
    for key in ("tar_at_far", "auc", "eer", "threshold", "far_resolution", "roc"):
        assert key in res


@pytest.mark.parametrize("name", ["lfw_bin", "agedb_30", "vgg2_fp"])
def test_bin_protocols_folder_or_file(tmp_path, name):
    filename = {"lfw_bin": "lfw.bin"}.get(name, name + ".bin")
    images, issame, emb = make_set(60, seed=3)
    path = write_bin(tmp_path / filename, images, issame)
    for data in (tmp_path, path):
        proto = registry.build("protocol", registry.Component(name, {"folds": 10}), data=str(data))
        res = proto.evaluate(fake_embed(images, emb)[0])
        assert res["accuracy"] == pytest.approx(insightface_accuracy(emb, issame)[0])
    with pytest.raises(FileNotFoundError, match=filename):
        registry.build("protocol", name, data=str(tmp_path / "empty"))
