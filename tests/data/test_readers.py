"""Verification-set readers: LFW pairs.txt, insightface .bin (restricted unpickling), YTF splits.

The expected values are written out by hand from the formats' definitions, not derived from the
reader."""
import os
import pickle

import numpy as np
import pytest

from tfface.data import read_bin, read_pairs, read_ytf_splits

# Two folds of one matched + one mismatched pair each, in LFW's layout (tabs, header FOLDS<TAB>N).
PAIRS_TXT = (
    "2\t1\n"
    "Alice\t1\t2\n"
    "Alice\t3\tBob\t1\n"
    "Bob\t1\t12\n"
    "Carol\t1\tAlice\t2\n"
)


def _touch(root, name, n, ext="jpg"):
    os.makedirs(os.path.join(root, name), exist_ok=True)
    path = os.path.join(root, name, f"{name}_{n:04d}.{ext}")
    with open(path, "wb") as f:
        f.write(b"x")
    return path


def _lfw_tree(root):
    for name, n in [("Alice", 1), ("Alice", 2), ("Alice", 3), ("Bob", 1), ("Bob", 12), ("Carol", 1)]:
        _touch(root, name, n)


def test_read_pairs_both_forms_header_and_folds(tmp_path):
    root = tmp_path / "lfw"
    _lfw_tree(str(root))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS_TXT + "\n")  # a trailing blank line is not a pair
    paths, issame, folds = read_pairs(pairs, root, return_folds=True)
    r = str(root)
    expected = [
        f"{r}/Alice/Alice_0001.jpg", f"{r}/Alice/Alice_0002.jpg",
        f"{r}/Alice/Alice_0003.jpg", f"{r}/Bob/Bob_0001.jpg",
        f"{r}/Bob/Bob_0001.jpg", f"{r}/Bob/Bob_0012.jpg",
        f"{r}/Carol/Carol_0001.jpg", f"{r}/Alice/Alice_0002.jpg",
    ]
    assert [os.path.normpath(p) for p in paths] == [os.path.normpath(p) for p in expected]
    assert issame.dtype == bool and issame.tolist() == [True, False, True, False]
    assert folds.tolist() == [0, 0, 1, 1]
    # The two-value form of the result is the contract's (paths, issame).
    paths2, issame2 = read_pairs(str(pairs), str(root), ext=".jpg")
    assert paths2 == paths and issame2.tolist() == issame.tolist()


def test_read_pairs_single_number_header(tmp_path):
    # pairsDevTrain.txt style: 'N', then N matched and N mismatched lines, one fold.
    root = tmp_path / "lfw"
    _lfw_tree(str(root))
    pairs = tmp_path / "pairsDevTrain.txt"
    pairs.write_text("1\nBob 1 12\nCarol 1 Bob 12\n")
    paths, issame, folds = read_pairs(pairs, root, return_folds=True)
    assert len(paths) == 4 and issame.tolist() == [True, False] and folds.tolist() == [0, 0]


