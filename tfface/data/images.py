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
* :func:`load_image` (eager, numpy) and :func:`read_image` (PIL, EXIF orientation applied;
  16-bit images scaled, not clipped, to 8 bits).
* The one input rule for every image a command opens (``tfface build``, ``align``, ``eval``,
  folder training): :func:`check_image_file` (a regular file, not empty, at most ``max_bytes``,
  a known format whose *header-declared* size is at most ``max_pixels`` pixels — read before
  anything decodes it, so a FIFO never blocks a read and a decode bomb is never decoded) and
  :func:`check_image_bytes` (the same on bytes in memory; with ``decode=True`` also a full
  decode that must agree with the header). Both raise :class:`ImageRejected` (an
  :class:`tfface.files.InputError`) whose ``reason`` is one of :data:`IMAGE_REASONS`.

Importing this module does not import TensorFlow; the functions that need it import it.
"""
import collections
import glob
import os
import stat
import struct
import sys
import tempfile
import threading

import numpy as np

from tfface.files import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
OTHER_IMAGE_EXTENSIONS = (".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
ALL_IMAGE_EXTENSIONS = IMAGE_EXTENSIONS + OTHER_IMAGE_EXTENSIONS
TFRECORD_SUFFIX = ".tfrecord"

# The input rule's defaults (``--max-pixels`` / ``--max-bytes`` of the commands): 25 Mpx is a
# 5000x5000 photo; one RGB decode of it is 75 MB.
DEFAULT_MAX_PIXELS = 25_000_000
DEFAULT_MAX_BYTES = 50 * 2**20

# Formats accepted for training and evaluation (what tf.io.decode_image reads as one still frame),
# and the further ones PIL reads that ``tfface align`` accepts as sources.
IMAGE_FORMATS = ("jpeg", "png", "bmp")
ALIGN_FORMATS = IMAGE_FORMATS + ("gif", "webp", "tiff", "ppm")

IMAGE_REASONS = ("unreadable", "not_a_file", "empty", "too_large", "not_an_image",
                 "unsupported_format", "too_many_pixels", "corrupt")


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
    in that order, the same order ``tfface build`` gives the identities it keeps. Only regular
    files (symlinks followed) are listed: a FIFO or device named ``*.jpg`` would block the first
    read of it for ever."""
    entries, _ = scan_identity_folders(root)
    names, paths, labels = [], [], []
    for entry in entries:
        if not entry.walked or not is_image_name(entry.rel, extensions) or not _is_regular(entry.path):
            continue
        if not names or names[-1] != entry.identity:
            names.append(entry.identity)
        paths.append(entry.path)
        labels.append(len(names) - 1)
    return IdentityIndex(paths, labels, names)


def _is_regular(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


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


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS, max_bytes=None, formats=ALIGN_FORMATS):
    """Decode an image file of any format PIL reads to uint8 RGB numpy, applying its EXIF
    orientation (photos straight from a camera; ``tfface align`` reads its sources with it).

    The input rule comes first (:func:`read_image_file`, :func:`check_image_bytes`): a regular
    file whose header declares at most ``max_pixels`` pixels (``None``: no cap), so neither a
    FIFO nor a decode bomb reaches the decoder; ``max_bytes`` defaults to 8 bytes per allowed
    pixel (the largest raw encoding, 16-bit RGBA) plus 1 MiB. 16-bit images (PNG, TIFF) are
    scaled to 8 bits (``round(v / 257)``), not clipped. Raises :class:`ImageRejected`."""
    import io

    from PIL import Image, ImageOps

    if max_bytes is None and max_pixels is not None:
        max_bytes = 8 * int(max_pixels) + 2**20
    data = read_image_file(path, max_bytes=max_bytes)
    check_image_bytes(data, os.fspath(path), max_pixels, formats=formats)
    with Image.open(io.BytesIO(data)) as im:
        im = ImageOps.exif_transpose(im)
        return to_rgb_uint8(im)


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb_uint8(im):
    """A PIL image as uint8 RGB numpy; 16-bit grey (modes ``I;16*``, and ``I`` as PIL opens 16-bit
    PNGs) is scaled by 1/257 — PIL's own ``convert("RGB")`` clips it to 255, a white image."""
    if im.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(im).astype(np.float64)
        grey = np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    return np.asarray(im.convert("RGB"))


# ---------------------------------------------------------------------------------------------
# the input rule: what may be opened and decoded


