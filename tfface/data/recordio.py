"""MXNet RecordIO without MXNet: insightface's ``train.rec`` / ``train.idx`` / ``property``
(MS1MV2 ``faces_emore``, MS1MV3, Glint360K, the aligned CASIA-WebFace). Pure Python + numpy: no
TensorFlow, no MXNet; the ``tf.data`` source built on it is in :mod:`tfface.data.pipeline`.

The format, as dmlc-core's ``recordio`` and MXNet's ``recordio.py`` define it:

Framing (``.rec``; every integer little-endian, every part starts on a 4-byte boundary)::

    uint32 magic = 0xced7230a
    uint32 lrecord = cflag << 29 | length      (length < 2**29 bytes)
    length bytes of data, then zero bytes up to the next multiple of 4

A record whose data contains the magic number at a 4-byte aligned position is written as
several parts, the magic words themselves left out: ``cflag`` 1 (first part), 2 (middle), 3
(last); 0 is a whole record. The reader puts the magic back between consecutive parts.

Index (``.idx``): one text line per record, ``key<TAB>byte offset of its first part``.

Image record (MXNet's ``IRHeader``, struct ``<IfQQ``, 24 bytes)::

    uint32 flag, float32 label, uint64 id, uint64 id2
    flag == 0: the label is the float; flag > 0: ``flag`` float32 labels follow the header
    (the header's own label field is then unused), and the encoded image follows them

insightface's layout: record 0 is a header record with a vector label ``(a, b)``: records
``1 .. a-1`` are the images, records ``a .. b-1`` one per identity, each with a vector label
``(first, end)``: the keys of that identity's images. An image's class is its header label (its
first element for a vector label). Without a header record (``flag == 0`` at key 0) every key of
the index is an image, as MXNet's ``MXFaceDataset`` reads it. ``property`` holds
``num_classes,height,width``.

Reading errors are :class:`RecordError` with a ``reason``; the pipeline and ``tfface build``
skip such records and count them by reason.
"""
import dataclasses
import functools
import math
import os
import struct
import threading
import warnings

import numpy as np

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)
# Bytes gathered at each record's start by RecordFile.read_image_batch: part header, image
# header, the first value of a vector label, and room for the image's magic bytes.
_GATHER = 40
_JPEG_MAGIC = np.frombuffer(b"\xff\xd8\xff", np.uint8)
_PNG_MAGIC = np.frombuffer(b"\x89PNG\r\n\x1a\n", np.uint8)
_BMP_MAGIC = np.frombuffer(b"BM", np.uint8)

#: Reasons a record is refused, in the order they are checked.
REASONS = (
    "missing_from_index",  # the header record names a key that the .idx does not list
    "truncated",           # the .rec ends inside the record
    "bad_magic",           # no magic number where a part should start
    "bad_framing",         # continuation flags out of order, or a part runs into the next record
    "bad_header",          # data shorter than the image header and its vector label
    "bad_label",           # the label is not a whole number in [0, num_classes)
)


