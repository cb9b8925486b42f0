"""Align every image of a folder tree: :func:`align_folder` (the library behind ``tfface align SRC
DST``, whose command line is ``tfface.commands.align``).

SRC is walked recursively (:func:`tfface.data.images.scan_tree`; every format PIL reads counts as
an image); each image is written to the same relative path under DST (with the
extension ``ext``). Images whose output exists are skipped, so an interrupted run resumes
where it stopped (outputs are written to a temporary name and renamed, so a half-written file is
never taken for a finished one). Nothing is dropped silently: every file ends in exactly one of
the report's categories, and ``DST/align_report.json`` lists them.

Splits differ only in what happens when MTCNN finds no face: for ``split="train"`` the image is
skipped and listed; for ``split="test"`` (verification sets, where every image must yield a
crop) it falls back to the given ``landmarks`` if they have an entry for it, else to a centre
crop, and is listed. ``landmarks`` entries are used as the fallback for train too.

Safety rules (docs/reliability.md):

* DST is locked (``DST/.tfface.lock``) while a run works in it: a second run fails at once.
* The settings that shape a crop (mode, size, margin, ext, quality) are written to
  ``DST/align_settings.json`` before the first crop. A run into a DST made with other settings
  (or holding files without that record) is refused, naming the differences, unless
  ``overwrite`` is given: then DST's contents are removed first.
* Every source goes through the input rule of :mod:`tfface.data.images` before PIL decodes it:
  a regular file (a FIFO named ``*.jpg`` is listed, never opened for a blocking read) whose
  header declares at most ``max_pixels`` pixels; others are listed under ``unreadable`` with
  the reason.
* Crops and the report are written to temporary names and renamed.
* With ``workers > 1``, a worker process that dies (the out-of-memory killer, a crash in a
  decoder) is noticed: the images it held are retried once, one at a time, and an image that
  kills its worker again is listed under ``error``; the run never waits for a dead process.
"""
import collections
import json
import contextlib
import errno
import multiprocessing
import os
import shutil
import sys
import time

import numpy as np

from tfface.align.aligner import DEFAULT_DETECT_SIZE
from tfface.data.build import check_output_folder
from tfface.data.images import ALL_IMAGE_EXTENSIONS, DEFAULT_MAX_PIXELS, ImageRejected, read_image, scan_tree
from tfface.files import (
    LOCK_NAME,
    DirLock,
    InputError,
    OutputError,
    atomic_file,
    describe_os_error,
    leftovers,
    read_json,
    write_json,
)

REPORT_NAME = "align_report.json"
SETTINGS_NAME = "align_settings.json"
# Settings that change what a crop looks like: a folder's crops must all share them.
BINDING_SETTINGS = ("mode", "size", "margin", "ext", "quality")
_DIED = ("the worker process died while aligning it (killed, e.g. by the out-of-memory killer, or "
         "crashed); it was retried alone and died again")
# Categories of the report; each source image lands in exactly one.
_WRITTEN = ("detected", "given_landmarks", "centre_crop")
_SKIPPED = ("no_face", "unreadable", "name_collision", "error")


def load_landmarks(path):
    """Read a landmarks file into ``{relative posix path: (5, 2) array}``.

    JSON: an object mapping paths (relative to SRC) to 10 numbers or 5 ``[x, y]`` pairs. Text: one
    image per line, ``path`` then 10 numbers, tab separated if the path holds spaces (else any
    whitespace); blank lines and lines starting with ``#`` are ignored.
    """
    entries = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object {{path: [10 numbers]}}, got {type(data).__name__}")
        items = [(k, v, f"key {k!r}") for k, v in data.items()]
    else:
        items = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "\t" in line:
                head, *rest = line.rstrip("\n").split("\t")
                fields = [head] + " ".join(rest).split()
            else:
                fields = line.split()
            if len(fields) != 11:
                raise ValueError(
                    f"{path}: line {lineno} has {len(fields)} fields; expected a path and 10 numbers"
                )
            items.append((fields[0], fields[1:], f"line {lineno}"))
    for key, values, where in items:
        try:
            pts = np.asarray(values, dtype=np.float64).reshape(5, 2)
        except (ValueError, TypeError):
            raise ValueError(f"{path}: {where}: expected 10 numbers (x, y of 5 points), got {values!r}") from None
        if not np.all(np.isfinite(pts)):
            raise ValueError(f"{path}: {where}: landmarks must be finite numbers")
        entries[os.path.normpath(key).replace(os.sep, "/")] = pts
    return entries


