"""The embedded synthetic data set: layout, determinism, long tail, LFW pairs.txt layout.

pairs.txt is read here by an independent parser written from LFW's README (View 2): a header
``folds<TAB>n``, then per fold n matched lines ``name n1 n2`` and n mismatched lines
``name1 n1 name2 n2``, 1-based image numbers, image ``n`` of ``name`` at
``name/name_%04d.jpg``.
"""
import argparse
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from tfface.commands import synth as synth_command
from tfface.data.synthetic import generate_synthetic, long_tail_counts

SMALL = dict(num_identities=10, num_test_identities=8, min_images=2, max_images=12,
             test_images_per_identity=5, folds=4, pairs_per_fold=8)


def _digest(root):
    out = {}
    for base, _, files in os.walk(root):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    info = generate_synthetic(out, seed=3, **SMALL)
    return str(out), info


def parse_lfw_pairs(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    header = lines[0].split("\t")
    assert len(header) == 2, f"header {lines[0]!r} is not 'folds<TAB>pairs'"
    folds, n = int(header[0]), int(header[1])
    body = lines[1:]
    assert len(body) == folds * 2 * n
    result = []
    for k in range(folds):
        block = body[k * 2 * n : (k + 1) * 2 * n]
        matched = [line.split("\t") for line in block[:n]]
        mismatched = [line.split("\t") for line in block[n:]]
        assert all(len(m) == 3 for m in matched), "matched lines must be name<TAB>n1<TAB>n2"
        assert all(len(m) == 4 for m in mismatched), "mismatched lines must be name1<TAB>n1<TAB>name2<TAB>n2"
        result.append(([(m[0], int(m[1]), int(m[2])) for m in matched],
                       [(m[0], int(m[1]), m[2], int(m[3])) for m in mismatched]))
    return folds, n, result


def test_layout_and_info(synth):
    out, info = synth
    train = sorted(os.listdir(os.path.join(out, "train")))
    test = sorted(d for d in os.listdir(os.path.join(out, "test")) if os.path.isdir(os.path.join(out, "test", d)))
    assert len(train) == SMALL["num_identities"] and len(test) == SMALL["num_test_identities"]
    assert not set(train) & set(test), "held-out identities must be disjoint from training identities"
    counts = {}
    for name in train:
        files = sorted(os.listdir(os.path.join(out, "train", name)))
        assert files == [f"{name}_{k:04d}.jpg" for k in range(1, len(files) + 1)]
        counts[name] = len(files)
    for name in test:
        assert len(os.listdir(os.path.join(out, "test", name))) == SMALL["test_images_per_identity"]
    with open(os.path.join(out, "info.json")) as f:
        saved = json.load(f)
    assert saved["seed"] == 3 and saved["image_size"] == 112
    assert saved["train"]["images"] == sum(counts.values())
    assert saved["train"]["identities"] == len(train)
    assert saved["test"]["images"] == len(test) * SMALL["test_images_per_identity"]
    assert min(counts.values()) == SMALL["min_images"] and max(counts.values()) == SMALL["max_images"]
    with Image.open(os.path.join(out, "train", train[0], f"{train[0]}_0001.jpg")) as im:
        assert im.format == "JPEG" and im.size == (112, 112) and im.mode == "RGB"


def test_pairs_follow_lfw_layout(synth):
    out, _ = synth
    train = set(os.listdir(os.path.join(out, "train")))
    folds, n, parsed = parse_lfw_pairs(os.path.join(out, "test", "pairs.txt"))
    assert (folds, n) == (SMALL["folds"], SMALL["pairs_per_fold"])
    all_pairs = set()
    fold_people = []
    for matched, mismatched in parsed:
        people = set()
        for name, a, b in matched:
            assert a != b and name not in train
            people.add(name)
            all_pairs.add(frozenset([(name, a), (name, b)]))
        for n1, a, n2, b in mismatched:
            assert n1 != n2 and n1 not in train and n2 not in train
            people |= {n1, n2}
            all_pairs.add(frozenset([(n1, a), (n2, b)]))
        for name, a, *rest in matched + mismatched:
            refs = [(name, a)] + ([(name, rest[0])] if len(rest) == 1 else [(rest[0], rest[1])])
            for who, k in refs:
                assert k >= 1
                assert os.path.isfile(os.path.join(out, "test", who, f"{who}_{k:04d}.jpg")), (who, k)
        fold_people.append(people)
    assert len(all_pairs) == folds * 2 * n, "a pair is repeated"
    for i in range(folds):
        for j in range(i + 1, folds):
            assert not fold_people[i] & fold_people[j], "LFW folds are identity-disjoint"


def test_same_seed_same_bytes_any_workers(tmp_path):
    kw = dict(num_identities=3, num_test_identities=2, min_images=2, max_images=4,
              test_images_per_identity=3, folds=1, pairs_per_fold=2)
    generate_synthetic(tmp_path / "a", seed=7, workers=1, **kw)
    generate_synthetic(tmp_path / "b", seed=7, workers=2, **kw)
    generate_synthetic(tmp_path / "c", seed=8, workers=1, **kw)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != c.get(k) for k in jpgs), "a different seed must give different images"


