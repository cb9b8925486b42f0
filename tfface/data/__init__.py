"""tfface.data: the embedded synthetic data set, TFRecord building, the ``tf.data`` input pipeline
and readers of the verification formats people have (LFW ``pairs.txt``, insightface ``.bin``,
YTF ``splits.txt``).

Public names are resolved lazily from their modules, so importing this package is cheap.
"""
import importlib

_EXPORTS = {
    # synthetic.py
    "generate_synthetic": "tfface.data.synthetic",
    # tfrecord.py / build.py
    "build_tfrecords": "tfface.data.build",
    "parse_example": "tfface.data.tfrecord",
    "serialize_example": "tfface.data.tfrecord",
    # pipeline.py
    "make_dataset": "tfface.data.pipeline",
    "distribute_dataset": "tfface.data.pipeline",
    # readers.py
    "read_pairs": "tfface.data.readers",
    "read_bin": "tfface.data.readers",
    "read_ytf_splits": "tfface.data.readers",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfface.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
