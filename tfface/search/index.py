"""A face-search index: enrolled identities, one template each, searched exactly (default) or
with FAISS. The library behind ``tfface enrol`` and ``tfface search``.

An index is a folder (written whole by :func:`write_index`: built under a staging name and
swapped in, under a lock beside it, so a reader never sees half an index and two enrolments
never interleave):

* ``index.json``: ``format``/``version``; ``build`` (a random id); the model's description
  (:attr:`tfface.search.model.FaceEmbedder.info`: hash, alignment, input size, flip,
  thresholds); ``embedding_size``; ``threshold`` (``{"value", "source"}`` or null);
  ``identities`` (names, row order of the templates) and ``counts`` (faces averaged per
  identity); ``files`` (the array files' names); ``faiss`` (kind, nlist, nprobe, recall@1, or
  null); ``enrolment`` (what was seen, used, faceless, skipped).
* ``templates-<build>.npy``: float32 ``(identities, D)``, row ``c`` the template of identity ``c``:
  the mean of its L2-normalised face embeddings, normalised again (so a score is a cosine
  similarity and a verification threshold applies to it).
* ``members-<build>.npz`` (``keep_all``): every enrolled embedding with its label and file.
* ``faiss-<build>.index`` (``faiss``): the FAISS index over the templates.

The array files carry the build id in their names: a search reads ``index.json``, then opens the
files it names; if an enrolment swapped the folder in between, they are gone and the read starts
again, so a search never mixes two builds (no lock is needed to read).
"""
import os
import time
import uuid

import numpy as np

from tfface.files import DirLock, InputError, read_json, staged_dir, write_json, atomic_file
from tfface.search.exact import exact_topk, identity_templates, normalise

INDEX_FORMAT = "tfface-face-index"
INDEX_VERSION = 1
INDEX_JSON = "index.json"
UNKNOWN = "unknown"


def threshold_from_metadata(thresholds, far="1e-3"):
    """``(value, source)`` of the decision threshold a model's metadata offers: the threshold at
    ``far`` (a false-accept rate of verification pairs), else the best-accuracy one; ``(None,
    None)`` when there is none."""
    if not thresholds:
        return None, None
    by_far = thresholds.get("far") or {}
    for key, value in by_far.items():
        try:
            if value is not None and float(key) == float(far):
                return float(value), f"model metadata, FAR {key}"
        except ValueError:
            continue
    if thresholds.get("best_accuracy") is not None:
        return float(thresholds["best_accuracy"]), "model metadata, best accuracy"
    return None, None


