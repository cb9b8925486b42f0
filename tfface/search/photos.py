"""Photos -> face embeddings: the library behind ``tfface embed`` (and the photo side of
``tfface enrol`` / ``tfface search``).

Every photo is *seen* and ends in exactly one of three lists, so nothing is lost silently:

* **faces**: one row per embedded face — the photo's name, the face's number in the photo (0 is
  the main face: largest, most central, facenet's rule), the detector's box (x1, y1, x2, y2 in
  source pixels), its confidence;
* **faceless**: readable photos where MTCNN found no face;
* **skipped**: photos that could not be used, with a reason (the reasons of ``tfface build``,
  :mod:`tfface.data.build`: ``unreadable``, ``not_a_file``, ``empty``, ``too_large``,
  ``not_an_image``, ``too_many_pixels`` (checked from the header, before decoding), ``corrupt``).

Photos are read with PIL (every format PIL reads; the EXIF orientation applied, as ``tfface
align`` reads them), detected with MTCNN (:class:`tfface.align.FaceAligner`, in batches), cut as
the model's alignment says (:class:`tfface.search.model.FaceEmbedder`) and embedded. With
``aligned=True`` the photos are already aligned crops (``tfface align`` output): each is one face,
resized to the model's input, with the whole image as its box.

The embeddings file (:func:`write_embeddings`) is an ``.npz`` with ``embeddings`` (float32
``(N, D)``, L2-normalised), ``files`` (str ``(N,)``), ``face`` (int32 ``(N,)``), ``boxes`` (float32
``(N, 4)``), ``confidence`` (float32 ``(N,)``, NaN where there is no detector score) and ``model``
(the model's description as a JSON string), plus a JSON listing beside it (same name, ``.json``)
with the model, the counts and the three lists. Both are written atomically.
"""
import dataclasses
import io
import json
import os
import stat

import numpy as np

from tfface.data.images import ALL_IMAGE_EXTENSIONS, scan_tree
from tfface.files import InputError, atomic_file, write_json

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 100 * 2**20
EMBEDDINGS_FORMAT = "tfface-embeddings"


_SHARED = {}


def shared_detector():
    """One ``mtcnn.MTCNN`` per process, built on first use: building one loads three networks and
    traces them, so the commands (and a process running several) reuse it."""
    if "mtcnn" not in _SHARED:
        from mtcnn import MTCNN

        from tfface.align.aligner import compile_detector

        _SHARED["mtcnn"] = compile_detector(MTCNN())
    return _SHARED["mtcnn"]


