"""MegaFace on a small fixture in the devkit's layout, against a transcription of the devkit's
identification/verification written here.

The transcription (the MegaFace paper, §3, and the devkit's FuseResults as FaceX-Zoo's
``CommonMegaFaceEvaluator`` ports it): for every FaceScrub identity and every ordered pair
(i, j) of its images, i != j, image i joins the distractors as the gallery and j is the probe;
the query succeeds at rank 1 when no distractor is as similar to j as i is (tfface counts ties
against the mate; FaceX-Zoo's port counts them for it: the fixture has ties, and the test checks
both which one tfface reports and that they differ). Verification: genuine = those (j, i)
pairs, impostors = every probe-distractor pair, TAR@FAR by ``tar_at_far`` over *all* of them.
"""
import itertools
import json
import math
import os

import numpy as np
import pytest

from tfface import registry
from tfface.eval.verification import tar_at_far

IDS = ["Aaron Eckhart", "Adam Brody", "Alec Baldwin"]
PER_ID = 3
SIZES = {10: list(range(0, 10)), 100: list(range(4, 104))}  # overlapping lists
FAR = (1e-6, 0.02, 0.1)


def grid_pool():
    halves = np.array(list(itertools.product([-0.5, 0.5], repeat=4)))
    onehot = np.concatenate([np.eye(4), -np.eye(4)])
    return np.concatenate([halves, onehot]).astype(np.float32)


