"""Image folder (one sub-folder per identity), or an insightface RecordIO set (``train.rec``;
:mod:`tfface.data.recordio`), -> sharded TFRecords (the library behind ``tfface build SRC OUT``,
whose command line is ``tfface.commands.build``).

From RecordIO every image record is seen; the record reasons (``recordio.REASONS``: a key
missing from the index, a truncated record, a bad magic number or framing, a short header, a
label outside ``[0, num_classes)``) come first, then the image checks below from ``empty`` on;
labels are kept as the ``.rec`` has them.

Every entry under an identity folder is *seen*, and either *written* or *skipped* with a reason,
so ``written + sum(skipped) == seen`` always holds and nothing is lost silently. Checks, in order
(the first that fails names the reason):

===============================  ===========================================================
reason                           when
===============================  ===========================================================
``outside_source``               the path resolves (through symlinks) outside SRC
``unreadable``                   stat/open/read fails (dangling link, permissions, I/O error)
``not_a_file``                   a directory named like an image, a FIFO, a socket, a device
``empty``                        zero bytes
``too_large``                    more bytes than ``max_bytes`` (checked before reading)
``not_an_image``                 the content is not JPEG, PNG or BMP (by its magic bytes,
                                 whatever the file is called)
``unsupported_format``           GIF, WebP, TIFF: images, but not accepted for training
``too_many_pixels``              the header declares more than ``max_pixels`` pixels (a decode
                                 bomb: the size is read from the header, the image is never
                                 decoded)
``corrupt``                      no readable size in the header, or a full decode fails
                                 (truncated JPEG/PNG, bad data) or disagrees with the header
``outside_identity_folder``      a file directly in SRC, not in an identity folder
``undecodable_name``             the path is not valid UTF-8 (the records and ``labels.json``
                                 hold UTF-8 names); listed with its bytes escaped (``\xe9``)
``identity_below_min_images``    valid, but its identity has fewer than ``min_images``
``changed_during_build``         the file changed between its check and its write
===============================  ===========================================================

Labels are assigned to the kept identities in sorted order of their names (so they do not
depend on the file system's listing order or on the number of workers); records are spread over
the shards in a seeded random order, so a shuffle buffer much smaller than the data set still
mixes identities.
"""
import concurrent.futures
import errno
import os
import time
import zlib

import numpy as np

from tfface.data import recordio
from tfface.data.images import (  # noqa: F401  (sniff_format, header_size: importable from here)
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    TFRECORD_SUFFIX,
    ImageRejected,
    _tf_message,
    check_image_bytes,
    header_size,
    read_image_file,
    scan_identity_folders,
    sniff_format,
)
from tfface.data.recordio import RecordError
from tfface.files import (
    LOCK_NAME,
    DirLock,
    InputError,
    OutputError,
    describe_os_error,
    leftovers,
    staged_dir,
    write_json,
)


class SourceError(InputError, NotADirectoryError):
    """The build's source is not a folder (also a ``NotADirectoryError``, as it used to be)."""

REASONS = (
    "outside_source",
    "unreadable",
    "not_a_file",
    "empty",
    "too_large",
    "not_an_image",
    "unsupported_format",
    "too_many_pixels",
    "corrupt",
    "outside_identity_folder",
    "undecodable_name",
    "identity_below_min_images",
    "changed_during_build",
)


# The image checks are tfface.data.images' input rule (one rule for build, align, eval and folder
# training); the names below stay importable from here.
_Skip = ImageRejected


# ---------------------------------------------------------------------------------------------
# checks


def _inside(path, root):
    return path == root or path.startswith(root + os.sep)


def _read_checked(path, src_real, max_bytes):
    """Resolve, stat and read one entry; raises ``_Skip``. Returns the bytes."""
    if not _inside(os.path.realpath(path), src_real):
        raise _Skip("outside_source", f"resolves to {os.path.realpath(path)}")
    return read_image_file(path, max_bytes=max_bytes)


def check_image(data, max_pixels):
    """Validate encoded bytes: format, header size against ``max_pixels``, then a full decode
    (TensorFlow's, the one the input pipeline uses) that must agree with the header. Returns
    (format, height, width); :func:`tfface.data.images.check_image_bytes` with ``decode=True``."""
    return check_image_bytes(data, None, max_pixels, decode=True)


def _check(entry, src_real, max_pixels, max_bytes):
    identity, rel, path = entry
    try:
        data = _read_checked(path, src_real, max_bytes)
        fmt, h, w = check_image(data, max_pixels)
    except _Skip as skip:
        return {"path": rel, "reason": skip.reason, "detail": skip.detail}
    return {"identity": identity, "path": rel, "abs": path, "bytes": len(data), "crc": zlib.crc32(data), "format": fmt}


