"""tfface.data: the embedded synthetic data set, TFRecord building, the ``tf.data`` input pipeline
and readers of the verification formats people have (LFW ``pairs.txt``, insightface ``.bin``,
YTF ``splits.txt``).

Public names are resolved lazily from their modules, so importing this package is cheap.
"""
from tfface._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
