"""``tfface search PHOTOS --index DIR``: who is in these photos?

Every face found (the main one per photo, or all with ``--all-faces``) is embedded with the
index's model and alignment and compared with the enrolled identities' templates: the top
``--top-k`` identities with their cosine scores, and the decision: the best identity if its score
reaches the threshold, else "unknown". The threshold is ``--threshold``, else the one stored in
the index (``tfface enrol``); with neither, no decision is made and only scores are printed.

``--embeddings FILE`` searches faces already embedded by ``tfface embed`` instead of photos.
A model other than the index's (another hash, crop or embedding size) is refused. Search is
exact by default (every template scored); an index enrolled with ``--faiss`` is searched with
FAISS unless ``--exact``. ``--out FILE`` writes every result as JSON (atomically).
Exit status: 0 done, 2 bad arguments/index/model/photos or an incompatible model, 3 ``--out``
not writable.
"""
import os

from tfface.commands.embed import add_photo_arguments, embed, load_model, print_lists, summary
from tfface.files import InputError, write_json


def add_arguments(parser):
    parser.add_argument("photos", nargs="*", metavar="PHOTOS", help="photo files and/or folders (walked recursively)")
    parser.add_argument("--index", required=True, help="index folder written by 'tfface enrol'")
    parser.add_argument("--model", default=None,
                        help="the embedding model (default: the one the index was enrolled with; another is refused)")
    parser.add_argument("--embeddings", default=None, help="search the faces of an embeddings file of 'tfface embed'")
    add_photo_arguments(parser)
    parser.add_argument("--top-k", type=int, default=5, help="identities listed per face (default 5)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="decision threshold (cosine similarity; default: the index's)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--exact", action="store_true", help="exact search even if the index has a FAISS index")
    mode.add_argument("--faiss", action="store_true", help="search with the index's FAISS index")
    parser.add_argument("--out", default=None, help="write the results as JSON to this file")


def _queries(args, index):
    """(embeddings, faces, result or None) from --embeddings or the photos."""
    if args.embeddings:
        from tfface.search.photos import read_embeddings

        if args.photos:
            raise InputError("give PHOTOS or --embeddings, not both")
        data = read_embeddings(args.embeddings)
        index.check_model(data["model"], what=f"the model of {args.embeddings}")
        faces = [{"file": str(f), "face": int(n), "box": [float(v) for v in b],
                  "confidence": None if c != c else float(c)}
                 for f, n, b, c in zip(data["files"], data["face"], data["boxes"], data.get("confidence", [None] * len(data["files"])))]
        return data["embeddings"], faces, None
    from tfface.search.photos import list_photos

    if not args.photos:
        raise InputError("no PHOTOS given (or pass --embeddings FILE)")
    photos, _ = list_photos(args.photos)
    if not photos:
        raise InputError(f"no photos in {', '.join(args.photos)}")
    model_info = index.meta["model"]
    if args.model is None:
        args.model = model_info.get("path")
        if not args.model or not os.path.exists(args.model):
            raise InputError(f"the index's model {args.model} is not there any more; pass --model")
    embedder = load_model(args, alignment=model_info["alignment"], flip=model_info.get("flip"))
    index.check_model(embedder.info, what=f"--model {args.model}")
    result = embed(embedder, photos, args, "search")
    return result.embeddings, result.faces, result


def _box(box):
    return ",".join(f"{v:.0f}" for v in box)


def run(args):
    from tfface.search.index import decide, open_index

    if args.top_k < 1:
        raise InputError(f"--top-k {args.top_k}: expected at least 1")
    index = open_index(args.index, load_faiss=not args.exact)
    embeddings, faces, result = _queries(args, index)
    threshold = args.threshold if args.threshold is not None else index.threshold
    source = "--threshold" if args.threshold is not None else (index.meta.get("threshold") or {}).get("source")
    use_faiss = False if args.exact else (True if args.faiss else None)
    if use_faiss is None and index.faiss_missing:
        print(f"search: the index's FAISS index cannot be used ({index.faiss_missing}); searching exactly")
    if len(embeddings):
        scores, indices = index.search(embeddings, k=args.top_k, use_faiss=use_faiss)
        decisions = decide(scores, indices, index.names, threshold)
    else:
        decisions = []
    if result is not None:
        print("search: " + summary(result.counts()))
        print_lists(result)
    for face, d in zip(faces, decisions):
        top = ", ".join(f"{t['identity']} {t['score']:.3f}" for t in d["top"])
        decision = "" if d["decision"] is None else f" -> {d['decision']}"
        print(f"{face['file']} [face {face['face']} at {_box(face['box'])}]{decision}: {top}")
    if threshold is None:
        print("search: no decision threshold (none stored in the index, no --threshold): scores only")
    else:
        print(f"search: decisions at threshold {threshold:.4f} ({source}); below it: unknown")
    if args.out:
        write_json(args.out, {
            "index": os.path.abspath(args.index),
            "threshold": threshold, "threshold_source": source,
            "search": "faiss" if (use_faiss or (use_faiss is None and index.faiss is not None)) else "exact",
            "results": [dict(face, **d) for face, d in zip(faces, decisions)],
            "faceless": result.faceless if result else [],
            "skipped": result.skipped if result else [],
        })
        print(f"search: wrote {args.out}")
    return 0
