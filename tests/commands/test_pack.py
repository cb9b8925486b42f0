"""``tfface pack``: an LFW-layout pair set -> an insightface .bin that tfface's restricted reader,
a plain ``pickle.load`` (insightface's ``load_bin``) and the ``lfw_bin`` protocol all read, with
no global in the pickle."""
import pickle
import pickletools

import numpy as np
import pytest
from PIL import Image

from tfface import cli
from tfface.data.readers import read_bin


def lfw_layout(root, rng):
    names = [f"p{i}" for i in range(4)]
    for n in names:
        (root / n).mkdir(parents=True)
        for j in (1, 2):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                root / n / f"{n}_{j:04d}.png")
    lines = ["2\t2"]
    for fold in range(2):
        lines += [f"{n}\t1\t2" for n in names[2 * fold:2 * fold + 2]]
        lines += [f"{names[i]}\t1\t{names[(i + 1) % 4]}\t2" for i in range(2 * fold, 2 * fold + 2)]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return names


def no_globals(path):
    ops = {op.name for op, _, _ in pickletools.genops(open(path, "rb").read())}
    return not ops & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "BUILD"}


def test_pack_pairs_txt_and_protocol(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "lfw"
    lfw_layout(root, rng)
    out = tmp_path / "lfw.bin"
    assert cli.main(["pack", str(out), "--pairs", str(root / "pairs.txt"), "--ext", "png"]) == 0
    assert "8 pairs" in capsys.readouterr().out
    assert no_globals(out)
    images, issame = read_bin(out)
    with open(out, "rb") as f:
        bins, flags = pickle.load(f, encoding="bytes")
    assert bins == images and flags == issame.tolist()
    assert issame.tolist() == [True, True, False, False] * 2
    assert images[0] == (root / "p0" / "p0_0001.png").read_bytes()
    assert images[5] == (root / "p1" / "p1_0002.png").read_bytes()  # p0-1 x p1-2 mismatched
    # Through the protocol: same content; existing OUT needs --overwrite (exit 3: path in the way).
    assert cli.main(["pack", str(out), "--protocol", "lfw", "--data", str(root),
                     "--set-option", "lfw.ext=png"]) == 3
    assert cli.main(["pack", str(out), "--protocol", "lfw", "--data", str(root),
                     "--set-option", "lfw.ext=png", "--overwrite"]) == 0
    assert read_bin(out)[0] == images
    # A .bin protocol round-trips too.
    again = tmp_path / "again" / "lfw.bin"
    assert cli.main(["pack", str(again), "--protocol", "lfw_bin", "--data", str(out)]) == 0
    assert open(again, "rb").read() == open(out, "rb").read()


def test_pack_resized_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(1)
    root = tmp_path / "lfw"
    lfw_layout(root, rng)
    out = tmp_path / "small.bin"
    assert cli.main(["pack", str(out), "--pairs", str(root / "pairs.txt"), "--ext", "png",
                     "--size", "8"]) == 0
    images, _ = read_bin(out)
    assert images[0][:2] == b"\xff\xd8"  # JPEG
    assert Image.open(__import__("io").BytesIO(images[0])).size == (8, 8)
    capsys.readouterr()
    assert cli.main(["pack", str(tmp_path / "x.bin")]) == 2
    assert cli.main(["pack", str(tmp_path / "x.bin"), "--pairs", str(root / "pairs.txt")]) == 2
    assert "do not exist" in capsys.readouterr().err  # .jpg images are not there
    assert cli.main(["pack", str(tmp_path / "x.bin"), "--protocol", "nope", "--data",
                     str(root)]) == 2
    assert "known:" in capsys.readouterr().err
