"""tfface.data: the embedded synthetic data set, TFRecord building, the ``tf.data`` input pipeline,
image I/O shared by training and evaluation (``images.py``: extensions, the identity-folder index,
TFRecord listing, the one decode-and-resize) and readers of the verification formats people have
(LFW ``pairs.txt``, insightface ``.bin``, YTF ``splits.txt``) and the ``.bin`` writer.

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
    # images.py
    "IMAGE_EXTENSIONS": "tfface.data.images",
    "identity_index": "tfface.data.images",
    "list_tfrecords": "tfface.data.images",
    "decode_and_resize": "tfface.data.images",
    "resize_image": "tfface.data.images",
    "load_image": "tfface.data.images",
    # pipeline.py
    "make_dataset": "tfface.data.pipeline",
    "distribute_dataset": "tfface.data.pipeline",
    "num_classes": "tfface.data.pipeline",
    # readers.py
    "read_pairs": "tfface.data.readers",
    "read_bin": "tfface.data.readers",
    "read_ytf_splits": "tfface.data.readers",
    # binwriter.py
    "write_bin": "tfface.data.binwriter",
    "pack_pairs": "tfface.data.binwriter",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