def write(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


@pytest.fixture
def megaface(tmp_path):
    rng = np.random.default_rng(3)
    pool = grid_pool()
    root = tmp_path / "mf"
    fs_paths, fs_ids, feats = [], [], {}
    halves, onehot = pool[:16], pool[16:]
    for a, name in enumerate(IDS):
        folder = name.replace(" ", "_")
        for n in range(PER_ID):
            rel = f"{folder}/{folder}_{n + 1}.png"
            fs_paths.append(rel)
            fs_ids.append(name)
            write(str(root / "FaceScrub" / rel))
            # two images on the identity's axis, one half-way vector: exact scores 1 and 0.5
            base = onehot[a] if n < 2 else halves[rng.integers(16)]
            feats[str(root / "FaceScrub" / rel)] = base * rng.uniform(0.5, 2)
    # the devkit lists the .jpg; the folder holds the .png crop under the same stem
    write(str(root / "templatelists" / "facescrub_features_list.json"),
          json.dumps({"id": fs_ids, "path": [p[:-4] + ".jpg" for p in fs_paths]}))
    mf_rel = [f"{i % 7:03d}/{i}@N00/{1000 + i}_0.jpg" for i in range(104)]
    for i, rel in enumerate(mf_rel):
        write(str(root / "MegaFace" / rel))
        # distractor 7 (in both lists) duplicates Aaron Eckhart's axis: ties at score 1
        feats[str(root / "MegaFace" / rel)] = onehot[0] if i == 7 else halves[rng.integers(16)]
    for size, idx in SIZES.items():
        write(str(root / "templatelists" / f"megaface_features_list.json_{size}_1"),
              json.dumps({"path": [mf_rel[i] for i in idx]}))
    calls = []

    def embed(images, key):
        calls.append((key, len(images)))
        return np.stack([feats[os.fspath(p)] for p in images])

    return dict(root=root, fs_paths=fs_paths, fs_ids=fs_ids, mf_rel=mf_rel, feats=feats,
                embed=embed, calls=calls)


def unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def devkit_reference(probe_feats, probe_ids, distractor_feats, far, ties="against"):
    """The devkit's CMC and verification on every pair, by brute force: (rank-1 rate, TAR@FAR,
    number of impostors, per-query ranks with ties against the mate)."""
    p, d = unit(probe_feats), unit(distractor_feats)
    hits, ranks, genuine = [], [], []
    for name in sorted(set(probe_ids)):
        members = [k for k, x in enumerate(probe_ids) if x == name]
        for i in members:              # the gallery image, added to the distractors
            for j in members:          # the probe
                if i == j:
                    continue
                pos = float(np.float32(p[j] @ p[i]))
                comp = (p[j] @ d.T).astype(np.float32)
                ranks.append(1 + int(np.sum(comp >= pos)))
                if ties == "against":
                    hits.append(not np.any(comp >= pos))
                else:                  # FaceX-Zoo: success when pos >= the best distractor
                    hits.append(pos >= comp.max())
                genuine.append(pos)
    impostor = (p @ d.T).ravel()
    sim = np.concatenate([genuine, impostor])
    issame = np.concatenate([np.ones(len(genuine), bool), np.zeros(impostor.size, bool)])
    tar = {f: v[0] if isinstance(v, (tuple, list)) else v for f, v in tar_at_far(sim, issame, far).items()}
    return float(np.mean(hits)), tar, impostor.size, np.array(ranks)


def build(root, **args):
    return registry.build("protocol", {"name": "megaface", **args}, data=str(root))


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-6


def test_megaface_matches_devkit_transcription(megaface):
    res = build(megaface["root"], far=FAR).evaluate(megaface["embed"])
    root = megaface["root"]
    fs = [megaface["feats"][str(root / "FaceScrub" / p)] for p in megaface["fs_paths"]]
    for size, idx in SIZES.items():
        d = [megaface["feats"][str(root / "MegaFace" / megaface["mf_rel"][i])] for i in idx]
        rank1, tar, n_imp, ranks = devkit_reference(fs, megaface["fs_ids"], d, FAR)
        assert res["rank1_by_distractors"][size] == pytest.approx(rank1)
        cmc = [np.mean(ranks <= r) for r in range(1, 11)]
        assert res["cmc_by_distractors"][size] == pytest.approx(cmc)
        for f in FAR:
            assert same(res["tar_at_far_by_distractors"][size][f], tar[f]), (size, f)
        assert res["num_distractors"][size] == len(idx)
    assert res["rank1"] == res["rank1_by_distractors"][100]
    assert res["tar_at_far"] == res["tar_at_far_by_distractors"][100]
    assert res["far_resolution"] == pytest.approx(1 / (len(fs) * 100))
    # 1e-6 < 1/900: k = 0, the FAR = 0 point (threshold = the largest impostor), not NaN
    assert not math.isnan(res["tar_at_far"][1e-6])
    assert res["num_queries"] == len(IDS) * PER_ID * (PER_ID - 1)
    # one embedding pass per image set: the union of the two lists (104 distractors)
    assert sorted(megaface["calls"]) == [("megaface/distractors", 104), ("megaface/facescrub", 9)]


def test_megaface_ties_count_against_the_mate(megaface):
    root = megaface["root"]
    fs = [megaface["feats"][str(root / "FaceScrub" / p)] for p in megaface["fs_paths"]]
    d = [megaface["feats"][str(root / "MegaFace" / megaface["mf_rel"][i])] for i in SIZES[100]]
    against = devkit_reference(fs, megaface["fs_ids"], d, FAR)[0]
    favour = devkit_reference(fs, megaface["fs_ids"], d, FAR, ties="for")[0]
    assert against < favour, "the fixture must contain a mate tied with a distractor"
    res = build(root, sizes=[100]).evaluate(megaface["embed"])
    assert res["rank1"] == pytest.approx(against)
    assert list(res["rank1_by_distractors"]) == [100]


def test_megaface_noise_lists(megaface):
    root = megaface["root"]
    # insightface's formats: FaceScrub file names; distractors as "index<TAB>a/b/image"
    write(str(root / "facescrub_noises.txt"), "# noises\nAaron_Eckhart_2.png\n")
    write(str(root / "megaface_noises.txt"), f"# noises\n0\t{megaface['mf_rel'][5]}\n")
    res = build(root, sizes=[10], far=(0.1,)).evaluate(megaface["embed"])
    keep = [k for k, p in enumerate(megaface["fs_paths"]) if not p.endswith("Aaron_Eckhart_2.png")]
    fs = [megaface["feats"][str(root / "FaceScrub" / megaface["fs_paths"][k])] for k in keep]
    ids = [megaface["fs_ids"][k] for k in keep]
    d = [megaface["feats"][str(root / "MegaFace" / megaface["mf_rel"][i])] for i in SIZES[10] if i != 5]
    rank1, tar, _, _ = devkit_reference(fs, ids, d, (0.1,))
    assert res["rank1"] == pytest.approx(rank1)
    assert same(res["tar_at_far"][0.1], tar[0.1])
    assert res["num_distractors"][10] == 9
    assert res["noise_images"] == {"facescrub": 1, "megaface": 1}

    # insightface's cleaning: the noisy probe takes its identity's centre
    res = build(root, sizes=[10], far=(0.1,), noises="insightface").evaluate(megaface["embed"])
    fs = unit([megaface["feats"][str(root / "FaceScrub" / p)] for p in megaface["fs_paths"]])
    fs[1] = unit(fs[0] + fs[2])
    rank1, _, _, _ = devkit_reference(fs, megaface["fs_ids"], d, (0.1,))
    assert res["rank1"] == pytest.approx(rank1)

    res = build(root, sizes=[10], noises="none").evaluate(megaface["embed"])
    assert res["num_distractors"][10] == 10 and res["num_probes"] == 9


def test_megaface_errors_name_the_file(megaface):
    root = megaface["root"]
    with pytest.raises(FileNotFoundError, match=r"megaface_features_list.json_<N>_1.*1000"):
        build(root, sizes=[1000]).evaluate(megaface["embed"])
    os.remove(root / "MegaFace" / megaface["mf_rel"][3])
    with pytest.raises(FileNotFoundError, match=r"(?s)1 listed image.*1003_0.jpg"):
        build(root).evaluate(megaface["embed"])
    with pytest.raises(ValueError, match="aligned_dir"):
        build(root, align="landmarks")
    with pytest.raises(FileNotFoundError, match="templatelists"):
        build(root / "FaceScrub").evaluate(megaface["embed"])


def test_megaface_align_with_json_landmarks(tmp_path):
    from PIL import Image

    from tfface.data.megaface import align_listed

    src = tmp_path / "MegaFace" / "001" / "x@N00" / "1_0.jpg"
    os.makedirs(src.parent)
    Image.fromarray(np.full((60, 50, 3), 128, np.uint8)).save(src)
    marks = {str(k): {"x": x, "y": y} for k, (x, y) in
             enumerate([(18, 24), (32, 24), (25, 32), (20, 40), (30, 40)])}
    write(str(src) + ".json", json.dumps({"bounding_box": {"x": 5, "y": 5, "width": 40,
                                                           "height": 50}, "landmarks": marks}))
    out = align_listed([str(src)], str(tmp_path / "al"), ["001/x@N00/1_0.jpg"], size=112)
    assert Image.open(out[0]).size == (112, 112)
    write(str(src) + ".json", json.dumps({"landmarks": {"0": {"x": 1, "y": 2}}}))
    os.remove(out[0])
    with pytest.raises(ValueError, match=r"1_0.jpg.json.*five keys"):
        align_listed([str(src)], str(tmp_path / "al"), ["001/x@N00/1_0.jpg"])