def scan_source(src):
    """Entries of an image folder: ([(identity, relative path, path)], [skipped dicts]).

    The walk is :func:`tfface.data.images.scan_identity_folders`: identity folders are SRC's
    sub-directories, files in nested folders belong to the identity, and directories named like
    an image and symlinked directories are entries (and are checked), not walked. A path that is
    not valid UTF-8 is skipped (``undecodable_name``), listed with its bytes escaped."""
    entries, loose = scan_identity_folders(src)
    skipped = [{"path": shown_name(name), "reason": "outside_identity_folder", "detail": "file directly in SRC"}
               for name in loose]
    kept = []
    for e in entries:
        if _is_utf8(e.rel):
            kept.append((e.identity, e.rel, e.path))
        else:
            skipped.append({"path": shown_name(e.rel), "reason": "undecodable_name",
                            "detail": "the file or folder name is not valid UTF-8; rename it"})
    return kept, skipped


def _is_utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(name):
    """A file name as text that can be printed and written to JSON: bytes that are not UTF-8
    (kept by Python as surrogate escapes) shown as ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


# ---------------------------------------------------------------------------------------------
# build


def _summary(counts):
    if not len(counts):
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p10": 0.0, "p90": 0.0}
    c = np.asarray(counts, float)
    return {
        "min": int(c.min()),
        "max": int(c.max()),
        "mean": float(c.mean()),
        "median": float(np.median(c)),
        "p10": float(np.percentile(c, 10)),
        "p90": float(np.percentile(c, 90)),
    }


def _read_file(rec):
    with open(rec["abs"], "rb") as f:
        return f.read(rec["bytes"] + 1)


def _write_shard(path, records, progress, read=_read_file):
    import tensorflow as tf

    from tfface.data.tfrecord import serialize_example

    written, skipped = 0, []
    tmp = path + ".tmp"
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for rec in records:
                try:
                    data = read(rec)
                except (OSError, RecordError) as err:
                    data, detail = None, f"re-read failed: {err}"
                else:
                    detail = "size or checksum differs from the checked file"
                if data is None or len(data) != rec["bytes"] or zlib.crc32(data) != rec["crc"]:
                    skipped.append({"path": rec["path"], "reason": "changed_during_build", "detail": detail})
                else:
                    writer.write(serialize_example(data, rec["label"], rec["identity"], rec["path"]))
                    written += 1
                if progress is not None:
                    progress.update(1)
        os.replace(tmp, path)
    except tf.errors.OpError as err:
        # TensorFlow's writer reports a full disk or a size limit as its own error type.
        raise OutputError(errno.EIO, f"cannot write {path}: {_tf_message(err)}", path) from None
    except OSError as err:
        if isinstance(err, OutputError):
            raise
        raise OutputError(err.errno, describe_os_error(err), path) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return written, skipped


def build_tfrecords(
    src,
    out,
    shards=None,
    workers=None,
    min_images=0,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_bytes=DEFAULT_MAX_BYTES,
    prefix="train",
    seed=0,
    overwrite=False,
    progress=True,
):
    """Check every file under ``src`` and write the good ones as sharded TFRecords to ``out``
    (``<prefix>-%05d-of-%05d.tfrecord``, ``labels.json``, ``stats.json``). Returns the stats dict.

    ``shards=None`` picks about one shard per 1,000 images (at least 1, at most 1,024);
    ``workers`` threads check and write (default: one per CPU); identities with fewer than
    ``min_images`` valid images are dropped (their files are counted as skipped);
    ``max_pixels`` bounds the header-declared size, ``max_bytes`` the file size; ``seed`` fixes
    the spread of records over shards.

    The build is made in a hidden folder beside ``out`` and moved into place only when complete
    (:func:`tfface.files.staged_dir`), under a lock beside ``out`` (a second build of the same
    ``out`` fails at once with :class:`~tfface.files.LockedError`): an interrupted, failed or
    concurrent build — ``overwrite`` included — leaves the previous build as it was. Raises
    :class:`~tfface.files.InputError` for a source without identity folders or without one good
    image, :class:`~tfface.files.OutputError` when ``out`` cannot be written (a file or symlink
    in the way, permissions, a full disk).
    """
    # Imported here, before the worker threads start: the first check would otherwise pay for
    # TensorFlow's import while every other thread waits on the import lock.
    import tensorflow  # noqa: F401

    src, out = os.fspath(src), os.fspath(out)
    rec = recordio.find_recordio(src)
    if rec is not None:
        if min_images:
            raise InputError(
                f"min_images={min_images}: a RecordIO source keeps its labels as they are (models trained "
                "on the .rec and on the build share class indices); filtering identities is for image folders"
            )
        return _build_from_recordio(rec, out, shards, workers, max_pixels, max_bytes, prefix, seed, overwrite,
                                    progress)
    if not os.path.isdir(src):
        raise SourceError(f"source {src!r} is not a directory (expected one sub-folder per identity)")
    src_real, out_real = os.path.realpath(src), os.path.realpath(out)
    if _inside(out_real, src_real):
        raise InputError(f"output {out!r} is inside the source {src!r}; its shards would be read as images")
    entries, skipped = scan_source(src)
    if not entries:
        loose = len(skipped)
        raise InputError(
            f"source {src!r} has no identity sub-folders ({loose} file{'s' * (loose != 1)} directly in it); "
            "expected SRC/<identity>/<image>, one sub-folder per identity")
    _check_out(out, overwrite)
    with DirLock.beside(out, "tfface build"):
        remove_stale_stages(out)
        with staged_dir(out, overwrite) as stage:
            return _build_folder(src, src_real, stage, entries, skipped, shards, workers, min_images,
                                 max_pixels, max_bytes, prefix, seed, progress)


def _build_folder(src, src_real, out, entries, skipped, shards, workers, min_images, max_pixels, max_bytes,
                  prefix, seed, progress):
    from tqdm.auto import tqdm

    workers = int(workers or os.cpu_count() or 1)
    start = time.perf_counter()
    seen = len(entries) + len(skipped)
    results = [None] * len(entries)
    bar = tqdm(total=len(entries), desc="check", unit="img", disable=not progress, leave=False)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(_check, e, src_real, max_pixels, max_bytes): i for i, e in enumerate(entries)}
        for fut in concurrent.futures.as_completed(futures):
            results[futures[fut]] = fut.result()
            bar.update(1)
    bar.close()

    good = [r for r in results if "reason" not in r]
    skipped += [r for r in results if "reason" in r]
    per_identity = {}
    for r in good:
        per_identity.setdefault(r["identity"], []).append(r)
    identities_seen = sorted({e[0] for e in entries})
    threshold = max(int(min_images), 1)
    dropped = {}
    for name in identities_seen:
        n = len(per_identity.get(name, []))
        if n < threshold:
            dropped[name] = n
            for r in per_identity.pop(name, []):
                skipped.append({"path": r["path"], "reason": "identity_below_min_images",
                                "detail": f"{name} has {n} valid images < min_images={min_images}"})
    labels = {name: i for i, name in enumerate(sorted(per_identity))}
    records = [dict(r, label=labels[r["identity"]]) for name in sorted(per_identity) for r in per_identity[name]]
    order = np.random.default_rng(seed).permutation(len(records))
    records = [records[i] for i in order]

    if not records:
        reasons = ", ".join(f"{k} {v}" for k, v in _count_reasons(skipped).items())
        raise InputError(f"no image under {src!r} passed the checks ({reasons}); nothing to build")
    names, written, late = _write_shards(out, records, shards, prefix, workers, progress)
    skipped += late

    skipped.sort(key=lambda r: r["path"])
    reasons = _count_reasons(skipped)
    counts = [len(v) for v in per_identity.values()]
    formats = {}
    for r in records:
        formats[r["format"]] = formats.get(r["format"], 0) + 1
    stats = {
        "source": os.path.abspath(src),
        "seen": seen,
        "written": written,
        "skipped": reasons,
        "skipped_files": skipped,
        "identities": len(labels),
        "images_per_identity": _summary(counts),
        "dropped_identities": dropped,
        "min_images": min_images,
        "max_pixels": max_pixels,
        "max_bytes": max_bytes,
        "formats": dict(sorted(formats.items())),
        "shards": names,
        "seed": seed,
    }
    return _finish(out, labels, stats, start)


_BUILD_FILES = ("labels.json", "stats.json")


def check_output_folder(out, what="output"):
    """Refuse an output folder path that is a symbolic link or a file, or under a file, naming
    it (:class:`~tfface.files.OutputError`, exit status 3). Used by build, align and synth."""
    out = os.fspath(out)
    if os.path.islink(out) or (os.path.exists(out) and not os.path.isdir(out)):
        kind = "a symbolic link" if os.path.islink(out) else "a file"
        raise OutputError(errno.EEXIST, f"{what} {out} is {kind}; expected a folder path", out)
    parent = os.path.dirname(os.path.abspath(out))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise OutputError(errno.ENOTDIR, f"{what} {out} is not a folder path: {parent} is a file", out)


def remove_stale_stages(out):
    """Remove the staging folders (``.NAME.partial-*``) that a killed build or synth of ``out``
    left beside it. Call with ``out``'s lock held, so none belongs to a live writer. A
    ``.NAME.old-*`` folder is kept: it may be the only copy of the previous output."""
    import shutil

    parent, name = os.path.split(os.path.abspath(os.fspath(out)))
    for entry in leftovers(parent):
        if entry.startswith(f".{name}.partial-"):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _check_out(out, overwrite):
    """Refuse an ``out`` that holds a build without ``overwrite``, or anything but a build (it
    is replaced as a whole, and an unrelated folder must not be)."""
    check_output_folder(out)
    if not os.path.isdir(out):
        return
    try:
        names = os.listdir(out)
    except OSError as err:
        raise OutputError(err.errno, describe_os_error(err, "list"), out) from None
    ours = sorted(f for f in names if f.endswith(TFRECORD_SUFFIX) or f in _BUILD_FILES)
    other = sorted(f for f in names if f not in ours and f != LOCK_NAME)
    if other:
        raise OutputError(errno.EEXIST, f"output {out!r} holds files that are not a build ({', '.join(other[:3])}"
                          f"{', ...' if len(other) > 3 else ''}); give an empty or new folder", out)
    if ours and not overwrite:
        raise OutputError(errno.EEXIST, f"{out!r} already holds a build ({', '.join(ours[:3])}...); "
                          "pass overwrite=True / --overwrite", out)


def _write_shards(out, records, shards, prefix, workers, progress, read=_read_file):
    """Write ``records`` (in their order) into shards; ``(names, written, skipped)``."""
    from tqdm.auto import tqdm

    n_shards = int(shards) if shards else max(1, min(1024, -(-len(records) // 1000)))
    if n_shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    n_shards = min(n_shards, max(1, len(records)))
    names = [f"{prefix}-{i:05d}-of-{n_shards:05d}{TFRECORD_SUFFIX}" for i in range(n_shards)]
    parts = np.array_split(np.arange(len(records)), n_shards)
    bar = tqdm(total=len(records), desc="write", unit="img", disable=not progress, leave=False)
    written, skipped = 0, []
    with concurrent.futures.ThreadPoolExecutor(min(workers, n_shards)) as pool:
        # Records are looked up as each shard is written (a generator per shard), so a table that
        # makes them on demand (RecordIO: millions) never holds them all as dicts.
        jobs = [pool.submit(_write_shard, os.path.join(out, name), (records[i] for i in part), bar, read)
                for name, part in zip(names, parts)]
        for job in jobs:
            w, s = job.result()
            written += w
            skipped += s
    bar.close()
    return names, written, skipped


def _count_reasons(skipped):
    reasons = {}
    for r in skipped:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return dict(sorted(reasons.items()))


def _finish(out, labels, stats, start):
    # The invariant the whole module is built around; a failure here is a bug, not bad input.
    skipped = sum(stats["skipped"].values())
    assert stats["written"] + skipped == stats["seen"], (stats["written"], skipped, stats["seen"])
    write_json(os.path.join(out, "labels.json"), labels, indent=1)
    write_json(os.path.join(out, "stats.json"), stats, indent=1)
    stats["elapsed_s"] = time.perf_counter() - start
    return stats


# ---------------------------------------------------------------------------------------------
# from insightface RecordIO


_FORMATS = ("jpeg", "png", "bmp")


def _check_records(rec_file, keys, offsets, ends, num_classes, max_pixels, max_bytes, name):
    """Check image records; ``(good, skipped)``: ``good`` an int64 array of rows ``(index, label,
    bytes, crc, format code)``, ``skipped`` dicts (path ``name#key``, reason, detail)."""
    good, skipped = [], []
    for i, (key, offset, end) in enumerate(zip(keys, offsets, ends)):
        try:
            label, data, _ = rec_file.read_image_span(offset, end, num_classes)
            if not data:
                raise _Skip("empty", "the record holds no image bytes")
            if len(data) > max_bytes:
                raise _Skip("too_large", f"{len(data)} bytes > max_bytes={max_bytes}")
            fmt, _, _ = check_image(data, max_pixels)
        except (RecordError, _Skip) as err:
            skipped.append({"path": f"{name}#{key}", "reason": err.reason, "detail": err.detail})
            continue
        good.append((i, label, len(data), zlib.crc32(data), _FORMATS.index(fmt)))
    return np.array(good, np.int64).reshape(-1, 5), skipped


class _RecordTable:
    """The checked records of a RecordIO build as a sequence of the dicts ``_write_shard``
    takes, made on demand."""

    def __init__(self, rows, info, name):
        self.rows, self.info, self.name = rows, info, name

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, j):
        i, label, size, crc, fmt = (int(v) for v in self.rows[j])
        key = int(self.info.image_keys[i])
        return {"identity": str(label), "label": label, "path": f"{self.name}#{key}", "bytes": size, "crc": crc,
                "format": _FORMATS[fmt], "offset": int(self.info.offsets[i]), "end": int(self.info.ends[i])}