class PhotoSkip(Exception):
    """A photo that cannot be used: ``reason`` (one of :mod:`tfface.data.build`'s) and detail."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def list_photos(inputs):
    """``[(name, path)]`` of the photos named by ``inputs``: files as given, folders walked
    recursively for every image extension PIL reads (named ``folder/relative/path``). Files in a
    folder with other extensions are returned as the second list, ``[name]`` (not photos)."""
    photos, others = [], []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            images, rest = scan_tree(item, ALL_IMAGE_EXTENSIONS)
            photos += [(os.path.join(item, rel), os.path.join(item, rel)) for rel in images]
            others += [os.path.join(item, rel) for rel in rest]
        else:
            photos.append((item, item))
    return photos, others


def load_photo(path, max_pixels=DEFAULT_MAX_PIXELS, max_bytes=DEFAULT_MAX_BYTES):
    """uint8 RGB ``(H, W, 3)`` of the photo at ``path``; raises :class:`PhotoSkip` naming why it
    cannot be used. The pixel count is read from the header before anything is decoded."""
    from PIL import Image, ImageOps

    from tfface.data import build

    try:
        st = os.stat(path)
    except OSError as err:
        raise PhotoSkip("unreadable", f"{type(err).__name__}: {err.strerror or err}") from None
    if not stat.S_ISREG(st.st_mode):
        raise PhotoSkip("not_a_file", "directory" if stat.S_ISDIR(st.st_mode) else "special file")
    if st.st_size == 0:
        raise PhotoSkip("empty", "0 bytes")
    if st.st_size > max_bytes:
        raise PhotoSkip("too_large", f"{st.st_size} bytes > max_bytes={max_bytes}")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise PhotoSkip("unreadable", f"{type(err).__name__}: {err.strerror or err}") from None
    fmt = build.sniff_format(data)
    if fmt in ("jpeg", "png", "bmp"):
        try:
            height, width = build.header_size(data, fmt)
        except Exception as err:  # build's own skip: a header without a size
            raise PhotoSkip(getattr(err, "reason", "corrupt"), getattr(err, "detail", str(err))) from None
        if height * width > max_pixels:
            raise PhotoSkip("too_many_pixels", f"header declares {width}x{height} > max_pixels={max_pixels}")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise PhotoSkip("too_many_pixels", str(err)[:200]) from None
    except Exception:
        raise PhotoSkip("not_an_image", "neither PIL nor the magic bytes know this format") from None
    with im:
        if fmt not in ("jpeg", "png", "bmp"):
            width, height = im.size
        if height * width > max_pixels:
            raise PhotoSkip("too_many_pixels", f"header declares {width}x{height} > max_pixels={max_pixels}")
        if height == 0 or width == 0:
            raise PhotoSkip("corrupt", f"header declares {width}x{height}")
        try:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
        except Exception as err:  # truncated or damaged data: a property of the file
            raise PhotoSkip("corrupt", f"decode failed: {type(err).__name__}: {str(err)[:200]}") from None


@dataclasses.dataclass
class EmbedResult:
    """What :func:`embed_photos` returns (see the module docstring)."""

    embeddings: np.ndarray
    faces: list  # [{"file", "face", "box", "confidence"}], one per row of embeddings
    faceless: list  # [file]
    skipped: list  # [{"file", "reason", "detail"}]
    seen: int

    def counts(self):
        reasons = {}
        for s in self.skipped:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        photos_with_faces = len({f["file"] for f in self.faces})
        return {"seen": self.seen, "with_faces": photos_with_faces, "faces": len(self.faces),
                "faceless": len(self.faceless), "skipped": len(self.skipped), "skipped_reasons": reasons}


def embed_photos(embedder, photos, all_faces=False, aligned=False, detector=None, batch_size=8,
                 min_face_size=20, max_pixels=DEFAULT_MAX_PIXELS, max_bytes=DEFAULT_MAX_BYTES,
                 progress=None):
    """Embed the faces of ``photos`` (``[(name, path)]``, see :func:`list_photos`) with
    ``embedder`` (:class:`tfface.search.model.FaceEmbedder`). ``all_faces``: every face MTCNN
    finds (best first), else the main face only. ``detector``: an ``mtcnn.MTCNN`` (default: :func:`shared_detector`).
    ``progress``: called with the number of photos done after each batch. Returns an
    :class:`EmbedResult`."""
    if batch_size < 1:
        raise InputError(f"batch_size={batch_size}; expected at least 1")
    aligner = None
    if not aligned:
        aligner = embedder.aligner(detector=detector or shared_detector(), min_face_size=min_face_size)
    faces, faceless, skipped, chunks = [], [], [], []
    for start in range(0, len(photos), batch_size):
        loaded = []
        for name, path in photos[start:start + batch_size]:
            try:
                loaded.append((name, load_photo(path, max_pixels, max_bytes)))
            except PhotoSkip as skip:
                skipped.append({"file": name, "reason": skip.reason, "detail": skip.detail})
        crops, rows = [], []
        if aligned:
            for name, image in loaded:
                h, w = image.shape[:2]
                crops.append(_resize(image, embedder.input_size))
                rows.append({"file": name, "face": 0, "box": [0.0, 0.0, float(w), float(h)], "confidence": None})
        else:
            found = aligner.detect_batch([image for _, image in loaded])
            for (name, image), detections in zip(loaded, found):
                if not detections:
                    faceless.append(name)
                    continue
                for number, d in enumerate(detections if all_faces else detections[:1]):
                    face = aligner._from_landmarks(image, d.landmarks, d.box, d.confidence, "detected")
                    crops.append(face.image)
                    rows.append({"file": name, "face": number, "box": [float(v) for v in d.box],
                                 "confidence": float(d.confidence)})
        if crops:
            chunks.append(embedder.embed(np.stack(crops)))
            faces += rows
        if progress is not None:
            progress(min(start + batch_size, len(photos)))
    dim = embedder.info["embedding_size"] or 0
    embeddings = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return EmbedResult(embeddings, faces, faceless, skipped, len(photos))


def _resize(image, size):
    """``image`` at ``size`` (h, w) with the pipeline's resize (a no-op when it has it)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    from tfface.data.images import resize_image

    return np.asarray(resize_image(image, size))


