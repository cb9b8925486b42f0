"""The pair-list benchmarks as published: CFP (``cfp_fp``, ``cfp_ff``), CALFW / CPLFW, SLLFW,
RFW (``rfw_<race>``) and YouTube Faces (``ytf``).

Each test writes a small fixture in the published layout (tiny JPEGs, a few pairs per fold),
embeds it with a fake ``embed`` (a lookup table of small integer vectors, so that many scores
tie) and checks the protocol against an independent transcription, written here, of the
dataset's official fold protocol:

* the k-fold accuracy of LFW's unrestricted protocol, which CFP applies to its 10 published
  splits (the threshold of a split is learnt on the other nine): for each
  fold, every distinct training score is a candidate threshold (accept ``cos >= t``), the most
  accurate on the training folds wins and, among equally accurate ones, the strictest (the
  largest cosine); the fold's accuracy is measured with it; mean and population std;
* the fold of each pair as each dataset defines it, rebuilt from the fixture's own records (not
  by reading the files back): CFP's split folders; CALFW/CPLFW's positive-then-negative lists
  regrouped as FaceX-Zoo's ``CALFW_PairsParser`` does (fold k = positives 300k..300k+299 +
  negatives 300k..300k+299, scaled down); SLLFW's and RFW's contiguous blocks of the file;
  YTF's split column with one feature per video = the mean of its frames' embeddings;
* AUC as the Mann-Whitney statistic, TAR@FAR from ``tfface.eval.verification.tar_at_far`` (the
  one definition).
"""
import os

import numpy as np
import pytest
from PIL import Image

from tfface import registry
from tfface.eval.verification import tar_at_far


# ---------------------------------------------------------------------------------------------
# the official logic, transcribed


def official_kfold(sim, issame, fold_of):
    """LFW / CFP k-fold accuracy on cosine similarities, folds given per pair."""
    accs, thrs = [], []
    for f in np.unique(fold_of):
        test = fold_of == f
        train = ~test
        best_t, best_acc = None, -1.0
        for t in sorted(set(sim[train].tolist()), reverse=True):  # strictest first
            acc = np.mean((sim[train] >= t) == issame[train])
            if acc > best_acc:
                best_t, best_acc = t, acc
        thrs.append(best_t)
        accs.append(np.mean((sim[test] >= best_t) == issame[test]))
    return float(np.mean(accs)), float(np.std(accs)), thrs


def mann_whitney_auc(sim, issame):
    g, i = sim[issame], sim[~issame]
    return float(np.mean((g[:, None] > i[None, :]) + 0.5 * (g[:, None] == i[None, :])))


