"""The input pipeline fed by the synthetic set: shapes, dtypes, value range, labels against
labels.json and the identity folders, flips, seeded order and augmentation, resuming, the
image-folder source, colour/crop augmentation, and per-replica batches under MirroredStrategy."""
import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfface.data.build import build_tfrecords
from tfface.data.pipeline import distribute_dataset, make_dataset, num_classes
from tfface.data.synthetic import generate_synthetic
from tfface.testing import mirrored_strategy


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipe")
    generate_synthetic(base / "synth", num_identities=6, num_test_identities=0, min_images=3, max_images=12,
                       folds=0, seed=2)
    folder = base / "synth" / "train"
    stats = build_tfrecords(folder, base / "tfr", shards=3, progress=False)
    return str(folder), str(base / "tfr"), stats


def _collect(ds, limit=None):
    xs, ys = [], []
    for k, (x, y) in enumerate(ds):
        if limit is not None and k >= limit:
            break
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_shapes_dtypes_range(data):
    _, tfr, _ = data
    ds = make_dataset(tfr, 8, 112, seed=0)
    x, y = next(iter(ds))
    assert x.shape == (8, 112, 112, 3) and x.dtype == tf.uint8, "uint8 images: the model casts them"
    assert y.shape == (8,) and y.dtype == tf.int32
    x = x.numpy()
    assert x.min() >= 0.0 and x.max() <= 255.0 and x.max() > 100.0 and x.std() > 10.0
    assert ds.element_spec[0].shape.as_list() == [8, 112, 112, 3], "training batches have a static size"
    # Resized output, and (H, W) sizes.
    x2, _ = next(iter(make_dataset(tfr, 4, (64, 48), seed=0)))
    assert x2.shape == (4, 64, 48, 3)
    assert num_classes(tfr) == 6 == num_classes(data[0])


def test_eval_labels_match_labels_json_and_folders(data):
    folder, tfr, stats = data
    labels = json.load(open(os.path.join(tfr, "labels.json")))
    expected = collections.Counter({labels[name]: len(os.listdir(os.path.join(folder, name))) for name in labels})
    x, y = _collect(make_dataset(tfr, 7, 112, training=False))
    assert len(y) == stats["written"], "evaluation reads every record exactly once (no drop_remainder)"
    assert collections.Counter(y.tolist()) == expected
    # The same images and labels from the image folder directly, in folder order.
    fx, fy = _collect(make_dataset(folder, 7, 112, training=False))
    names = sorted(os.listdir(folder))
    order = [(labels[n], f) for n in names for f in sorted(os.listdir(os.path.join(folder, n)))]
    np.testing.assert_array_equal(fy, [label for label, _ in order])
    first = np.asarray(Image.open(os.path.join(folder, names[0], order[0][1])).convert("RGB"), np.float32)
    assert np.abs(fx[0] - first).mean() < 1.5, "decoded pixels agree with PIL's decoder"
    # Same multiset of (label, image) from both sources (TF decodes both the same way).
    key = lambda xs, ys: sorted((int(l), round(float(im.sum()), 1)) for im, l in zip(xs, ys))
    assert key(x, y) == key(fx, fy)


def test_flip_happens_and_only_flips(data):
    _, tfr, _ = data
    kw = dict(seed=5, deterministic=True, repeat=1, drop_remainder=False)
    plain, y0 = _collect(make_dataset(tfr, 8, 112, flip=False, **kw))
    flipped, y1 = _collect(make_dataset(tfr, 8, 112, flip=True, **kw))
    np.testing.assert_array_equal(y0, y1)
    same = np.all(plain == flipped, axis=(1, 2, 3))
    mirror = np.all(plain[:, :, ::-1] == flipped, axis=(1, 2, 3))
    assert np.all(same | mirror), "flip must be a horizontal mirror or nothing"
    n = len(y0)
    assert 0.2 * n < mirror.sum() < 0.8 * n, f"{mirror.sum()} of {n} flipped"


def test_seeded_order_and_augmentation_reproduce(data):
    _, tfr, stats = data
    kw = dict(deterministic=True, random_crop=True, color_jitter=True)
    a = _collect(make_dataset(tfr, 4, 64, seed=11, **kw), limit=6)
    b = _collect(make_dataset(tfr, 4, 64, seed=11, **kw), limit=6)
    c = _collect(make_dataset(tfr, 4, 64, seed=12, **kw), limit=6)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[0].min() >= 0 and a[0].max() <= 255 and a[0].shape[1:] == (64, 64, 3)
    # Epochs are reshuffled.
    n = stats["written"]
    two, y2 = _collect(make_dataset(tfr, 8, 32, seed=3, deterministic=True, repeat=2, drop_remainder=False))
    assert not np.array_equal(y2[:n], y2[n:]) and sorted(y2[:n]) == sorted(y2[n:])
    # Resuming at epoch 1 reproduces epoch 1 of the full run, pixels included.
    resumed, yr = _collect(make_dataset(tfr, 8, 32, seed=3, deterministic=True, repeat=1, start_epoch=1,
                                        drop_remainder=False))
    np.testing.assert_array_equal(yr, y2[n:])
    np.testing.assert_array_equal(resumed, two[n:])