def write_index(out_dir, embeddings, labels, names, model_info, threshold=None, files=None,
                keep_all=False, faiss=None, nlist=None, nprobe=32, enrolment=None, overwrite=False,
                recall_queries=256, seed=0):
    """Build and write an index (layout in the module docstring); returns the ``index.json``
    content.

    ``embeddings`` (N, D) with ``labels`` (N,) into ``names`` (identity of each label); identities
    without any embedding are not enrolled (listed in ``enrolment["identities_without_faces"]``).
    ``threshold``: ``{"value", "source"}`` or None. ``faiss``: None, "flat" or "ivf" (then the
    recall@1 of FAISS against exact search on ``recall_queries`` perturbed templates is
    measured and recorded). ``overwrite``: replace an existing index."""
    embeddings = normalise(embeddings)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(embeddings):
        raise InputError(f"{len(labels)} labels for {len(embeddings)} embeddings")
    templates, counts = identity_templates(embeddings, labels, len(names))
    keep = np.flatnonzero(counts > 0)
    if len(keep) == 0:
        raise InputError("no face was enrolled: every gallery photo was faceless or unreadable")
    enrolment = dict(enrolment or {})
    enrolment["identities_without_faces"] = [names[i] for i in np.flatnonzero(counts == 0)]
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    templates, counts = templates[keep], counts[keep]
    kept_names = [names[i] for i in keep]
    build = uuid.uuid4().hex[:16]
    file_names = {"templates": f"templates-{build}.npy"}
    faiss_info = None
    faiss_bytes = None
    if faiss:
        from tfface.search import ann

        index = ann.build_faiss(templates, kind=faiss, nlist=nlist, nprobe=nprobe, seed=seed)
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(templates), size=min(recall_queries, len(templates)), replace=False)
        noise = rng.normal(scale=0.5 / np.sqrt(templates.shape[1]), size=(len(rows), templates.shape[1]))
        queries = normalise(templates[rows] + noise.astype(np.float32))
        faiss_info = {"kind": faiss, "nlist": int(getattr(index, "nlist", 0)) or None,
                      "nprobe": int(getattr(index, "nprobe", 0)) or None,
                      "recall_at_1": ann.recall_at_1(index, templates, queries),
                      "recall_queries": int(len(rows))}
        faiss_bytes = ann.serialise(index)
        file_names["faiss"] = f"faiss-{build}.index"
    if keep_all:
        file_names["members"] = f"members-{build}.npz"
    meta = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "build": build,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_info,
        "embedding_size": int(templates.shape[1]),
        "threshold": threshold,
        "templates": "mean of the L2-normalised face embeddings of each identity, L2-normalised",
        "identities": kept_names,
        "counts": [int(c) for c in counts],
        "files": file_names,
        "faiss": faiss_info,
        "enrolment": enrolment,
    }
    with DirLock.beside(out_dir, "tfface enrol"), staged_dir(out_dir, overwrite=overwrite) as stage:
        with atomic_file(os.path.join(stage, file_names["templates"])) as handle:
            np.save(handle, templates)
        if keep_all:
            with atomic_file(os.path.join(stage, file_names["members"])) as handle:
                np.savez(handle, embeddings=embeddings, labels=remap[labels],
                         files=np.array(list(files) if files is not None else [""] * len(labels), dtype=str))
        if faiss_bytes is not None:
            with atomic_file(os.path.join(stage, file_names["faiss"])) as handle:
                handle.write(faiss_bytes)
        write_json(os.path.join(stage, INDEX_JSON), meta)
    return meta


class FaceIndex:
    """An index opened for search (:func:`open_index`): ``meta`` (``index.json``), ``templates``
    (memory-mapped, unit rows), ``names``, and the FAISS index when there is one."""

    def __init__(self, folder, meta, templates, faiss_index=None):
        self.folder, self.meta, self.templates, self.faiss = folder, meta, templates, faiss_index
        self.names = meta["identities"]
        self.faiss_missing = None  # why a FAISS index the folder has could not be loaded

    @property
    def threshold(self):
        t = self.meta.get("threshold")
        return None if not t else t.get("value")

    def check_model(self, model_info, what="the model"):
        """Refuse queries embedded by another model (its hash), another crop or another
        embedding size: :class:`InputError` naming both."""
        mine = self.meta["model"]
        if model_info.get("hash") != mine.get("hash"):
            raise InputError(
                f"{what} ({model_info.get('path')}, sha256 {str(model_info.get('hash'))[:12]}) is not the model "
                f"this index was enrolled with ({mine.get('path')}, sha256 {str(mine.get('hash'))[:12]}); "
                "embeddings of different models are not comparable: search with the enrolment model "
                "or enrol the gallery again")
        for key in ("alignment", "flip", "input_size"):
            a, b = model_info.get(key), mine.get(key)
            if key == "alignment" and a and b:
                a = {k: a.get(k) for k in ("mode", "size", "margin")}
                b = {k: b.get(k) for k in ("mode", "size", "margin")}
            if a != b:
                raise InputError(f"{what} uses {key} {a}, the index {b}; embeddings made "
                                 "differently are not comparable")
        size = model_info.get("embedding_size")
        if size is not None and int(size) != int(self.meta["embedding_size"]):
            raise InputError(f"{what} gives {size}-d embeddings; the index holds "
                             f"{self.meta['embedding_size']}-d templates")

    def search(self, queries, k=5, use_faiss=None):
        """``(scores, indices)`` ``(Q, min(k, identities))`` of the best identities per query
        (normalised here). ``use_faiss``: None = FAISS when the index has it, else exact."""
        queries = normalise(queries)
        if queries.shape[1] != self.templates.shape[1]:
            raise InputError(f"queries have {queries.shape[1]} dimensions; the index "
                             f"{self.templates.shape[1]}")
        if use_faiss is None:
            use_faiss = self.faiss is not None
        if use_faiss:
            if self.faiss is None:
                raise InputError(self.faiss_missing or f"index {self.folder} has no FAISS index (enrol with --faiss)")
            from tfface.search.ann import faiss_topk

            return faiss_topk(self.faiss, queries, k)
        return exact_topk(queries, self.templates, k=k, normalised=True)


