"""insightface RecordIO (``train.rec`` / ``train.idx`` / ``property``) without MXNet.

The files are written here by an independent writer that follows the format's description
(dmlc-core recordio framing, MXNet's image record header, insightface's header record): records
whose data holds the magic number at aligned positions are split into parts (the magic left
out), labels are floats or vectors, record 0 lists the identity ranges. The reader's images and
labels must equal what was written; broken records (a truncated tail, a wrong magic number, a
part running into the next record, a bad label, a non-image payload, a key missing from the
index) are skipped and counted; the ``tf.data`` source trains one step of the smoke recipe and
``tfface build`` converts a ``.rec`` to TFRecords holding the same images and labels.
"""
import argparse
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfface.commands import build as build_command
from tfface.data import recordio
from tfface.data.build import build_tfrecords
from tfface.data.pipeline import describe_source, make_dataset, num_classes
from tfface.data.tfrecord import parse_example

MAGIC_WORD = bytes.fromhex("0a23d7ce")  # 0xced7230a, little-endian


# ---------------------------------------------------------------------------------------------
# the independent writer


def frame(data):
    """dmlc recordio framing of one record: split at every 4-aligned occurrence of the magic."""
    pieces, start = [], 0
    for pos in range(0, len(data) - len(data) % 4, 4):
        if data[pos:pos + 4] == MAGIC_WORD:
            pieces.append(data[start:pos])
            start = pos + 4
    pieces.append(data[start:])
    out = bytearray()
    for i, piece in enumerate(pieces):
        if len(pieces) == 1:
            cflag = 0
        else:
            cflag = 1 if i == 0 else (3 if i == len(pieces) - 1 else 2)
        out += MAGIC_WORD
        out += ((cflag << 29) | len(piece)).to_bytes(4, "little")
        out += piece
        out += b"\0" * (-len(piece) % 4)
    return bytes(out)


def image_record(label, image, id_=0, id2=0):
    """MXNet's IRHeader (uint32 flag, float32 label, uint64 id, uint64 id2) + labels + image."""
    if np.ndim(label) == 0:
        head = (0).to_bytes(4, "little") + np.float32(label).tobytes()
        extra = b""
    else:
        values = np.asarray(label, "<f4")
        head = len(values).to_bytes(4, "little") + np.float32(0).tobytes()
        extra = values.tobytes()
    return head + id_.to_bytes(8, "little") + id2.to_bytes(8, "little") + extra + image


def write_set(folder, records, property_text=None, truncate=0, drop_from_index=()):
    """``records``: [(key, data)] in file order -> train.rec, train.idx (and property)."""
    os.makedirs(folder, exist_ok=True)
    blob, lines = bytearray(), []
    for key, data in records:
        if key not in drop_from_index:
            lines.append(f"{key}\t{len(blob)}\n")
        blob += frame(data)
    with open(os.path.join(folder, "train.rec"), "wb") as f:
        f.write(bytes(blob[: len(blob) - truncate]))
    with open(os.path.join(folder, "train.idx"), "w") as f:
        f.writelines(lines)
    if property_text is not None:
        with open(os.path.join(folder, "property"), "w") as f:
            f.write(property_text)
    return os.path.join(folder, "train.rec")


def jpeg(seed, size=32):
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def jpeg_with_magic(seed, offset):
    """A JPEG whose record data holds the magic number at aligned positions: twice in a row in a
    comment segment (an empty middle part) and as its last four bytes (an empty last part).
    ``offset``: bytes before the image in the record (header and vector label)."""
    base = jpeg(seed)
    pad = -(offset + 2 + 4) % 4  # after SOI (2) and the comment marker + length (4)
    comment = b"x" * pad + MAGIC_WORD * 2 + b"tail"
    body = base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]
    body += b"\0" * (-(offset + len(body)) % 4) + MAGIC_WORD
    assert (offset + len(body)) % 4 == 0
    return body


NUM_CLASSES = 4