def _output_rel(rel, ext):
    return os.path.splitext(rel)[0] + "." + ext


def _write_image(array, path, ext, quality):
    from PIL import Image

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_file(path) as f:
        if ext == "jpg":
            Image.fromarray(array).save(f, format="JPEG", quality=quality)
        else:
            Image.fromarray(array).save(f, format="PNG")


class _Job:
    """The per-process worker: one FaceAligner (one MTCNN) reused for every file; called with a
    chunk of tasks, detected as one batch."""

    def __init__(self, settings, detector=None):
        from tfface.align.aligner import FaceAligner

        self.settings = settings
        self.aligner = FaceAligner(
            mode=settings["mode"],
            size=settings["size"],
            margin=settings["margin"],
            min_face_size=settings["min_face_size"],
            detect_size=settings["detect_size"],
            detector=detector,
        )

    def __call__(self, tasks):
        results, loaded = [], []
        for rel, src_path, out_path, landmarks in tasks:
            try:
                image = read_image(src_path, max_pixels=self.settings.get("max_pixels", DEFAULT_MAX_PIXELS))
            except ImageRejected as err:
                results.append((rel, "unreadable", f"{err.reason}: {err.detail}"))
                continue
            except Exception as err:  # any decoder failure is a property of the file: report it
                results.append((rel, "unreadable", f"{type(err).__name__}: {err}"))
                continue
            loaded.append((rel, image, out_path, landmarks))
        try:
            found = self.aligner.detect_batch([image for _, image, _, _ in loaded])
        except Exception:
            # One bad image must not cost the others their detection: one at a time.
            found = [None] * len(loaded)
        for (rel, image, out_path, landmarks), detections in zip(loaded, found):
            results.append(self._finish(rel, image, out_path, landmarks, detections))
        return results

    def _finish(self, rel, image, out_path, landmarks, detections):
        try:
            if detections is None:
                detections = self.aligner.detect(image)
            face = self.aligner._finish(image, detections, None)
            if face is None and landmarks is not None:
                face = self.aligner.align(image, landmarks=landmarks)
            if face is None and self.settings["split"] == "test":
                face = self.aligner.centre_crop(image)
            if face is None:
                return rel, "no_face", None
            _write_image(face.image, out_path, self.settings["ext"], self.settings["quality"])
            return rel, face.method, None
        except Exception as err:
            return rel, "error", f"{type(err).__name__}: {err}"


_WORKER = None


def _init_worker(settings, threads, factory=None):
    global _WORKER
    if factory is not None:
        _WORKER = factory(settings)
        return
    import tensorflow as tf

    # Several detectors share the machine: give each process its share of the cores.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _WORKER = _Job(settings)


def _work(task):
    return _WORKER(task)


