"""Weights in: third-party checkpoints -> tfface embedders (registry kind ``"importer"``).

An importer is a function registered as::

    @registry.register("importer", "facenet_pb", inject=("src",), detect=is_frozen_graph)
    def facenet_pb(src, embedding_size=None, **options) -> keras.Model: ...

It reads ``src`` (a file or folder as the third party distributes it) without executing code
from it (no pickle globals, ``torch.load(weights_only=True)`` only, graph files parsed as
protocol buffers, never imported as code), maps every tensor onto a tfface backbone built by
``tfface.backbones.get`` and returns that ``keras.Model`` (the embedder: uint8-range pixels in,
embeddings out). Shapes and names are checked; the first tensor that does not fit fails naming
it. :func:`import_weights` picks the importer by name or by its ``meta["detect"](src) -> bool``
(a cheap look at the file: suffix, magic bytes, marker files) and saves the
result as a ``.keras`` file usable as ``--model`` (eval, export) and ``init_from`` (training).
"""
from tfface._lazy import lazy_exports

_EXPORTS = {
    "import_weights": "tfface.interop.base",
    "detect_format": "tfface.interop.base",
    "ImportError_": "tfface.interop.base",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
