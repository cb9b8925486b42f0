"""The ``lfw`` protocol on an LFW layout written by the test (``pairs.txt`` + ``lfw/<name>/``),
with a fake ``embed``, against a transcription of LFW's View-2 protocol (10 folds = the 10
blocks of pairs.txt; each fold's threshold maximises accuracy on the other nine, here over every
distinct training similarity with the strictest of equals; accept similarity >= threshold) and
of the issue's TAR@FAR definition; and the runner (``evaluate_protocol``)."""
import math

import numpy as np
import pytest

from tfface import registry
from tfface.eval.protocols import evaluate_protocol


def write_lfw(tmp_path, rng, folds=10, per_kind=3, sub="lfw"):
    data = tmp_path / "lfw_data"
    root = data / sub if sub else data
    n_people = 2 * folds * per_kind
    names = [f"Person_{i:03d}" for i in range(n_people)]
    for n in names:
        (root / n).mkdir(parents=True)
        for j in (1, 2):
            (root / n / f"{n}_{j:04d}.jpg").write_bytes(b"jpeg")
    lines = [f"{folds}\t{per_kind}"]
    pairs = []
    it = iter(names)
    for _ in range(folds):
        for _ in range(per_kind):
            n = next(it)
            lines.append(f"{n}\t1\t2")
            pairs.append(((n, 1), (n, 2), True))
        for _ in range(per_kind):
            a, b = next(it), names[int(rng.integers(0, n_people))]
            lines.append(f"{a}\t1\t{b}\t2")
            pairs.append(((a, 1), (b, 2), False))
    (data / "pairs.txt").write_text("\n".join(lines) + "\n")
    # Quantised features: ties in the similarities.
    feats = {}
    for n in names:
        base = rng.normal(size=4)
        feats[str(root / n / f"{n}_0001.jpg")] = np.round(base + 0.7 * rng.normal(size=4))
        feats[str(root / n / f"{n}_0002.jpg")] = np.round(base + 0.7 * rng.normal(size=4))
    for k, v in feats.items():
        if not v.any():
            v[0] = 1.0
    return data, root, pairs, feats


def fake_embed(feats):
    calls = []

    def embed(images, key):
        calls.append((key, len(images)))
        return np.stack([feats[str(p)] for p in images]).astype(np.float32)

    return embed, calls


def reference(pairs, root, feats, folds=10, fars=(0.1, 0.01)):
    def f(name, j):
        return feats[str(root / name / f"{name}_{j:04d}.jpg")].astype(np.float32).astype(float)

    # cos = a.b / (|a| |b|), written so that equal angles give bit-equal scores (the ties).
    sim = np.array([(f(*a) @ f(*b)) / (np.sqrt(f(*a) @ f(*a)) * np.sqrt(f(*b) @ f(*b)))
                    for a, b, _ in pairs])
    issame = np.array([s for _, _, s in pairs])
    block = len(pairs) // folds
    accs = []
    for k in range(folds):
        test = np.zeros(len(pairs), bool)
        test[k * block:(k + 1) * block] = True
        best, best_t = -1, None
        for t in sorted(set(sim[~test].tolist())):
            acc = np.mean((sim[~test] >= t) == issame[~test])
            if acc >= best:
                best, best_t = acc, t
        accs.append(np.mean((sim[test] >= best_t) == issame[test]))
    imp = sim[~issame]
    tars = {}
    for far in fars:
        allowed = math.floor(far * len(imp) + 1e-9)
        t = min(t for t in [-np.inf, *imp] if np.sum(imp > t) <= allowed)
        tars[far] = np.mean(sim[issame] > t)
    return np.mean(accs), np.std(accs), tars


@pytest.mark.parametrize("sub", ["lfw", "lfw-deepfunneled", ""])
def test_lfw_protocol_matches_view2_transcription(tmp_path, sub):
    rng = np.random.default_rng(len(sub))
    data, root, pairs, feats = write_lfw(tmp_path, rng, sub=sub)
    embed, calls = fake_embed(feats)
    proto = registry.build("protocol", registry.Component("lfw", {"far": [0.1, 0.01]}),
                           data=str(data))
    res = proto.evaluate(embed)
    acc, std, tars = reference(pairs, root, feats)
    assert res["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert res["accuracy_std"] == pytest.approx(std, abs=1e-12)
    assert res["tar_at_far"] == pytest.approx(tars)
    assert res["far_resolution"] == pytest.approx(1 / 30)
    assert res["folds"] == 10 and res["num_pairs"] == 60
    assert calls == [("lfw/images", 120)]
    for key in ("auc", "eer", "threshold", "roc"):
        assert key in res


def test_runner_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    data, root, pairs, feats = write_lfw(tmp_path, rng)
    embed, _ = fake_embed(feats)
    res = evaluate_protocol("lfw", str(data / "pairs.txt"), None, embed=embed, far=[0.1])
    assert res["accuracy"] == pytest.approx(reference(pairs, root, feats)[0])
    lines = []
    evaluate_protocol("lfw", str(data), None, embed=embed, progress=lines.append)
    assert any("lfw" in line for line in lines)
    with pytest.raises(registry.RegistryError, match="known: .*lfw.*agedb_30"):
        evaluate_protocol("nope", str(data), None, embed=embed)
    with pytest.raises(registry.RegistryError, match="no argument 'bogus'"):
        evaluate_protocol("lfw", str(data), None, embed=embed, bogus=1)
    with pytest.raises(FileNotFoundError, match="pairs.txt"):
        evaluate_protocol("lfw", str(tmp_path), None, embed=embed)


def test_protocols_package_imports_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys, tfface.eval.protocols as p; from tfface import registry; "
            "n = registry.names('protocol'); print('tensorflow' in sys.modules, "
            "{'lfw', 'lfw_bin', 'agedb_30', 'vgg2_fp'} <= set(n))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr
