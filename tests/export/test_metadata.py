"""Export metadata (tfface.export.metadata): every format carries it, and it reads back with
the format's own tools (plain json, onnx, the TFLite flatbuffer schema) without tfface."""
import importlib.util
import json
import os

import numpy as np
import pytest

HAVE_TF2ONNX = importlib.util.find_spec("tf2onnx") is not None

THRESHOLDS = {"metric": "cosine", "far": {"1e-3": 0.42, "1e-2": 0.3}, "best_accuracy": 0.25,
              "set": "lfw", "source": "/x/eval.json"}


def _check(meta, h, flip, size=None):
    size = size or [h.SIZE, h.SIZE]
    assert meta["format_version"] == 1
    assert meta["embedding_size"] == 16
    assert meta["input"]["size"] == size and meta["input"]["dtype"] == "uint8"
    assert meta["input"]["channels"] == "RGB" and meta["input"]["range"] == [0, 255]
    assert meta["flip_fusion"] is flip
    assert meta["thresholds"] == THRESHOLDS
    # ArcFace template for a square crop: insightface's 112x112 points scaled by size/112.
    arc112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                       [41.5493, 92.3655], [70.7299, 92.2041]])
    np.testing.assert_allclose(meta["alignment"]["template"], arc112 * size[1] / 112, atol=1e-3)
    assert meta["alignment"]["mode"] == "arcface" and meta["alignment"]["size"] == size


def test_saved_model_metadata_is_a_plain_json_asset(tmp_path, h):
    from tfface.export import export_saved_model
    from tfface.export.metadata import alignment_for, read_metadata

    model = h.embedder()
    out = tmp_path / "sm"
    meta = export_saved_model(model, str(out), flip=True, thresholds=THRESHOLDS,
                              alignment=alignment_for((h.SIZE, h.SIZE), "arcface"))
    raw = json.loads((out / "assets" / "tfface.json").read_text())
    _check(raw, h, flip=True)
    assert raw == meta == read_metadata(str(out))


@pytest.mark.skipif(not HAVE_TF2ONNX, reason="tf2onnx not installed")
def test_onnx_metadata_props(tmp_path, h):
    import onnx

    from tfface.export import export_onnx
    from tfface.export.metadata import alignment_for, read_metadata

    out = tmp_path / "m.onnx"
    export_onnx(h.embedder(), str(out), thresholds=THRESHOLDS,
                alignment=alignment_for((h.SIZE, h.SIZE), "arcface"))
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    raw = json.loads(props["tfface"])
    _check(raw, h, flip=False)
    assert read_metadata(str(out)) == raw


def test_tflite_metadata_buffer(tmp_path, h):
    from tensorflow.lite.python import schema_py_generated as schema

    from tfface.export import export_tflite
    from tfface.export.load import TFLiteEmbedder
    from tfface.export.metadata import alignment_for, read_metadata

    out = tmp_path / "m.tflite"
    model = h.embedder()
    export_tflite(model, str(out), flip=True, thresholds=THRESHOLDS,
                  alignment=alignment_for((h.SIZE, h.SIZE), "arcface"))
    buf = out.read_bytes()
    fb = schema.Model.GetRootAsModel(buf, 0)
    entries = {fb.Metadata(i).Name().decode(): fb.Metadata(i).Buffer() for i in range(fb.MetadataLength())}
    raw = json.loads(fb.Buffers(entries["tfface"]).DataAsNumpy().tobytes().decode("utf-8"))
    _check(raw, h, flip=True)
    assert read_metadata(str(out)) == raw
    # the metadata buffer does not disturb the model
    images = h.images(3, seed=2)
    np.testing.assert_allclose(TFLiteEmbedder(str(out))(images), h.reference(model, images, True),
                               atol=1e-4)


def test_far_keys_and_eval_thresholds(tmp_path):
    from tfface.export.metadata import far_key, thresholds_from_eval
    from tfface.files import InputError

    assert [far_key(f) for f in (1e-3, 0.05, 1e-6, 0.1)] == ["1e-3", "5e-2", "1e-6", "1e-1"]
    eval_json = {"lfw": {"metric": "cosine", "threshold": 0.21, "accuracy": 0.99, "folds": 10,
                         "far_resolution": 1 / 3000,
                         "far_thresholds": {"0.001": 0.4, "0.0001": 0.5, "1e-05": None}},
                 "cfp": {"metric": "cosine", "threshold": 0.3, "far_thresholds": {"0.001": 0.5}}}
    (tmp_path / "eval.json").write_text(json.dumps(eval_json))
    with pytest.raises(InputError, match="several verification sets"):
        thresholds_from_eval(str(tmp_path / "eval.json"))
    thr = thresholds_from_eval(str(tmp_path), "lfw")
    # 1e-4 < 1/3000 impostors: not measurable, so not recorded as a threshold
    assert thr["far"] == {"1e-3": 0.4} and thr["best_accuracy"] == 0.21 and thr["set"] == "lfw"
    assert thr["below_resolution"] == ["1e-4"]
    eval_json["lfw"]["metric"] = "euclidean"
    (tmp_path / "eval.json").write_text(json.dumps(eval_json))
    with pytest.raises(InputError, match="metric euclidean"):
        thresholds_from_eval(str(tmp_path / "eval.json"), "lfw")


def test_run_directory_and_keras_file_are_described(tmp_path, h):
    """read_metadata of what training writes: from the model itself (float32 input, not
    normalised), and the alignment of the training data's align_report.json."""
    from tfface.export.metadata import read_metadata
    from tfface.files import InputError

    model = h.embedder()
    run = tmp_path / "run"
    run.mkdir()
    model.save(str(run / "embedder.keras"))
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "align_report.json").write_text(json.dumps({"settings": {"mode": "facenet", "size": 32}}))
    (run / "recipe.json").write_text(json.dumps({"data": {"train": str(data / "train")}}))
    meta = read_metadata(str(run))
    assert meta["embedding_size"] == 16 and meta["input"]["size"] == [h.SIZE, h.SIZE]
    assert meta["input"]["dtype"] == "float32" and meta["output"]["l2_normalised"] is False
    assert meta["alignment"]["mode"] == "facenet" and meta["alignment"]["template"] == "facenet_box"
    assert meta["thresholds"] is None and meta["flip_fusion"] is False
    plain = read_metadata(str(run / "embedder.keras"))
    assert plain["alignment"]["mode"] == "unknown" and plain["embedding_size"] == 16
    cut = tmp_path / "cut.keras"
    cut.write_bytes((run / "embedder.keras").read_bytes()[:500])
    with pytest.raises(InputError, match="cut.keras"):
        read_metadata(str(cut))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00TFL3")
    with pytest.raises(InputError, match="bad.tflite"):
        read_metadata(str(bad))