class RecordError(ValueError):
    """A record that cannot be read; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclasses.dataclass(frozen=True)
class IRHeader:
    """MXNet's image record header. ``label``: a float (``flag == 0``) or a float32 vector of
    ``flag`` values."""

    flag: int
    label: object
    id: int
    id2: int


# ---------------------------------------------------------------------------------------------
# framing and headers (bytes in, values out)


def decode_lrecord(word):
    """``(cflag, length)`` of a length word."""
    return word >> 29, word & _LENGTH_MASK


def decode_record(buf, start=0, end=None, at_eof=None):
    """The data of the record whose first part starts at ``buf[start]``, its parts reassembled.

    Returns ``(data, stop)``, ``stop`` the offset after the record's last part (padding
    included). Parts may not reach past ``end`` (default: the end of ``buf``). Running past it
    is ``truncated`` when the file ends there (``at_eof``; default: when ``end`` is the end of
    ``buf``) and ``bad_framing`` when the next record starts there.
    """
    view = memoryview(buf)
    end = len(view) if end is None else min(int(end), len(view))
    if at_eof is None:
        at_eof = end >= len(view)
    pos, parts, first = int(start), [], True
    while True:
        if pos + 8 > end:
            raise _overrun(pos, pos + 8, end, at_eof, "part header")
        magic, word = struct.unpack_from("<II", view, pos)
        if magic != MAGIC:
            raise RecordError("bad_magic", f"0x{magic:08x} at byte {pos}, expected 0x{MAGIC:08x}")
        cflag, length = decode_lrecord(word)
        if (first and cflag not in (0, 1)) or (not first and cflag not in (2, 3)):
            where = "first" if first else "continuation"
            raise RecordError("bad_framing", f"continuation flag {cflag} on a {where} part at byte {pos}")
        stop = pos + 8 + ((length + 3) & ~3)
        if stop > end:
            raise _overrun(pos, stop, end, at_eof, f"{length}-byte part")
        parts.append(view[pos + 8 : pos + 8 + length])
        pos, first = stop, False
        if cflag in (0, 3):
            break
    data = parts[0].tobytes() if len(parts) == 1 else _MAGIC_BYTES.join(p.tobytes() for p in parts)
    return data, pos


def _overrun(pos, needed, end, at_eof, what):
    if at_eof:
        return RecordError("truncated", f"the data ends at byte {end}, inside a {what} at byte {pos}")
    return RecordError("bad_framing", f"a {what} at byte {pos} runs to byte {needed}, past the next record at {end}")


def unpack(data):
    """``(IRHeader, payload)`` of an image record's data: MXNet's ``recordio.unpack``."""
    if len(data) < IR_SIZE:
        raise RecordError("bad_header", f"{len(data)} bytes, shorter than the {IR_SIZE}-byte image header")
    flag, label, id_, id2 = struct.unpack_from(IR_FORMAT, data, 0)
    rest = IR_SIZE
    if flag > 0:
        need = IR_SIZE + 4 * flag
        if len(data) < need:
            raise RecordError("bad_header", f"flag {flag} announces {flag} labels ({need} bytes), the record has {len(data)}")
        label = np.frombuffer(data, "<f4", flag, IR_SIZE).astype(np.float32)
        rest = need
    return IRHeader(flag, label, id_, id2), data[rest:]


def image_label(header, num_classes=None):
    """The class of an image record: its label, or the first value of a vector label; must be
    a whole number in ``[0, num_classes)``."""
    value = float(header.label[0]) if header.flag > 0 else float(header.label)
    if not (math.isfinite(value) and value == int(value) and value >= 0):
        raise RecordError("bad_label", f"label {value!r} is not a class index")
    label = int(value)
    if num_classes is not None and label >= num_classes:
        raise RecordError("bad_label", f"label {label} >= num_classes {num_classes}")
    return label


# ---------------------------------------------------------------------------------------------
# the .idx and property files


def read_index(path):
    """``(keys, offsets)`` int64 arrays of a ``.idx`` file, in file order."""
    with open(path, "rb") as f:
        text = f.read()
    lines = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
    try:
        with warnings.catch_warnings():
            # Older numpy warns and stops at the first token that is not a number, newer numpy
            # raises: either way the count below tells, and the slow path names the problem.
            warnings.simplefilter("ignore")
            flat = np.fromstring(text.decode("latin-1"), dtype=np.int64, sep=" ")
    except ValueError:
        flat = np.zeros(0, np.int64)
    if len(flat) == 2 * lines and lines:
        values = flat  # the fast path (4x faster than splitting MS1MV2's 5.8M lines)
    else:
        values = text.split()
    if len(values) % 2:
        raise ValueError(f"{path!r}: expected 'key<TAB>offset' lines, found an odd number of fields")
    try:
        table = np.array(values, dtype=np.int64).reshape(-1, 2)
    except ValueError:
        raise ValueError(f"{path!r}: expected 'key<TAB>offset' lines of integers") from None
    if len(table) and (table[:, 1].min() < 0 or table[:, 0].min() < 0):
        raise ValueError(f"{path!r}: negative key or offset")
    if len(np.unique(table[:, 0])) != len(table):
        raise ValueError(f"{path!r}: a key is listed twice")
    return table[:, 0].copy(), table[:, 1].copy()


def read_property(path):
    """``(num_classes, height, width)`` from insightface's ``property`` file."""
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"{path!r}: expected 'num_classes,height,width', got {text[:80]!r}")
    return tuple(values)