def open_index(folder, load_faiss=True, attempts=3):
    """Open the index in ``folder`` for search; raises :class:`InputError` naming the folder and
    what is wrong with it."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(f"index {folder} does not exist or is not a folder; create it with 'tfface enrol'")
    for attempt in range(attempts):
        meta = read_json(os.path.join(folder, INDEX_JSON), what="index file")
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise InputError(f"{folder} is not a tfface face index (its {INDEX_JSON} has no "
                             f"format {INDEX_FORMAT!r})")
        if meta.get("version") != INDEX_VERSION:
            raise InputError(f"index {folder} has version {meta.get('version')}; this tfface reads "
                             f"version {INDEX_VERSION}: enrol the gallery again")
        missing = [k for k in ("identities", "embedding_size", "files", "model") if k not in meta]
        if missing:
            raise InputError(f"index {folder}: {INDEX_JSON} lacks {', '.join(missing)}; the index is damaged: "
                             "enrol again")
        files = meta.get("files") or {}
        try:
            templates = np.load(os.path.join(folder, files["templates"]), mmap_mode="r", allow_pickle=False)
            faiss_index, faiss_missing = None, None
            if load_faiss and files.get("faiss"):
                from tfface.search import ann

                path = os.path.join(folder, files["faiss"])
                if not os.path.isfile(path):
                    raise FileNotFoundError(path)
                try:
                    faiss_index = ann.read_index(path)
                except ImportError as err:
                    faiss_missing = str(err)  # searched exactly instead; the command says so
        except FileNotFoundError:
            if attempt + 1 < attempts:
                continue  # an enrolment replaced the folder between the two reads
            raise InputError(f"index {folder}: {INDEX_JSON} names files that are missing; the index is "
                             "damaged or being replaced: enrol again") from None
        except (KeyError, ValueError, OSError) as err:
            raise InputError(f"index {folder} is damaged ({type(err).__name__}: {err}); enrol again") from None
        if templates.ndim != 2 or templates.shape != (len(meta["identities"]), meta["embedding_size"]):
            raise InputError(f"index {folder}: templates of shape {templates.shape} for "
                             f"{len(meta['identities'])} identities of {meta['embedding_size']}-d; "
                             "the index is damaged: enrol again")
        index = FaceIndex(folder, meta, templates, faiss_index)
        index.faiss_missing = faiss_missing
        return index


def decide(scores, indices, names, threshold):
    """One result per query: ``{"top": [{"identity", "score"}], "identity": name, "decision"}``
    where ``decision`` is the top identity if its score reaches ``threshold``, ``"unknown"``
    below it, and None when there is no threshold (scores only)."""
    out = []
    for s_row, i_row in zip(scores, indices):
        top = [{"identity": names[int(i)], "score": float(s)} for s, i in zip(s_row, i_row) if i >= 0]
        if threshold is None or not top:
            decision = None if threshold is None else UNKNOWN
        else:
            decision = top[0]["identity"] if top[0]["score"] >= threshold else UNKNOWN
        out.append({"top": top, "decision": decision})
    return out
