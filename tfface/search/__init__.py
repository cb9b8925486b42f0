"""tfface.search: from photos to a face search.

* :mod:`tfface.search.photos` — photos -> detected, aligned, embedded faces (``tfface embed``),
  the embeddings file, gallery lists;
* :mod:`tfface.search.model` — :class:`FaceEmbedder`: a model with its alignment, input size,
  hash and thresholds (from the export metadata when there is one);
* :mod:`tfface.search.exact` — exact chunked cosine top-k and identity templates (numpy);
* :mod:`tfface.search.ann` — FAISS indexes (optional ``search`` extra) and their recall@1;
* :mod:`tfface.search.index` — the index folder (``tfface enrol`` / ``tfface search``);
* :mod:`tfface.search.pairs` — LFW-format pairs and probe/gallery splits (``tfface pairs``).

Names are resolved lazily: importing this package imports neither TensorFlow nor FAISS.
"""
from tfface._lazy import lazy_exports

_EXPORTS = {
    "exact_topk": "tfface.search.exact",
    "identity_templates": "tfface.search.exact",
    "normalise": "tfface.search.exact",
    "build_faiss": "tfface.search.ann",
    "faiss_topk": "tfface.search.ann",
    "recall_at_1": "tfface.search.ann",
    "FaceEmbedder": "tfface.search.model",
    "embed_photos": "tfface.search.photos",
    "list_photos": "tfface.search.photos",
    "load_photo": "tfface.search.photos",
    "read_embeddings": "tfface.search.photos",
    "write_embeddings": "tfface.search.photos",
    "write_index": "tfface.search.index",
    "open_index": "tfface.search.index",
    "decide": "tfface.search.index",
    "make_pairs": "tfface.search.pairs",
    "split_probe_gallery": "tfface.search.pairs",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
