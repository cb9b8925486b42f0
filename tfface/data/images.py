"""Image I/O shared by every part of tfface: which files are images, the identity-folder index,
TFRecord shard listing, and the one decode-and-resize that training and evaluation both use.

* :data:`IMAGE_EXTENSIONS` — the formats tfface trains and evaluates on (JPEG, PNG, BMP: what
  ``tf.io.decode_image`` reads as one still frame); :data:`OTHER_IMAGE_EXTENSIONS` — images that
  PIL reads (``tfface align`` accepts them) but that are not accepted for training.
* :func:`scan_identity_folders` — the one walker of an identity-folder tree
  (``ROOT/<identity>/.../<file>``); :func:`identity_index` — its images as
  ``(paths, labels, names)``, labelled as ``tfface build`` labels them (sorted identity names).
* :func:`scan_tree` — every file under a folder (recursively), split into images and others.
* :func:`list_tfrecords` — the shards of a directory, a glob pattern or a list of files.
* :func:`decode_and_resize` — encoded bytes -> uint8 ``(H, W, 3)``, resized by
  :func:`resize_image`; the training pipeline (``tfface.data.pipeline``) and embedding extraction
  (``tfface.eval.extract``) both call it, so a crop is preprocessed identically in both.
* :func:`load_image` (eager, numpy) and :func:`read_image` (PIL, EXIF orientation applied).

Importing this module does not import TensorFlow; the functions that need it import it.
"""
import collections
import glob
import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
OTHER_IMAGE_EXTENSIONS = (".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
ALL_IMAGE_EXTENSIONS = IMAGE_EXTENSIONS + OTHER_IMAGE_EXTENSIONS
TFRECORD_SUFFIX = ".tfrecord"


def is_image_name(name, extensions=IMAGE_EXTENSIONS):
    """Whether a file name ends with one of ``extensions`` (case-insensitive)."""
    return os.fspath(name).lower().endswith(tuple(extensions))


# ---------------------------------------------------------------------------------------------
# folders

IdentityEntry = collections.namedtuple("IdentityEntry", "identity rel path walked")
IdentityEntry.__doc__ = """One entry under an identity folder: ``identity`` (the folder's name),
``rel`` (posix path relative to ROOT), ``path`` (ROOT joined with it) and ``walked`` (False for a
directory that is listed rather than walked: a symlinked directory or one named like an image)."""

IdentityIndex = collections.namedtuple("IdentityIndex", "paths labels names")
IdentityIndex.__doc__ = """Images of an identity-folder tree: ``paths`` (sorted per identity),
``labels`` (int per path) and ``names`` (identity of each label, sorted)."""


def scan_identity_folders(root):
    """Every entry of an identity-folder tree: ``(entries, loose)``.

    Identity folders are ROOT's sub-directories; files in nested folders belong to the identity.
    ``entries`` lists :class:`IdentityEntry` in sorted order. Directories named like an image and
    symlinked directories are entries themselves (``walked=False``), never walked: a symlink may
    lead outside ROOT, and a folder called ``x.jpg`` was meant as an image. A symlinked identity
    folder is one such entry. ``loose`` lists the names of files directly in ROOT (outside any
    identity folder)."""
    root = os.fspath(root)
    # Relative paths by slicing, not os.path.relpath: this walk may list millions of files.
    prefix = len(os.path.join(root, ""))
    entries, loose = [], []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            for base, dirs, files in os.walk(path):
                keep, listed = [], []
                for d in sorted(dirs):
                    full = os.path.join(base, d)
                    (listed if os.path.islink(full) or is_image_name(d, ALL_IMAGE_EXTENSIONS) else keep).append(d)
                dirs[:] = keep
                for f, walked in sorted([(f, True) for f in files] + [(d, False) for d in listed]):
                    full = os.path.join(base, f)
                    entries.append(IdentityEntry(name, _posix(full[prefix:]), full, walked))
        elif os.path.islink(path) and os.path.isdir(path):
            entries.append(IdentityEntry(name, name, path, False))
        else:
            loose.append(name)
    return entries, loose


def _posix(rel):
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def identity_index(root, extensions=IMAGE_EXTENSIONS):
    """:class:`IdentityIndex` of the image files (by extension) of an identity-folder tree.

    Identities are the sorted identity folders holding at least one image; labels count from 0
    in that order, the same order ``tfface build`` gives the identities it keeps."""
    entries, _ = scan_identity_folders(root)
    names, paths, labels = [], [], []
    for entry in entries:
        if not entry.walked or not is_image_name(entry.rel, extensions):
            continue
        if not names or names[-1] != entry.identity:
            names.append(entry.identity)
        paths.append(entry.path)
        labels.append(len(names) - 1)
    return IdentityIndex(paths, labels, names)


def scan_tree(root, extensions=ALL_IMAGE_EXTENSIONS, exclude=None):
    """Every file under ``root`` (recursively): ``(images, others)``, posix paths relative to
    ``root``, sorted. ``exclude``: a directory (any path) not to walk into, e.g. an output folder
    inside ``root``."""
    root_abs = os.path.abspath(root)
    skip = os.path.abspath(exclude) if exclude is not None else None
    images, others = [], []
    for base, dirs, files in os.walk(root_abs):
        dirs[:] = sorted(d for d in dirs if os.path.abspath(os.path.join(base, d)) != skip)
        for name in files:
            rel = os.path.relpath(os.path.join(base, name), root_abs).replace(os.sep, "/")
            (images if is_image_name(name, extensions) else others).append(rel)
    return sorted(images), sorted(others)


# ---------------------------------------------------------------------------------------------
# TFRecords


def list_tfrecords(source):
    """Sorted TFRecord files of ``source``: a directory (its ``*.tfrecord`` files), a glob pattern
    or a single file, or a list of files (each must exist: FileNotFoundError names the missing)."""
    if isinstance(source, (list, tuple)):
        files = [os.fspath(f) for f in source]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise FileNotFoundError(f"TFRecord files not found: {missing[:5]}")
        return sorted(files)
    source = os.fspath(source)
    if os.path.isdir(source):
        return sorted(glob.glob(os.path.join(glob.escape(source), "*" + TFRECORD_SUFFIX)))
    return sorted(f for f in glob.glob(source) if os.path.isfile(f))


# ---------------------------------------------------------------------------------------------
# decoding and resizing


def parse_image_size(size):
    """``(height, width)`` of an int or a pair; None stays None."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(v) for v in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image size must be a positive int or (height, width), got {size!r}")
    return size


def decode_image(data):
    """Encoded bytes (JPEG, PNG, BMP; the first frame of a GIF) -> uint8 ``(H, W, 3)`` tensor."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def resize_image(image, size):
    """Resize ``(H, W, 3)`` or ``(B, H, W, 3)`` images in [0, 255] to ``size`` (``(h, w)``).

    Bilinear with half-pixel centres, antialiased (a triangle filter as wide as the scale) when
    either side shrinks, then rounded and clipped to the uint8 grid; returned in the input's
    dtype. An image that already has the size is returned unchanged (resizing would only cost
    time)."""
    import tensorflow as tf

    size = parse_image_size(size)
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    height, width = shape[-3], shape[-2]
    same = tf.logical_and(tf.equal(height, size[0]), tf.equal(width, size[1]))

    def resize():
        # Antialiasing only matters when shrinking, and its kernel is several times slower:
        # plain bilinear when enlarging (e.g. a random crop scaled back up).
        shrink = tf.logical_or(height > size[0], width > size[1])
        resized = tf.cond(
            shrink,
            lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
            lambda: tf.image.resize(image, size, method="bilinear"),
        )
        return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), image.dtype)

    out = tf.cond(same, lambda: image, resize)
    return tf.ensure_shape(out, image.shape[:-3].concatenate([size[0], size[1], 3]))


def decode_and_resize(data, size=None, crop=None):
    """Encoded image bytes -> uint8 ``(H, W, 3)`` tensor at ``size`` (``(h, w)``, an int, or None
    to keep the decoded size): :func:`decode_image`, then ``crop`` (a function of the decoded
    uint8 image, e.g. the training pipeline's random crop), then :func:`resize_image`.

    The one preprocessing of a face crop: training and evaluation both call it."""
    image = decode_image(data)
    if crop is not None:
        image = crop(image)
    size = parse_image_size(size)
    return image if size is None else resize_image(image, size)


def load_image(path, size=None):
    """Read an image file as :func:`decode_and_resize` preprocesses it: uint8 numpy
    ``(H, W, 3)``."""
    import tensorflow as tf

    return decode_and_resize(tf.io.read_file(os.fspath(path)), size).numpy()


def read_image(path):
    """Decode an image file of any format PIL reads to uint8 RGB numpy, applying its EXIF
    orientation (photos straight from a camera; ``tfface align`` reads its sources with it)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))
