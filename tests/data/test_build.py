"""tfface build: a folder of deliberately bad files is checked file by file; every bad entry is
skipped with the right reason and listed, written + skipped == seen, the good ones are readable
back byte for byte, labels follow sorted identity names."""
import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfface.commands import build as build_command
from tfface.data import build as build_mod
from tfface.data.build import build_tfrecords, header_size
from tfface.data.synthetic import generate_synthetic
from tfface.data.tfrecord import parse_example
from tfface.files import InputError, OutputError

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _png(width, height, colour=(10, 200, 30)):
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png(width, height):
    # A valid signature and IHDR chunk (with a correct CRC) declaring a huge image, and no data:
    # only reading the header can tell its size.
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    base = tmp_path_factory.mktemp("build")
    generate_synthetic(base / "synth", num_identities=5, num_test_identities=0, min_images=2, max_images=6,
                       folds=0, seed=1)
    src = base / "src"
    shutil.copytree(base / "synth" / "train", src)
    bad = src / "id_00000"
    good_jpeg = (bad / "id_00000_0001.jpg").read_bytes()
    expected = {}

    def add(name, reason):
        expected[f"id_00000/{name}"] = reason

    (bad / "text.jpg").write_text("this is a text file named like an image\n")
    add("text.jpg", "not_an_image")
    (bad / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    add("truncated.jpg", "corrupt")
    png = _png(40, 30)
    (bad / "truncated.png").write_bytes(png[: len(png) - 30])
    add("truncated.png", "corrupt")
    (bad / "zero.jpg").write_bytes(b"")
    add("zero.jpg", "empty")
    (bad / "folder.jpg").mkdir()
    add("folder.jpg", "not_a_file")
    os.symlink(bad / "missing.jpg", bad / "dangling.jpg")
    add("dangling.jpg", "unreadable")
    (bad / "bomb.png").write_bytes(_bomb_png(100_000, 100_000))
    add("bomb.png", "too_many_pixels")
    outside = base / "outside.jpg"
    outside.write_bytes(good_jpeg)
    os.symlink(outside, bad / "escape.jpg")
    add("escape.jpg", "outside_source")
    (bad / "anim.gif").write_bytes(b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 20)
    add("anim.gif", "unsupported_format")
    (src / "README.txt").write_text("not in an identity folder")
    expected["README.txt"] = "outside_identity_folder"
    if not IS_ROOT:
        # Root reads through chmod 000, so this case only exists for other users; the dangling
        # symlink above covers "unreadable" for everyone.
        (bad / "locked.jpg").write_bytes(good_jpeg)
        os.chmod(bad / "locked.jpg", 0)
        add("locked.jpg", "unreadable")
    # Good files in other formats, and a symlink that stays inside SRC (allowed).
    (bad / "good.png").write_bytes(png)
    os.symlink(bad / "id_00000_0002.jpg", bad / "inside_link.jpg")
    return base, src, expected


def _independent_entries(src):
    """Everything a user would call 'a file in SRC': entries of identity folders (the build also
    reports directories named like images), plus files directly in SRC."""
    n = 0
    for name in os.listdir(src):
        p = os.path.join(src, name)
        if os.path.isdir(p):
            n += len(os.listdir(p))
        else:
            n += 1
    return n


@pytest.fixture(scope="module")
def built(source):
    base, src, _ = source
    out = base / "tfr"
    stats = build_tfrecords(src, out, shards=3, workers=2, progress=False)
    return out, stats


def test_every_bad_file_skipped_with_its_reason(source, built):
    _, src, expected = source
    out, stats = built
    got = {s["path"]: s["reason"] for s in stats["skipped_files"]}
    assert got == expected
    counts = {}
    for reason in expected.values():
        counts[reason] = counts.get(reason, 0) + 1
    assert stats["skipped"] == counts
    assert stats["seen"] == _independent_entries(src)
    assert stats["written"] + sum(stats["skipped"].values()) == stats["seen"]
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk["seen"] == stats["seen"] and on_disk["skipped"] == stats["skipped"]
    assert all(s["detail"] for s in on_disk["skipped_files"])


def test_good_records_read_back_exactly(source, built):
    _, src, _ = source
    out, stats = built
    labels = json.loads((out / "labels.json").read_text())
    names = sorted(d for d in os.listdir(src) if os.path.isdir(src / d))
    assert labels == {n: i for i, n in enumerate(names)}
    shards = sorted(out.glob("*.tfrecord"))
    assert [s.name for s in shards] == [f"train-{i:05d}-of-00003.tfrecord" for i in range(3)]
    seen_files = []
    for record in tf.data.TFRecordDataset([str(s) for s in shards]):
        ex = parse_example(record)
        rel = ex["filename"].numpy().decode()
        identity = ex["identity"].numpy().decode()
        data = ex["image"].numpy()
        assert rel.split("/")[0] == identity
        assert int(ex["label"]) == labels[identity]
        assert hashlib.sha256(data).digest() == hashlib.sha256((src / rel).read_bytes()).digest()
        image = tf.io.decode_image(data, channels=3).numpy()
        assert image.ndim == 3 and image.shape[2] == 3
        seen_files.append(rel)
    assert len(seen_files) == stats["written"] == len(set(seen_files))
    assert "id_00000/good.png" in seen_files and "id_00000/inside_link.jpg" in seen_files
    # Batched parsing gives vectors.
    batch = next(iter(tf.data.TFRecordDataset(str(shards[0])).batch(2)))
    assert parse_example(batch)["label"].shape == (2,)


def test_same_build_same_bytes(source, built, tmp_path):
    _, src, _ = source
    out, _ = built
    again = build_tfrecords(src, tmp_path / "again", shards=3, workers=1, progress=False)
    for name in again["shards"]:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()


def test_min_images_drops_identities(source, tmp_path):
    _, src, _ = source
    sizes = {d: len([f for f in os.listdir(src / d) if f.startswith(d)]) for d in os.listdir(src) if os.path.isdir(src / d)}
    threshold = sorted(set(sizes.values()))[1]
    stats = build_tfrecords(src, tmp_path / "min", min_images=threshold, progress=False)
    dropped = {d for d, n in sizes.items() if d != "id_00000" and n < threshold}
    assert dropped and dropped <= set(stats["dropped_identities"])
    assert stats["skipped"]["identity_below_min_images"] >= sum(sizes[d] for d in dropped)
    assert stats["written"] + sum(stats["skipped"].values()) == stats["seen"]
    labels = json.loads((tmp_path / "min" / "labels.json").read_text())
    assert not dropped & set(labels) and list(labels.values()) == list(range(len(labels)))
    ipi = stats["images_per_identity"]
    assert ipi["min"] >= threshold and stats["identities"] == len(labels)


def test_refuses_to_mix_builds_and_bad_arguments(source, built, tmp_path):
    _, src, _ = source
    out, _ = built
    with pytest.raises(OutputError, match="overwrite"):
        build_tfrecords(src, out, progress=False)
    with pytest.raises(ValueError, match="inside the source"):
        build_tfrecords(src, src / "id_00001" / "out", progress=False)
    with pytest.raises(InputError, match="not a directory"):
        build_tfrecords(tmp_path / "nope", tmp_path / "o", progress=False)


def test_header_sizes_match_pil():
    for fmt, size in (("JPEG", (37, 21)), ("PNG", (5, 80)), ("BMP", (17, 9))):
        buf = io.BytesIO()
        Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(buf, fmt)
        data = buf.getvalue()
        kind = build_mod.sniff_format(data)
        assert kind == fmt.lower()
        assert header_size(data, kind) == (size[1], size[0])
    # Progressive JPEG with EXIF-like APP segments before the frame header.
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG", progressive=True, exif=b"Exif\x00\x00" + b"\x00" * 500)
    assert header_size(buf.getvalue(), "jpeg") == (48, 64)


def test_cli(source, tmp_path, capsys):
    _, src, _ = source
    parser = argparse.ArgumentParser()
    build_command.add_arguments(parser)
    args = parser.parse_args([str(src), str(tmp_path / "cli"), "--shards", "2", "--no-progress", "--max-pixels", "1500"])
    assert build_command.run(args) == 0
    printed = capsys.readouterr().out
    stats = json.loads((tmp_path / "cli" / "stats.json").read_text())
    # 112x112 > 1500 pixels: every synthetic image is now a decode bomb, the 40x30 PNG is not.
    assert stats["written"] == 1 and stats["skipped"]["too_many_pixels"] > 10
    assert "skipped" in printed and "too_many_pixels" in printed
    assert build_command.run(args) == 3, "building into an existing build must refuse without --overwrite"
