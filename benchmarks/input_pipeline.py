"""Input pipeline throughput: images/s of tfface's full training pipeline (TFRecord shards ->
parse -> decode -> flip -> batch, 112x112) against bare ``decode_jpeg`` over the same records
(parallel read + parse + decode + batch, nothing else), and their ratio (goal >= 0.9: the
pipeline's shuffling, keys and augmentation cost at most 10% over decoding).

Builds a synthetic set with ``tfface.data.generate_synthetic`` and ``build_tfrecords`` in a
temporary directory (removed afterwards). ``--quick`` uses fewer images and batches.
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _throughput(ds, batches, batch_size, warmup):
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small set, few batches (a sanity run)")
    parser.add_argument("--identities", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements of each; best kept")
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

        warmup = 3 if args.quick else 10
        results = {"bare decode_jpeg": 0.0, "pipeline (flip)": 0.0, "pipeline (flip, crop, colour)": 0.0}
        for _ in range(repeats):
            results["bare decode_jpeg"] = max(results["bare decode_jpeg"], _throughput(bare(), batches, bs, warmup))
            results["pipeline (flip)"] = max(results["pipeline (flip)"], _throughput(full(), batches, bs, warmup))
            results["pipeline (flip, crop, colour)"] = max(
                results["pipeline (flip, crop, colour)"],
                _throughput(full(random_crop=True, color_jitter=True), batches, bs, warmup),
            )
    base = results["bare decode_jpeg"]
    print(f"{'':32s}{'images/s':>10s}{'ratio':>8s}")
    for name, value in results.items():
        print(f"{name:32s}{value:10.0f}{value / base:8.2f}")
    ratio = results["pipeline (flip)"] / base
    print(f"ratio full pipeline / bare decode = {ratio:.2f} (goal >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
