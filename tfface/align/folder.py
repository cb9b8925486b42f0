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
"""
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from tfface.align.aligner import DEFAULT_DETECT_SIZE
from tfface.data.images import ALL_IMAGE_EXTENSIONS, read_image, scan_tree

REPORT_NAME = "align_report.json"
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
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if ext == "jpg":
            Image.fromarray(array).save(tmp, format="JPEG", quality=quality)
        else:
            Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
                loaded.append((rel, read_image(src_path), out_path, landmarks))
            except Exception as err:  # any decoder failure is a property of the file: report it
                results.append((rel, "unreadable", f"{type(err).__name__}: {err}"))
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


def _init_worker(settings, threads):
    global _WORKER
    import tensorflow as tf

    # Several detectors share the machine: give each process its share of the cores.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _WORKER = _Job(settings)


def _work(task):
    return _WORKER(task)


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
):
    """Align every image under ``src`` into ``dst``; returns the report (also written to
    ``dst/align_report.json``). ``landmarks``: a path (see :func:`load_landmarks`) or a dict
    ``{relative path: (5, 2)}``. ``detector``: an ``mtcnn.MTCNN`` to reuse when ``workers == 1``.
    ``detect_size``: MTCNN runs on a copy whose long side is at most this (see
    :class:`~tfface.align.FaceAligner`; None: full resolution). ``batch_size``: images read and
    detected together by one worker. ``workers``: processes, each with its own detector and
    ``cpu_count // workers`` TensorFlow threads.
    """
    from tqdm import tqdm

    from tfface.align.aligner import FaceAligner

    if not os.path.isdir(src):
        raise FileNotFoundError(f"SRC {src!r} is not a folder")
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; expected 'train' or 'test'")
    if ext not in ("jpg", "png"):
        raise ValueError(f"ext={ext!r}; expected 'jpg' or 'png'")
    if workers < 1:
        raise ValueError(f"workers={workers!r}; expected at least 1")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected at least 1")
    # Validate the settings here, before any file is touched or a worker started (the detector
    # is built lazily, so this is cheap).
    probe = FaceAligner(mode=mode, size=size, margin=margin, min_face_size=min_face_size, detect_size=detect_size)
    landmark_map = landmarks if isinstance(landmarks, dict) or landmarks is None else load_landmarks(landmarks)
    landmark_map = {os.path.normpath(k).replace(os.sep, "/"): v for k, v in (landmark_map or {}).items()}

    started = time.time()
    images, others = scan_tree(src, ALL_IMAGE_EXTENSIONS, exclude=dst)
    os.makedirs(dst, exist_ok=True)
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

    settings = dict(mode=mode, size=size, margin=margin, split=split, ext=ext, quality=quality,
                    min_face_size=min_face_size, detect_size=detect_size)
    # The report records the effective values (defaults resolved).
    effective = dict(settings, size=list(probe.size), margin=probe.margin)
    bar = tqdm(total=len(tasks), unit="img", desc="align", disable=not progress, file=sys.stderr)
    interrupted = True
    pool = None
    try:
        chunks = [tasks[i : i + batch_size] for i in range(0, len(tasks), batch_size)]
        if workers == 1 or len(chunks) <= 1:
            job = _Job(settings, detector=detector) if tasks else None
            results = (job(c) for c in chunks)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            # spawn, not fork: TensorFlow's runtime does not survive a fork.
            pool = multiprocessing.get_context("spawn").Pool(
                workers, initializer=_init_worker, initargs=(settings, threads)
            )
            results = pool.imap_unordered(_work, chunks)
        for chunk in results:
            for rel, outcome, message in chunk:
                lists[outcome].append(rel if message is None else {"path": rel, "error": message})
                bar.update(1)
        interrupted = False
    finally:
        bar.close()
        if pool is not None:
            if interrupted:
                pool.terminate()
            else:
                pool.close()
            pool.join()
        report = _report(src, dst, effective, images, others, existing, lists, landmark_map, started, interrupted)
        with open(os.path.join(dst, REPORT_NAME), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
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
