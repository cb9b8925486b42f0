"""The embedding model of ``tfface embed`` / ``enrol`` / ``search``: loaded once, with what a
search needs to know about it.

:class:`FaceEmbedder` loads any model :func:`tfface.export.load_embedder` reads (a run directory,
a ``.keras`` file, a SavedModel directory, an ``.onnx`` or ``.tflite`` file) and describes it in
:attr:`FaceEmbedder.info` (plain JSON, stored in every embeddings file and index):

* ``hash``: sha256 of the model's bytes (every file of a SavedModel directory), so an index
  refuses queries embedded by another model;
* ``input_size``: ``[height, width]`` the model takes, from the export metadata
  (:func:`tfface.export.metadata.read_metadata`, when the model has it), else the model's input
  shape, else the alignment size;
* ``alignment``: ``{"mode", "size": [height, width], "margin", "source"}`` — the crop the model
  was trained on, from the metadata (``alignment.mode`` and ``.size``); models exported without
  it (or with mode "unknown") take ``align_mode`` / ``align_size`` (the ``--align-mode`` /
  ``--align-size`` options; default arcface at the model's square input size, else 112), and
  arguments given explicitly override the metadata. Facenet crops take ``margin`` (default 32);
* ``thresholds``: the metadata's verification thresholds (cosine similarities), or None;
* ``flip``: "none" or "sum" (add the embedding of the mirrored crop); an export made with flip
  fusion (``flip_fusion`` true) does it inside, so it is run with "none".

Embeddings are returned L2-normalised (float32), whatever the model returns.
"""
import hashlib
import os

import numpy as np

from tfface.files import InputError

FLIPS = ("none", "sum")
DEFAULT_ALIGN_MODE = "arcface"


def model_hash(path):
    """sha256 of the model at ``path`` (a file, or every file of a directory with its relative
    name), streamed."""
    from tfface.export.load import hash_file, resolve_embedder_path

    resolved = resolve_embedder_path(path)
    if os.path.isfile(resolved):
        return hash_file(resolved)
    h = hashlib.sha256()
    for folder, dirs, names in os.walk(resolved):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            h.update(os.path.relpath(full, resolved).encode("utf-8") + b"\0")
            h.update(hash_file(full).encode("ascii"))
    return h.hexdigest()


def read_model_metadata(path):
    """The export metadata of the model at ``path`` (a dict), or None for a model exported without
    it (or a tfface without the metadata module)."""
    try:
        from tfface.export.metadata import read_metadata
    except ImportError:
        return None
    return read_metadata(path)


def _model_input_size(model):
    """``(height, width)`` the loaded model fixes, or None."""
    size = getattr(model, "image_size", None)  # ONNX / TFLite embedders
    if size:
        return tuple(int(v) for v in size) if all(size) else None
    inputs = getattr(model, "inputs", None)
    if inputs:
        shape = tuple(inputs[0].shape)
        if len(shape) == 4 and shape[1] and shape[2]:
            return int(shape[1]), int(shape[2])
        return None
    signatures = getattr(model, "signatures", None)
    if signatures and "serving_default" in signatures:
        specs = signatures["serving_default"].structured_input_signature[1]
        for spec in specs.values():
            if spec.shape.rank == 4 and spec.shape[1] and spec.shape[2]:
                return int(spec.shape[1]), int(spec.shape[2])
    return None


def _as_hw(size, what):
    """An int or ``(width, height)`` (the ``--align-size WxH`` order) -> ``[height, width]``."""
    from tfface.align.geometry import output_size

    try:
        w, h = output_size(size if isinstance(size, int) else tuple(size))
    except (TypeError, ValueError) as err:
        raise InputError(f"{what}={size!r}: {err}") from None
    return [h, w]