@pytest.fixture(scope="module")
def rec_set(tmp_path_factory):
    """An MS1MV2-like set: header record, 10 images of 4 identities, one identity record each,
    split records, vector labels, and four broken image records."""
    base = tmp_path_factory.mktemp("rec")
    images = {}   # key -> (label, bytes): what the reader must give back
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 1, 2, 0]
    records = []
    bad = {}
    for i, label in enumerate(labels):
        key = i + 1
        vector = key % 3 == 0
        offset = 24 + (8 if vector else 0)
        data = jpeg_with_magic(key, offset) if key in (2, 6) else jpeg(key)
        rec_label = [label, 0.25] if vector else label
        if key == 11:
            rec_label = 7.0            # >= num_classes
            bad[key] = "bad_label"
        if key == 12:
            data = b"not an image at all"
            bad[key] = "not_an_image"
        if key == 13:
            rec_label = 1.5            # not a class index
            bad[key] = "bad_label"
        records.append((key, image_record(rec_label, data, id_=key)))
        if key not in bad:
            images[key] = (label, data)
    # key 14 is missing from the index
    bad[14] = "missing_from_index"
    images.pop(14)
    first_identity = len(labels) + 1
    for c in range(NUM_CLASSES):
        keys = [k for k, (lab, _) in images.items() if lab == c]
        records.append((first_identity + c, image_record([min(keys), max(keys) + 1], b"")))
    header = image_record([first_identity, first_identity + NUM_CLASSES], b"")
    records.insert(0, (0, header))
    rec = write_set(base / "ms1m", records, property_text=f"{NUM_CLASSES},32,32\n", drop_from_index=(14,))
    # A part that runs into the next record (its length word corrupted), and a wrong magic.
    blob = bytearray(open(rec, "rb").read())
    _, offsets = recordio.read_index(str(base / "ms1m" / "train.idx"))
    pos = int(offsets[4])                 # key 4
    blob[pos + 4:pos + 8] = (1_000_000).to_bytes(4, "little")
    pos = int(offsets[8])                 # key 8
    blob[pos:pos + 4] = b"\xde\xad\xbe\xef"
    open(rec, "wb").write(bytes(blob))
    for key, reason in ((4, "bad_framing"), (8, "bad_magic")):
        bad[key] = reason
        images.pop(key)
    return rec, images, bad