def test_read_pairs_missing_images_all_listed(tmp_path):
    root = tmp_path / "lfw"
    _lfw_tree(str(root))
    os.remove(root / "Bob" / "Bob_0012.jpg")
    os.remove(root / "Carol" / "Carol_0001.jpg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS_TXT)
    with pytest.raises(FileNotFoundError) as err:
        read_pairs(pairs, root)
    message = str(err.value)
    assert "2 image(s)" in message
    assert "Bob_0012.jpg" in message and "Carol_0001.jpg" in message
    # check_files=False lets a caller resolve paths before the images exist.
    paths, _ = read_pairs(pairs, root, check_files=False)
    assert len(paths) == 8


@pytest.mark.parametrize(
    "text, needle",
    [
        ("2\t2\n" + PAIRS_TXT.split("\n", 1)[1], "announces 2 fold(s)"),  # header vs line count
        ("ten\t300\nAlice\t1\t2\n", "header"),
        ("1\t1\nAlice\t1\t2\nAlice\t1\n", "line 3"),  # two fields
        ("1\t1\nAlice\t0\t2\nAlice\t1\tBob\t1\n", "image number '0'"),
        ("", "empty"),
    ],
)
def test_read_pairs_malformed(tmp_path, text, needle):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(text)
    with pytest.raises(ValueError) as err:
        read_pairs(pairs, tmp_path, check_files=False)
    assert needle in str(err.value)


# --------------------------------------------------------------------------------------------
# .bin


def test_read_bin_plain_data_roundtrip(tmp_path):
    images = [b"\xff\xd8jpeg-a", b"\x89PNG-b", b"c", b"d"]
    issame = [True, False]
    for protocol in range(3, pickle.HIGHEST_PROTOCOL + 1):
        if protocol >= 5:
            # Protocol 5 pickles bytearray natively (BYTEARRAY8); earlier ones need a global.
            images[2] = bytearray(b"c")
        path = tmp_path / f"v{protocol}.bin"
        path.write_bytes(pickle.dumps((images, issame), protocol=protocol))
        got, flags = read_bin(path)
        assert got == [b"\xff\xd8jpeg-a", b"\x89PNG-b", b"c", b"d"]
        assert all(type(g) is bytes for g in got)
        assert flags.dtype == bool and flags.tolist() == [True, False]


def test_read_bin_refuses_python3_low_protocol_bytes(tmp_path):
    # Python 3 pickles bytes at protocols 0-2 through the global _codecs.encode: not plain data.
    path = tmp_path / "p2.bin"
    path.write_bytes(pickle.dumps(([b"a", b"b"], [True]), protocol=2))
    with pytest.raises(ValueError, match="_codecs.encode"):
        read_bin(path)


def test_read_bin_python2_str_images(tmp_path):
    # A Python 2 pickle stores images as str (opcode BINSTRING); insightface's files are such.
    payload = (
        b"\x80\x02(]q\x00(U\x03abcq\x01U\x02deq\x02e]q\x03\x88at."
    )
    path = tmp_path / "py2.bin"
    path.write_bytes(payload)
    images, issame = read_bin(path)
    assert images == [b"abc", b"de"] and issame.tolist() == [True]


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _EvilOpen:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_read_bin_refuses_code_and_does_not_run_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    for evil, name in [(_Evil(marker), "system"), (_EvilOpen(marker), "open")]:
        path = tmp_path / "evil.bin"
        path.write_bytes(pickle.dumps(([evil, b"x"], [True]), protocol=protocol))
        with pytest.raises(ValueError) as err:
            read_bin(path)
        assert name in str(err.value) and "refus" in str(err.value)
        assert not marker.exists(), "the pickle's payload ran"


def test_restricted_unpickler_itself_refuses_globals(tmp_path):
    # The opcode scan runs first; the unpickler is the second line and must refuse on its own.
    import io

    from tfface.data.readers import RestrictedUnpickler

    marker = tmp_path / "pwned"
    data = pickle.dumps(_Evil(marker), protocol=2)
    with pytest.raises(ValueError, match="system"):
        RestrictedUnpickler(io.BytesIO(data)).load()
    assert not marker.exists()


def test_read_bin_refuses_numpy_arrays(tmp_path):
    path = tmp_path / "np.bin"
    path.write_bytes(pickle.dumps(([b"a", b"b"], np.array([True]))))
    with pytest.raises(ValueError, match="numpy"):
        read_bin(path)


@pytest.mark.parametrize(
    "obj, needle",
    [
        (([b"a", b"b", b"c"], [True]), "3 images for 1 pairs"),
        (([b"a", "b"], [True]), "image 1 is a str"),
        (([b"a", b"b"], [2]), "issame[0]"),
        (([b"a", b"b"],), "expected a pickled pair"),
        ({"bins": [b"a"]}, "expected a pickled pair"),
    ],
)
def test_read_bin_validates_structure(tmp_path, obj, needle):
    path = tmp_path / "bad.bin"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(ValueError) as err:
        read_bin(path)
    assert needle in str(err.value)


def test_read_bin_not_a_pickle(tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x00\x01 not a pickle")
    with pytest.raises(ValueError, match="junk.bin"):
        read_bin(path)


# --------------------------------------------------------------------------------------------
# YTF


def _video(root, name, frames):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    for f in frames:
        with open(os.path.join(d, f), "wb") as fh:
            fh.write(b"x")
    return d


def test_read_ytf_splits(tmp_path):
    root = str(tmp_path / "aligned_images_DB")
    a0 = _video(root, "Aaron/0", ["aligned_detect_0.10.jpg", "aligned_detect_0.9.jpg", "notes.txt"])
    a1 = _video(root, "Aaron/1", ["aligned_detect_1.1.jpg"])
    b3 = _video(root, "Bea/3", ["aligned_detect_3.2.jpg", "aligned_detect_3.1.jpg"])
    splits = tmp_path / "splits.txt"
    splits.write_text(
        "split number, pair number, first name, second name, is same\n"
        "1, 1, Aaron/0, Aaron/1, 1\n"
        "1, 2, Aaron/0, Bea/3, 0\n"
        "2, 1, Bea/3, Aaron/1, 0\n"
    )
    videos, issame, folds = read_ytf_splits(splits, root)
    assert issame.tolist() == [True, False, False]
    assert folds.tolist() == [0, 0, 1]
    # Natural order: frame 9 before frame 10; non-image files are not frames.
    assert videos[0][0] == [os.path.join(a0, "aligned_detect_0.9.jpg"), os.path.join(a0, "aligned_detect_0.10.jpg")]
    assert videos[0][1] == [os.path.join(a1, "aligned_detect_1.1.jpg")]
    assert videos[1][1] == [os.path.join(b3, "aligned_detect_3.1.jpg"), os.path.join(b3, "aligned_detect_3.2.jpg")]
    assert videos[2] == (videos[1][1], videos[0][1])


def test_read_ytf_splits_missing_videos_listed(tmp_path):
    root = str(tmp_path / "db")
    _video(root, "Aaron/0", ["f1.jpg"])
    os.makedirs(os.path.join(root, "Bea/2"))  # exists but has no frames
    splits = tmp_path / "splits.txt"
    splits.write_text(
        "header\n1, 1, Aaron/0, Cid/1, 0\n1, 2, Aaron/0, Bea/2, 0\n1, 3, Dan/0, Dan/1, 1\n"
    )
    with pytest.raises(FileNotFoundError) as err:
        read_ytf_splits(splits, root)
    message = str(err.value)
    assert "4 video folder(s)" in message
    for video in ("Cid/1", "Dan/0", "Dan/1"):
        assert video in message
    assert "Bea/2 (no frames)" in message


def test_read_ytf_splits_malformed(tmp_path):
    splits = tmp_path / "splits.txt"
    splits.write_text("header\n1, 1, Aaron/0, Aaron/1, yes\n")
    with pytest.raises(ValueError, match="line 2"):
        read_ytf_splits(splits, tmp_path)
