"""``tfface embed`` on real photos (two faces, two faceless, a corrupt and an empty file): the
boxes against MTCNN run directly, every photo accounted for, the embeddings of the aligned crops,
the written .npz and JSON listing."""
import hashlib
import json
import os

import numpy as np
import pytest

from tfface import cli
from tfface.search.model import FaceEmbedder
from tfface.search.photos import embed_photos, list_photos, read_embeddings


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@pytest.fixture(scope="module")
def embedder(tiny_model_path):
    return FaceEmbedder(tiny_model_path)


@pytest.fixture(scope="module")
def embedded(embedder, photo_dir, detector):
    photos, others = list_photos([photo_dir])
    assert others == [os.path.join(photo_dir, "notes.txt")]
    return embed_photos(embedder, photos, all_faces=True, detector=detector)


def test_every_photo_is_accounted_for(embedded, photo_dir):
    p = lambda *parts: os.path.join(photo_dir, *parts)  # noqa: E731
    assert embedded.seen == 6
    assert sorted(embedded.faceless) == [p("things", "chelsea.png"), p("things", "coffee.png")]
    assert {s["file"]: s["reason"] for s in embedded.skipped} == {
        p("things", "corrupt.jpg"): "corrupt", p("things", "empty.jpg"): "empty"}
    with_faces = {f["file"] for f in embedded.faces}
    assert with_faces == {p("people", "astronaut.png"), p("people", "grace_hopper.png")}
    counts = embedded.counts()
    assert counts["with_faces"] + counts["faceless"] + counts["skipped"] == counts["seen"]


def test_main_face_boxes_match_mtcnn_run_directly(embedded, photo_arrays, detector, photo_dir):
    for name in ("astronaut", "grace_hopper"):
        found = detector.detect_faces(photo_arrays[name], box_format="xyxy")
        best = max(found, key=lambda d: (d["box"][2] - d["box"][0]) * (d["box"][3] - d["box"][1]))
        row = next(f for f in embedded.faces
                   if f["file"] == os.path.join(photo_dir, "people", f"{name}.png") and f["face"] == 0)
        assert iou(row["box"], best["box"]) > 0.8, (name, row["box"], best["box"])
        assert row["confidence"] > 0.9


def test_embeddings_are_the_normalised_model_outputs_of_the_aligned_crops(
        embedded, embedder, tiny_model, photo_arrays, detector, photo_dir):
    from tfface.align import FaceAligner

    aligner = FaceAligner(mode="arcface", size=112, detector=detector)
    for name in ("astronaut", "grace_hopper"):
        crop = aligner.align(photo_arrays[name]).image
        ref = unit(np.asarray(tiny_model(crop[None].astype(np.float32), training=False)))
        row = next(i for i, f in enumerate(embedded.faces)
                   if f["file"] == os.path.join(photo_dir, "people", f"{name}.png") and f["face"] == 0)
        np.testing.assert_allclose(embedded.embeddings[row], ref[0], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embedded.embeddings, axis=1), 1.0, atol=1e-5)


def test_command_writes_npz_and_listing(tmp_path, photo_dir, tiny_model_path, embedded, capsys):
    out = tmp_path / "emb.npz"
    things = os.path.join(photo_dir, "things")
    names = [os.path.join(photo_dir, "people", "astronaut.png"), os.path.join(things, "coffee.png"),
             os.path.join(things, "corrupt.jpg"), os.path.join(things, "empty.jpg")]
    assert cli.main(["embed", *names, "--model", tiny_model_path, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "faceless 1" in printed and "skipped 2" in printed and "corrupt 1" in printed
    data = read_embeddings(out)
    listing = json.loads((tmp_path / "emb.json").read_text())
    assert listing["counts"]["seen"] == 4 and listing["counts"]["faces"] == 1  # main face only
    assert listing["faceless"] == [names[1]]
    assert sorted(s["reason"] for s in listing["skipped"]) == ["corrupt", "empty"]
    assert [f["file"] for f in listing["faces"]] == data["files"].tolist() == [names[0]]
    with open(tiny_model_path, "rb") as f:
        assert data["model"]["hash"] == hashlib.sha256(f.read()).hexdigest()
    j = next(i for i, f in enumerate(embedded.faces) if f["file"] == names[0] and f["face"] == 0)
    np.testing.assert_allclose(data["boxes"][0], embedded.faces[j]["box"], atol=1e-3)
    np.testing.assert_allclose(data["embeddings"][0], embedded.embeddings[j], atol=1e-5)


def test_bad_model_and_output_are_reported(tmp_path, photo_dir, capsys):
    assert cli.main(["embed", photo_dir, "--model", str(tmp_path / "none.keras"), "--out", str(tmp_path / "e.npz")]) == 2
    assert "none.keras" in capsys.readouterr().err
    assert cli.main(["embed", photo_dir, "--model", "x.keras", "--out", str(tmp_path / "e.txt")]) == 2
    assert ".npz" in capsys.readouterr().err


def test_enrol_and_search_real_photos(tmp_path, photo_dir, tiny_model_path, embedded, capsys):
    gallery = tmp_path / "gallery"
    for person, photo in (("ann", "astronaut"), ("grace", "grace_hopper")):
        os.makedirs(gallery / person)
        os.symlink(os.path.join(photo_dir, "people", f"{photo}.png"), gallery / person / f"{photo}.png")
    index = tmp_path / "index"
    assert cli.main(["enrol", str(gallery), "--model", tiny_model_path, "--index", str(index),
                     "--threshold", "0.5", "--quiet"]) == 0
    meta = json.loads((index / "index.json").read_text())
    assert meta["identities"] == ["ann", "grace"] and meta["counts"] == [1, 1]
    row = {os.path.basename(f["file"]): i for i, f in enumerate(embedded.faces) if f["face"] == 0}
    templates = np.load(index / meta["files"]["templates"])
    np.testing.assert_allclose(templates[0], embedded.embeddings[row["astronaut.png"]], atol=1e-5)
    np.testing.assert_allclose(templates[1], embedded.embeddings[row["grace_hopper.png"]], atol=1e-5)
    capsys.readouterr()
    astronaut = os.path.join(photo_dir, "people", "astronaut.png")
    assert cli.main(["search", astronaut, "--index", str(index), "--quiet"]) == 0
    printed = capsys.readouterr().out
    other = float(embedded.embeddings[row["astronaut.png"]] @ embedded.embeddings[row["grace_hopper.png"]])
    assert f"{astronaut} [face 0 at " in printed
    assert f"-> ann: ann 1.000, grace {other:.3f}" in printed  # the same photo: cosine 1 >= 0.5
    assert "threshold 0.5000 (--threshold)" in printed
