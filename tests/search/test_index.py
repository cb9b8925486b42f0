"""The index folder with precomputed embeddings: templates and top-k against numpy, the stored
threshold, "unknown", refusing another model, the lock, overwrite and a failed write, a damaged
index."""
import json
import os

import numpy as np
import pytest

from tfface.files import InputError, LockedError, OutputError, DirLock
from tfface.search import index as idx

MODEL = {"path": "/models/a.keras", "hash": "a" * 64, "input_size": [112, 112],
         "alignment": {"mode": "arcface", "size": [112, 112], "margin": None, "source": "default"},
         "flip": "none", "embedding_size": 8, "thresholds": None}


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def gallery():
    """6 identities (one with no face) of 3 embeddings around a centre each, and probes: one
    near each of identities 0..4, and one far from all."""
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(6, 8)))
    labels = np.repeat(np.arange(6), 3)
    keep = labels != 2  # identity "c" has no usable face
    emb = centres[labels] + 0.2 * rng.normal(size=(18, 8))
    names = ["a", "b", "c", "d", "e", "f"]
    probes = np.concatenate([centres[[0, 1, 3, 4, 5]] + 0.1 * rng.normal(size=(5, 8)), -centres.sum(0, keepdims=True)])
    return emb[keep], labels[keep], names, probes


def _reference(emb, labels, names, probes, k):
    """numpy: per-identity normalised mean of normalised embeddings, cosine, full sort."""
    enrolled = sorted(set(labels.tolist()))
    t = np.stack([_unit(_unit(emb)[labels == c].mean(0, keepdims=True))[0] for c in enrolled])
    scores = _unit(probes) @ t.T
    order = np.argsort(-scores, axis=1)[:, :k]
    return [[(names[enrolled[j]], scores[q, j]) for j in row] for q, row in enumerate(order)]


def test_write_open_search_against_numpy(tmp_path, gallery):
    emb, labels, names, probes = gallery
    out = tmp_path / "index"
    meta = idx.write_index(out, emb, labels, names, MODEL, threshold={"value": 0.6, "source": "test"},
                           files=[f"p{i}.jpg" for i in range(len(labels))], keep_all=True)
    assert meta["identities"] == ["a", "b", "d", "e", "f"]
    assert meta["enrolment"]["identities_without_faces"] == ["c"]
    assert meta["counts"] == [3, 3, 3, 3, 3]
    on_disk = json.loads((out / "index.json").read_text())
    assert on_disk["model"]["hash"] == MODEL["hash"] and on_disk["embedding_size"] == 8
    index = idx.open_index(out)
    scores, ids = index.search(probes, k=3)
    ref = _reference(emb, labels, names, probes, 3)
    for q in range(len(probes)):
        assert [index.names[i] for i in ids[q]] == [n for n, _ in ref[q]]
        np.testing.assert_allclose(scores[q], [s for _, s in ref[q]], atol=1e-5)
    decisions = idx.decide(scores, ids, index.names, index.threshold)
    expected = [r[0][0] if r[0][1] >= 0.6 else idx.UNKNOWN for r in ref]
    assert [d["decision"] for d in decisions] == expected
    assert expected[:5] == ["a", "b", "d", "e", "f"] and expected[5] == idx.UNKNOWN
    members = np.load(out / meta["files"]["members"])
    assert members["files"].tolist()[0] == "p0.jpg" and len(members["labels"]) == len(labels)


def test_another_model_is_refused(tmp_path, gallery):
    emb, labels, names, _ = gallery
    idx.write_index(tmp_path / "i", emb, labels, names, MODEL)
    index = idx.open_index(tmp_path / "i")
    index.check_model(dict(MODEL))
    with pytest.raises(InputError, match="not the model this index was enrolled with"):
        index.check_model(dict(MODEL, hash="b" * 64, path="/models/b.onnx"))
    with pytest.raises(InputError, match="alignment"):
        index.check_model(dict(MODEL, alignment={"mode": "facenet", "size": [160, 160], "margin": 32.0}))
    with pytest.raises(InputError, match="16-d"):
        index.check_model(dict(MODEL, embedding_size=16))
    with pytest.raises(InputError, match="dimensions"):
        index.search(np.ones((1, 16)))


def test_overwrite_lock_and_a_failed_write_keep_the_old_index(tmp_path, gallery, monkeypatch):
    emb, labels, names, probes = gallery
    out = tmp_path / "i"
    first = idx.write_index(out, emb, labels, names, MODEL)
    with pytest.raises(OutputError, match="overwrite"):
        idx.write_index(out, emb, labels, names, MODEL)
    with DirLock.beside(out, "another enrolment"):
        with pytest.raises(LockedError, match="another enrolment"):
            idx.write_index(out, emb, labels, names, MODEL, overwrite=True)

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(idx, "write_json", fail)
    with pytest.raises(OSError):
        idx.write_index(out, emb[:3], labels[:3], names, MODEL, overwrite=True)
    monkeypatch.undo()
    index = idx.open_index(out)
    assert index.meta["build"] == first["build"] and len(index.names) == 5
    assert sorted(os.listdir(tmp_path)) == sorted(["i", ".i.lock"])
    second = idx.write_index(out, emb[:3], labels[:3], names, MODEL, overwrite=True)
    assert idx.open_index(out).names == ["a"] and second["build"] != first["build"]
    assert len(os.listdir(out)) == 2  # index.json and the new templates only


def test_damaged_or_missing_index(tmp_path, gallery):
    emb, labels, names, _ = gallery
    with pytest.raises(InputError, match="does not exist"):
        idx.open_index(tmp_path / "nothing")
    meta = idx.write_index(tmp_path / "i", emb, labels, names, MODEL)
    os.remove(tmp_path / "i" / meta["files"]["templates"])
    with pytest.raises(InputError, match="missing"):
        idx.open_index(tmp_path / "i")
    (tmp_path / "i" / "index.json").write_text(json.dumps({"format": idx.INDEX_FORMAT, "version": 1}))
    with pytest.raises(InputError, match="lacks identities"):
        idx.open_index(tmp_path / "i")
    (tmp_path / "i" / "index.json").write_text("{trunc")
    with pytest.raises(InputError, match="not valid JSON"):
        idx.open_index(tmp_path / "i")
    with pytest.raises(InputError, match="no face was enrolled"):
        idx.write_index(tmp_path / "j", np.zeros((0, 8)), [], names, MODEL)


def test_faiss_index_is_stored_with_its_recall(tmp_path, gallery):
    pytest.importorskip("faiss")
    emb, labels, names, probes = gallery
    meta = idx.write_index(tmp_path / "i", emb, labels, names, MODEL, faiss="flat")
    assert meta["faiss"]["recall_at_1"] == 1.0
    index = idx.open_index(tmp_path / "i")
    s_f, i_f = index.search(probes, k=2)
    s_e, i_e = index.search(probes, k=2, use_faiss=False)
    np.testing.assert_array_equal(i_f, i_e)
    np.testing.assert_allclose(s_f, s_e, atol=1e-5)