def _build_from_recordio(rec, out, shards, workers, max_pixels, max_bytes, prefix, seed, overwrite, progress):
    """``tfface build train.rec OUT``: every image record of an insightface ``.rec`` is seen and
    written or skipped with a reason (``recordio.REASONS``, then the image checks of a folder
    build). Labels stay the ``.rec``'s: ``labels.json`` maps ``"0" .. str(num_classes - 1)`` to
    themselves, ``num_classes`` from ``property`` (else the header record, else the largest
    label + 1); the record's ``filename`` feature is ``train.rec#key``."""
    import tensorflow  # noqa: F401  (before the threads; see build_tfrecords)
    from tqdm.auto import tqdm

    info = recordio.describe(rec)
    if os.path.realpath(os.path.dirname(info.rec)) == os.path.realpath(out):
        raise InputError(f"output {out!r} is the source's own folder; pick another")
    _check_out(out, overwrite)
    with DirLock.beside(out, "tfface build"):
        remove_stale_stages(out)
        with staged_dir(out, overwrite) as stage:
            return _build_recordio(info, stage, shards, workers, max_pixels, max_bytes, prefix, seed, progress)


def _build_recordio(info, out, shards, workers, max_pixels, max_bytes, prefix, seed, progress):
    from tqdm.auto import tqdm

    start = time.perf_counter()
    workers = int(workers or os.cpu_count() or 1)
    name = os.path.basename(info.rec)
    n = info.num_examples
    bar = tqdm(total=n, desc="check", unit="img", disable=not progress, leave=False)
    with recordio.RecordFile(info.rec, info.idx, index=False) as rec_file:

        def check(lo):
            hi = min(lo + 512, n)
            rows, bad = _check_records(rec_file, info.image_keys[lo:hi], info.offsets[lo:hi], info.ends[lo:hi],
                                       info.num_classes, max_pixels, max_bytes, name)
            rows[:, 0] += lo
            bar.update(hi - lo)
            return rows, bad

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            checked = list(pool.map(check, range(0, n, 512)))
        bar.close()
        rows = np.concatenate([c[0] for c in checked]) if checked else np.zeros((0, 5), np.int64)
        skipped = [r for c in checked for r in c[1]]
        classes = info.num_classes
        if classes is None:
            classes = int(rows[:, 1].max()) + 1 if len(rows) else 0
        labels = {str(i): i for i in range(classes)}
        rows = rows[np.random.default_rng(seed).permutation(len(rows))]

        def read(r):
            return rec_file.read_image_span(r["offset"], r["end"], info.num_classes)[1]

        names, written, late = _write_shards(out, _RecordTable(rows, info, name), shards, prefix, workers,
                                             progress, read)
    skipped += late
    skipped.sort(key=lambda r: int(r["path"].rsplit("#", 1)[1]))
    per_identity = np.bincount(rows[:, 1], minlength=classes) if len(rows) else np.zeros(classes, np.int64)
    formats = np.bincount(rows[:, 4], minlength=len(_FORMATS)) if len(rows) else np.zeros(3, np.int64)
    stats = {
        "source": info.rec,
        "source_format": "recordio",
        "seen": n,
        "written": written,
        "skipped": _count_reasons(skipped),
        "skipped_files": skipped,
        "identities": classes,
        "identities_with_images": int((per_identity > 0).sum()),
        "images_per_identity": _summary(per_identity),
        "dropped_identities": {},
        "min_images": 0,
        "max_pixels": max_pixels,
        "max_bytes": max_bytes,
        "formats": {f: int(c) for f, c in zip(_FORMATS, formats) if c},
        "shards": names,
        "seed": seed,
    }
    return _finish(out, labels, stats, start)