# ---------------------------------------------------------------------------------------------
# an indexed .rec file


class RecordFile:
    """An indexed ``.rec`` file for random reads, safe to share between threads.

    ``read(key)`` returns a record's data (parts reassembled), raising :class:`RecordError`.
    A record's bytes are read at once: a record ends where the next one in the file starts (the
    last one at the end of the file), so a corrupt length cannot reach into its neighbour. The
    index is held in numpy arrays (MS1MV2's 5.8M keys take ~140 MB as arrays, gigabytes as a
    dict).
    """

    def __init__(self, rec_path, idx_path=None, index=True):
        self.path = os.fspath(rec_path)
        self.idx_path = os.fspath(idx_path) if idx_path else os.path.splitext(self.path)[0] + ".idx"
        # index=False: only read_span (the caller holds the spans), no .idx parsing.
        keys, offsets = read_index(self.idx_path) if index else (np.zeros(0, np.int64),) * 2
        self.size = os.path.getsize(self.path)
        self.keys = keys
        order = np.argsort(keys, kind="stable")
        self._keys, self._offsets = keys[order], offsets[order]
        starts = np.unique(offsets)
        following = np.append(starts[1:], max(self.size, int(starts[-1]))) if len(starts) else starts
        self._ends = following[np.searchsorted(starts, self._offsets)]
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._lock = None if hasattr(os, "pread") else threading.Lock()

    def __contains__(self, key):
        i = np.searchsorted(self._keys, int(key))
        return bool(i < len(self._keys) and self._keys[i] == int(key))

    def spans(self, keys):
        """``(offsets, ends)`` int64 arrays of records' bytes (-1 for a key not in the index)."""
        keys = np.asarray(keys, np.int64)
        i = np.minimum(np.searchsorted(self._keys, keys), max(len(self._keys) - 1, 0))
        found = (self._keys[i] == keys) if len(self._keys) else np.zeros(keys.shape, bool)
        return np.where(found, self._offsets[i] if len(self._keys) else -1, -1), np.where(
            found, self._ends[i] if len(self._keys) else -1, -1)

    def read_span(self, offset, end):
        """The data of the record at byte ``offset`` that must end by byte ``end``."""
        offset, end = int(offset), int(end)
        buf = self._pread(max(0, min(end, self.size) - offset), offset)
        return decode_record(buf, 0, end - offset, at_eof=end >= self.size)[0]

    def read(self, key):
        offsets, ends = self.spans([key])
        if offsets[0] < 0:
            raise RecordError("missing_from_index", f"key {int(key)} is not in {self.idx_path}")
        return self.read_span(offsets[0], ends[0])

    def read_image_span(self, offset, end, num_classes=None):
        """``(label, encoded image bytes, header)`` of the image record at ``(offset, end)``
        (``offset`` -1: a key missing from the index)."""
        if offset < 0:
            raise RecordError("missing_from_index", "the index does not list this key")
        offset, end = int(offset), int(end)
        buf = self._pread(max(0, min(end, self.size) - offset), offset)
        if len(buf) >= 8 + IR_SIZE:
            # The common case, one copy: a whole record (not split) with a scalar label.
            magic, word, flag, label, id_, id2 = struct.unpack_from("<II" + IR_FORMAT[1:], buf, 0)
            length = word & _LENGTH_MASK
            if magic == MAGIC and word >> 29 == 0 and flag == 0 and IR_SIZE <= length <= len(buf) - 8:
                header = IRHeader(0, label, id_, id2)
                return image_label(header, num_classes), buf[8 + IR_SIZE : 8 + length], header
        header, payload = unpack(decode_record(buf, 0, end - offset, at_eof=end >= self.size)[0])
        return image_label(header, num_classes), payload, header

    def read_image_batch(self, offsets, ends, num_classes=None):
        """Many image records at once, for the ``tf.data`` source: ``(buffer, starts, lengths,
        labels, ok)``. ``buffer`` (bytes) holds every record read; the encoded image of record
        ``i`` is ``buffer[starts[i] : starts[i] + lengths[i]]`` with class ``labels[i]``
        (int32) where ``ok[i]``. A record is not ok when :meth:`read_image_span` would raise
        (any :data:`REASONS`) or its image is not a JPEG, PNG or BMP.

        One ``pread`` and one copy a record; the framing, header and label checks and the
        format sniff run vectorised over the batch (numpy on the joined bytes). Only records
        outside the common shape (split into parts, or failing a check: the exact reason does
        not matter here) go through :meth:`read_image_span` one by one, so the result is the
        same as reading each record with it."""
        offsets = np.asarray(offsets, np.int64).reshape(-1)
        ends = np.asarray(ends, np.int64).reshape(-1)
        n = len(offsets)
        present = offsets >= 0
        spans = np.where(present, np.clip(np.minimum(ends, self.size) - offsets, 0, None), 0)
        parts = [self._pread(s, o) if s else b"" for o, s in zip(offsets.tolist(), spans.tolist())]
        got = np.fromiter(map(len, parts), np.int64, n)
        starts = np.cumsum(got) - got
        # Zeros after the records so that the fixed-size header gathers below stay inside.
        parts.append(bytes(_GATHER))
        buffer = b"".join(parts)
        u8 = np.frombuffer(buffer, np.uint8)
        head = u8[starts[:, None] + np.arange(_GATHER)]
        words = head[:, :36].copy().view("<u4")
        magic, word = words[:, 0], words[:, 1]
        flag = words[:, 2].astype(np.int64)
        length = (word & _LENGTH_MASK).astype(np.int64)
        skip = IR_SIZE + 4 * np.minimum(flag, 1 << 28)
        # The common shape: one whole part with its padding inside the span, a header and its
        # labels inside the data.
        whole = present & (got >= 8 + IR_SIZE) & (magic == MAGIC) & (word >> 29 == 0)
        whole &= (8 + ((length + 3) & ~3) <= got) & (length >= skip) & ((flag == 0) | (got >= 36))
        value = np.where(flag > 0, words[:, 8].view("<f4"), words[:, 3].view("<f4")).astype(np.float64)
        with np.errstate(invalid="ignore"):
            good = np.isfinite(value) & (value >= 0) & (value < 2**31) & (value == np.floor(value))
            if num_classes is not None:
                good &= value < num_classes
        labels = np.where(good, value, 0).astype(np.int32)
        starts = starts + 8 + skip
        lengths = np.where(whole, length - skip, 0)
        ok = whole & good
        tail = []
        for i in np.flatnonzero(~whole).tolist():
            try:
                labels[i], payload, _ = self.read_image_span(offsets[i], ends[i], num_classes)
            except RecordError:
                continue
            starts[i] = len(buffer) + sum(map(len, tail))
            lengths[i] = len(payload)
            tail.append(payload)
            ok[i] = True
        if tail:
            buffer = b"".join([buffer, *tail, bytes(_GATHER)])
            u8 = np.frombuffer(buffer, np.uint8)
        magic_bytes = u8[np.minimum(starts, len(u8) - _GATHER)[:, None] + np.arange(8)]
        jpeg = (lengths >= 3) & (magic_bytes[:, :3] == _JPEG_MAGIC).all(1)
        png = (lengths >= 8) & (magic_bytes == _PNG_MAGIC).all(1)
        bmp = (lengths >= 14) & (magic_bytes[:, :2] == _BMP_MAGIC).all(1)
        ok &= jpeg | png | bmp
        return buffer, starts, lengths, labels, ok

    def read_image(self, key, num_classes=None):
        """``(label, encoded image bytes, header)`` of an image record."""
        header, payload = unpack(self.read(key))
        return image_label(header, num_classes), payload, header

    def _pread(self, n, offset):
        if self._lock is None:
            return os.pread(self._fd, n, offset)
        with self._lock:
            os.lseek(self._fd, offset, os.SEEK_SET)
            return os.read(self._fd, n)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