class FaceEmbedder:
    """A loaded model and its :attr:`info` (see the module docstring).

    Args:
        path: the model (anything :func:`tfface.export.load_embedder` reads).
        align_mode, align_size, margin: the alignment, overriding the metadata (None: the
            metadata's, else arcface at the model's square input size or 112).
        flip: "none" or "sum"; None: "none".
    """

    def __init__(self, path, align_mode=None, align_size=None, margin=None, flip=None):
        from tfface.export.load import load_embedder

        self.path = os.fspath(path)
        try:
            self.model = load_embedder(self.path)
        except (FileNotFoundError, ValueError, ImportError) as err:
            raise InputError(f"model {self.path}: {err}") from None
        except Exception as err:  # a corrupt file: Keras, TensorFlow and the runtimes raise their own
            raise InputError(f"model {self.path} could not be loaded ({type(err).__name__}: "
                             f"{str(err)[:300]})") from None
        metadata = read_model_metadata(self.path)
        self.metadata = metadata
        meta_align = (metadata or {}).get("alignment") or {}
        if meta_align.get("mode") not in ("arcface", "facenet"):
            meta_align = {}  # "unknown": exported without a record of its crop
        meta_input = (metadata or {}).get("input") or {}
        input_size = meta_input.get("size")
        if not input_size or not all(input_size):
            input_size = _model_input_size(self.model)
        mode = align_mode or meta_align.get("mode") or DEFAULT_ALIGN_MODE
        if mode not in ("arcface", "facenet"):
            raise InputError(f"alignment mode {mode!r}; expected arcface or facenet")
        if align_size is not None:
            size = _as_hw(align_size, "--align-size")
        elif meta_align.get("size") and (align_mode is None or align_mode == meta_align.get("mode")):
            size = [int(v) for v in meta_align["size"]]
        elif input_size is not None and (mode == "facenet" or input_size[0] == input_size[1]):
            size = [int(input_size[0]), int(input_size[1])]
        else:
            size = [112, 112] if mode == "arcface" else [160, 160]
        if flip is None:
            flip = "none"
        if flip not in FLIPS:
            raise InputError(f"flip={flip!r}; expected one of {FLIPS}")
        self.flip = flip
        self.input_size = tuple(int(v) for v in input_size) if input_size else tuple(size)
        thresholds = (metadata or {}).get("thresholds")
        self.info = {
            "path": os.path.abspath(self.path),
            "hash": model_hash(self.path),
            "input_size": list(self.input_size),
            "alignment": {"mode": mode, "size": size,
                          "margin": None if mode != "facenet" else (32.0 if margin is None else float(margin)),
                          "source": "arguments" if (align_mode or align_size) else
                          ("metadata" if meta_align else "default")},
            "flip": flip,
            "embedding_size": (metadata or {}).get("embedding_size"),
            "flip_fusion": bool((metadata or {}).get("flip_fusion")),
            "thresholds": thresholds,
            "metadata": metadata is not None,
        }

    def aligner(self, detector=None, min_face_size=20):
        """A :class:`tfface.align.FaceAligner` cutting this model's crop."""
        from tfface.align.aligner import FaceAligner

        a = self.info["alignment"]
        height, width = a["size"]
        return FaceAligner(mode=a["mode"], size=(width, height),
                           margin=a["margin"] if a["mode"] == "facenet" else None,
                           min_face_size=min_face_size, detector=detector)

    def embed(self, crops, batch_size=64):
        """L2-normalised float32 ``(N, D)`` embeddings of uint8 crops ``(N, h, w, 3)``, resized to
        the model's input as training resizes (:func:`tfface.eval.extract_embeddings`)."""
        from tfface.eval.extract import extract_embeddings
        from tfface.search.exact import normalise

        crops = np.asarray(crops)
        if len(crops) == 0:
            d = self.info["embedding_size"] or 0
            return np.zeros((0, d), dtype=np.float32)
        emb = extract_embeddings(self.model, crops, batch_size=batch_size, image_size=self.input_size,
                                 flip=self.flip, progress=False)
        emb = normalise(emb)
        self.info["embedding_size"] = int(emb.shape[1])
        return emb
