"""The TFRecord format of tfface: one ``tf.train.Example`` per image.

=============  =========  ==========================================================
feature        type       content
=============  =========  ==========================================================
``image``      bytes      the encoded file as it was on disk (JPEG, PNG or BMP), never
                          decoded pixels: 5-10x smaller, and decoding is parallel
``label``      int64      class index, ``labels.json[identity]``
``identity``   bytes      identity (folder) name, UTF-8
``filename``   bytes      path relative to the source folder, UTF-8 (for tracing a record
                          back to its file; empty when unknown)
=============  =========  ==========================================================

Shards are named ``<prefix>-%05d-of-%05d.tfrecord`` and sit beside ``labels.json``
(identity -> label) and ``stats.json`` (what the build saw, wrote and skipped).
"""
import tensorflow as tf

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "identity": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_example(image, label, identity="", filename=""):
    """One record as bytes. ``image`` is the encoded file content (bytes)."""
    if not isinstance(image, (bytes, bytearray)):
        raise TypeError(f"image must be the encoded file bytes, got {type(image).__name__}")
    label = int(label)
    if label < 0:
        raise ValueError(f"label must be >= 0, got {label}")
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": _bytes(bytes(image)),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "identity": _bytes(str(identity).encode("utf-8")),
                "filename": _bytes(str(filename).encode("utf-8")),
            }
        )
    )
    return example.SerializeToString()


def parse_example(serialized):
    """Parse serialized records: a scalar string tensor gives a dict of scalars, a vector a dict
    of vectors. Keys: ``image`` (encoded bytes), ``label`` (int64), ``identity``, ``filename``."""
    serialized = tf.convert_to_tensor(serialized, tf.string)
    if serialized.shape.rank == 0:
        return tf.io.parse_single_example(serialized, FEATURES)
    return tf.io.parse_example(serialized, FEATURES)