def test_identities_differ_and_images_vary(synth):
    out, _ = synth
    # Within an identity images differ (nuisance); the per-identity mean face differs between
    # identities more than the images of one identity spread around their mean at the face centre.
    def load(name):
        folder = os.path.join(out, "train", name)
        return np.stack([np.asarray(Image.open(os.path.join(folder, f)).resize((28, 28)), np.float32)[8:22, 8:22]
                         for f in sorted(os.listdir(folder))])
    names = sorted(os.listdir(os.path.join(out, "train")))
    groups = [load(n) for n in names]
    assert all(np.abs(g[0] - g[1]).mean() > 2.0 for g in groups), "images of an identity must not be copies"
    # Colour statistics of the face centre carry identity: nearest identity mean by colour.
    feats = [g.mean(axis=(1, 2)) for g in groups]
    means = np.stack([f.mean(0) for f in feats])
    correct = total = 0
    for k, f in enumerate(feats):
        d = ((f[:, None, :] - means[None]) ** 2).sum(-1)
        correct += int((d.argmin(1) == k).sum())
        total += len(f)
    assert correct / total > 3.0 / len(names), f"identity barely recoverable from colour: {correct}/{total}"


def test_long_tail_counts():
    counts, exponent = long_tail_counts(1000, 2, 200, seed=0)
    assert counts.min() == 2 and counts.max() == 200 and exponent > 0
    s = np.sort(counts)[::-1]
    # Power law over rank: n(r) ~ max * r^-a (rounded, clipped).
    ranks = np.arange(1, 1001)
    expected = np.clip(np.round(200 * ranks ** (-np.log(100) / np.log(1000))), 2, 200)
    np.testing.assert_array_equal(s, expected)
    # Long tail: the top 10% of identities hold a large share, the median is near the minimum.
    assert s[:100].sum() / s.sum() > 0.3
    assert np.median(s) < 0.1 * 200
    # Shuffled over identities, the same for a seed.
    assert not np.all(np.diff(counts) <= 0)
    np.testing.assert_array_equal(counts, long_tail_counts(1000, 2, 200, seed=0)[0])


def test_bad_requests_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="pairs_per_fold"):
        generate_synthetic(tmp_path / "x", num_identities=2, num_test_identities=4,
                           test_images_per_identity=2, folds=2, pairs_per_fold=5)
    assert not (tmp_path / "x").exists(), "nothing is written when the pairs request is impossible"
    with pytest.raises(ValueError, match="min_images"):
        generate_synthetic(tmp_path / "y", min_images=5, max_images=3)
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_synthetic(tmp_path / "z", num_identities=2, num_test_identities=0)


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_command.add_arguments(parser)
    out = tmp_path / "cli"
    args = parser.parse_args([str(out), "--identities", "3", "--test-identities", "4", "--min-images", "2",
                              "--max-images", "3", "--test-images", "3", "--folds", "2", "--pairs-per-fold", "2",
                              "--size", "160", "--workers", "1", "--seed", "5"])
    assert synth_command.run(args) == 0
    printed = capsys.readouterr().out
    assert "training images of 3 identities" in printed and "160x160" in printed
    with Image.open(out / "train" / "id_00000" / "id_00000_0001.jpg") as im:
        assert im.size == (160, 160)
    assert json.loads((out / "info.json").read_text())["seed"] == 5
    assert synth_command.run(args) == 3, "a second run into the same directory must refuse (output in the way)"


def test_pairs_not_separable_pixel_by_pixel(synth):
    # Raw-pixel cosine similarity with the best threshold chosen on the pairs themselves (an
    # optimistic matcher) must stay far from perfect: pose, background and lighting move pixels.
    out, _ = synth
    _, _, parsed = parse_lfw_pairs(os.path.join(out, "test", "pairs.txt"))

    def vec(name, k):
        img = Image.open(os.path.join(out, "test", name, f"{name}_{k:04d}.jpg")).resize((32, 32))
        v = np.asarray(img, np.float64).ravel()
        v = v - v.mean()
        return v / np.linalg.norm(v)

    scores, same = [], []
    for matched, mismatched in parsed:
        for name, a, b in matched:
            scores.append(vec(name, a) @ vec(name, b))
            same.append(True)
        for n1, a, n2, b in mismatched:
            scores.append(vec(n1, a) @ vec(n2, b))
            same.append(False)
    scores, same = np.array(scores), np.array(same)
    best = max(np.mean((scores >= t) == same) for t in scores)
    assert best < 0.9, f"raw pixels separate the pairs with accuracy {best:.2f}"


def test_pairs_read_by_the_package_reader(synth):
    # The verification reader (tfface.data.read_pairs) accepts the generated file as LFW's.
    from tfface.data import read_pairs

    out, _ = synth
    paths, issame = read_pairs(os.path.join(out, "test", "pairs.txt"), os.path.join(out, "test"))
    n = SMALL["pairs_per_fold"]
    expected = np.tile(np.r_[np.ones(n, bool), np.zeros(n, bool)], SMALL["folds"])
    np.testing.assert_array_equal(issame, expected)
    assert len(paths) == 2 * len(issame) and all(os.path.isfile(p) for p in paths)