# ---------------------------------------------------------------------------------------------
# a data set: .rec + .idx + property


@dataclasses.dataclass(frozen=True)
class RecordIOInfo:
    """What :func:`describe` reads: the paths, the image keys (in key order), the class count
    (``property``, else the header record's identity count; None when neither is there), the
    image size from ``property`` (or None), the header record's label ``(a, b)`` (or None) and
    its identity count, and each image key's byte span in the ``.rec`` (``offsets``, ``ends``;
    -1 for a key the index does not list)."""

    rec: str
    idx: str
    property_path: object
    image_keys: np.ndarray
    num_classes: object
    image_size: object
    header: object
    identities: object
    offsets: np.ndarray = dataclasses.field(repr=False, default=None)
    ends: np.ndarray = dataclasses.field(repr=False, default=None)

    @property
    def num_examples(self):
        return len(self.image_keys)


def find_recordio(source):
    """The ``.rec`` path of a source that is RecordIO: a ``.rec`` file, or a directory holding
    ``train.rec``; None otherwise."""
    if isinstance(source, (list, tuple)):
        return None
    source = os.fspath(source)
    if source.endswith(".rec") and os.path.isfile(source):
        return source
    if os.path.isdir(source) and os.path.isfile(os.path.join(source, "train.rec")):
        return os.path.join(source, "train.rec")
    return None