def _pool_results(chunks, workers, settings, threads, factory=None):
    """Run ``chunks`` on ``workers`` spawned processes; yields each chunk's results.

    At most ``workers`` chunks are in flight, so when a worker dies (``BrokenProcessPool``) the
    suspects are those chunks only. Their images are retried in a fresh pool, one at a time with
    nothing else in flight, so a second death names its image exactly; that image is reported as
    ``error``. Pools that keep dying before finishing anything (a worker that cannot start) stop
    the run's remaining images as ``error`` rather than looping."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # TensorFlow's runtime does not survive a fork
    queue, suspects = collections.deque(chunks), collections.deque()
    fruitless = 0
    while queue or suspects:
        if fruitless >= 3:
            left = [t for c in list(suspects) + list(queue) for t in c]
            yield [(t[0], "error", "worker processes died three times in a row without finishing an image; "
                    "not retried") for t in left]
            return
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                   initargs=(settings, threads, factory))
        inflight, broken, finished = {}, False, False
        try:
            while (queue or suspects or inflight) and not broken:
                if suspects:
                    if not inflight:
                        chunk = suspects.popleft()
                        inflight[pool.submit(_work, chunk)] = (chunk, True)
                else:
                    while queue and len(inflight) < workers:
                        chunk = queue.popleft()
                        inflight[pool.submit(_work, chunk)] = (chunk, False)
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in done:
                    chunk, alone = inflight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        if alone:
                            finished = True
                            yield [(t[0], "error", _DIED) for t in chunk]
                        else:
                            suspects.extend([t] for t in chunk)
                        continue
                    finished = True
                    yield result
            # Every other chunk in flight went down with the pool: suspects too.
            for chunk, alone in inflight.values():
                suspects.extend([t] for t in chunk)
            inflight.clear()
        finally:
            if broken or inflight:
                # Do not wait on workers that may be stuck or dead; end them.
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    with contextlib.suppress(Exception):
                        proc.kill()
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                pool.shutdown(wait=True)
        fruitless = 0 if finished else fruitless + 1


def _check_dst(src, dst, settings, overwrite):
    """Refuse a DST in the way, or one made with other settings unless ``overwrite`` (which
    then clears it). Called with DST locked; writes the settings record."""
    try:
        names = sorted(n for n in os.listdir(dst) if n != LOCK_NAME)
    except OSError as err:
        raise OutputError(err.errno, describe_os_error(err, "list"), dst) from None
    record = os.path.join(dst, SETTINGS_NAME)
    if names and not overwrite:
        previous = None
        if os.path.exists(record):
            previous = read_json(record, "align settings record").get("settings")
        elif os.path.exists(os.path.join(dst, REPORT_NAME)):  # a folder aligned before the record existed
            previous = read_json(os.path.join(dst, REPORT_NAME), "align report").get("settings")
        if not isinstance(previous, dict):
            raise OutputError(errno.EEXIST, f"{dst} holds files ({', '.join(names[:3])}"
                              f"{', ...' if len(names) > 3 else ''}) but no {SETTINGS_NAME}: not a tfface align "
                              "output; give an empty folder, or pass --overwrite to clear it", dst)
        differ = [k for k in BINDING_SETTINGS if _norm(previous.get(k)) != _norm(settings[k])]
        if differ:
            was = ", ".join(f"{k}={previous.get(k)!r}" for k in differ)
            now = ", ".join(f"{k}={settings[k]!r}" for k in differ)
            raise OutputError(errno.EEXIST, f"{dst} was aligned with {was}; this run asks for {now}. Resuming would "
                              "mix crops made differently in one folder: use the same settings, another DST, or "
                              "--overwrite to clear DST and align again", dst)
    elif names and overwrite:
        src_real, dst_real = os.path.realpath(src), os.path.realpath(dst)
        if src_real == dst_real or src_real.startswith(dst_real + os.sep):
            raise InputError(f"--overwrite would clear {dst}, which holds the source {src}; give another DST")
        for name in names:
            path = os.path.join(dst, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            except OSError as err:
                raise OutputError(err.errno, describe_os_error(err, "remove"), path) from None
    write_json(record, {"tool": "tfface align", "settings": settings})


def _remove_leftovers(dst):
    """Remove the temporary files of crops whose writer was killed (hidden ``.NAME.tmp-*``)."""
    for base, _, _ in os.walk(dst):
        for name in leftovers(base):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(base, name))


def _norm(value):
    return list(value) if isinstance(value, tuple) else value


def align_folder(
    src,
    dst,
    mode="arcface",
    size=None,
    margin=None,
    split="train",
    landmarks=None,
    workers=1,
    ext="jpg",
    quality=95,
    min_face_size=20,
    detect_size=DEFAULT_DETECT_SIZE,
    batch_size=8,
    progress=True,
    detector=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    overwrite=False,
    worker_factory=None,
):
    """Align every image under ``src`` into ``dst``; returns the report (also written to
    ``dst/align_report.json``). ``landmarks``: a path (see :func:`load_landmarks`) or a dict
    ``{relative path: (5, 2)}``. ``detector``: an ``mtcnn.MTCNN`` to reuse when ``workers == 1``.
    ``detect_size``: MTCNN runs on a copy whose long side is at most this (see
    :class:`~tfface.align.FaceAligner`; None: full resolution). ``batch_size``: images read and
    detected together by one worker. ``workers``: processes, each with its own detector and
    ``cpu_count // workers`` TensorFlow threads. ``max_pixels``: the input rule's cap on a source's
    header-declared size (:mod:`tfface.data.images`). ``overwrite``: clear a DST made with other
    settings (see the module's safety rules). ``worker_factory``: a picklable callable
    ``settings -> job`` that builds each worker process's job instead of the MTCNN one (a job is
    called with a list of ``(rel, src path, out path, landmarks)`` and returns
    ``(rel, outcome, message)`` rows).

    Raises :class:`~tfface.files.LockedError` when another run holds DST,
    :class:`~tfface.files.OutputError` when DST is a file or symlink, cannot be written, or was
    made with other settings.
    """
    from tfface.align.aligner import FaceAligner

    if not os.path.isdir(src):
        raise InputError(f"SRC {src!r} is not a folder")
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; expected 'train' or 'test'")
    if ext not in ("jpg", "png"):
        raise ValueError(f"ext={ext!r}; expected 'jpg' or 'png'")
    if workers < 1:
        raise ValueError(f"workers={workers!r}; expected at least 1")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected at least 1")
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels={max_pixels!r}; expected a positive number of pixels")
    # Validate the settings here, before any file is touched or a worker started (the detector
    # is built lazily, so this is cheap).
    probe = FaceAligner(mode=mode, size=size, margin=margin, min_face_size=min_face_size, detect_size=detect_size)
    landmark_map = landmarks if isinstance(landmarks, dict) or landmarks is None else load_landmarks(landmarks)
    landmark_map = {os.path.normpath(k).replace(os.sep, "/"): v for k, v in (landmark_map or {}).items()}

    check_output_folder(dst, "DST")
    settings = dict(mode=mode, size=size, margin=margin, split=split, ext=ext, quality=quality,
                    min_face_size=min_face_size, detect_size=detect_size, max_pixels=max_pixels)
    # The record and the report hold the effective values (defaults resolved).
    effective = dict(settings, size=list(probe.size), margin=probe.margin)
    with DirLock(dst, "tfface align"):
        _check_dst(src, dst, effective, overwrite)
        return _align(src, dst, settings, effective, landmark_map, workers, batch_size, progress, detector,
                      worker_factory)


def _align(src, dst, settings, effective, landmark_map, workers, batch_size, progress, detector, factory):
    from tqdm import tqdm

    ext = settings["ext"]
    started = time.time()
    _remove_leftovers(dst)  # of runs that were killed; DST is locked, so no writer is alive
    images, others = scan_tree(src, ALL_IMAGE_EXTENSIONS, exclude=dst)
    lists = {name: [] for name in _WRITTEN + _SKIPPED}
    existing, tasks, claimed = [], [], {}
    for rel in images:
        out_rel = _output_rel(rel, ext)
        if out_rel in claimed:
            lists["name_collision"].append(
                {"path": rel, "error": f"output {out_rel} already claimed by {claimed[out_rel]}"}
            )
            continue
        claimed[out_rel] = rel
        out_path = os.path.join(dst, out_rel)
        if os.path.exists(out_path):
            existing.append(rel)
            continue
        tasks.append((rel, os.path.join(src, rel), out_path, landmark_map.get(rel)))

    bar = tqdm(total=len(tasks), unit="img", desc="align", disable=not progress, file=sys.stderr)
    interrupted = True
    try:
        chunks = [tasks[i : i + batch_size] for i in range(0, len(tasks), batch_size)]
        if workers == 1 or len(chunks) <= 1:
            job = _Job(settings, detector=detector) if tasks else None
            results = (job(c) for c in chunks)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            results = _pool_results(chunks, workers, settings, threads, factory)
        try:
            for chunk in results:
                for rel, outcome, message in chunk:
                    lists[outcome].append(rel if message is None else {"path": rel, "error": message})
                    bar.update(1)
        finally:
            if hasattr(results, "close"):
                results.close()
        interrupted = False
    finally:
        bar.close()
        # Workers ended after a dead one (or by an interruption) may leave a crop's temporary file.
        _remove_leftovers(dst)
        report = _report(src, dst, effective, images, others, existing, lists, landmark_map, started, interrupted)
        write_json(os.path.join(dst, REPORT_NAME), report)
    return report


def _sorted(entries):
    return sorted(entries, key=lambda e: e["path"] if isinstance(e, dict) else e)


def _report(src, dst, settings, images, others, existing, lists, landmark_map, started, interrupted):
    seen_rel = set(images)
    written = {k: len(lists[k]) for k in _WRITTEN}
    report = {
        "src": os.path.abspath(src),
        "dst": os.path.abspath(dst),
        "settings": settings,
        "seen": len(images),
        "aligned": sum(written.values()),
        "existing": len(existing),
        "methods": written,
        "fallbacks": {"given_landmarks": written["given_landmarks"], "centre_crop": written["centre_crop"]},
        "skipped": {k: len(lists[k]) for k in _SKIPPED},
        "not_images": len(others),
        "lists": {k: _sorted(lists[k]) for k in ("given_landmarks", "centre_crop") + _SKIPPED},
        "not_images_list": others,
        "unused_landmarks": sorted(k for k in landmark_map if k not in seen_rel),
        "interrupted": interrupted,
        "seconds": round(time.time() - started, 3),
    }
    report["unaccounted"] = report["seen"] - report["aligned"] - report["existing"] - sum(report["skipped"].values())
    return report
