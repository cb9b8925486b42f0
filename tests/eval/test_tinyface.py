"""TinyFace on a small fixture in the published layout, against a transcription of the official
evaluation written here: each probe sorts the gallery (Gallery_Match + Gallery_Distractor, the
distractors with id -100) by distance, the CMC counts the first same-id position and the AP is
the trapezoidal ``compute_AP`` loop of the Market-1501-style script (old/new precision averaged
at each hit, stopping after the last hit). Ties: the transcription sorts non-mates before mates
at equal score, which is tfface's documented rule (the official argsort leaves it unspecified).
"""
import itertools
import os

import numpy as np
import pytest

from tfface import registry
from tfface.eval.identification import identify


def write(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")


def official_ap(good, order):
    """The Market-1501 compute_AP loop over the gallery order."""
    ngood = len(good)
    old_recall, old_precision, ap, hits = 0.0, 1.0, 0.0, 0
    first = None
    for n, idx in enumerate(order):
        if idx in good:
            hits += 1
            first = n + 1 if first is None else first
        recall = hits / ngood
        precision = hits / (n + 1)
        ap += (recall - old_recall) * (old_precision + precision) / 2
        old_recall, old_precision = recall, precision
        if hits == ngood:
            break
    return ap, first


@pytest.fixture
def tinyface(tmp_path):
    rng = np.random.default_rng(5)
    halves = np.array(list(itertools.product([-0.5, 0.5], repeat=4)), np.float32)
    onehot = np.concatenate([np.eye(4), -np.eye(4)]).astype(np.float32)
    pool = np.concatenate([halves, onehot])
    ts = tmp_path / "tinyface" / "Testing_Set"
    feats = {}

    def add(sub, name, vec):
        path = str(ts / sub / name)
        write(path)
        feats[path] = vec * rng.uniform(0.5, 2.0)

    for ident in range(1, 6):
        # one probe on the identity's axis, one anywhere; gallery images on the axis or anywhere
        add("Probe", f"{ident}_1.jpg", onehot[ident - 1])
        add("Probe", f"{ident}_2.jpg", pool[rng.integers(len(pool))])
        for n in range(rng.integers(1, 4)):
            vec = onehot[ident - 1] if n == 0 else pool[rng.integers(len(pool))]
            add("Gallery_Match", f"{ident}_{n + 10}.jpg", vec)
    for n in range(40):
        add("Gallery_Distractor", f"{n}.jpg", pool[rng.integers(len(pool))])

    def embed(images, key):
        return np.stack([feats[os.fspath(p)] for p in images])

    return dict(root=tmp_path, ts=ts, feats=feats, embed=embed)


def reference(fx):
    ts = fx["ts"]

    def items(sub):
        return sorted(p for p in fx["feats"] if os.path.dirname(p) == str(ts / sub))

    label = lambda p: int(os.path.basename(p).split("_")[0])
    probes, match, dis = items("Probe"), items("Gallery_Match"), items("Gallery_Distractor")
    gallery = match + dis
    gl = [label(p) for p in match] + [-100] * len(dis)
    unit = lambda v: v / np.linalg.norm(v)
    aps, firsts = [], []
    for p in probes:
        q = unit(fx["feats"][p])
        dist = [float(np.float32(np.sum((q - unit(fx["feats"][g])) ** 2))) for g in gallery]
        good = {i for i, l in enumerate(gl) if l == label(p)}
        # ascending distance; at equal distance non-mates first
        order = sorted(range(len(gallery)), key=lambda i: (round(dist[i], 6), i in good))
        ap, first = official_ap(good, order)
        aps.append(ap)
        firsts.append(first)
    firsts = np.array(firsts)
    out = {f"rank{r}": float(np.mean(firsts <= r)) for r in (1, 5, 10, 20)}
    out["map"] = float(np.mean(aps))
    return out, probes, match, dis


def test_tinyface_matches_official_transcription(tinyface):
    res = registry.build("protocol", "tinyface", data=str(tinyface["root"])).evaluate(tinyface["embed"])
    want = reference(tinyface)[0]
    for key in ("rank1", "rank5", "rank10", "rank20", "map"):
        assert res[key] == pytest.approx(want[key], abs=1e-9), key
    assert res["num_probes"] == 10 and res["num_distractors"] == 40


def test_tinyface_ranks_agree_with_identify_closed(tinyface):
    _, probes, match, dis = reference(tinyface)
    f = tinyface["feats"]
    label = lambda p: int(os.path.basename(p).split("_")[0])
    r = identify(np.stack([f[p] for p in probes]), [label(p) for p in probes],
                 gallery=np.stack([f[p] for p in match]), gallery_labels=[label(p) for p in match],
                 distractors=np.stack([f[p] for p in dis]), ranks=(1, 5, 10, 20), far=())
    res = registry.build("protocol", "tinyface", data=str(tinyface["ts"].parent)).evaluate(tinyface["embed"])
    for rank in (1, 5, 10, 20):
        assert res[f"rank{rank}"] == pytest.approx(r["cmc"][rank])


def test_tinyface_ties_count_against_the_probe():
    from tfface.eval.protocols.tinyface import average_precision, mate_positions

    probes = np.array([[1.0, 0.0]])
    gallery = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    pos = mate_positions(probes, [7], gallery, [7, -100, 7, -100])
    # mate 0 ties with two distractors (score 1): they come first; mate 2 is last
    assert pos[0].tolist() == [3, 4]
    ap, _ = official_ap({2, 3}, [0, 1, 2, 3])
    assert average_precision(pos[0]) == pytest.approx(ap)


def test_tinyface_layout_errors(tmp_path, tinyface):
    with pytest.raises(FileNotFoundError, match="Testing_Set"):
        registry.build("protocol", "tinyface", data=str(tmp_path / "nowhere")).evaluate(tinyface["embed"])
    write(str(tinyface["ts"] / "Probe" / "bad-name.jpg"))
    with pytest.raises(ValueError, match="bad-name.jpg.*<id>_<n>"):
        registry.build("protocol", "tinyface", data=str(tinyface["root"])).evaluate(tinyface["embed"])


def test_tinyface_mat_labels(tinyface):
    scipy_io = pytest.importorskip("scipy.io")
    ts = tinyface["ts"]
    for kind, sub in (("probe", "Probe"), ("gallery", "Gallery_Match")):
        names = sorted(os.listdir(ts / sub))
        cells = np.empty((len(names), 1), dtype=object)
        for i, n in enumerate(names):
            cells[i, 0] = n
        ids = np.array([[int(n.split("_")[0])] for n in names], dtype=np.float64)
        scipy_io.savemat(str(ts / f"{kind}{'_match' if kind == 'gallery' else ''}_img_ID_pairs.mat"),
                         {f"{kind}_set": cells, f"{kind}_ids": ids})
    a = registry.build("protocol", "tinyface", data=str(tinyface["root"])).evaluate(tinyface["embed"])
    b = registry.build("protocol", {"name": "tinyface", "labels": "mat"},
                       data=str(tinyface["root"])).evaluate(tinyface["embed"])
    assert a["map"] == b["map"] and a["rank1"] == b["rank1"]


def test_tinyface_through_the_runner_with_real_images(tmp_path):
    """Images of varied native sizes are used as they are and resized to the model's input."""
    from PIL import Image

    from tfface.eval.protocols import evaluate_protocol

    rng = np.random.default_rng(0)
    ts = tmp_path / "tinyface" / "Testing_Set"
    colours = {1: (250, 10, 10), 2: (10, 250, 10), 3: (10, 10, 250)}

    def save(path, colour):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        h, w = rng.integers(8, 30, 2)
        Image.fromarray(np.full((h, w, 3), colour, np.uint8)).save(path)

    for ident, colour in colours.items():
        save(str(ts / "Probe" / f"{ident}_1.png"), colour)
        save(str(ts / "Gallery_Match" / f"{ident}_2.png"), colour)
    for n in range(4):
        save(str(ts / "Gallery_Distractor" / f"{n}.png"), (120, 120, 120))
    seen = []

    def model(x):
        import tensorflow as tf

        seen.append(tuple(x.shape[1:3]))
        return tf.reduce_mean(x, axis=[1, 2])

    res = evaluate_protocol("tinyface", str(tmp_path), model, image_size=16)
    assert res["rank1"] == 1.0 and res["map"] == 1.0
    assert set(seen) == {(16, 16)}
