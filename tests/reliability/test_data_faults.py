"""Issue 15 for ``tfface build``, ``tfface align``, ``tfface synth`` and the one image-input rule:
nothing lost, nothing silently wrong.

Every case checks the message, the exit status (docs/reliability.md: 2 bad input, 3 output in the
way / unwritable / full disk, 4 locked), that a previous good output is intact, and the counts.
Images are tiny and made here; align runs use images smaller than MTCNN's smallest face with
``--split test`` (a centre crop), so no detector is ever built."""
import errno
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from PIL import Image

from tfface import cli, files
from tfface.data import images as images_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------------------------------------
# helpers


def _encode(array, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(h, w, seed):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _bomb_png(width, height):
    """A valid signature and IHDR chunk declaring a huge image, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


def _tree_digest(folder):
    """{relative path: sha1} of every file under ``folder`` (hidden lock files excluded)."""
    out = {}
    for base, _, names in os.walk(folder):
        for name in names:
            if name.endswith(".lock"):
                continue
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha1(f.read()).hexdigest()
    return out


def _good_source(root, identities=("alice", "bob"), per_identity=3, size=24):
    for k, name in enumerate(identities):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_identity):
            (root / name / f"{i}.jpg").write_bytes(_encode(_noise(size, size, 10 * k + i), "JPEG", quality=90))
    return root


def _cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------------------------
# the input rule (tfface.data.images)


def test_input_rule_on_files(tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(_encode(_noise(30, 20, 0), "PNG"))
    assert images_mod.check_image_file(good) == ("png", 30, 20)
    # The pixel cap is applied to the header's declared size, before any decoding, and is
    # configurable: 30 * 20 = 600 pixels.
    with pytest.raises(images_mod.ImageRejected, match="max_pixels=599") as err:
        images_mod.check_image_file(good, max_pixels=599)
    assert err.value.reason == "too_many_pixels" and str(good) in str(err.value)
    assert isinstance(err.value, files.InputError) and err.value.exit_code == files.EXIT_INPUT

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_bomb_png(10_000, 10_000))
    with pytest.raises(images_mod.ImageRejected) as err:
        images_mod.check_image_file(bomb)
    assert err.value.reason == "too_many_pixels" and "10000x10000" in str(err.value)

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # nobody writes: a blocking open or read would wait for ever
    with pytest.raises(images_mod.ImageRejected) as err:
        images_mod.check_image_file(fifo)
    assert err.value.reason == "not_a_file" and "FIFO" in str(err.value)
    with pytest.raises(images_mod.ImageRejected) as err:
        images_mod.read_image(fifo)
    assert err.value.reason == "not_a_file"

    text = tmp_path / "text.jpg"
    text.write_text("hello")
    with pytest.raises(images_mod.ImageRejected) as err:
        images_mod.check_image_bytes(text.read_bytes(), "named.jpg")
    assert err.value.reason == "not_an_image" and "named.jpg" in str(err.value)


def test_identity_index_lists_regular_files_only(tmp_path):
    _good_source(tmp_path / "src", per_identity=2)
    os.mkfifo(tmp_path / "src" / "alice" / "pipe.jpg")
    index = images_mod.identity_index(tmp_path / "src")
    assert sorted(os.path.basename(p) for p in index.paths) == ["0.jpg", "0.jpg", "1.jpg", "1.jpg"]
    assert index.names == ["alice", "bob"] and index.labels == [0, 0, 1, 1]


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 24).reshape(32, 24).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    # The reference: the PNG's own 16-bit samples (read back independently by PIL) scaled to 8 bits.
    with Image.open(path) as im:
        samples = np.asarray(im).astype(np.float64)
    np.testing.assert_array_equal(samples, ramp)
    expected = np.round(samples / 257.0).astype(np.uint8)
    got = images_mod.read_image(path)
    assert got.shape == (32, 24, 3) and got.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], expected)
    assert got.mean() < 200, "a 16-bit ramp must not come back nearly white"


# ---------------------------------------------------------------------------------------------
# tfface build


@pytest.fixture(scope="module")
def garbage_source(tmp_path_factory):
    """Two identities of good JPEGs plus images that decode to garbage or fail; and the reasons
    each bad file must be skipped for."""
    root = tmp_path_factory.mktemp("garbage") / "src"
    _good_source(root)
    bad = root / "alice"
    rgb = _noise(24, 24, 99)
    # A palette BMP: TensorFlow decodes its palette indices as grey levels.
    (bad / "palette.bmp").write_bytes(_encode_image(Image.fromarray(rgb).convert("P"), "BMP"))
    # A 24-bit BMP whose header claims 10x as many rows as the file holds.
    bmp = bytearray(_encode(rgb, "BMP"))
    bmp[22:26] = struct.pack("<i", 240)
    (bad / "lying.bmp").write_bytes(bytes(bmp))
    # A JPEG with 40 bytes of its entropy-coded data zeroed mid-file.
    jpeg = bytearray(_encode(_noise(48, 40, 7), "JPEG", quality=90))
    middle = len(jpeg) // 2
    jpeg[middle : middle + 40] = bytes(40)
    (bad / "damaged.jpg").write_bytes(bytes(jpeg))
    # A JPEG whose frame header claims 480x400 for the data of a 48x40 image.
    small = bytearray(_encode(_noise(48, 40, 8), "JPEG", quality=90))
    sof = small.index(b"\xff\xc0")
    small[sof + 5 : sof + 9] = struct.pack(">HH", 480, 400)
    (bad / "lying.jpg").write_bytes(bytes(small))
    # A file name that is not UTF-8.
    with open(os.path.join(os.fsencode(bad), b"caf\xe9.jpg"), "wb") as f:
        f.write(_encode(_noise(24, 24, 5), "JPEG"))
    os.mkfifo(bad / "pipe.jpg")
    expected = {"alice/palette.bmp": "unsupported_format", "alice/lying.bmp": "corrupt",
                "alice/damaged.jpg": "corrupt", "alice/lying.jpg": "corrupt",
                "alice/caf\\xe9.jpg": "undecodable_name", "alice/pipe.jpg": "not_a_file"}
    return root, expected


def _encode_image(im, fmt):
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def test_palette_bmp_really_decodes_to_garbage(garbage_source):
    """Why palette BMPs are refused: TensorFlow's decode differs from the colours (PIL's)."""
    import tensorflow as tf

    root, _ = garbage_source
    data = (root / "alice" / "palette.bmp").read_bytes()
    assert data[28] == 8, "an 8-bit (palette) BMP"
    with Image.open(io.BytesIO(data)) as im:
        colours = np.asarray(im.convert("RGB")).astype(int)
    decoded = tf.io.decode_image(data, channels=3).numpy().astype(int)
    assert np.abs(decoded - colours).mean() > 10


def test_build_skips_garbage_with_reasons(garbage_source, tmp_path, capsys):
    root, expected = garbage_source
    out = tmp_path / "tfr"
    code, printed, err = _cli(["build", str(root), str(out), "--no-progress", "--workers", "2"], capsys)
    assert code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    got = {r["path"]: r["reason"] for r in stats["skipped_files"]}
    assert got == expected
    assert stats["written"] == 6 and stats["seen"] == 6 + len(expected)
    assert stats["written"] + sum(stats["skipped"].values()) == stats["seen"]
    assert "undecodable_name 1" in printed and "corrupt 3" in printed
    assert files.leftovers(tmp_path) == []


def test_build_without_identity_folders_is_an_input_error(tmp_path, capsys):
    src = tmp_path / "flat"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(_encode(_noise(16, 16, i), "JPEG"))
    code, _, err = _cli(["build", str(src), str(tmp_path / "out"), "--no-progress"], capsys)
    assert code == files.EXIT_INPUT
    assert str(src) in err and "no identity sub-folders" in err and "3 files directly in it" in err
    assert not (tmp_path / "out").exists()


def test_build_failure_during_overwrite_keeps_previous(tmp_path, capsys, monkeypatch):
    src = _good_source(tmp_path / "src")
    out = tmp_path / "tfr"
    # What a build killed with SIGKILL leaves: its staging folder (removed by the next build of
    # the same OUT) and, between the two renames of the swap, the previous build (kept).
    (tmp_path / ".tfr.partial-1-2").mkdir()
    (tmp_path / ".tfr.partial-1-2" / "train-00000-of-00001.tfrecord").write_bytes(b"half")
    (tmp_path / ".tfr.old-1-2").mkdir()
    assert _cli(["build", str(src), str(out), "--no-progress"], capsys)[0] == 0
    assert files.leftovers(tmp_path) == [".tfr.old-1-2"]
    os.rmdir(tmp_path / ".tfr.old-1-2")
    before = _tree_digest(out)
    (src / "carol").mkdir()
    (src / "carol" / "0.jpg").write_bytes(_encode(_noise(24, 24, 77), "JPEG"))

    # The disk fills while stats.json (the last file) is written.
    from tfface.data import build as build_mod

    real = build_mod.write_json

    def full_disk(path, value, indent=2):
        if os.path.basename(path) == "stats.json":
            with files.atomic_file(path) as f:
                f.write(b'{"seen": 1')
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, value, indent=indent)

    monkeypatch.setattr(build_mod, "write_json", full_disk)
    code, _, err = _cli(["build", str(src), str(out), "--overwrite", "--no-progress"], capsys)
    assert code == files.EXIT_OUTPUT and "disk is full" in err and "stats.json" in err
    assert _tree_digest(out) == before, "the previous build must be untouched"
    assert files.leftovers(tmp_path) == [] and json.loads((out / "stats.json").read_text())["written"] == 6


@pytest.mark.slow
def test_build_full_disk_in_a_subprocess_keeps_previous(tmp_path):
    """A real size limit (RLIMIT_FSIZE, as a full disk) while the shards are written. Slow: a
    fresh process imports TensorFlow."""
    from tfface.data.build import build_tfrecords

    src = _good_source(tmp_path / "src", per_identity=4, size=64)
    out = tmp_path / "tfr"
    build_tfrecords(src, out, progress=False)
    env = dict(os.environ, PYTHONPATH=ROOT)
    before = _tree_digest(out)
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from tfface import cli
        sys.exit(cli.main(["build", {str(src)!r}, {str(out)!r}, "--overwrite", "--no-progress",
                           "--shards", "1"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == files.EXIT_OUTPUT, done.stderr
    assert "tfface build: cannot write" in done.stderr and "Traceback" not in done.stderr
    assert _tree_digest(out) == before
    assert files.leftovers(tmp_path) == []


def test_build_output_in_the_way(tmp_path, capsys):
    src = _good_source(tmp_path / "src", per_identity=1)
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a build")
    for out, words in ((a_file, "is a file"), (tmp_path / "link", "symbolic link"),
                       (a_file / "sub", "is a file"), (other, "not a build")):
        code, _, err = _cli(["build", str(src), str(out), "--overwrite", "--no-progress"], capsys)
        assert code == files.EXIT_OUTPUT, (out, err)
        assert words in err and str(out) in err
    assert a_file.read_text() == "keep me" and (other / "notes.txt").read_text() == "not a build"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 555")
def test_build_unwritable_parent(tmp_path, capsys):
    src = _good_source(tmp_path / "src", per_identity=1)
    parent = tmp_path / "readonly"
    parent.mkdir()
    os.chmod(parent, 0o555)
    try:
        code, _, err = _cli(["build", str(src), str(parent / "tfr"), "--no-progress"], capsys)
    finally:
        os.chmod(parent, 0o755)
    assert code == files.EXIT_OUTPUT and "permission denied" in err and str(parent) in err


def test_build_locked(tmp_path, capsys):
    src = _good_source(tmp_path / "src", per_identity=1)
    out = tmp_path / "tfr"
    with files.DirLock.beside(out, "another tfface build"):
        code, _, err = _cli(["build", str(src), str(out), "--no-progress"], capsys)
    assert code == files.EXIT_BUSY and "another tfface build" in err and f"pid {os.getpid()}" in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# tfface align (images below MTCNN's smallest face: test split -> centre crop, no detector)


def _tiny_source(root, n=3):
    os.makedirs(root / "a", exist_ok=True)
    for i in range(n):
        Image.fromarray(_noise(16, 16, i)).save(root / "a" / f"{i}.png")
    return root


def test_align_settings_recorded_and_mismatch_refused(tmp_path, capsys):
    src = _tiny_source(tmp_path / "src")
    dst = tmp_path / "dst"
    base = ["align", str(src), str(dst), "--split", "test", "--quiet", "--ext", "png"]
    code, out, err = _cli(base + ["--size", "32"], capsys)
    assert code == 0, err
    record = json.loads((dst / "align_settings.json").read_text())["settings"]
    assert record["size"] == [32, 32] and record["mode"] == "arcface" and record["ext"] == "png"
    before = _tree_digest(dst)

    # Resuming with another size or mode is refused, naming both values.
    code, _, err = _cli(base + ["--size", "48", "--mode", "facenet"], capsys)
    assert code == files.EXIT_OUTPUT
    assert "size=[32, 32]" in err and "size=[48, 48]" in err and "mode='arcface'" in err and "--overwrite" in err
    assert _tree_digest(dst) == before

    # Same settings: resumed (nothing rewritten).
    (src / "a" / "3.png").write_bytes(_encode(_noise(16, 16, 3), "PNG"))
    code, out, _ = _cli(base + ["--size", "32"], capsys)
    assert code == 0 and "existing 3" in out

    # --overwrite clears DST first: no 32x32 crop is left beside the 48x48 ones.
    code, _, err = _cli(base + ["--size", "48", "--overwrite"], capsys)
    assert code == 0, err
    sizes = {Image.open(dst / "a" / f"{i}.png").size for i in range(4)}
    assert sizes == {(48, 48)}
    assert json.loads((dst / "align_settings.json").read_text())["settings"]["size"] == [48, 48]


def test_align_refuses_folder_it_did_not_make(tmp_path, capsys):
    src = _tiny_source(tmp_path / "src", n=1)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "mine.txt").write_text("precious")
    code, _, err = _cli(["align", str(src), str(dst), "--split", "test", "--quiet"], capsys)
    assert code == files.EXIT_OUTPUT and "align_settings.json" in err and "mine.txt" in err
    assert (dst / "mine.txt").read_text() == "precious"


def test_align_input_rule_fifo_bomb_and_cap(tmp_path, capsys):
    src = _tiny_source(tmp_path / "src", n=2)
    os.mkfifo(src / "a" / "pipe.jpg")
    (src / "a" / "bomb.png").write_bytes(_bomb_png(10_000, 10_000))
    dst = tmp_path / "dst"
    code, out, err = _cli(["align", str(src), str(dst), "--split", "test", "--quiet", "--ext", "png"], capsys)
    assert code == 0, err
    report = json.loads((dst / "align_report.json").read_text())
    unreadable = {e["path"]: e["error"] for e in report["lists"]["unreadable"]}
    assert unreadable["a/pipe.jpg"].startswith("not_a_file")
    assert unreadable["a/bomb.png"].startswith("too_many_pixels") and "10000x10000" in unreadable["a/bomb.png"]
    assert report["aligned"] == 2 and report["seen"] == 4 and report["unaccounted"] == 0

    # A file name that is not UTF-8 is aligned, and printed with its byte escaped.
    with open(os.path.join(os.fsencode(src / "a"), b"caf\xe9.png"), "wb") as f:
        f.write(_bomb_png(20_000, 20_000))
    code, out, err = _cli(["align", str(src), str(dst), "--split", "test", "--quiet", "--ext", "png"], capsys)
    assert code == 0, err
    assert "unreadable: a/caf\\xe9.png: too_many_pixels" in out

    # The cap is configurable: 16x16 = 256 pixels > 200.
    dst2 = tmp_path / "dst2"
    code, out, _ = _cli(["align", str(src), str(dst2), "--split", "test", "--quiet", "--max-pixels", "200"], capsys)
    report = json.loads((dst2 / "align_report.json").read_text())
    assert code == 0 and report["aligned"] == 0 and report["skipped"]["unreadable"] == 5
    assert "max_pixels=200" in out


def test_align_output_in_the_way_and_locked(tmp_path, capsys):
    src = _tiny_source(tmp_path / "src", n=1)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    for dst, words in ((a_file, "is a file"), (tmp_path / "link", "symbolic link"), (a_file / "sub", "is a file")):
        code, _, err = _cli(["align", str(src), str(dst), "--split", "test", "--quiet"], capsys)
        assert code == files.EXIT_OUTPUT and str(dst) in err, (dst, err)
    dst = tmp_path / "dst"
    with files.DirLock(dst, "another tfface align"):
        code, _, err = _cli(["align", str(src), str(dst), "--split", "test", "--quiet"], capsys)
    assert code == files.EXIT_BUSY and "another tfface align" in err
    assert os.listdir(dst) == [files.LOCK_NAME]


_FAULT_WORKER = '''
import os, signal
from tfface.align.folder import _Job, _write_image
from tfface.data.images import read_image


class KillOnMarked:
    """An align worker job that centre-crops, and SIGKILLs its own process on an image whose
    name holds 'kill' (as the out-of-memory killer would)."""

    def __init__(self, settings):
        self.job = _Job(settings)

    def __call__(self, tasks):
        rows = []
        for rel, src_path, out_path, _ in tasks:
            with open(os.path.join(os.environ["FAULT_LOG"], rel.replace("/", "_")), "a") as f:
                f.write("x")
            if "kill" in rel:
                os.kill(os.getpid(), signal.SIGKILL)
            face = self.job.aligner.centre_crop(read_image(src_path))
            _write_image(face.image, out_path, "png", 95)
            rows.append((rel, "centre_crop", None))
        return rows
'''


def test_align_dead_worker_is_noticed_and_retried_once(tmp_path, monkeypatch):
    from tfface.align.folder import align_folder

    helper = tmp_path / "helper"
    helper.mkdir()
    (helper / "fault_worker_mod.py").write_text(_FAULT_WORKER)
    monkeypatch.syspath_prepend(str(helper))  # the spawned workers inherit sys.path
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("FAULT_LOG", str(log))
    import fault_worker_mod

    src = _tiny_source(tmp_path / "src", n=5)
    Image.fromarray(_noise(16, 16, 9)).save(src / "a" / "kill.png")

    def alarm(*_):
        raise TimeoutError("align waited on a dead worker")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(240)
    try:
        report = align_folder(str(src), str(tmp_path / "dst"), split="test", ext="png", workers=2, batch_size=2,
                              progress=False, worker_factory=fault_worker_mod.KillOnMarked)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert report["seen"] == 6 and report["aligned"] == 5 and report["unaccounted"] == 0
    assert report["skipped"]["error"] == 1
    (entry,) = report["lists"]["error"]
    assert entry["path"] == "a/kill.png" and "died" in entry["error"]
    # Tried in its batch, then once alone: twice in all.
    assert (log / "a_kill.png").read_text() == "xx"
    # Workers ended with the dead one leave no temporary file behind.
    assert sorted(os.listdir(tmp_path / "dst" / "a")) == [f"{i}.png" for i in range(5)]


# ---------------------------------------------------------------------------------------------
# tfface synth


_SYNTH = ["--identities", "3", "--test-identities", "0", "--folds", "0", "--min-images", "2", "--max-images", "2",
          "--workers", "1"]


def test_synth_overwrite_replaces_whole_folder_and_failure_keeps_old(tmp_path, capsys, monkeypatch):
    out = tmp_path / "synth"
    assert _cli(["synth", str(out)] + _SYNTH, capsys)[0] == 0
    assert sorted(os.listdir(out / "train")) == ["id_00000", "id_00001", "id_00002"]
    code, _, err = _cli(["synth", str(out)] + _SYNTH, capsys)
    assert code == files.EXIT_OUTPUT and "--overwrite" in err

    fewer = ["--identities", "2"] + _SYNTH[2:]
    assert _cli(["synth", str(out), "--overwrite"] + fewer, capsys)[0] == 0
    assert sorted(os.listdir(out / "train")) == ["id_00000", "id_00001"], "no old identity left beside the new"
    before = _tree_digest(out)

    from tfface.commands import synth as synth_command

    real = synth_command.generate_synthetic

    def fails_half_way(out_dir, **kw):
        real(out_dir, **kw)
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(out_dir, "info.json"))

    monkeypatch.setattr(synth_command, "generate_synthetic", fails_half_way)
    code, _, err = _cli(["synth", str(out), "--overwrite"] + _SYNTH, capsys)
    assert code == files.EXIT_OUTPUT and "disk is full" in err
    assert _tree_digest(out) == before and files.leftovers(tmp_path) == []


def test_synth_refuses_to_overwrite_other_folders_and_locked(tmp_path, capsys):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    code, _, err = _cli(["synth", str(other), "--overwrite"] + _SYNTH, capsys)
    assert code == files.EXIT_OUTPUT and "not made by tfface synth" in err
    assert (other / "holiday.jpg").read_bytes() == b"precious"
    out = tmp_path / "synth"
    with files.DirLock.beside(out, "another tfface synth"):
        code, _, err = _cli(["synth", str(out)] + _SYNTH, capsys)
    assert code == files.EXIT_BUSY and "another tfface synth" in err and not out.exists()
