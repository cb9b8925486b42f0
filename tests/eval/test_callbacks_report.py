"""The callback during a 1-epoch fit of a tiny model; report writers."""
import glob
import io
import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfface import registry
from tfface.data.binwriter import write_bin
from tfface.eval.callbacks import VerificationCallback
from tfface.eval.report import format_table, plot_roc, write_json
from tfface.eval.verification import verify


def test_callback_logs_history_and_tensorboard(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 8, 8, 3)).astype(np.float32)
    issame = np.arange(20) % 2 == 0
    inp = keras.Input((8, 8, 3))
    emb = keras.layers.Dense(6)(keras.layers.Flatten()(inp))
    embedder = keras.Model(inp, emb)
    model = keras.Sequential([embedder, keras.layers.Dense(3)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # The same pairs as a registered protocol (agedb_30 on a .bin of PNGs: lossless).
    bins = []
    for img in images.astype(np.uint8):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        bins.append(buf.getvalue())
    write_bin(tmp_path / "agedb_30.bin", bins, issame)
    agedb = registry.build("protocol", registry.Component("agedb_30", {"folds": 4, "far": [0.1]}),
                           data=str(tmp_path))
    cb = VerificationCallback({"syn": (images, issame), "agedb": agedb}, log_dir=str(tmp_path),
                              folds=4, far=(0.1,), embedder=embedder)
    hist = model.fit(images, rng.integers(0, 3, 40), epochs=1, batch_size=20, verbose=0,
                     callbacks=[cb])
    # Independent path: predict after training, then the protocol.
    e = embedder(images).numpy()
    ref = verify(e[0::2], e[1::2], issame, folds=4, far=(0.1,))
    assert hist.history["syn_accuracy"] == [pytest.approx(ref["accuracy"])]
    assert hist.history["syn_tar@far=0.1"] == [pytest.approx(ref["tar_at_far"][0.1])]
    assert hist.history["syn_auc"] == [pytest.approx(ref["auc"])]
    for key in ("accuracy", "tar@far=0.1", "auc", "eer"):
        assert hist.history[f"agedb_{key}"] == [pytest.approx(hist.history[f"syn_{key}"][0])]
    tags = set()
    for f in glob.glob(str(tmp_path / "verification" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(f):
            for v in event.summary.value:
                tags.add(v.tag)
    assert {"syn/accuracy", "syn/tar@far=0.1", "syn/auc", "syn/eer", "roc"} <= tags
    with pytest.raises(ValueError, match="2 images per pair"):
        VerificationCallback({"bad": (images[:5], issame)})


def test_report_table_json_png(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 4))
    issame = np.arange(50) % 2 == 0
    b = np.where(issame[:, None], a + rng.normal(size=(50, 4)), rng.normal(size=(50, 4)))
    res = {"toy": verify(a, b, issame, folds=5, far=(0.1, 1e-3))}
    table = format_table(res)
    # 1e-3 < 1/25: the FAR = 0 point, starred, with the footnote
    assert "toy" in table and "TAR@1e-1" in table and "*" in table and "FAR = 0" in table
    assert f"{100 * res['toy']['accuracy']:.2f}" in table
    path = write_json(res, str(tmp_path / "out" / "eval.json"), model="m")
    data = json.load(open(path))
    assert data["model"] == "m"
    assert data["results"]["toy"]["tar_at_far"]["0.001"] == pytest.approx(
        res["toy"]["tar_at_far"][1e-3])
    assert data["results"]["toy"]["far_resolution"] == pytest.approx(1 / 25)
    assert data["results"]["toy"]["accuracy"] == pytest.approx(res["toy"]["accuracy"])
    assert data["results"]["toy"]["roc"]["thresholds"][0] is None  # +inf
    png = plot_roc(res, str(tmp_path / "out" / "roc.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert not math.isnan(res["toy"]["auc"])


def test_recipe_val_entries_by_protocol(tmp_path):
    import types

    from tfface.recipe import RecipeError, ValSet
    from tfface.training.runner import validation_callback

    write_bin(tmp_path / "vgg2_fp.bin", [b"a", b"b"], [True])
    val = ValSet(name="vgg", protocol="vgg2_fp", data=str(tmp_path), options={"folds": 2})
    recipe = types.SimpleNamespace(data=types.SimpleNamespace(val=(val,), image_size=(8, 8)))
    cb = validation_callback(recipe, str(tmp_path))
    assert cb.sets["vgg"].path == str(tmp_path / "vgg2_fp.bin") and cb.sets["vgg"].folds == 2
    with pytest.raises(RecipeError, match="one of the three"):
        ValSet(name="x", protocol="lfw")
    with pytest.raises(RecipeError, match="one of the three"):
        ValSet(name="x", protocol="lfw", data="d", bin="x.bin")
    with pytest.raises(RecipeError, match="belong to a 'protocol'"):
        ValSet(name="x", bin="x.bin", options={"far": [0.1]})
    bad = ValSet(name="bad", protocol="vgg2_fp", data=str(tmp_path), options={"nope": 1})
    recipe.data.val = (bad,)
    with pytest.raises(ValueError, match=r"data.val\[0\] \(bad\).nope"):
        validation_callback(recipe, str(tmp_path))


def test_write_plots_roc_det_cmc(tmp_path):
    from tfface.eval.report import write_plots

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    ver = verify(a, b, np.arange(40) % 2 == 0, folds=4)
    ver["roc"] = {"fpr": ver["roc"][0].tolist(), "tpr": ver["roc"][1].tolist()}  # protocol form
    results = {"v": ver, "i": {"cmc": {1: 0.5, 5: 0.8, 10: 0.9}, "num_queries": 10},
               "t": {"cmc": [0.4, 0.6, 0.7]}}
    written = write_plots(results, str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == ["cmc.png", "det.png", "roc.png"]
    for p in written:
        assert open(p, "rb").read(4) == b"\x89PNG"
    table = format_table(results)
    assert "rank-1" in table and "rank-10" in table


def test_callback_every_epoch_on_a_pairs_list_with_repeated_files(tmp_path):
    """A pairs.txt-style set (file paths, each file in several pairs) is embedded once per file
    and gives the figures of embedding every pair's images; each epoch adds one point per scalar
    and one ROC image to TensorBoard."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    files = []
    for k in range(6):
        path = str(tmp_path / f"img{k}.png")
        Image.fromarray(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(path)
        files.append(path)
    order = [0, 1, 0, 2, 1, 2, 3, 4, 3, 5, 4, 5, 0, 3, 1, 4, 2, 5, 0, 5]  # 10 pairs over 6 files
    paths = [files[k] for k in order]
    issame = np.array([True, True, True, False, False, True, True, True, False, False])
    inp = keras.Input((8, 8, 3))
    embedder = keras.Model(inp, keras.layers.Dense(6)(keras.layers.Flatten()(inp)))
    model = keras.Sequential([embedder, keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            # the reference: every pair's two images through the model, as decoded PNG pixels
            pixels = np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in paths])
            e = embedder(pixels).numpy()
            seen.append(verify(e[0::2], e[1::2], issame, folds=2, far=(0.2,)))

    cb = VerificationCallback({"pairs": (paths, issame)}, log_dir=str(tmp_path / "logs"), folds=2,
                              far=(0.2,), embedder=embedder)
    x = rng.integers(0, 256, (12, 8, 8, 3)).astype(np.float32)
    hist = model.fit(x, rng.integers(0, 3, 12), epochs=3, batch_size=4, verbose=0, callbacks=[cb, Record()])
    assert hist.history["pairs_accuracy"] == [pytest.approx(r["accuracy"]) for r in seen]
    assert hist.history["pairs_auc"] == [pytest.approx(r["auc"]) for r in seen]
    steps = {}
    for f in glob.glob(str(tmp_path / "logs" / "verification" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(f):
            for v in event.summary.value:
                steps.setdefault(v.tag, []).append(event.step)
    assert steps["pairs/accuracy"] == [0, 1, 2] and steps["pairs/auc"] == [0, 1, 2]
    assert steps["pairs/tar@far=0.2"] == [0, 1, 2] and steps["roc"] == [0, 1, 2]
    counted = []

    def counting(images):
        counted.append(len(images))
        return embedder(images)

    again = VerificationCallback({"pairs": (paths, issame)}, folds=2, far=(0.2,), embedder=counting)
    assert again.evaluate()["pairs"]["accuracy"] == pytest.approx(seen[-1]["accuracy"])
    assert sum(counted) == len(files)  # 20 image slots, 6 files: each embedded once
