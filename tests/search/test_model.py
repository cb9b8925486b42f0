"""What the search takes from a model's export metadata (alignment in [height, width], input
size, thresholds) and the fallbacks and overrides when it has none."""
import json

import numpy as np
import pytest
from PIL import Image

from tfface import cli
from tfface.files import InputError
from tfface.search import model as model_module
from tfface.search.model import FaceEmbedder

META = {"embedding_size": 16, "input": {"size": [112, 112], "dtype": "uint8"},
        "alignment": {"mode": "arcface", "size": [112, 96], "template": None, "source": "test"},
        "flip_fusion": True,
        "thresholds": {"metric": "cosine", "far": {"1e-2": 0.2, "1e-3": 0.35}, "best_accuracy": 0.3}}


def test_metadata_alignment_and_thresholds(tiny_model_path, monkeypatch):
    monkeypatch.setattr(model_module, "read_model_metadata", lambda path: META)
    e = FaceEmbedder(tiny_model_path)
    assert e.info["alignment"]["mode"] == "arcface" and e.info["alignment"]["size"] == [112, 96]
    assert e.info["alignment"]["source"] == "metadata" and e.info["flip_fusion"] is True
    assert e.aligner(detector=object()).size == (96, 112)  # FaceAligner takes (width, height)
    assert e.info["thresholds"]["far"]["1e-3"] == 0.35
    # explicit arguments win over the metadata
    e = FaceEmbedder(tiny_model_path, align_mode="facenet", align_size=(160, 160))
    assert e.info["alignment"] == {"mode": "facenet", "size": [160, 160], "margin": 32.0, "source": "arguments"}


def test_fallbacks_without_metadata(tiny_model_path, monkeypatch):
    monkeypatch.setattr(model_module, "read_model_metadata", lambda path: None)
    e = FaceEmbedder(tiny_model_path)
    assert e.info["alignment"]["size"] == [112, 112] and e.info["input_size"] == [112, 112]
    assert e.info["thresholds"] is None and e.info["metadata"] is False
    with pytest.raises(InputError, match="align-size"):
        FaceEmbedder(tiny_model_path, align_size=(3, 3))


def test_enrol_stores_the_metadata_threshold(tiny_model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(model_module, "read_model_metadata", lambda path: META)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png\tperson{i}")
    (tmp_path / "gallery.txt").write_text("\n".join(lines) + "\n")
    index = tmp_path / "idx"
    assert cli.main(["enrol", str(tmp_path / "gallery.txt"), "--model", tiny_model_path, "--index", str(index),
                     "--aligned", "--quiet"]) == 0
    meta = json.loads((index / "index.json").read_text())
    assert meta["threshold"] == {"value": 0.35, "source": "model metadata, FAR 1e-3"}
    assert meta["identities"] == ["person0", "person1"]
    assert "0.3500 (model metadata, FAR 1e-3)" in capsys.readouterr().out