def test_mirrored_strategy_gives_per_replica_batches(data):
    _, tfr, _ = data
    strategy = mirrored_strategy(2)
    dist = distribute_dataset(strategy, tfr, 8, 48, seed=0)
    x, y = next(iter(dist))
    xs, ys = strategy.experimental_local_results(x), strategy.experimental_local_results(y)
    assert len(xs) == 2
    for xi, yi in zip(xs, ys):
        assert xi.shape == (4, 48, 48, 3) and xi.dtype == tf.uint8
        assert yi.shape == (4,) and yi.dtype == tf.int32
    with pytest.raises(ValueError, match="divisible"):
        distribute_dataset(strategy, tfr, 7, 48)


def test_sharded_input_pipelines_split_the_data(data):
    _, tfr, stats = data
    ref, _ = _collect(make_dataset(tfr, 16, 32, training=False))
    reference = sorted(round(float(im.sum()), 1) for im in ref)
    assert len(reference) == stats["written"]
    # 2 pipelines over 3 shards: by file; 4 pipelines: by record (fewer shards than pipelines).
    for pipelines in (2, 4):
        pixels = []
        for pid in range(pipelines):
            ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid,
                                             num_replicas_in_sync=pipelines)
            x, _ = _collect(make_dataset(tfr, 4, 32, seed=1, flip=False, repeat=1, drop_remainder=False,
                                         input_context=ctx))
            assert len(x) > 0
            pixels += [round(float(im.sum()), 1) for im in x]
        assert sorted(pixels) == reference, f"{pipelines} pipelines: each record read by exactly one"


def test_bad_sources_and_arguments(data, tmp_path):
    _, tfr, _ = data
    with pytest.raises(FileNotFoundError, match="no TFRecord shards"):
        make_dataset(str(tmp_path / "missing"), 4, 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither"):
        make_dataset(str(tmp_path / "empty"), 4, 32)
    with pytest.raises(ValueError, match="needs a seed"):
        make_dataset(tfr, 4, 32, deterministic=True)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(tfr, 0, 32)
    with pytest.raises(ValueError, match="random_crop"):
        make_dataset(tfr, 4, 32, random_crop=1.5)


def test_num_classes_checks_every_label_in_the_pipeline(data):
    _, tfr, _ = data
    # 6 identities: every label passes with num_classes=6 ...
    _, y = _collect(make_dataset(tfr, 8, 32, training=False, num_classes=6))
    assert y.max() == 5
    # ... and a label >= num_classes stops the iteration naming the label and num_classes.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)label.*[345].*num_classes=3"):
        _collect(make_dataset(tfr, 8, 32, seed=0, num_classes=3), limit=20)
    with pytest.raises(ValueError, match="num_classes"):
        make_dataset(tfr, 8, 32, num_classes=0)


def test_corrupt_images_in_a_folder_are_skipped_and_counted(data, tmp_path):
    import shutil

    folder, _, _ = data
    copy = tmp_path / "train"
    shutil.copytree(folder, copy)
    names = sorted(os.listdir(copy))
    good = sorted(os.listdir(copy / names[0]))
    jpeg = (copy / names[0] / good[0]).read_bytes()
    # Caught by the byte check (counted): truncated, empty, not an image.
    (copy / names[0] / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (copy / names[1] / "empty.jpg").write_bytes(b"")
    (copy / names[2] / "text.png").write_bytes(b"this is not an image at all, only some text")
    # Whole-looking but undecodable (JPEG start and end markers around garbage): dropped by
    # the decoder's error, not counted.
    (copy / names[3] / "garbage.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4 + b"\xff\xd9")
    total = sum(len(os.listdir(copy / n)) for n in names)
    counter = tf.Variable(0, dtype=tf.int64)
    x, y = _collect(make_dataset(str(copy), 5, 112, training=False, skipped_counter=counter))
    assert len(y) == total - 4 and int(counter.numpy()) == 3
    # The good images come through unchanged, in folder order with the labels of their folders.
    fx, fy = _collect(make_dataset(folder, 5, 112, training=False))
    np.testing.assert_array_equal(y, fy)
    np.testing.assert_array_equal(x, fx)
    # Training (shuffled, augmented, every epoch): the same skips, no error.
    counter.assign(0)
    _, ty = _collect(make_dataset(str(copy), 4, 32, seed=1, repeat=2, skipped_counter=counter))
    assert len(ty) == 4 * (2 * (total - 4) // 4)  # two epochs of the good images, whole batches
    assert int(counter.numpy()) == 6
