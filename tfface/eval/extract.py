"""Batched embedding extraction for the evaluation protocols.

``extract_embeddings(model_or_fn, images, ...)`` accepts

* models: a Keras model (called with float32 images in [0, 255], as tfface backbones expect), a
  ``.keras`` file, a SavedModel directory or a loaded SavedModel (its ``serving_default``
  signature is fed uint8 images, the tfface export contract), an ``.onnx`` file (onnxruntime) or
  a ``.tflite`` file (the LiteRT interpreter), or an embedder loaded from either (fed uint8
  images too), so every export format is evaluated by the same protocol, or any callable
  ``f(float32 images (B, H, W, 3) in [0, 255]) -> (B, D)``;
* images: a numpy array ``(N, H, W, 3)`` (uint8, or float in [0, 255]), a list of file paths, a
  list of encoded image bytes (what ``tfface.data.read_bin`` returns), or TFRecords (a
  ``.tfrecord`` file, a glob pattern, or a directory of them, with the ``image`` feature of
  ``tfface build``), read in file order.

Decoding and resizing run in a ``tf.data`` pipeline, with the training pipeline's own
preprocessing (:func:`tfface.data.images.decode_and_resize`: decode, then bilinear resize,
antialiased when shrinking, rounded to the uint8 grid), so an image is embedded exactly as it
was seen in training; a numpy array is resized the same way (:func:`tfface.data.images.resize_image`).
Model paths are loaded by :func:`tfface.export.load_embedder`. A tqdm bar shows progress. Flip test:
``"none"``, ``"sum"`` (insightface: f(x) + f(flip(x))) or ``"concat"`` (facenet / the MML paper:
[f(x)/‖f(x)‖, f(flip(x))/‖f(flip(x))‖], twice the dimension). With ``cache=DIR`` the result is stored as
``DIR/embeddings-<hash>.npy``, the hash covering the model's weights (the file contents of an
export: SavedModel, ONNX, TFLite; or ``cache_key``), the images and the options, so several
protocols reuse one pass.
"""
import hashlib
import os
import weakref

import numpy as np

from tfface.data.images import decode_and_resize, list_tfrecords, parse_image_size, resize_image
from tfface.files import InputError, OutputError, atomic_file, describe_os_error

FLIP_MODES = ("none", "sum", "concat")
# v2: images are preprocessed by tfface.data.images (rounded to the uint8 grid after resizing).
_CACHE_VERSION = b"tfface-embeddings-v2"
_COMPILED = weakref.WeakKeyDictionary()


# --- image sources -------------------------------------------------------------------------------