def test_framing_round_trips_split_records():
    for data in (b"", b"abc", MAGIC_WORD, b"12" + MAGIC_WORD + b"34", b"1234" + MAGIC_WORD * 3 + b"56",
                 MAGIC_WORD + b"x" * 7 + MAGIC_WORD):
        framed = frame(data) + frame(b"next")
        out, stop = recordio.decode_record(framed)
        assert out == data
        assert recordio.decode_record(framed, stop)[0] == b"next"
    # an aligned magic makes parts: first, middle(s), last
    framed = frame(b"1234" + MAGIC_WORD + b"5678" + MAGIC_WORD + b"9")
    flags = []
    pos = 0
    while pos < len(framed):
        word = int.from_bytes(framed[pos + 4:pos + 8], "little")
        flags.append(word >> 29)
        pos += 8 + (((word & (2**29 - 1)) + 3) // 4) * 4
    assert flags == [1, 2, 3]


def test_framing_errors_name_the_reason():
    good = frame(b"hello world")
    with pytest.raises(recordio.RecordError) as err:
        recordio.decode_record(good[:-4])
    assert err.value.reason == "truncated"
    with pytest.raises(recordio.RecordError) as err:
        recordio.decode_record(b"\0\0\0\0" + good[4:])
    assert err.value.reason == "bad_magic"
    # a record running into the next one (end before the file ends)
    with pytest.raises(recordio.RecordError) as err:
        recordio.decode_record(good + good, 0, end=8, at_eof=False)
    assert err.value.reason == "bad_framing"
    # a continuation part where a record should start
    middle = MAGIC_WORD + ((2 << 29) | 4).to_bytes(4, "little") + b"abcd"
    with pytest.raises(recordio.RecordError) as err:
        recordio.decode_record(middle)
    assert err.value.reason == "bad_framing"
    with pytest.raises(recordio.RecordError) as err:
        recordio.unpack(b"short")
    assert err.value.reason == "bad_header"
    with pytest.raises(recordio.RecordError) as err:
        recordio.unpack((5).to_bytes(4, "little") + bytes(20) + bytes(8))
    assert err.value.reason == "bad_header"


def test_header_and_labels_unpack():
    header, payload = recordio.unpack(image_record([3, 0.5, 2], b"IMG", id_=9, id2=4))
    assert header.flag == 3 and header.id == 9 and header.id2 == 4
    np.testing.assert_array_equal(header.label, np.float32([3, 0.5, 2]))
    assert payload == b"IMG" and recordio.image_label(header) == 3
    header, payload = recordio.unpack(image_record(5, b"IMG"))
    assert header.flag == 0 and header.label == 5.0 and recordio.image_label(header, 6) == 5
    with pytest.raises(recordio.RecordError, match="num_classes"):
        recordio.image_label(header, 5)


def test_reader_returns_what_was_written(rec_set):
    rec, images, bad = rec_set
    info = recordio.describe(rec)
    assert info.header == (15, 19) and info.identities == NUM_CLASSES
    assert info.num_classes == NUM_CLASSES and info.image_size == (32, 32)
    assert info.num_examples == 14 and list(info.image_keys) == list(range(1, 15))
    # keys 2 and 6 were written as split records (first part: continuation flag 1)
    blob = open(rec, "rb").read()
    for key in (2, 6):
        pos = int(info.offsets[key - 1])
        assert int.from_bytes(blob[pos + 4:pos + 8], "little") >> 29 == 1
    got, reasons = {}, {}
    with recordio.RecordFile(rec) as f:
        for key, offset, end in zip(info.image_keys, info.offsets, info.ends):
            try:
                label, payload, header = f.read_image_span(offset, end, info.num_classes)
            except recordio.RecordError as err:
                reasons[int(key)] = err.reason
                continue
            assert header.id == key
            got[int(key)] = (label, payload)
    assert {k: v for k, v in got.items() if k != 12} == images
    assert reasons == {k: r for k, r in bad.items() if r != "not_an_image"}
    ranges = recordio.identity_ranges(rec)
    assert ranges.shape == (NUM_CLASSES, 2) and tuple(ranges[0]) == (1, 4) and tuple(ranges[3]) == (9, 11)


def _batch_read(f, offsets, ends, num_classes):
    buffer, starts, lengths, labels, ok = f.read_image_batch(offsets, ends, num_classes)
    return {i: (int(labels[i]), buffer[starts[i]:starts[i] + lengths[i]]) for i in np.flatnonzero(ok)}


def test_batch_reader_agrees_with_reading_each_record(rec_set):
    """read_image_batch (vectorised checks, joined buffer) gives exactly the good records of
    the independent writer, split records and vector labels included, in any order and batch
    size; every broken record is not ok."""
    rec, images, _ = rec_set
    info = recordio.describe(rec)
    keys = np.asarray(info.image_keys)
    with recordio.RecordFile(rec) as f:
        for seed, size in ((0, 14), (1, 5), (2, 1), (3, 3)):
            order = np.random.default_rng(seed).permutation(len(keys))
            got = {}
            for lo in range(0, len(order), size):
                pick = order[lo:lo + size]
                for i, value in _batch_read(f, info.offsets[pick], info.ends[pick], info.num_classes).items():
                    got[int(keys[pick[i]])] = value
            assert got == images
        empty = f.read_image_batch(np.zeros(0, np.int64), np.zeros(0, np.int64), info.num_classes)
        assert len(empty[0]) >= 0 and all(len(a) == 0 for a in empty[1:])


def test_batch_reader_formats_labels_and_tails(tmp_path):
    """PNG and BMP payloads are accepted, GIF and empty ones are not; without num_classes any
    whole label in int32 is a class, 2**40 and -1 are not; a truncated last record is not ok."""
    from PIL import Image

    def encoded(fmt):
        buf = io.BytesIO()
        Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(buf, fmt)
        return buf.getvalue()

    payloads = [encoded("PNG"), encoded("BMP"), encoded("GIF"), b"", jpeg(1), jpeg(2), jpeg(3), jpeg(4)]
    labels = [0, 1, 2, 3, 5, 2.0**40, -1.0, 9]
    rec = write_set(tmp_path / "fmt", [(k, image_record(lab, data)) for k, (lab, data)
                                       in enumerate(zip(labels, payloads))], truncate=6)
    info = recordio.describe(rec)
    with recordio.RecordFile(rec) as f:
        got = _batch_read(f, info.offsets, info.ends, None)
        assert got == {0: (0, payloads[0]), 1: (1, payloads[1]), 4: (5, payloads[4])}
        # one at a time, the same
        for i in range(len(payloads)):
            assert _batch_read(f, info.offsets[i:i + 1], info.ends[i:i + 1], None) == (
                {0: got[i]} if i in got else {})
        # with num_classes 3, label 5 is out of range
        assert set(_batch_read(f, info.offsets, info.ends, 3)) == {0, 1}


def test_truncated_tail_and_plain_layout(tmp_path):
    """No header record: every key is an image; the file ends inside the last record."""
    data = {k: jpeg(100 + k) for k in range(5)}
    rec = write_set(tmp_path / "plain", [(k, image_record(k % 2, data[k])) for k in range(5)], truncate=10)
    info = recordio.describe(rec)
    assert info.header is None and info.num_classes is None and info.num_examples == 5
    with recordio.RecordFile(rec) as f:
        for k in range(4):
            assert f.read_image(k)[:2] == (k % 2, data[k])
        with pytest.raises(recordio.RecordError) as err:
            f.read_image(4)
    assert err.value.reason == "truncated"
    with pytest.raises(FileNotFoundError, match="property"):
        num_classes(rec)


def test_bad_sources_name_the_file(tmp_path, rec_set):
    with pytest.raises(FileNotFoundError, match="nope.rec"):
        describe_source(str(tmp_path / "nope.rec"))
    folder = tmp_path / "noidx"
    folder.mkdir()
    (folder / "train.rec").write_bytes(frame(image_record(0, jpeg(0))))
    with pytest.raises(FileNotFoundError, match="train.idx"):
        describe_source(str(folder))
    (folder / "train.idx").write_text("0\tzero\n")
    with pytest.raises(ValueError, match="key<TAB>offset"):
        describe_source(str(folder))
    (folder / "train.idx").write_text("0\t0\n")
    (folder / "property").write_text("many,112,112\n")
    with pytest.raises(ValueError, match="num_classes,height,width"):
        describe_source(str(folder))
    with pytest.raises(ValueError, match="min_images"):
        build_tfrecords(rec_set[0], tmp_path / "out", min_images=2, progress=False)


def _collect(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _decoded(images):
    return {k: (lab, tf.io.decode_image(data, channels=3).numpy()) for k, (lab, data) in images.items()}


def test_pipeline_reads_every_good_record_once(rec_set):
    rec, images, _ = rec_set
    kind, info = describe_source(os.path.dirname(rec))
    assert kind == "recordio" and describe_source(rec)[0] == "recordio"
    assert num_classes(rec) == NUM_CLASSES
    x, y = _collect(make_dataset(rec, 4, 32, training=False))
    expected = _decoded(images)
    assert len(y) == len(expected)
    by_sum = {float(im.astype(np.float64).sum()): lab for lab, im in expected.values()}
    assert sorted(by_sum) == sorted(float(im.astype(np.float64).sum()) for im in x)
    assert [by_sum[float(im.astype(np.float64).sum())] for im in x] == list(y)
    # evaluation order is key order
    order = [k for k in sorted(expected)]
    np.testing.assert_array_equal(x.astype(np.uint8), np.stack([expected[k][1] for k in order]))


def test_pipeline_shuffles_shards_and_resumes(rec_set):
    rec, images, _ = rec_set
    n = len(images)
    kw = dict(seed=5, deterministic=True, drop_remainder=False)
    x2, y2 = _collect(make_dataset(rec, 3, 32, repeat=2, **kw))
    assert len(y2) == 2 * n
    e0, e1 = x2[:n].reshape(n, -1).sum(1), x2[n:].reshape(n, -1).sum(1)
    assert not np.array_equal(e0, e1)
    x1, y1 = _collect(make_dataset(rec, 3, 32, repeat=1, start_epoch=1, **kw))
    np.testing.assert_array_equal(y1, y2[n:])
    np.testing.assert_array_equal(x1, x2[n:])
    ref, _ = _collect(make_dataset(rec, 4, 32, training=False))
    reference = sorted(float(im.sum()) for im in ref)
    pixels = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid, num_replicas_in_sync=2)
        x, _ = _collect(make_dataset(rec, 2, 32, seed=1, flip=False, repeat=1, drop_remainder=False,
                                     input_context=ctx))
        assert len(x) > 0
        pixels += [float(im.sum()) for im in x]
    assert sorted(pixels) == reference


def test_build_from_rec_gives_the_same_images_and_labels(rec_set, tmp_path):
    rec, images, bad = rec_set
    stats = build_tfrecords(rec, tmp_path / "tfr", shards=2, progress=False)
    assert stats["seen"] == 14 and stats["written"] == len(images)
    assert stats["written"] + sum(stats["skipped"].values()) == stats["seen"]
    expected_reasons = {}
    for reason in bad.values():
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert stats["skipped"] == expected_reasons
    got = {}
    for path in sorted((tmp_path / "tfr").glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(path)):
            ex = parse_example(raw)
            key = int(ex["filename"].numpy().decode().rsplit("#", 1)[1])
            got[key] = (int(ex["label"]), ex["image"].numpy())
    assert got == images
    labels = json.loads((tmp_path / "tfr" / "labels.json").read_text())
    assert sorted(labels.values()) == list(range(NUM_CLASSES))
    assert num_classes(str(tmp_path / "tfr")) == NUM_CLASSES
    # the command line
    args = argparse.Namespace(src=os.path.dirname(rec), out=str(tmp_path / "cli"), shards=None, workers=1,
                              min_images=0, max_pixels=25_000_000, max_bytes=50 * 2**20, prefix="train",
                              seed=0, overwrite=False, no_progress=True)
    assert build_command.run(args) == 0
    assert json.loads((tmp_path / "cli" / "stats.json").read_text())["written"] == len(images)


def test_one_training_step_from_a_rec_and_an_exact_resume(tmp_path):
    from tfface.training import build, load_recipe

    # a clean set: 12 images of 3 identities (split records among them), header layout
    labels = [k * 3 // 12 for k in range(12)]
    records = [(0, image_record([13, 16], b""))]
    records += [(k + 1, image_record(lab, jpeg_with_magic(k, 24) if k % 5 == 0 else jpeg(50 + k)))
                for k, lab in enumerate(labels)]
    records += [(13 + c, image_record([1 + 4 * c, 5 + 4 * c], b"")) for c in range(3)]
    rec = write_set(tmp_path / "clean", records, property_text="3,32,32")
    overrides = {"data.train": rec, "data.image_size": [32, 32], "data.batch_size": 4, "epochs": 2,
                 "deterministic": True}
    run = build(load_recipe("smoke", overrides), print_fn=lambda *a: None)
    assert run.num_classes == 3 and run.steps_per_epoch == 3
    # resuming at step 2 (inside epoch 0) continues the uninterrupted stream across the epoch end
    full = [b for _, b in zip(range(5), run.dataset(0))]
    resumed = [b for _, b in zip(range(3), run.dataset(2))]
    for (x, y), (xr, yr) in zip(full[2:], resumed):
        np.testing.assert_array_equal(y, yr)
        np.testing.assert_array_equal(x, xr)
    history = run.model.fit(run.dataset(0), steps_per_epoch=1, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