def cosine(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def check_against_official(result, sim, issame, fold_of):
    sim, issame, fold_of = np.asarray(sim), np.asarray(issame, bool), np.asarray(fold_of)
    assert len(np.unique(sim)) < len(sim), "the fixture must contain tied scores"
    acc, std, thrs = official_kfold(sim, issame, fold_of)
    assert result["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert result["accuracy_std"] == pytest.approx(std, abs=1e-12)
    np.testing.assert_allclose(result["thresholds"], thrs, atol=1e-12)
    assert result["folds"] == len(np.unique(fold_of))
    assert result["auc"] == pytest.approx(mann_whitney_auc(sim, issame), abs=1e-12)
    expected = tar_at_far(sim, issame, (1e-1, 1e-2))
    for far, (tar, _, _) in expected.items():
        assert result["tar_at_far"][far] == pytest.approx(tar, abs=1e-12)
    assert result["num_pairs"] == len(sim)
    for key in ("eer", "threshold", "roc"):
        assert key in result


# ---------------------------------------------------------------------------------------------
# fixtures


def write_image(path, value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value % 256, np.uint8)).save(path)


class Table:
    """The fake model: a vector per image path (small integers: many tied cosines), looked up by
    ``embed``; records every call."""

    def __init__(self, seed, dim=3):
        self.rng = np.random.default_rng(seed)
        self.dim = dim
        self.vectors = {}
        self.calls = []

    def add(self, path, base):
        v = np.asarray(base, float) + self.rng.integers(0, 2, self.dim)
        self.vectors[os.path.normpath(path)] = v
        write_image(path, len(self.vectors))
        return v

    def base(self):
        v = self.rng.integers(-2, 3, self.dim).astype(float)
        v[0] = 3.0  # never all-zero
        return v

    def embed(self, images, key):
        self.calls.append((key, list(images)))
        return np.stack([self.vectors[os.path.normpath(p)] for p in images]).astype(np.float32)


def build(name, data, **args):
    return registry.build("protocol", registry.Component(name, args), data=str(data))


# ---------------------------------------------------------------------------------------------
# CFP


def make_cfp(root, seed=0, n_ids=8):
    """CFP's layout: frontal 01..04 and profile 01..02 per identity, 10 splits of unequal size
    (so that contiguous blocks would not be the splits). Returns the FP and FF pair records
    ``(path_a, path_b, same, split)``."""
    t = Table(seed)
    front_lines, prof_lines, frontal, profile = [], [], {}, {}
    for i in range(1, n_ids + 1):
        base = t.base()
        for n in range(1, 5):
            rel = f"../Data/Images/{i:03d}/frontal/{n:02d}.jpg"
            idx = len(front_lines) + 1
            front_lines.append(f"{idx} {rel}")
            frontal[idx] = (i, os.path.join(root, "Data", "Images", f"{i:03d}", "frontal",
                                            f"{n:02d}.jpg"))
            t.add(frontal[idx][1], base)
        for n in range(1, 3):
            rel = f"../Data/Images/{i:03d}/profile/{n:02d}.jpg"
            idx = len(prof_lines) + 1
            prof_lines.append(f"{idx} {rel}")
            profile[idx] = (i, os.path.join(root, "Data", "Images", f"{i:03d}", "profile",
                                            f"{n:02d}.jpg"))
            t.add(profile[idx][1], base)
    os.makedirs(os.path.join(root, "Protocol"))
    with open(os.path.join(root, "Protocol", "Pair_list_F.txt"), "w") as f:
        f.write("\n".join(front_lines) + "\n")
    with open(os.path.join(root, "Protocol", "Pair_list_P.txt"), "w") as f:
        f.write("\n".join(prof_lines) + "\n")
    rng = np.random.default_rng(seed + 1)
    records = {"FP": [], "FF": []}
    for proto, second in (("FP", profile), ("FF", frontal)):
        for s in range(1, 11):
            d = os.path.join(root, "Protocol", "Split", proto, f"{s:02d}")
            os.makedirs(d)
            for fname, same, count in (("same.txt", True, 1 + s % 3), ("diff.txt", False, 2)):
                lines = []
                while len(lines) < count:
                    a = int(rng.integers(1, len(frontal) + 1))
                    b = int(rng.integers(1, len(second) + 1))
                    if (frontal[a][0] == second[b][0]) != same or (proto == "FF" and a == b):
                        continue
                    lines.append(f"{a},{b}")
                    records[proto].append((frontal[a][1], second[b][1], same, s - 1))
                with open(os.path.join(d, fname), "w") as f:
                    f.write("\n".join(lines) + "\n")
    return t, records


def expected_scores(table, records):
    sim = [cosine(table.vectors[os.path.normpath(a)], table.vectors[os.path.normpath(b)])
           for a, b, _, _ in records]
    return np.array(sim), np.array([r[2] for r in records]), np.array([r[3] for r in records])


@pytest.mark.parametrize("name,proto", [("cfp_fp", "FP"), ("cfp_ff", "FF")])
def test_cfp_folds_are_the_published_splits(tmp_path, name, proto):
    table, records = make_cfp(str(tmp_path / "cfp"))
    result = build(name, tmp_path / "cfp").evaluate(table.embed)
    sim, issame, splits = expected_scores(table, records[proto])
    check_against_official(result, sim, issame, splits)
    # the splits are unequal: contiguous blocks would be other folds
    assert not np.array_equal(np.bincount(splits), np.full(10, len(splits) // 10))
    # each distinct image embedded once, under the protocol's own key
    (key, images), = table.calls
    assert key == f"{name}/images" and len(images) == len(set(images))
    assert set(map(os.path.normpath, images)) == {os.path.normpath(p) for r in records[proto]
                                                  for p in r[:2]}


def test_cfp_images_option_reroots_data_images(tmp_path):
    table, records = make_cfp(str(tmp_path / "cfp"))
    aligned = tmp_path / "aligned"
    moved = Table(0)
    for path, v in table.vectors.items():
        below = os.path.relpath(path, str(tmp_path / "cfp" / "Data" / "Images"))
        moved.vectors[os.path.normpath(str(aligned / below))] = v
        write_image(str(aligned / below))
    result = build("cfp_fp", tmp_path / "cfp", images=str(aligned)).evaluate(moved.embed)
    sim, issame, splits = expected_scores(table, records["FP"])
    check_against_official(result, sim, issame, splits)
    assert all(p.startswith(str(aligned)) for p in moved.calls[0][1])


def test_cfp_bad_inputs_name_the_file(tmp_path):
    make_cfp(str(tmp_path / "cfp"))
    same = tmp_path / "cfp" / "Protocol" / "Split" / "FP" / "03" / "same.txt"
    same.write_text("1;2\n")
    with pytest.raises(ValueError, match=r"03.same\.txt: line 1 .*'I,J'"):
        build("cfp_fp", tmp_path / "cfp").evaluate(Table(0).embed)
    same.write_text("1,999\n")
    with pytest.raises(ValueError, match=r"refers to image 999.*Pair_list_P"):
        build("cfp_fp", tmp_path / "cfp").evaluate(Table(0).embed)
    same.write_text("1,1\n")
    os.remove(tmp_path / "cfp" / "Data" / "Images" / "001" / "profile" / "01.jpg")
    with pytest.raises(FileNotFoundError, match=r"001.profile.01\.jpg"):
        build("cfp_fp", tmp_path / "cfp").evaluate(Table(0).embed)
    with pytest.raises(FileNotFoundError, match="Protocol"):
        build("cfp_fp", tmp_path / "nothing")


def test_pair_sets_fall_back_to_insightface_bin(tmp_path):
    from tfface.data.binwriter import write_bin
    from tfface.eval.protocols.binsets import evaluate_bin

    rng = np.random.default_rng(3)
    issame = np.array([True, False] * 10)
    images = [f"img{i}".encode() for i in range(40)]
    vectors = {b: rng.integers(-2, 3, 4).astype(np.float32) + 5 * (i % 2) for i, b in
               enumerate(images)}

    def embed(batch, key):
        return np.stack([vectors[b] for b in batch])

    for name in ("cfp_fp", "cfp_ff", "calfw", "cplfw"):
        path = write_bin(tmp_path / name / f"{name}.bin", images, issame)
        want = evaluate_bin(path, embed, folds=10)
        for data in (path, tmp_path / name):
            got = build(name, data).evaluate(embed)
            assert got["accuracy"] == want["accuracy"] and got["auc"] == want["auc"]


# ---------------------------------------------------------------------------------------------
# CALFW / CPLFW


def make_two_line(root, list_name, image_dir, per_fold=(2, 2), fold_labels=True, seed=0):
    """The release's order: every positive pair (label = its fold 1..10 for CALFW, 1 for CPLFW),
    then every negative pair (label 0). Returns the pair records in file order with the fold
    each pair belongs to."""
    t = Table(seed)
    names = [f"Person_{c}" for c in "ABCDEFGHIJKL"]
    bases = {n: t.base() for n in names}
    images = {n: [] for n in names}
    for n in names:
        for k in range(1, 4):
            path = os.path.join(root, image_dir, f"{n}_{k:04d}.jpg")
            t.add(path, bases[n])
            images[n].append(path)
    rng = np.random.default_rng(seed + 7)
    n_pos, n_neg = per_fold
    lines, pos, neg = [], [], []
    for fold in range(10):
        for _ in range(n_pos):
            n = names[int(rng.integers(len(names)))]
            a, b = rng.choice(3, 2, replace=False)
            pos.append((images[n][a], images[n][b], True, fold))
    for fold in range(10):
        for _ in range(n_neg):
            n1, n2 = rng.choice(len(names), 2, replace=False)
            neg.append((images[names[n1]][int(rng.integers(3))],
                        images[names[n2]][int(rng.integers(3))], False, fold))
    for a, b, same, fold in pos + neg:
        label = (fold + 1 if fold_labels else 1) if same else 0
        lines += [f"{os.path.basename(a)} {label}", f"{os.path.basename(b)} {label}"]
    with open(os.path.join(root, list_name), "w") as f:
        f.write("\n".join(lines) + "\n")
    return t, pos + neg


def facex_zoo_order(records, per_fold):
    """FaceX-Zoo's CALFW_PairsParser: fold k = positives [k·P, (k+1)·P) + negatives
    [N0 + k·Q, N0 + (k+1)·Q) of the file, then contiguous folds."""
    n_pos, n_neg = per_fold
    positives = [r for r in records if r[2]]
    negatives = [r for r in records if not r[2]]
    ordered, folds = [], []
    for k in range(10):
        block = positives[k * n_pos:(k + 1) * n_pos] + negatives[k * n_neg:(k + 1) * n_neg]
        ordered += block
        folds += [k] * len(block)
    return ordered, np.array(folds)


@pytest.mark.parametrize("name,list_name,image_dir,labels", [
    ("calfw", "pairs_CALFW.txt", "aligned images", True),
    ("cplfw", "pairs_CPLFW.txt", "images", False),
])
def test_calfw_cplfw_positive_then_negative_folds(tmp_path, name, list_name, image_dir, labels):
    root = str(tmp_path / name)
    table, records = make_two_line(root, list_name, image_dir, per_fold=(2, 3),
                                   fold_labels=labels)
    result = build(name, root).evaluate(table.embed)
    ordered, folds = facex_zoo_order(records, (2, 3))
    sim, issame, _ = expected_scores(table, ordered)
    check_against_official(result, sim, issame, folds)
    # the protocol's folds are not contiguous blocks of the file (those hold only positives)
    from tfface.data.pairsets import read_two_line_pairs
    _, _, got_folds = read_two_line_pairs(os.path.join(root, list_name),
                                          os.path.join(root, image_dir))
    assert got_folds[:20].tolist() == np.repeat(np.arange(10), 2).tolist()
    assert got_folds[20:].tolist() == np.repeat(np.arange(10), 3).tolist()


def test_two_line_lists_reject_bad_lines(tmp_path):
    root = tmp_path / "calfw"
    make_two_line(str(root), "pairs_CALFW.txt", "aligned images")
    lines = (root / "pairs_CALFW.txt").read_text().splitlines()
    (root / "pairs_CALFW.txt").write_text("\n".join([lines[0], "x.jpg 0"] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match=r"pairs_CALFW\.txt: lines 1 and 2 .*different labels"):
        build("calfw", root).evaluate(Table(0).embed)
    (root / "pairs_CALFW.txt").write_text("\n".join(lines[:3]) + "\n")
    with pytest.raises(ValueError, match="even number"):
        build("calfw", root).evaluate(Table(0).embed)
    (root / "pairs_CALFW.txt").write_text("\n".join(lines[:-2] + ["a.jpg x", "b.jpg x"]) + "\n")
    with pytest.raises(ValueError, match=r"line \d+ is 'a\.jpg x'"):
        build("calfw", root).evaluate(Table(0).embed)
    (root / "pairs_CALFW.txt").write_text("\n".join(lines[:-2] + ["a.jpg 0", "b.jpg 0"]) + "\n")
    with pytest.raises(FileNotFoundError, match=r"(?s)2 image\(s\).*a\.jpg"):
        build("calfw", root).evaluate(Table(0).embed)


# ---------------------------------------------------------------------------------------------
# SLLFW


def test_sllfw_pair_list_contiguous_folds(tmp_path):
    root = tmp_path / "sllfw"
    t = Table(5)
    names = ["Aaron_Peirsol", "Abdullah_Gul", "Adam_Sandler", "Al_Gore", "Alan_Ball", "Ali_Naimi"]
    bases = {n: t.base() for n in names}
    for n in names:
        for k in range(1, 4):
            t.add(str(root / "lfw" / n / f"{n}_{k:04d}.jpg"), bases[n])
    rng = np.random.default_rng(1)
    records, lines = [], []
    for fold in range(10):
        for same in (True,) * 2 + (False,) * 2:  # LFW's fold: positives then negatives
            if same:
                n1 = n2 = names[int(rng.integers(6))]
                k1, k2 = rng.choice(3, 2, replace=False) + 1
            else:
                i, j = rng.choice(6, 2, replace=False)
                n1, n2, k1, k2 = names[i], names[j], rng.integers(1, 4), rng.integers(1, 4)
            lines += [f"{n1}/{n1}_{k1:04d}.jpg", f"{n2}/{n2}_{k2:04d}.jpg"]
            records.append((str(root / "lfw" / n1 / f"{n1}_{k1:04d}.jpg"),
                            str(root / "lfw" / n2 / f"{n2}_{k2:04d}.jpg"), same, fold))
    (root / "pair_SLLFW.txt").write_text("\n".join(lines) + "\n")
    result = build("sllfw", root).evaluate(t.embed)
    sim, issame, folds = expected_scores(t, records)
    check_against_official(result, sim, issame, folds)
    (root / "pair_SLLFW.txt").write_text("\n".join(lines[:-1] + ["no_folder.jpg"]) + "\n")
    with pytest.raises(ValueError, match=r"pair_SLLFW\.txt: line 80 is 'no_folder\.jpg'"):
        build("sllfw", root).evaluate(t.embed)


# ---------------------------------------------------------------------------------------------
# RFW


def make_rfw(root, race, seed=0):
    t = Table(seed)
    ids = [f"m.0{c}{race[:2].lower()}" for c in "abcdefgh"]
    bases = {i: t.base() for i in ids}
    data = os.path.join(root, "test", "data", race)
    for i in ids:
        for k in range(1, 4):
            t.add(os.path.join(data, i, f"{i}_{k:04d}.jpg"), bases[i])
    rng = np.random.default_rng(seed + 2)
    records, lines = [], []
    for fold in range(10):
        for _ in range(2):
            i = ids[int(rng.integers(len(ids)))]
            k1, k2 = rng.choice(3, 2, replace=False) + 1
            lines.append(f"{i}\t{k1}\t{k2}")
            records.append((os.path.join(data, i, f"{i}_{k1:04d}.jpg"),
                            os.path.join(data, i, f"{i}_{k2:04d}.jpg"), True, fold))
        for _ in range(3):
            a, b = rng.choice(len(ids), 2, replace=False)
            k1, k2 = rng.integers(1, 4, 2)
            lines.append(f"{ids[a]}\t{k1}\t{ids[b]}\t{k2}")
            records.append((os.path.join(data, ids[a], f"{ids[a]}_{k1:04d}.jpg"),
                            os.path.join(data, ids[b], f"{ids[b]}_{k2:04d}.jpg"), False, fold))
    txt = os.path.join(root, "test", "txts", race)
    os.makedirs(txt)
    with open(os.path.join(txt, f"{race}_pairs.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return t, records


@pytest.mark.parametrize("race", ["African", "Asian", "Caucasian", "Indian"])
def test_rfw_each_race(tmp_path, race):
    root = str(tmp_path / "RFW")
    table, records = make_rfw(root, race, seed=len(race))
    result = build(f"rfw_{race.lower()}", root).evaluate(table.embed)
    sim, issame, folds = expected_scores(table, records)
    check_against_official(result, sim, issame, folds)
    # --data may also be the test/ folder itself
    again = build(f"rfw_{race.lower()}", os.path.join(root, "test")).evaluate(table.embed)
    assert again["accuracy"] == result["accuracy"]


def test_rfw_errors(tmp_path):
    root = str(tmp_path / "RFW")
    table, _ = make_rfw(root, "Asian")
    with pytest.raises(FileNotFoundError, match=r"African_pairs\.txt"):
        build("rfw_african", root)
    pairs = os.path.join(root, "test", "txts", "Asian", "Asian_pairs.txt")
    with open(pairs, "a") as f:
        f.write("m.0x\t1\n")
    with pytest.raises(ValueError, match=r"Asian_pairs\.txt: line 51 .*'id n1 n2'"):
        build("rfw_asian", root).evaluate(table.embed)


# ---------------------------------------------------------------------------------------------
# YTF


def make_ytf(root, seed=0):
    t = Table(seed)
    people = ["Aaron_Eckhart", "Abel_Pacheco", "Adam_Sandler", "Al_Pacino", "Alan_Ball"]
    frames = {}
    for p in people:
        base = t.base()
        for v in range(2):
            video = f"{p}/{v}"
            n = 3 + (len(p) + v) % 4
            frames[video] = []
            for k in range(n):
                # YTF numbers frames without padding: natural order 9 < 10
                path = os.path.join(root, "aligned_images_DB", p, str(v),
                                    f"aligned_detect_{v}.{k + 8}.jpg")
                t.add(path, base)
                frames[video].append(path)
    rng = np.random.default_rng(seed + 3)
    videos = sorted(frames)
    lines = ["split number, pair number, first name, second name, is same"]
    records = []
    for split in range(1, 11):
        for same in (True, False, False):
            if same:
                p = people[int(rng.integers(len(people)))]
                a, b = f"{p}/0", f"{p}/1"
            else:
                i, j = rng.choice(len(people), 2, replace=False)
                a, b = f"{people[i]}/{rng.integers(2)}", f"{people[j]}/{rng.integers(2)}"
            lines.append(f"{split}, {len(records) + 1}, {a}, {b}, {int(same)}")
            records.append((a, b, same, split - 1))
    with open(os.path.join(root, "splits.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return t, frames, records, videos


def ytf_expected(table, frames, records, used=None):
    used = used or frames
    mean = {v: np.mean([table.vectors[os.path.normpath(p)] for p in used[v]], axis=0)
            for v in frames}
    sim = np.array([cosine(mean[a], mean[b]) for a, b, _, _ in records])
    return sim, np.array([r[2] for r in records]), np.array([r[3] for r in records])


def test_ytf_mean_of_frames_over_the_published_splits(tmp_path):
    root = str(tmp_path / "ytf")
    table, frames, records, _ = make_ytf(root)
    result = build("ytf", root).evaluate(table.embed)
    sim, issame, folds = ytf_expected(table, frames, records)
    check_against_official(result, sim, issame, folds)
    (key, images), = table.calls
    used_videos = {v for a, b, _, _ in records for v in (a, b)}
    assert key == "ytf/frames" and len(images) == sum(len(frames[v]) for v in used_videos)


def test_ytf_max_frames_is_a_seeded_subset(tmp_path):
    root = str(tmp_path / "ytf")
    table, frames, records, _ = make_ytf(root)
    result = build("ytf", root, max_frames=2, seed=4).evaluate(table.embed)
    (key, images), = table.calls
    assert key == "ytf/frames@max2s4"
    images = [os.path.normpath(p) for p in images]
    used = {}
    for video, paths in frames.items():
        kept = [p for p in paths if os.path.normpath(p) in images]
        if kept:
            assert len(kept) == min(2, len(paths))
            used[video] = kept
    sim, issame, folds = ytf_expected(table, frames, records, {**frames, **used})
    check_against_official(result, sim, issame, folds)
    again = build("ytf", root, max_frames=2, seed=4).evaluate(table.embed)
    assert table.calls[1] == table.calls[0] and again["accuracy"] == result["accuracy"]
    with pytest.raises(ValueError, match="max_frames"):
        build("ytf", root, max_frames=0)


def test_ytf_missing_folders(tmp_path):
    root = tmp_path / "ytf"
    make_ytf(str(root))
    with pytest.raises(FileNotFoundError, match="frame_images_DB"):
        build("ytf", root, frames="frame_images_DB")
    os.remove(root / "splits.txt")
    with pytest.raises(FileNotFoundError, match="splits.txt"):
        build("ytf", root)


# ---------------------------------------------------------------------------------------------
# on-the-fly alignment and the registry


def test_aligned_false_embeds_aligned_arrays(tmp_path, monkeypatch):
    from tfface.eval.protocols import pairset_common

    root = str(tmp_path / "RFW")
    table, records = make_rfw(root, "Indian")
    seen = {}

    def fake_align(paths, mode, size, progress=None, key=""):
        seen["args"] = (mode, size)
        seen["paths"] = list(paths)
        return np.stack([np.full((size, size, 3), i % 256, np.uint8) for i in range(len(paths))])

    monkeypatch.setattr(pairset_common, "_align_images", fake_align)

    def embed(images, key):
        assert key == "rfw_indian/images@mtcnn"
        assert isinstance(images, np.ndarray) and images.shape[1:] == (96, 96, 3)
        return table.embed(seen["paths"], key)

    result = build("rfw_indian", root, aligned=False, align_size=96).evaluate(embed)
    assert seen["args"] == ("arcface", 96)
    sim, issame, folds = expected_scores(table, records)
    check_against_official(result, sim, issame, folds)


def test_registered_names():
    names = set(registry.names("protocol"))
    assert {"cfp_fp", "cfp_ff", "calfw", "cplfw", "sllfw", "rfw_african", "rfw_asian",
            "rfw_caucasian", "rfw_indian", "ytf"} <= names


def test_ytf_through_the_runner_reads_the_frames(tmp_path):
    """The runner's real extraction (TensorFlow decoding of the fixture's JPEGs) on YTF's frame
    list, with a callable model of the mean colour: the same metrics as the protocol given those
    features directly."""
    from tfface.eval.protocols.runner import evaluate_protocol

    root = str(tmp_path / "ytf")
    make_ytf(root)

    def model(images):
        m = np.asarray(images, np.float32).mean(axis=(1, 2))
        return np.stack([np.full(len(m), 50.0), m[:, 0] - 2.0], axis=1)

    result = evaluate_protocol("ytf", root, model, image_size=4, batch_size=16)

    def embed(paths, key):
        return model(np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32)
                               for p in paths]))

    direct = build("ytf", root).evaluate(embed)
    assert result["folds"] == 10 and result["num_pairs"] == 30
    assert result["accuracy"] == pytest.approx(direct["accuracy"], abs=1e-9)
    assert result["auc"] == pytest.approx(direct["auc"], abs=1e-6)
