"""``tfface eval`` end to end on a tiny model and an LFW-layout folder written by the test."""
import json
import os
import pickle
import re
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
from PIL import Image

from tfface import cli as tfface_cli
from tfface.eval.verification import verify

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _minimal_read_pairs(pairs_txt, root, ext="jpg"):
    """Test-only LFW pairs.txt parser, used while tfface.data.readers is not available."""
    lines = [ln.split() for ln in open(pairs_txt).read().splitlines()[1:] if ln.strip()]
    paths, issame = [], []
    for f in lines:
        if len(f) == 3:
            a, b = (f[0], int(f[1])), (f[0], int(f[2]))
        else:
            a, b = (f[0], int(f[1])), (f[2], int(f[3]))
        paths += [os.path.join(root, n, f"{n}_{i:04d}.{ext}") for n, i in (a, b)]
        issame.append(len(f) == 3)
    return paths, np.array(issame)


def tfface_eval(argv):
    """``tfface eval ARGV`` through the console script's dispatcher (``tfface.commands.eval``)."""
    return tfface_cli.main(["eval", *argv])


@pytest.fixture
def readers(monkeypatch):
    try:
        import tfface.data.readers  # noqa: F401
    except ModuleNotFoundError:
        fake = types.ModuleType("tfface.data.readers")
        fake.read_pairs = _minimal_read_pairs
        monkeypatch.setitem(sys.modules, "tfface.data.readers", fake)


def test_cli_writes_table_json_png(tmp_path, readers, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "lfw"
    names = [f"person{i}" for i in range(6)]
    images = {}
    for n in names:
        (root / n).mkdir(parents=True)
        for j in (1, 2):
            img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / n / f"{n}_{j:04d}.png")
            images[(n, j)] = img
    matched = [(n, 1, 2) for n in names]
    mismatched = [(names[i], 1, names[(i + 1) % 6], 2) for i in range(6)]
    lines = ["2\t3"]
    for fold in range(2):
        lines += ["\t".join(map(str, m)) for m in matched[3 * fold:3 * fold + 3]]
        lines += ["\t".join(map(str, m)) for m in mismatched[3 * fold:3 * fold + 3]]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(inp)))
    model_path = str(tmp_path / "m.keras")
    model.save(model_path)
    feats = tmp_path / "distractors.npy"
    np.save(feats, rng.normal(size=(30, 4)).astype(np.float32))

    out = tmp_path / "report"
    rc = tfface_eval(["--model", model_path, "--pairs", str(root / "pairs.txt"), "--root", str(root),
                   "--ext", "png", "--folds", "2", "--far", "0.5", "0.1", "--out", str(out),
                   "--probes", str(root), "--distractors", str(feats), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "lfw" in printed and "rank-1" in printed
    data = json.load(open(out / "eval.json"))
    # Independent path: embed the pairs with the model, then the protocol.
    order = []
    for fold in range(2):
        order += [((n, a), (n, b)) for n, a, b in matched[3 * fold:3 * fold + 3]]
        order += [((n1, a), (n2, b)) for n1, a, n2, b in mismatched[3 * fold:3 * fold + 3]]
    ea = model(np.stack([images[a] for a, _ in order]).astype(np.float32)).numpy()
    eb = model(np.stack([images[b] for _, b in order]).astype(np.float32)).numpy()
    ref = verify(ea, eb, [True] * 3 + [False] * 3 + [True] * 3 + [False] * 3, folds=2,
                 far=(0.5, 0.1))
    assert data["lfw"]["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-6)
    assert data["lfw"]["tar_at_far"]["0.5"] == pytest.approx(ref["tar_at_far"][0.5])
    ident = data["identification"]
    assert ident["protocol"] == "megaface" and ident["num_queries"] == 12
    assert ident["num_distractors"] == 30
    assert open(out / "roc.png", "rb").read(4) == b"\x89PNG"

    # The same pairs as an insightface .bin (encoded PNGs, pair i = images 2i, 2i+1).
    bins = []
    for a, b in order:
        bins += [(root / a[0] / f"{a[0]}_{a[1]:04d}.png").read_bytes(),
                 (root / b[0] / f"{b[0]}_{b[1]:04d}.png").read_bytes()]
    bin_path = tmp_path / "toy.bin"
    with open(bin_path, "wb") as fh:
        pickle.dump((bins, [True] * 3 + [False] * 3 + [True] * 3 + [False] * 3), fh)
    assert tfface_eval(["--model", model_path, "--bin", str(bin_path), "--folds", "2", "--far",
                     "0.5", "--out", str(tmp_path / "bin_report"), "--no-progress"]) == 0
    data = json.load(open(tmp_path / "bin_report" / "eval.json"))
    assert data["toy"]["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-6)

    # Registered protocols: lfw (its own 2 folds from pairs.txt) and the same pairs as lfw.bin
    # (2 contiguous folds), one model, embeddings cached on disk.
    (tmp_path / "bins").mkdir()
    (tmp_path / "bins" / "lfw.bin").write_bytes(bin_path.read_bytes())
    out = tmp_path / "proto_report"
    cache = tmp_path / "cache"
    argv = ["--model", model_path, "--protocol", "lfw", "--data", str(root),
            "--protocol", "lfw_bin", "--data", str(tmp_path / "bins"),
            "--set-option", "lfw.ext=png", "--set-option", "lfw_bin.folds=2",
            "--far", "0.5", "0.01", "--cache", str(cache), "--out", str(out), "--no-progress"]
    assert tfface_eval(argv) == 0
    printed = capsys.readouterr().out
    assert "lfw_bin" in printed and "*" in printed  # 0.01 < 1/6: the FAR = 0 point, starred
    data = json.load(open(out / "eval.json"))
    assert set(data) == {"lfw", "lfw_bin"}
    for name in data:
        assert data[name]["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-6)
        assert data[name]["tar_at_far"]["0.5"] == pytest.approx(ref["tar_at_far"][0.5])
        assert data[name]["tar_at_far"]["0.01"] is not None
        assert data[name]["far_resolution"] == pytest.approx(1 / 6)
    assert len(list(cache.iterdir())) == 2  # one pass per image set
    assert open(out / "det.png", "rb").read(4) == b"\x89PNG"
    assert json.load(open(out / "run.json"))["protocols"][0]["options"] == {"ext": "png"}
    assert tfface_eval(argv) == 0  # from the cache
    assert json.load(open(out / "eval.json")) == data
    capsys.readouterr()
    assert tfface_eval(["--model", model_path, "--protocol", "nope", "--data", str(root)]) == 2
    assert re.search("known:.*lfw", capsys.readouterr().err)
    assert tfface_eval(["--model", model_path, "--protocol", "lfw"]) == 2


def test_cli_dispatch_and_usage_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "tfface.cli", "eval", "--help"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--pairs" in proc.stdout and "--distractors" in proc.stdout
    assert tfface_eval(["--model", str(tmp_path / "none.keras")]) == 2
    assert tfface_eval(["--model", str(tmp_path / "none.keras"), "--bin", "x.bin"]) == 2
    assert tfface_eval(["--model", "m.keras", "--probes", str(tmp_path)]) == 2  # no gallery/distr.
    assert tfface_eval(["--model", "m.keras", "--pairs", "pairs.txt"]) == 2  # no --root
