"""enrol -> search through the command line on synthetic identity folders (already aligned
crops, so no detector): the top-k identities and scores against a numpy brute force over the
model's own embeddings, the threshold decision and "unknown", search from an embeddings file,
and the refusals (another model, an existing index, no threshold)."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from tfface import cli


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    from tfface.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, num_identities=8, num_test_identities=0, image_size=112, min_images=3,
                       max_images=4, folds=0, seed=5)
    out = root / "lists"
    assert cli.main(["pairs", str(root / "train"), "--split", str(out), "--unknown-fraction", "0.25",
                     "--gallery-per-identity", "2", "--seed", "0"]) == 0
    return root, out


def _read(path):
    return [line.split("\t") for line in path.read_text().splitlines()]


def _embed(model, paths):
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]).astype(np.float32)
    return unit(np.asarray(model(images, training=False)))


@pytest.fixture(scope="module")
def enrolled(lists, tiny_model_path, tmp_path_factory):
    root, out = lists
    index = tmp_path_factory.mktemp("idx") / "index"
    assert cli.main(["enrol", str(out / "gallery.txt"), "--model", tiny_model_path, "--index", str(index),
                     "--aligned", "--quiet"]) == 0
    return index


def test_search_matches_a_numpy_brute_force(lists, enrolled, tiny_model, tmp_path, capsys):
    root, out = lists
    gallery = _read(out / "gallery.txt")
    probes = _read(out / "probes.txt")
    names = sorted({n for _, n in gallery})
    g_emb = _embed(tiny_model, [os.path.join(out, p) for p, _ in gallery])
    templates = unit(np.stack([g_emb[[n == name for _, n in gallery]].mean(0) for name in names]))
    p_paths = [os.path.normpath(os.path.join(out, p)) for p, _, _ in probes]
    ref = _embed(tiny_model, p_paths) @ templates.T
    top1 = np.sort(ref.max(1))
    threshold = float((top1[len(top1) // 2] + top1[len(top1) // 2 - 1]) / 2)  # half the probes above
    results = tmp_path / "results.json"
    capsys.readouterr()
    assert cli.main(["search", *p_paths, "--index", str(enrolled), "--aligned", "--top-k", "3",
                     "--threshold", str(threshold), "--out", str(results), "--quiet"]) == 0
    printed = capsys.readouterr().out
    got = json.loads(results.read_text())
    assert got["search"] == "exact" and len(got["results"]) == len(p_paths)
    decisions = set()
    for r in got["results"]:
        q = p_paths.index(r["file"])
        order = np.argsort(-ref[q])[:3]
        # same identities in the same order, unless two scores tie to float32 precision
        assert [t["identity"] for t in r["top"]] == [names[j] for j in order] or \
            np.min(np.abs(np.diff(ref[q][order]))) < 1e-5
        np.testing.assert_allclose([t["score"] for t in r["top"]], ref[q][order], atol=1e-5)
        expected = names[order[0]] if ref[q][order[0]] >= threshold else "unknown"
        assert r["decision"] == expected
        decisions.add(r["decision"] == "unknown")
        assert f"-> {expected}:" in printed
    assert decisions == {True, False}


def test_search_from_an_embeddings_file_and_without_threshold(lists, enrolled, tiny_model_path, tmp_path, capsys):
    root, out = lists
    probes = [os.path.join(out, p) for p, _, _ in _read(out / "probes.txt")][:3]
    emb = tmp_path / "probes.npz"
    assert cli.main(["embed", *probes, "--model", tiny_model_path, "--out", str(emb), "--aligned", "--quiet"]) == 0
    capsys.readouterr()
    res = tmp_path / "r.json"
    assert cli.main(["search", "--embeddings", str(emb), "--index", str(enrolled), "--out", str(res)]) == 0
    printed = capsys.readouterr().out
    assert "scores only" in printed
    got = json.loads(res.read_text())
    assert [r["file"] for r in got["results"]] == probes
    assert all(r["decision"] is None for r in got["results"])


def test_refusals(lists, enrolled, tmp_path, capsys):
    import keras

    from tfface import backbones

    root, out = lists
    keras.utils.set_random_seed(11)
    other = str(tmp_path / "other.keras")
    backbones.get("tiny", input_shape=(112, 112, 3), embedding_size=16).save(other)
    probe = os.path.join(out, _read(out / "probes.txt")[0][0])
    capsys.readouterr()
    assert cli.main(["search", probe, "--index", str(enrolled), "--model", other, "--aligned"]) == 2
    assert "not the model this index was enrolled with" in capsys.readouterr().err
    assert cli.main(["enrol", str(out / "gallery.txt"), "--model", other, "--index", str(enrolled), "--aligned"]) == 3
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["search", probe, "--index", str(tmp_path / "nowhere")]) == 2
    assert "tfface enrol" in capsys.readouterr().err


def test_faiss_index_through_the_commands(lists, tiny_model_path, tmp_path, capsys):
    pytest.importorskip("faiss")
    root, out = lists
    index = tmp_path / "faiss-index"
    assert cli.main(["enrol", str(out / "gallery.txt"), "--model", tiny_model_path, "--index", str(index),
                     "--aligned", "--faiss", "ivf", "--nlist", "2", "--nprobe", "2", "--quiet"]) == 0
    assert "recall@1 vs exact 1.000" in capsys.readouterr().out  # every cell visited: exhaustive
    probes = [os.path.join(out, p) for p, _, _ in _read(out / "probes.txt")]
    results = {}
    for mode in ("--faiss", "--exact"):
        res = tmp_path / f"{mode[2:]}.json"
        assert cli.main(["search", *probes, "--index", str(index), "--aligned", mode, "--out", str(res),
                         "--top-k", "2"]) == 0
        results[mode] = json.loads(res.read_text())
    assert results["--faiss"]["search"] == "faiss" and results["--exact"]["search"] == "exact"
    for a, b in zip(results["--faiss"]["results"], results["--exact"]["results"]):
        assert [t["identity"] for t in a["top"]] == [t["identity"] for t in b["top"]]
        np.testing.assert_allclose([t["score"] for t in a["top"]], [t["score"] for t in b["top"]], atol=1e-5)