def write_embeddings(path, result, model_info):
    """Write ``result`` (:class:`EmbedResult`) to ``path`` (``.npz``) and its JSON listing beside
    it; returns the listing's path. Both atomic: an interruption leaves the previous files."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise InputError(f"--out {path!r}: expected a file name ending in .npz")
    listing = path[:-4] + ".json"
    boxes = np.array([f["box"] for f in result.faces], dtype=np.float32).reshape(-1, 4)
    confidence = np.array([np.nan if f["confidence"] is None else f["confidence"] for f in result.faces],
                          dtype=np.float32)
    arrays = {
        "embeddings": np.asarray(result.embeddings, np.float32),
        "files": np.array([f["file"] for f in result.faces], dtype=str),
        "face": np.array([f["face"] for f in result.faces], dtype=np.int32),
        "boxes": boxes,
        "confidence": confidence,
        "model": np.array(json.dumps(model_info)),
    }
    with atomic_file(path) as handle:
        np.savez(handle, **arrays)
    write_json(listing, {
        "format": EMBEDDINGS_FORMAT,
        "embeddings": os.path.basename(path),
        "model": model_info,
        "counts": result.counts(),
        "faces": [dict(row=i, **f) for i, f in enumerate(result.faces)],
        "faceless": result.faceless,
        "skipped": result.skipped,
    })
    return listing


def read_embeddings(path):
    """An embeddings file written by :func:`write_embeddings`: a dict with the arrays and
    ``model`` (a dict). Raises :class:`InputError` naming the file and what is wrong."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise InputError(f"embeddings file {path} does not exist") from None
    except Exception as err:
        raise InputError(f"{path} is not an embeddings file written by 'tfface embed' "
                         f"({type(err).__name__}: {str(err)[:200]})") from None
    missing = [k for k in ("embeddings", "files", "face", "boxes", "model") if k not in out]
    if missing:
        raise InputError(f"{path} lacks {missing}; expected an embeddings file written by 'tfface embed'")
    emb = out["embeddings"]
    if emb.ndim != 2 or len(out["files"]) != len(emb) or not np.all(np.isfinite(emb)):
        raise InputError(f"{path}: embeddings of shape {emb.shape} for {len(out['files'])} files, "
                         "or non-finite values; the file is damaged")
    try:
        out["model"] = json.loads(str(out["model"]))
    except ValueError:
        raise InputError(f"{path}: the model description is not valid JSON") from None
    return out


def read_gallery_list(path):
    """``[(photo path, identity)]`` of a list file: one ``path<TAB>identity`` per line (extra
    tab-separated fields are ignored; blank lines and lines starting with ``#`` skipped),
    relative paths taken from the list file's folder (``tfface pairs --split`` writes such
    lists). Raises :class:`InputError` naming the line."""
    path = os.fspath(path)
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the list file {path}: {err}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0] or not fields[1].strip():
            raise InputError(f"{path}:{number}: {line[:80]!r}; expected 'photo path<TAB>identity'")
        out.append((os.path.join(base, fields[0]), fields[1].strip()))
    if not out:
        raise InputError(f"the list file {path} names no photo")
    return out


def gallery_photos(gallery):
    """``(names, photos, labels)`` of a gallery: an identity folder (one sub-folder of photos per
    identity; :func:`tfface.data.images.identity_index`) or a list file
    (:func:`read_gallery_list`). ``photos`` are ``(name, path)`` with names relative to the
    folder (as given in the list)."""
    from tfface.data.images import identity_index

    gallery = os.fspath(gallery)
    if os.path.isdir(gallery):
        index = identity_index(gallery, ALL_IMAGE_EXTENSIONS)
        photos = [(os.path.relpath(p, gallery), p) for p in index.paths]
        if not photos:
            raise InputError(f"{gallery} holds no photos in identity sub-folders; expected "
                             "GALLERY/<identity>/<photo>")
        return list(index.names), photos, list(index.labels)
    if not os.path.exists(gallery):
        raise InputError(f"gallery {gallery} does not exist; expected an identity folder or a list file")
    entries = read_gallery_list(gallery)
    seen = {}
    for photo, identity in entries:
        if seen.setdefault(os.path.normpath(photo), identity) != identity:
            raise InputError(f"{gallery}: {photo} is listed for both {seen[os.path.normpath(photo)]!r} and "
                             f"{identity!r}; a photo belongs to one identity")
    names = sorted({identity for _, identity in entries})
    label_of = {n: i for i, n in enumerate(names)}
    base = os.path.dirname(os.path.abspath(gallery))
    photos = [(os.path.relpath(p, base), p) for p, _ in entries]
    return names, photos, [label_of[identity] for _, identity in entries]