class ImageRejected(InputError):
    """An image file or buffer that the input rule refuses. ``reason`` is one of
    :data:`IMAGE_REASONS`, ``detail`` says why, ``name`` is the file (or the name given)."""

    def __init__(self, reason, detail="", name=None):
        self.reason, self.detail, self.name = reason, detail, name
        where = f"{name}: " if name else ""
        super().__init__(f"{where}{reason.replace('_', ' ')} ({detail})" if detail else f"{where}{reason}")

    def named(self, name):
        """The same rejection naming ``name``."""
        return ImageRejected(self.reason, self.detail, name)


def sniff_format(data):
    """``"jpeg"``, ``"png"``, ``"bmp"``, ``"gif"``, ``"webp"``, ``"tiff"``, ``"ppm"`` or None,
    from the magic bytes (whatever the file is called)."""
    data = bytes(data[:16])
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM" and len(data) >= 14:
        return "bmp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if len(data) >= 3 and data[:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return "ppm"
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_size(data, fmt):
    """``(height, width)`` declared by the header of a JPEG, PNG or BMP (GIF, WebP, TIFF, PPM:
    by PIL, which reads only the header); raises :class:`ImageRejected` ``corrupt`` when the
    header holds none. Nothing is decoded."""
    data = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    if fmt == "png":
        if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
            raise ImageRejected("corrupt", "PNG without an IHDR chunk")
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if fmt == "bmp":
        if len(data) < 26:
            raise ImageRejected("corrupt", "BMP header is truncated")
        dib = struct.unpack("<I", data[14:18])[0]
        if dib == 12:
            width, height = struct.unpack("<HH", data[18:22])
        else:
            width, height = struct.unpack("<ii", data[18:26])
        return abs(height), abs(width)
    if fmt == "jpeg":
        # Walk the marker segments up to the first start-of-frame.
        i, n = 2, len(data)
        while i + 4 <= n:
            if data[i] != 0xFF:
                raise ImageRejected("corrupt", f"JPEG marker expected at byte {i}")
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker == 0x01 or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in _SOF:
                if i + 9 > n:
                    break
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return height, width
            if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
                break
            i += 2 + length
        raise ImageRejected("corrupt", "JPEG without a frame header")
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            width, height = im.size
    except Exception as err:  # PIL raises many types on a bad header
        raise ImageRejected("corrupt", f"{fmt.upper()} header unreadable: {err}") from None
    return height, width


