"""The protocol runner: one benchmark by its registered name, on one model.

    evaluate_protocol("lfw", "/data/lfw", "runs/arcface", flip="sum", cache="/tmp/emb")

builds ``embed(images, key)`` over :func:`tfface.eval.extract_embeddings` (batched, with the
run's flip fusion; each image set embedded once per run, and cached on disk under ``cache``,
keyed by the model's contents, the images and the options, so a second protocol or a second run
on the same images reuses the pass), then
``registry.build("protocol", Component(name, options), data=data).evaluate(embed, progress)``.
TensorFlow is imported only when a model is loaded or images are embedded.
"""
import os

import numpy as np

from tfface import registry

__all__ = ["evaluate_protocol", "make_embed", "load_model"]


def load_model(model):
    """``(loaded model or callable, cache key or None)``. A path (training run directory,
    ``.keras`` file, SavedModel export) is loaded once by :func:`tfface.export.load_embedder`; a
    SavedModel has no weights to fingerprint, so its cache key is a hash of its files' contents.
    Keras models are fingerprinted from their weights by the extractor."""
    if not isinstance(model, (str, os.PathLike)):
        return model, None
    from tfface.eval.extract import _all_files, _hash_files
    from tfface.export.load import is_saved_model, load_embedder, resolve_embedder_path

    path = os.fspath(model)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model {path!r} does not exist")
    loaded = load_embedder(path)
    key = None
    resolved = resolve_embedder_path(path)
    if is_saved_model(resolved):
        key = "savedmodel:" + _hash_files(_all_files(resolved), resolved)
    elif hasattr(loaded, "fingerprint"):
        key = loaded.fingerprint()  # .onnx / .tflite: a hash of the file's contents
    return loaded, key


def make_embed(model, flip="none", batch_size=64, image_size=None, cache=None, progress=None,
               cache_key=None, max_pixels=None):
    """``embed(images, key) -> float32 (N, D)`` for the protocols (see
    :mod:`tfface.eval.protocols.base`): :func:`tfface.eval.extract_embeddings` with these
    options; an image set (``key``) is embedded once per ``embed`` (kept in memory) and, with
    ``cache``, stored on disk. ``progress``: a ``progress(message)`` callable (also turns the
    extractor's progress bar on) or None. ``model``: what ``extract_embeddings`` takes, or a
    path (loaded once, see :func:`load_model`)."""
    model, path_key = load_model(model)
    cache_key = cache_key or path_key
    done = {}

    def embed(images, key, names=None):
        if key in done and done[key][0] == len(images):
            return done[key][1]
        from tfface.eval.extract import extract_embeddings

        if progress:
            progress(f"{key}: {len(images)} images")
        use_cache = cache
        if use_cache is not None and cache_key is None and not _fingerprintable(model):
            use_cache = None  # a plain callable cannot be keyed: no disk cache
        emb = extract_embeddings(model, images, batch_size=batch_size, image_size=image_size,
                                 flip=flip, cache=use_cache, progress=progress is not None,
                                 cache_key=cache_key, names=names if names is not None else key,
                                 max_pixels=max_pixels)
        emb = np.asarray(emb, dtype=np.float32)
        done[key] = (len(images), emb)
        return emb

    return embed


def _fingerprintable(model):
    import keras

    return isinstance(model, (keras.Model, keras.layers.Layer))


def evaluate_protocol(name, data, model, flip="none", batch_size=64, image_size=None, cache=None,
                      progress=None, embed=None, **options):
    """Run the protocol registered as ``name`` on ``data`` (its root folder or file as
    distributed) with ``model``; returns its ``{metric: value}``.

    Args:
        name: a registered protocol (``tfface.registry.names("protocol")``); an unknown name is
            a ``RegistryError`` listing the registered ones.
        data: the benchmark's folder (or file).
        model: a path (training run, ``.keras``, SavedModel export), a Keras model or a callable
            ``f(float32 images in [0, 255]) -> (B, D)``.
        flip: ``"none"``, ``"sum"`` (insightface) or ``"concat"`` (facenet / MML).
        batch_size, image_size: of the extraction (``image_size`` None: the model's input).
        cache: a directory caching embeddings on disk (None: no disk cache).
        progress: ``progress(message)`` or None.
        embed: an ``embed(images, key)`` to use instead of building one (several protocols on
            one model share it; ``model`` and the extraction options are then ignored).
        **options: the protocol's options (``far=...``, ``folds=...``, ...).
    """
    protocol = registry.build("protocol", registry.Component(name, options), data=data)
    if embed is None:
        embed = make_embed(model, flip=flip, batch_size=batch_size, image_size=image_size,
                           cache=cache, progress=progress)
    if progress:
        progress(f"{name}: evaluating {data}")
    return protocol.evaluate(embed, progress)
