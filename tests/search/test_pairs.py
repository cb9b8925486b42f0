"""``tfface pairs``: the written pairs.txt parsed by a reader written here from the LFW README
(View 2: first line "folds<TAB>pairs per fold", then per fold that many matched lines
"name<TAB>n1<TAB>n2" followed by that many mismatched lines "name1<TAB>n1<TAB>name2<TAB>n2");
fold counts, balance, identity-disjoint folds, valid distinct pairs, seeded determinism; the
probe/gallery split."""
import os

import pytest

from tfface import cli
from tfface.files import InputError
from tfface.search import pairs as lists


def read_lfw_pairs(path):
    """An independent reader of LFW's pairs.txt: [(matched, mismatched)] per fold."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    folds, per_fold = (int(v) for v in lines[0].split("\t"))
    body = lines[1:]
    assert len(body) == folds * 2 * per_fold
    out = []
    for k in range(folds):
        block = body[k * 2 * per_fold:(k + 1) * 2 * per_fold]
        matched = [l.split("\t") for l in block[:per_fold]]
        mismatched = [l.split("\t") for l in block[per_fold:]]
        assert all(len(m) == 3 for m in matched) and all(len(m) == 4 for m in mismatched)
        out.append(([(m[0], int(m[1]), int(m[2])) for m in matched],
                    [(m[0], int(m[1]), m[2], int(m[3])) for m in mismatched]))
    return folds, per_fold, out


def make_folder(root, counts, lfw_names=True):
    """Identity folders with empty files (pairs never reads the pixels)."""
    for i, n in enumerate(counts):
        name = f"person{i:02d}"
        os.makedirs(root / name)
        for j in range(n):
            file = f"{name}_{j + 1:04d}.jpg" if lfw_names else f"shot-{chr(97 + j)}.jpg"
            (root / name / file).write_bytes(b"")
    return root


COUNTS = [1, 5, 2, 8, 3, 1, 4, 6, 2, 1, 7, 3, 2, 5, 1, 4, 3, 2, 9, 1]


def test_pairs_file_follows_the_lfw_layout(tmp_path):
    root = make_folder(tmp_path / "ids", COUNTS)
    out = tmp_path / "pairs.txt"
    assert cli.main(["pairs", str(root), "--pairs", str(out), "--folds", "4", "--per-fold", "6", "--seed", "3"]) == 0
    folds, per_fold, data = read_lfw_pairs(out)
    assert (folds, per_fold) == (4, 6)
    count_of = {f"person{i:02d}": n for i, n in enumerate(COUNTS)}
    seen_identities = []
    for matched, mismatched in data:
        assert len(matched) == len(mismatched) == 6  # balanced
        names = {m[0] for m in matched} | {m[0] for m in mismatched} | {m[2] for m in mismatched}
        seen_identities.append(names)
        for name, a, b in matched:
            assert 1 <= a < b <= count_of[name]
        for n1, a, n2, b in mismatched:
            assert n1 < n2 and 1 <= a <= count_of[n1] and 1 <= b <= count_of[n2]
        assert len(set(matched)) == 6 and len(set(mismatched)) == 6
        assert matched == sorted(matched) and mismatched == sorted(mismatched)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not seen_identities[i] & seen_identities[j], "an identity in two folds"
    again = tmp_path / "again.txt"
    cli.main(["pairs", str(root), "--pairs", str(again), "--folds", "4", "--per-fold", "6", "--seed", "3"])
    assert again.read_bytes() == out.read_bytes()
    other = tmp_path / "other.txt"
    cli.main(["pairs", str(root), "--pairs", str(other), "--folds", "4", "--per-fold", "6", "--seed", "4"])
    assert other.read_bytes() != out.read_bytes()


def test_numbers_are_positions_when_files_are_not_lfw_named(tmp_path):
    root = make_folder(tmp_path / "ids", [3, 3, 2, 2], lfw_names=False)
    names, images, numbers = lists.identity_images(root)
    assert images[0] == [os.path.join("person00", f"shot-{c}.jpg") for c in "abc"]
    assert numbers[0] == [1, 2, 3]
    pairs, per_fold = lists.make_pairs(names, [len(i) for i in images], numbers, folds=2, seed=0)
    # fold capacity: 2 identities (3 and 2 images) -> 3 + 1 matched, 3*2 mismatched -> 4
    assert per_fold == 4
    for matched, _ in pairs:
        assert len(matched) == 4


def test_too_small_for_the_request(tmp_path):
    root = make_folder(tmp_path / "ids", [2, 1, 1])
    names, images, numbers = lists.identity_images(root)
    with pytest.raises(InputError, match="fewer --folds"):
        lists.make_pairs(names, [2, 1, 1], numbers, folds=2)
    with pytest.raises(InputError, match="at most 1"):
        lists.make_pairs(names, [2, 1, 1], numbers, folds=1, per_fold=5)


def test_split_is_disjoint_and_covers_every_photo(tmp_path, capsys):
    root = make_folder(tmp_path / "ids", COUNTS)
    out = tmp_path / "split"
    assert cli.main(["pairs", str(root), "--split", str(out), "--unknown-fraction", "0.25",
                     "--gallery-per-identity", "2", "--seed", "1"]) == 0
    gallery = [l.split("\t") for l in (out / "gallery.txt").read_text().splitlines()]
    probes = [l.split("\t") for l in (out / "probes.txt").read_text().splitlines()]
    g_paths = {os.path.normpath(os.path.join(out, p)) for p, _ in gallery}
    p_paths = {os.path.normpath(os.path.join(out, p)) for p, _, _ in probes}
    every = {os.path.normpath(os.path.join(root, d, f)) for d in os.listdir(root) for f in os.listdir(root / d)}
    assert not g_paths & p_paths and g_paths | p_paths == every
    assert all(os.path.isfile(p) for p in g_paths)
    enrolled = {name for _, name in gallery}
    unknown = {name for _, name, state in probes if state == "unknown"}
    assert not enrolled & unknown
    assert {name for _, name, state in probes if state == "enrolled"} <= enrolled
    assert len(unknown) >= 5  # 25% of 20, plus the identities with fewer than 2 photos
    assert all(n >= 2 for n in (COUNTS[int(name[6:])] for name in enrolled))
    assert all(sum(1 for _, n in gallery if n == name) == 2 for name in enrolled)


def test_nothing_to_do_is_an_error(tmp_path, capsys):
    root = make_folder(tmp_path / "ids", [2, 2])
    assert cli.main(["pairs", str(root)]) == 2
    assert "--pairs" in capsys.readouterr().err
