"""Input pipeline throughput: images/s of tfface's full training pipeline (TFRecord shards ->
parse -> decode -> flip -> batch, 112x112) against bare ``decode_jpeg`` over the same records
(parallel read + parse + decode + batch, nothing else), and their ratio (goal >= 0.9: the
pipeline's shuffling, keys and augmentation cost at most 10% over decoding).

Builds a synthetic set with ``tfface.data.generate_synthetic`` and ``build_tfrecords`` in a
temporary directory (removed afterwards). ``--quick`` uses fewer images and batches.

The same images are also written as an insightface RecordIO set (``train.rec``/``.idx``/
``property``, header record and identity records, by a small writer below) and read by the
pipeline's ``.rec`` source (``--no-rec`` skips it): its ratio to the same bare decode.

Besides wall-clock images/s it prints images per CPU-second of the process: on a machine shared
with other work the wall-clock rate follows the load, while the CPU cost per image (what the
pipeline adds over decoding) does not; on an idle machine with enough parallel calls both ratios
agree. The pipelines deliver uint8 batches (the model casts on the device), like the bare one.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _throughput(ds, batches, batch_size, warmup):
    """(images per wall second, images per CPU second of the whole process)."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    n = batches * batch_size
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def _write_recordio(folder, items):
    """insightface's layout: header record, image records (IRHeader, scalar label), one identity
    record per class, ``property``; ``items``: [(label, jpeg bytes)] sorted by label."""
    import struct

    magic = struct.pack("<I", 0xCED7230A)

    def frame(data):
        parts, start = [], 0
        for pos in range(0, len(data) - len(data) % 4, 4):
            if data[pos:pos + 4] == magic:
                parts.append(data[start:pos])
                start = pos + 4
        parts.append(data[start:])
        out = b""
        for i, part in enumerate(parts):
            flag = 0 if len(parts) == 1 else (1 if i == 0 else 3 if i == len(parts) - 1 else 2)
            out += magic + struct.pack("<I", flag << 29 | len(part)) + part + b"\0" * (-len(part) % 4)
        return out

    def record(label, data=b"", key=0):
        if isinstance(label, tuple):
            return struct.pack("<IfQQ", len(label), 0.0, key, 0) + struct.pack(f"<{len(label)}f", *label) + data
        return struct.pack("<IfQQ", 0, float(label), key, 0) + data

    classes = max(label for label, _ in items) + 1
    first_identity = len(items) + 1
    ranges = {}
    for key, (label, _) in enumerate(items, 1):
        lo, hi = ranges.get(label, (key, key))
        ranges[label] = (lo, key + 1)
    records = [record((first_identity, first_identity + classes))]
    records += [record(label, data, key) for key, (label, data) in enumerate(items, 1)]
    records += [record(ranges[c]) for c in range(classes)]
    os.makedirs(folder, exist_ok=True)
    offset = 0
    with open(os.path.join(folder, "train.rec"), "wb") as rec, open(os.path.join(folder, "train.idx"), "w") as idx:
        for key, data in enumerate(records):
            framed = frame(data)
            idx.write(f"{key}\t{offset}\n")
            rec.write(framed)
            offset += len(framed)
    with open(os.path.join(folder, "property"), "w") as f:
        f.write(f"{classes},112,112\n")
    return os.path.join(folder, "train.rec")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small set, few batches (a sanity run)")
    parser.add_argument("--identities", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements of each; best kept")
    parser.add_argument("--no-rec", action="store_true", help="skip the RecordIO (.rec) source")
    args = parser.parse_args(argv)
    identities = args.identities or (60 if args.quick else 300)
    batches = args.batches or (10 if args.quick else 60)
    repeats = 1 if args.quick else args.repeats

    import tensorflow as tf

    from tfface.data.build import build_tfrecords
    from tfface.data.pipeline import make_dataset
    from tfface.data.synthetic import generate_synthetic
    from tfface.data.tfrecord import FEATURES

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_synthetic(os.path.join(tmp, "synth"), num_identities=identities, num_test_identities=0,
                           folds=0, workers=0)
        stats = build_tfrecords(os.path.join(tmp, "synth", "train"), os.path.join(tmp, "tfr"), shards=8,
                                progress=False)
        n = stats["written"]
        print(f"data: {n} JPEG images (112x112) in 8 shards, prepared in {time.perf_counter() - t0:.1f}s")
        # The shard list repeated, so that an epoch is long as in real data sets (epoch starts
        # refill the shuffle buffer); both pipelines read the same list.
        reps = max(1, -(-20000 // n))
        files = sorted(tf.io.gfile.glob(os.path.join(tmp, "tfr", "*.tfrecord"))) * reps
        print(f"reading the shards {reps}x per epoch ({n * reps} records)")
        bs = args.batch_size

        def bare():
            spec = {"image": FEATURES["image"], "label": FEATURES["label"]}

            def decode(r):
                ex = tf.io.parse_single_example(r, spec)
                return tf.io.decode_jpeg(ex["image"], channels=3), tf.cast(ex["label"], tf.int32)

            ds = tf.data.TFRecordDataset(files, num_parallel_reads=8).repeat()
            return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(bs).prefetch(tf.data.AUTOTUNE)

        def full(**kw):
            return make_dataset(files, bs, 112, training=True, seed=0, **kw)

        rec = None
        if not args.no_rec:
            # The same records, as many times over as the shard list, in one .rec.
            items = []
            for raw in tf.data.TFRecordDataset(files[: len(files) // reps]):
                ex = tf.io.parse_single_example(raw, {"image": FEATURES["image"], "label": FEATURES["label"]})
                items.append((int(ex["label"]), ex["image"].numpy()))
            items = sorted(items * reps, key=lambda item: item[0])
            rec = _write_recordio(os.path.join(tmp, "rec"), items)
            print(f"RecordIO: {len(items)} records in {os.path.getsize(rec) / 2**20:.0f} MiB")

        warmup = 3 if args.quick else 10
        names = ["bare decode_jpeg", "pipeline (flip)", "pipeline (flip, crop, colour)"]
        makers = [bare, full, lambda: full(random_crop=True, color_jitter=True)]
        if rec:
            names.append("pipeline .rec (flip)")
            makers.append(lambda: make_dataset(rec, bs, 112, training=True, seed=0))
        wall = {name: [] for name in names}
        cpu = {name: [] for name in names}
        for _ in range(repeats):
            for name, make in zip(names, makers):
                w, c = _throughput(make(), batches, bs, warmup)
                wall[name].append(w)
                cpu[name].append(c)
    base_w, base_c = max(wall[names[0]]), statistics.median(cpu[names[0]])
    print(f"{'':32s}{'images/s':>10s}{'ratio':>8s}{'img/CPU-s':>11s}{'ratio':>8s}   (best wall, median CPU)")
    for name in names:
        w, c = max(wall[name]), statistics.median(cpu[name])
        print(f"{name:32s}{w:10.0f}{w / base_w:8.2f}{c:11.0f}{c / base_c:8.2f}")
    print(f"ratio full pipeline (flip) / bare decode = {max(wall[names[1]]) / base_w:.2f} wall, "
          f"{statistics.median(cpu[names[1]]) / base_c:.2f} CPU (goal >= 0.9)")
    if rec:
        name = "pipeline .rec (flip)"
        print(f"ratio .rec pipeline / bare decode = {max(wall[name]) / base_w:.2f} wall, "
              f"{statistics.median(cpu[name]) / base_c:.2f} CPU; / TFRecord pipeline = "
              f"{statistics.median(cpu[name]) / statistics.median(cpu[names[1]]):.2f} CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