def describe(rec_path):
    """:class:`RecordIOInfo` of ``rec_path`` (its ``.idx`` and ``property`` sit beside it, as
    insightface writes them). Cached per file (path, size and modification time)."""
    rec_path = os.path.abspath(os.fspath(rec_path))
    idx_path = os.path.splitext(rec_path)[0] + ".idx"
    prop_path = os.path.join(os.path.dirname(rec_path), "property")
    for path, what in ((rec_path, "the record file"), (idx_path, "its index (insightface writes train.idx beside train.rec)")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path!r} not found: {what}")
    stamp = tuple((os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in (rec_path, idx_path))
    prop_stamp = os.stat(prop_path).st_mtime_ns if os.path.isfile(prop_path) else None
    return _describe(rec_path, idx_path, prop_path, stamp, prop_stamp)


@functools.lru_cache(maxsize=2)
def _describe(rec_path, idx_path, prop_path, stamp, prop_stamp):
    num_classes = size = None
    if prop_stamp is not None:
        num_classes, h, w = read_property(prop_path)
        size = (h, w)
    with RecordFile(rec_path, idx_path) as rec:
        keys = np.sort(rec.keys)
        header = identities = None
        if 0 in rec:
            try:
                head, _ = unpack(rec.read(0))
            except RecordError as err:
                raise ValueError(f"{rec_path!r}: record 0 (the header record) cannot be read: {err}") from None
            if head.flag > 0:
                if head.flag < 2:
                    raise ValueError(f"{rec_path!r}: header record label {head.label.tolist()} is not (a, b)")
                a, b = int(head.label[0]), int(head.label[1])
                if not 1 <= a <= b:
                    raise ValueError(f"{rec_path!r}: header record label ({a}, {b}) is not 1 <= a <= b")
                header, identities = (a, b), b - a
        if header is not None:
            # Every image key the header names is an example, listed in the index or not: a
            # key missing from the index is a record that is seen and skipped.
            image_keys = np.arange(1, header[0], dtype=np.int64)
        else:
            image_keys = keys
        offsets, ends = rec.spans(image_keys)
    if num_classes is None and identities:
        num_classes = identities
    return RecordIOInfo(rec_path, idx_path, prop_path if prop_stamp is not None else None, image_keys,
                        num_classes, size, header, identities, offsets, ends)


def identity_ranges(rec_path):
    """``(n, 2)`` int64: each identity record's ``(first, end)`` image keys, in identity order
    (the header record's keys ``a .. b-1``); raises ValueError without a header record."""
    info = describe(rec_path)
    if info.header is None:
        raise ValueError(f"{rec_path!r} has no header record (record 0 with a vector label)")
    out = np.zeros((info.identities, 2), np.int64)
    with RecordFile(info.rec, info.idx) as rec:
        for i, key in enumerate(range(*info.header)):
            head, _ = unpack(rec.read(key))
            if head.flag < 2:
                raise RecordError("bad_header", f"identity record {key} has no (first, end) label")
            out[i] = int(head.label[0]), int(head.label[1])
    return out
