"""``tfface align SRC DST`` on a small folder: two faces, a faceless photo, a corrupt file and a
non-image; counts, the JSON report, the test-split fallbacks and resuming."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfface import cli
from tfface.align.folder import align_folder, load_landmarks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def src(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("src")
    os.makedirs(root / "people")
    os.makedirs(root / "things")
    Image.fromarray(photos["astronaut"]).save(root / "people" / "astronaut.jpg", quality=95)
    Image.fromarray(photos["grace_hopper"]).save(root / "people" / "grace.png")
    Image.fromarray(photos["coffee"]).save(root / "things" / "coffee.jpg", quality=90)
    (root / "things" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (root / "things" / "notes.txt").write_text("not an image")
    return str(root)


def _mtimes(folder):
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(folder)
        for f in files
        if not f.endswith(".json") and f != ".tfface.lock"
    }


def test_train_split_counts_report_and_resume(src, tmp_path, detector):
    dst = str(tmp_path / "aligned")
    # Batches of 3: a corrupt file and a faceless photo share a batch with a face.
    report = align_folder(src, dst, split="train", progress=False, detector=detector, batch_size=3)
    assert report["settings"]["size"] == [112, 112] and report["settings"]["mode"] == "arcface"
    assert report["seen"] == 4
    assert report["aligned"] == 2 and report["methods"] == {"detected": 2, "given_landmarks": 0, "centre_crop": 0}
    assert report["skipped"] == {"no_face": 1, "unreadable": 1, "name_collision": 0, "error": 0}
    assert report["lists"]["no_face"] == ["things/coffee.jpg"]
    assert [e["path"] for e in report["lists"]["unreadable"]] == ["things/corrupt.jpg"]
    assert report["not_images_list"] == ["things/notes.txt"] and report["unaccounted"] == 0
    with open(os.path.join(dst, "align_report.json")) as f:
        assert json.load(f) == report
    for name in ("people/astronaut.jpg", "people/grace.jpg"):
        with Image.open(os.path.join(dst, name)) as im:
            assert im.format == "JPEG" and im.size == (112, 112)
    assert not os.path.exists(os.path.join(dst, "things", "coffee.jpg"))

    # Second run: the existing outputs are skipped, not rewritten; the failures are retried and
    # reported again.
    before = _mtimes(dst)
    again = align_folder(src, dst, split="train", progress=False, detector=detector)
    assert again["existing"] == 2 and again["aligned"] == 0 and again["seen"] == 4
    assert again["skipped"]["no_face"] == 1 and again["skipped"]["unreadable"] == 1
    assert _mtimes(dst) == before


def test_test_split_fallbacks_through_the_command(src, tmp_path, capsys, photos):
    dst = str(tmp_path / "aligned_test")
    # A pre-existing output of an interrupted run with the same settings (its record says so):
    # resumed, not recomputed (it stays black).
    os.makedirs(os.path.join(dst, "people"))
    record = {"mode": "facenet", "size": [160, 160], "margin": 32, "ext": "png", "quality": 95}
    with open(os.path.join(dst, "align_settings.json"), "w") as f:
        json.dump({"settings": record}, f)
    black = os.path.join(dst, "people", "astronaut.png")
    Image.fromarray(np.zeros((160, 160, 3), np.uint8)).save(black)
    landmarks = tmp_path / "landmarks.tsv"
    # coffee has no face: the landmarks given for it are used (a made-up face on the cup).
    landmarks.write_text("# path\tx1 y1 ... x5 y5\nthings/coffee.jpg\t250 150 330 150 290 190 260 230 320 230\n")
    args = ["align", src, dst, "--split", "test", "--mode", "facenet", "--ext", "png", "--quiet"]
    assert cli.main(args + ["--landmarks", str(landmarks)]) == 0
    out = capsys.readouterr().out
    with open(os.path.join(dst, "align_report.json")) as f:
        report = json.load(f)
    assert report["seen"] == 4 and report["existing"] == 1
    assert report["methods"] == {"detected": 1, "given_landmarks": 1, "centre_crop": 0}
    assert report["lists"]["given_landmarks"] == ["things/coffee.jpg"]
    assert report["skipped"]["unreadable"] == 1 and report["unaccounted"] == 0
    assert "given landmarks 1" in out and "things/corrupt.jpg" in out
    assert np.asarray(Image.open(black)).max() == 0
    with Image.open(os.path.join(dst, "things", "coffee.png")) as im:
        assert im.size == (160, 160)

    # Without landmarks the faceless image falls back to a centre crop: coffee is 600×400, so the
    # square covering 87.5% of its height is 350 px, at (125, 25).
    os.remove(os.path.join(dst, "things", "coffee.png"))
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    with open(os.path.join(dst, "align_report.json")) as f:
        report = json.load(f)
    assert report["existing"] == 2 and report["methods"]["centre_crop"] == 1
    assert report["lists"]["centre_crop"] == ["things/coffee.jpg"] and "centre_crop: things/coffee.jpg" in out
    with Image.open(os.path.join(src, "things", "coffee.jpg")) as original:
        expected = np.asarray(original.convert("RGB").resize((160, 160), Image.BILINEAR, box=(125, 25, 475, 375)))
    with Image.open(os.path.join(dst, "things", "coffee.png")) as im:
        np.testing.assert_array_equal(np.asarray(im), expected)

    # Everything written: a resumed run has nothing to detect. Run it as the real console command.
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "tfface.cli"] + args, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "seen 4; aligned 0" in done.stdout and "existing 3" in done.stdout
    assert "unreadable: things/corrupt.jpg" in done.stdout


def test_bad_arguments_are_reported(tmp_path, capsys):
    assert cli.main(["align", str(tmp_path / "nope"), str(tmp_path / "out"), "--quiet"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["align", str(tmp_path), str(tmp_path / "out"), "--size", "big"]) == 2
    assert "--size 'big'" in capsys.readouterr().err
    assert cli.main(["align", str(tmp_path), str(tmp_path / "out"), "--detect-size", "big"]) == 2
    assert "--detect-size 'big'" in capsys.readouterr().err
    assert cli.main(["align", str(tmp_path), str(tmp_path / "out"), "--detect-size", "30"]) == 2
    assert "detect_size=30" in capsys.readouterr().err


def test_load_landmarks_formats(tmp_path):
    pts = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    js = tmp_path / "lm.json"
    js.write_text(json.dumps({"a/b.jpg": pts, "./c d.jpg": sum(pts, [])}))
    got = load_landmarks(str(js))
    assert sorted(got) == ["a/b.jpg", "c d.jpg"]
    np.testing.assert_array_equal(got["c d.jpg"], pts)
    tsv = tmp_path / "lm.tsv"
    tsv.write_text("x/with space.jpg\t1 2 3 4 5 6 7 8 9 10\n\ny.jpg 1 2 3 4 5 6 7 8 9 10\n")
    got = load_landmarks(str(tsv))
    assert sorted(got) == ["x/with space.jpg", "y.jpg"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("y.jpg 1 2 3\n")
    with pytest.raises(ValueError, match="line 1 has 4 fields"):
        load_landmarks(str(bad))


@pytest.mark.slow
def test_parallel_workers(src, tmp_path):
    # Each worker is a fresh process that imports TensorFlow and builds its own MTCNN: slow.
    dst = str(tmp_path / "parallel")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "tfface.cli", "align", src, dst, "--workers", "2", "--quiet"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    with open(os.path.join(dst, "align_report.json")) as f:
        report = json.load(f)
    assert report["aligned"] == 2 and report["skipped"]["no_face"] == 1 and report["skipped"]["unreadable"] == 1