def _bmp_layout(data):
    """Refuse BMPs that ``tf.io.decode_image`` misreads: palette images (decoded as the palette
    indices, a grey picture of the wrong values), compressed ones, and headers that declare
    more pixel data than the file holds."""
    dib = struct.unpack("<I", data[14:18])[0]
    if dib < 40 or len(data) < 34:
        raise ImageRejected("unsupported_format", f"BMP with a {dib}-byte OS/2 header (accepted: "
                            "24- or 32-bit Windows BMP)")
    offset = struct.unpack("<I", data[10:14])[0]
    width, height = struct.unpack("<ii", data[18:26])
    bpp, compression = struct.unpack("<HI", data[28:34])
    if bpp not in (24, 32):
        kind = "with a colour palette, " if bpp <= 8 else ""
        raise ImageRejected("unsupported_format", f"BMP {kind}{bpp} bits per pixel (accepted: 24 or "
                            "32; TensorFlow would decode palette indices, not colours)")
    if compression not in (0, 3) or (compression == 3 and bpp != 32):
        raise ImageRejected("unsupported_format", f"BMP compression {compression} (accepted: none)")
    row = (abs(width) * bpp // 8 + 3) // 4 * 4
    need = offset + row * abs(height)
    if len(data) < need:
        raise ImageRejected("corrupt", f"BMP header declares {abs(width)}x{abs(height)} at {bpp} bits "
                            f"({need} bytes with the header); the file holds {len(data)}")


def check_image_bytes(data, name=None, max_pixels=DEFAULT_MAX_PIXELS, *, formats=IMAGE_FORMATS,
                      decode=False):
    """The input rule on encoded bytes: a known format in ``formats``, a header that declares a
    non-empty size of at most ``max_pixels`` pixels, and (``decode=True``) a full decode by
    ``tf.io.decode_image`` — the decoder training uses — that succeeds and yields the declared
    size. Returns ``(format, height, width)``; raises :class:`ImageRejected` naming ``name``."""
    try:
        if not len(data):
            raise ImageRejected("empty", "0 bytes")
        fmt = sniff_format(data)
        if fmt is None:
            accepted = ", ".join(f.upper() for f in formats)
            raise ImageRejected("not_an_image", f"content is not {accepted}")
        if fmt not in formats:
            accepted = ", ".join(f.upper() for f in formats)
            raise ImageRejected("unsupported_format", f"{fmt.upper()} (accepted: {accepted})")
        height, width = header_size(data, fmt)
        if max_pixels is not None and height * width > max_pixels:
            raise ImageRejected("too_many_pixels", f"header declares {width}x{height} > max_pixels={max_pixels}")
        if height == 0 or width == 0:
            raise ImageRejected("corrupt", f"header declares {width}x{height}")
        if decode:
            if fmt == "bmp":
                _bmp_layout(data)
            _decode_check(data, fmt, height, width)
    except ImageRejected as err:
        raise (err.named(name) if name is not None and err.name is None else err) from None
    return fmt, height, width


def _decode_check(data, fmt, height, width):
    import tensorflow as tf

    try:
        if fmt == "jpeg":
            image, messages = _with_captured_stderr(
                lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
        else:
            image, messages = tf.io.decode_image(data, channels=3, expand_animations=False), b""
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.DataLossError) as err:
        raise ImageRejected("corrupt", f"decode failed: {_tf_message(err)}") from None
    shape = image.shape
    if tuple(shape[:2]) != (height, width):
        raise ImageRejected("corrupt", f"decoded {shape[1]}x{shape[0]}, header declares {width}x{height}")
    if b"Corrupt JPEG data" in messages or b"Premature end" in messages:
        # libjpeg only *warns* about damaged entropy-coded data, and TensorFlow returns the
        # garbage it decoded; its warning (printed to stderr) is the only sign.
        line = next(t for t in messages.decode("utf-8", "replace").splitlines()
                    if "Corrupt JPEG data" in t or "Premature end" in t).strip()[:200]
        raise ImageRejected("corrupt", f"damaged JPEG data: {line}")


def _tf_message(err):
    # TensorFlow wraps the decoder's message in "{{function_node ...}} ... [Op:DecodeImage]".
    msg = err.message.splitlines()[0] if err.message else type(err).__name__
    msg = msg.split("}} ", 1)[-1]
    return msg.split(" [Op:", 1)[0][:200]


_STDERR_LOCK = threading.Lock()


def _with_captured_stderr(fn):
    """``(fn(), bytes written to file descriptor 2 meanwhile)``; libjpeg prints its warnings
    there. Serialised: the descriptor is process-wide."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                result = fn()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            return result, tmp.read(4096)


def check_image_file(path, max_pixels=DEFAULT_MAX_PIXELS, *, formats=IMAGE_FORMATS,
                     max_bytes=DEFAULT_MAX_BYTES, decode=False):
    """The input rule on a file, before anything decodes it: a regular file (a FIFO, device or
    folder is refused without a blocking read), not empty, at most ``max_bytes`` bytes, then
    :func:`check_image_bytes` on its header (on all of it with ``decode=True``). Returns
    ``(format, height, width)``; raises :class:`ImageRejected` naming ``path``."""
    data = read_image_file(path, max_bytes=max_bytes, header_only=not decode)
    return check_image_bytes(data, path, max_pixels, formats=formats, decode=decode)


_HEADER_BYTES = 1 << 18


def read_image_file(path, max_bytes=DEFAULT_MAX_BYTES, header_only=False):
    """The bytes of an image file that passes the file part of the input rule (regular, not
    empty, at most ``max_bytes``), or with ``header_only`` its first 256 KiB (a JPEG's frame
    header can follow large EXIF segments; the rest is read only if it is not there). Opened
    non-blocking so a FIFO is refused, not waited on. Raises :class:`ImageRejected`."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ImageRejected("unreadable", f"{type(err).__name__}: {err.strerror or err}", name) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else (
                "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file")
            raise ImageRejected("not_a_file", f"{kind}, not a regular file", name)
        if st.st_size == 0:
            raise ImageRejected("empty", "0 bytes", name)
        if max_bytes is not None and st.st_size > max_bytes:
            raise ImageRejected("too_large", f"{st.st_size} bytes > max_bytes={max_bytes}", name)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(_HEADER_BYTES if header_only else st.st_size + 1)
            if header_only and len(data) == _HEADER_BYTES and sniff_format(data) == "jpeg":
                try:
                    header_size(data, "jpeg")
                except ImageRejected:
                    data += f.read(st.st_size + 1 - len(data))
    except OSError as err:
        raise ImageRejected("unreadable", f"{type(err).__name__}: {err.strerror or err}", name) from None
    finally:
        os.close(fd)
    return data
