"""Writer of insightface verification ``.bin`` files (what :func:`tfface.data.read_bin` reads).

A ``.bin`` is a pickle of exactly ``(bins, issame_list)``: a list of 2·N encoded images (``bytes``;
pair ``i`` is images ``2i`` and ``2i+1``) and a list of N ``bool``. The writer pickles nothing else
(no numpy array, no class), so the file loads with tfface's restricted reader, with a plain
``pickle.load(f, encoding="bytes")`` (insightface's ``load_bin``) and without either of them
importing anything. Protocol 4: protocols 0-2 would pickle ``bytes`` through the global
``_codecs.encode``.
"""
import os
import pickle

import numpy as np

__all__ = ["write_bin", "encode_images", "pack_pairs", "PICKLE_PROTOCOL"]

PICKLE_PROTOCOL = 4


def write_bin(path, images_bytes, issame):
    """Write ``(list of bytes, list of bool)`` to ``path`` (atomically: a temporary file then a
    rename). ``images_bytes``: 2·N encoded images; ``issame``: N booleans (or 0/1). Returns
    ``path``. Raises ``ValueError`` naming the bad entry."""
    path = os.fspath(path)
    images = []
    for i, b in enumerate(images_bytes):
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise ValueError(f"{path}: image {i} is a {type(b).__name__}; expected encoded image "
                             "bytes (JPEG/PNG)")
        images.append(bytes(b))
    flags = []
    for i, s in enumerate(np.asarray(issame).ravel().tolist() if not isinstance(issame, list)
                          else issame):
        if isinstance(s, (bool, np.bool_)) or (isinstance(s, (int, np.integer)) and s in (0, 1)):
            flags.append(bool(s))
        else:
            raise ValueError(f"{path}: issame[{i}] is a {type(s).__name__}; expected a bool")
    if len(images) != 2 * len(flags):
        raise ValueError(f"{path}: {len(images)} images for {len(flags)} pairs; expected "
                         f"{2 * len(flags)} (2 per pair)")
    if not flags:
        raise ValueError(f"{path}: no pairs to write")
    from tfface.files import atomic_file

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_file(path) as f:
        pickle.dump((images, flags), f, protocol=PICKLE_PROTOCOL)
    return path


def encode_images(images, size=None, quality=95):
    """Encoded bytes of each image, for :func:`write_bin`.

    ``images``: a list of file paths (their bytes are kept as they are when ``size`` is None),
    a list of bytes, or a uint8 array ``(N, H, W, 3)``. With ``size`` (int or ``(H, W)``) every
    image is decoded, resized as the training pipeline resizes
    (:func:`tfface.data.images.decode_and_resize`) and re-encoded as JPEG (``quality``); arrays
    are always encoded as JPEG.
    """
    if isinstance(images, np.ndarray):
        return [_encode_jpeg(img, size, quality) for img in images]
    out = []
    for i, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            with open(item, "rb") as f:
                data = f.read()
        elif isinstance(item, (bytes, bytearray)):
            data = bytes(item)
        else:
            raise ValueError(f"image {i} is a {type(item).__name__}; expected a path or bytes")
        out.append(data if size is None else _reencode(data, size, quality))
    return out


def _reencode(data, size, quality):
    import tensorflow as tf

    from tfface.data.images import decode_and_resize, parse_image_size

    image = decode_and_resize(tf.constant(data), parse_image_size(size))
    return tf.io.encode_jpeg(tf.cast(image, tf.uint8), quality=quality).numpy()


def _encode_jpeg(image, size, quality):
    import tensorflow as tf

    from tfface.data.images import parse_image_size, resize_image

    image = np.asarray(image)
    if size is not None:
        image = resize_image(tf.cast(image, tf.float32), parse_image_size(size))
    return tf.io.encode_jpeg(tf.cast(image, tf.uint8), quality=quality).numpy()


def pack_pairs(images, issame, path, size=None, quality=95):
    """Any pair set -> an insightface ``.bin`` at ``path``: ``images`` holds the 2·N images of the
    N pairs (pair ``i`` = images ``2i``, ``2i+1``) as paths, encoded bytes or a uint8 array (see
    :func:`encode_images`; ``size`` re-encodes at that size), ``issame`` N booleans. What a
    protocol's ``pairs()`` returns can be fed here. Returns ``path``."""
    n = len(images)
    if n != 2 * len(issame):
        raise ValueError(f"{path}: {n} images for {len(issame)} pairs; expected {2 * len(issame)}")
    return write_bin(path, encode_images(images, size=size, quality=quality), issame)