def _classify_source(images):
    """-> (kind, payload, count or None)."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images array must have shape (N, H, W, 3), got {images.shape}")
        if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
            raise ValueError(f"images array must be uint8 or float, got dtype {images.dtype}")
        return "array", images, images.shape[0]
    if isinstance(images, (str, os.PathLike)):
        source = os.fspath(images)
        files = list_tfrecords(source)
        if not files:
            raise ValueError(f"images={source!r} is neither a .tfrecord file, a glob pattern of "
                             "them nor a directory holding *.tfrecord files")
        return "tfrecord", files, None
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list")
        if all(isinstance(x, (bytes, bytearray)) for x in images):
            return "bytes", [bytes(x) for x in images], len(images)
        if all(isinstance(x, (str, os.PathLike)) for x in images):
            paths = [os.fspath(x) for x in images]
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                raise ValueError(f"{len(missing)} image files do not exist, first: {missing[0]!r}")
            return "paths", paths, len(paths)
        raise ValueError("images list must hold only encoded bytes or only file paths, got "
                         f"{sorted({type(x).__name__ for x in images})}")
    raise ValueError("images must be a numpy array (N, H, W, 3), a list of paths, a list of "
                     f"encoded bytes or a TFRecord path, got {type(images).__name__}")


def _dataset(kind, payload, batch_size, image_size):
    import tensorflow as tf

    def decode(data):
        # The training pipeline's decode-and-resize (tfface.data.images), then float32.
        return tf.cast(decode_and_resize(data, image_size), tf.float32)

    if kind == "array":
        n = payload.shape[0]

        def gen():
            for start in range(0, n, batch_size):
                yield np.asarray(payload[start:start + batch_size], dtype=np.float32)

        spec = tf.TensorSpec((None,) + payload.shape[1:], tf.float32)
        ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
        if image_size is not None and tuple(payload.shape[1:3]) != tuple(image_size):
            ds = ds.map(lambda x: resize_image(x, image_size))
        return ds.prefetch(2)
    if kind == "paths":
        ds = tf.data.Dataset.from_tensor_slices(payload).map(tf.io.read_file)
    elif kind == "bytes":
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(payload, dtype=tf.string))
    else:
        feature = {"image": tf.io.FixedLenFeature([], tf.string)}
        ds = tf.data.TFRecordDataset(payload).map(
            lambda s: tf.io.parse_single_example(s, feature)["image"])
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(2)


def check_images(kind, payload, names=None, max_pixels=None):
    """The one image input rule (:func:`tfface.data.images.check_image_bytes` /
    ``check_image_file``) on every encoded image before any is decoded: a known format and at
    most ``max_pixels`` pixels declared in its header (a 187 KB PNG can declare 15000x15000
    pixels, 0.9 GB once decoded). Raises :class:`tfface.data.images.ImageRejected` naming the file
    (or ``names[i]`` for encoded bytes). Arrays and TFRecord sets (checked by ``tfface build``)
    pass through."""
    from tfface.data.images import DEFAULT_MAX_PIXELS, check_image_bytes, check_image_file

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if kind == "paths":
        for path in payload:
            check_image_file(path, max_pixels=limit)
    elif kind == "bytes":
        for i, data in enumerate(payload):
            check_image_bytes(data, _name(names, i), max_pixels=limit)


def _name(names, i):
    if names is None:
        return f"image {i}"
    if isinstance(names, str):
        return f"{names} record {i}"
    return names[i]


def _find_bad_image(kind, payload, start, stop, image_size, names):
    """The first image in ``[start, stop)`` that does not decode alone, named; None if all do."""
    import tensorflow as tf

    for i in range(start, min(stop, len(payload))):
        try:
            data = tf.io.read_file(payload[i]) if kind == "paths" else tf.constant(payload[i])
            decode_and_resize(data, image_size)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
            name = payload[i] if kind == "paths" else _name(names, i)
            return f"{name}: cannot be decoded ({err.message.splitlines()[0][:200]})"
    return None


# --- models --------------------------------------------------------------------------------------

def _signature_parts(signature):
    """(input name, input spec, output key) of a SavedModel signature."""
    _, kwargs = signature.structured_input_signature
    if len(kwargs) != 1:
        raise ValueError(f"the SavedModel signature must take one image input, it takes "
                         f"{sorted(kwargs)}")
    name, spec = next(iter(kwargs.items()))
    outputs = signature.structured_outputs
    if "embeddings" in outputs:
        key = "embeddings"
    elif len(outputs) == 1:
        key = next(iter(outputs))
    else:
        raise ValueError(f"the SavedModel signature has outputs {sorted(outputs)}; expected "
                         "'embeddings'")
    return name, spec, key


def _resolve_model(model_or_fn):
    """-> (fn(float32 batch) -> (B, D) numpy, expected (H, W) or None, fingerprint fn or None)."""
    import keras
    import tensorflow as tf

    from tfface.export.load import ExportedEmbedder, load_embedder

    model = model_or_fn
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        try:
            model = load_embedder(path)
        except (FileNotFoundError, ValueError) as err:
            raise InputError(f"model={path!r}: {err}") from None
        if isinstance(model, ExportedEmbedder):
            return _resolve_exported(model)
        if not isinstance(model, keras.Model):
            return _resolve_saved_model(model, lambda: "savedmodel:" + _hash_files(_all_files(path), path))
    if isinstance(model, ExportedEmbedder):
        return _resolve_exported(model)
    if isinstance(model, keras.Model) or isinstance(model, keras.layers.Layer):
        size = None
        try:
            shape = model.input_shape
            if isinstance(shape, (list, tuple)) and len(shape) == 4 and shape[1] and shape[2]:
                size = (int(shape[1]), int(shape[2]))
        except (AttributeError, ValueError):
            size = None
        call = _COMPILED.get(model)
        if call is None:
            # One traced function per model, reused by later calls (the callback embeds every
            # epoch): tracing costs more than embedding a small verification set.
            call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
            _COMPILED[model] = call
        return (lambda x: _to_numpy(call(x))), size, lambda: _hash_keras(model)
    if hasattr(model, "signatures") and "serving_default" in getattr(model, "signatures", {}):
        return _resolve_saved_model(model, None)
    if callable(model):
        return (lambda x: _to_numpy(model(x))), None, None
    raise ValueError("model_or_fn must be a keras Model, a .keras file, a SavedModel (path or "
                     "loaded), an .onnx or .tflite file (or loaded) or a callable, got "
                     f"{type(model_or_fn).__name__}")


def _resolve_saved_model(loaded, fingerprint):
    import tensorflow as tf

    signature = loaded.signatures["serving_default"]
    name, spec, key = _signature_parts(signature)
    size = None
    if spec.shape.rank == 4 and spec.shape[1] and spec.shape[2]:
        size = (int(spec.shape[1]), int(spec.shape[2]))

    def fn(x):
        # The export contract takes uint8 images.
        x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), spec.dtype)
        return _to_numpy(signature(**{name: x})[key])

    return fn, size, fingerprint


def _resolve_exported(embedder):
    """An ONNX or TFLite export: uint8 images in (its contract), fingerprinted by its file's
    contents (a re-exported file with other weights gets another cache entry; a copy elsewhere
    the same)."""

    def fn(x):
        x = np.clip(np.round(np.asarray(x, dtype=np.float32)), 0, 255).astype(np.uint8)
        return _to_numpy(embedder(x))

    return fn, embedder.image_size, embedder.fingerprint


def _to_numpy(out):
    if isinstance(out, dict):
        if "embeddings" in out:
            out = out["embeddings"]
        elif len(out) == 1:
            out = next(iter(out.values()))
        else:
            raise ValueError(f"the model returned outputs {sorted(out)}; expected 'embeddings'")
    out = np.asarray(out)
    if out.ndim != 2:
        raise ValueError(f"the model must return (batch, dim) embeddings, got shape {out.shape}")
    return out.astype(np.float32, copy=False)


# --- cache keys ----------------------------------------------------------------------------------

def _all_files(path):
    out = []
    for root, _, files in os.walk(path):
        out.extend(os.path.join(root, f) for f in files)
    return sorted(out)


def _hash_files(files, root=None):
    """sha256 over the files' contents (and their names relative to ``root``): a model
    re-exported to the same path gets a new key, a copy elsewhere the same."""
    h = hashlib.sha256()
    for f in files:
        h.update(os.fsencode(os.path.relpath(f, root) if root else os.path.basename(f)))
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _hash_keras(model):
    h = hashlib.sha256(type(model).__name__.encode())
    for w in model.weights:
        value = np.asarray(w.numpy())
        h.update(w.path.encode() if hasattr(w, "path") else w.name.encode())
        h.update(str(value.shape).encode() + str(value.dtype).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _hash_images(kind, payload):
    h = hashlib.sha256(kind.encode())
    if kind == "array":
        h.update(str(payload.shape).encode() + str(payload.dtype).encode())
        h.update(np.ascontiguousarray(payload).tobytes())
    elif kind == "bytes":
        for b in payload:
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    else:
        # Paths and TFRecord files: name, size and modification time (not the content, which
        # could be gigabytes); a rewritten file gets a new mtime.
        for p in payload:
            st = os.stat(p)
            h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# --- main entry ----------------------------------------------------------------------------------

def extract_embeddings(model_or_fn, images, batch_size=64, image_size=None, flip="none",
                       cache=None, progress=True, cache_key=None, names=None, max_pixels=None):
    """Embeddings ``(N, D)`` float32 (``(N, 2D)`` with ``flip="concat"``) of ``images``, in order.

    ``image_size``: ``(H, W)`` or an int; images are resized to it as the training pipeline
    resizes them (:func:`tfface.data.images.resize_image`). When None, the
    model's fixed input size is used if it has one, else the images must share one size.
    ``cache``: a directory; the result is loaded from / saved to ``DIR/embeddings-<hash>.npy``.
    For a plain callable the model cannot be fingerprinted: pass ``cache_key`` (any string that
    changes whenever the function does) to use the cache. Embeddings are returned as the model
    gives them (not normalised): the protocols normalise.

    Encoded images (paths, bytes) pass the one image rule first (:func:`check_images`, at most
    ``max_pixels`` pixels, default :data:`tfface.data.images.DEFAULT_MAX_PIXELS`); ``names``
    names encoded bytes in errors (a list, or a source name: ``"lfw.bin"`` -> ``"lfw.bin record
    7"``). A cache folder that cannot be created or written raises
    :class:`tfface.files.OutputError` naming it; a cache entry is written atomically.
    """
    import tensorflow as tf

    if flip not in FLIP_MODES:
        raise ValueError(f"flip must be one of {FLIP_MODES}, got {flip!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        image_size = parse_image_size(image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}") from None
    kind, payload, count = _classify_source(images)
    check_images(kind, payload, names, max_pixels)
    fn, model_size, fingerprint = _resolve_model(model_or_fn)
    if image_size is None:
        image_size = model_size

    path = None
    if cache is not None:
        if cache_key is not None:
            model_id = f"key:{cache_key}"
        elif fingerprint is not None:
            model_id = fingerprint()
        else:
            raise ValueError("cache needs a model fingerprint: this model is a plain callable "
                             "(or a loaded SavedModel object), so pass cache_key='...'")
        h = hashlib.sha256(_CACHE_VERSION)
        h.update(model_id.encode())
        h.update(_hash_images(kind, payload).encode())
        h.update(f"|flip={flip}|size={image_size}".encode())
        prepare_output_dir(cache, "the embedding cache")
        path = os.path.join(cache, f"embeddings-{h.hexdigest()[:24]}.npy")
        if os.path.isfile(path):
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.ndim == 2 and (count is None or cached.shape[0] == count):
                    return cached
            except (OSError, ValueError, EOFError):
                pass  # a damaged entry is recomputed and replaced

    ds = _dataset(kind, payload, batch_size, image_size)
    from tqdm.auto import tqdm

    total = None if count is None else -(-count // batch_size)
    bar = tqdm(total=total, disable=not progress, desc="embeddings", unit="batch", leave=False)
    out = []
    done = 0
    iterator = iter(ds)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except tf.errors.InvalidArgumentError as err:
            culprit = None
            if kind in ("paths", "bytes"):
                culprit = _find_bad_image(kind, payload, done, done + batch_size, image_size, names)
            if culprit:
                raise InputError(culprit) from None
            raise InputError(f"could not decode or batch the images after image {done} (an image "
                             "that is not an image, or images of different sizes without "
                             f"image_size): {err.message.splitlines()[0]}") from None
        emb = fn(batch)
        if flip != "none":
            flipped = fn(tf.reverse(batch, axis=[2]))
            if flip == "sum":
                emb = emb + flipped
            else:
                # facenet (and the MML paper) concatenate the L2-normalised embeddings of the
                # image and its flip, so neither half dominates the distance.
                emb = np.concatenate([_l2(emb), _l2(flipped)], axis=1)
        if emb.shape[0] != batch.shape[0]:
            raise ValueError(f"the model returned {emb.shape[0]} embeddings for a batch of "
                             f"{batch.shape[0]} images")
        out.append(emb)
        done += batch.shape[0]
        bar.update(1)
    bar.close()
    if not out:
        raise ValueError("images yielded no image")
    result = np.concatenate(out, axis=0)
    if path is not None:
        with atomic_file(path) as fh:
            np.save(fh, result, allow_pickle=False)
    return result


def prepare_output_dir(folder, what):
    """Create ``folder`` (with parents) and check it can be written; raise
    :class:`tfface.files.OutputError` naming it when it is a file, a symbolic link to something
    that is not a folder, or not writable."""
    import errno

    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(errno.ENOTDIR, f"{what} {folder} is a file, not a folder", folder)
    if os.path.islink(folder) and not os.path.isdir(folder):
        raise OutputError(errno.ENOENT, f"{what} {folder} is a dangling symbolic link", folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        err.filename = err.filename or folder
        raise OutputError(err.errno, describe_os_error(err, f"create {what}"), folder) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(errno.EACCES, f"cannot write {what} {folder}: permission denied", folder)
    return folder


def _l2(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
