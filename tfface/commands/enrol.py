"""``tfface enrol GALLERY --model M --index DIR``: build a face-search index.

GALLERY is an identity folder (``GALLERY/<identity>/<photo>``) or a list file (``photo
path<TAB>identity`` per line, as ``tfface pairs --split`` writes ``gallery.txt``). The main face
of every photo is embedded (:mod:`tfface.search.photos`); each identity's template is the mean of
its normalised face embeddings, normalised again (``--keep-all`` keeps every embedding too).
The decision threshold stored with the index: ``--threshold``, else the model metadata's (at
``--far``, else best accuracy), else none (searches then print scores only).

The index folder is written whole (built beside it and swapped in; :mod:`tfface.search.index`)
under a lock: an existing index is replaced only with ``--overwrite``, a second enrolment into
the same folder fails at once. Exit status: 0 done, 2 bad arguments/model/gallery or no face
enrolled, 3 index not writable, 4 the index is being written by another process.
"""
import errno
import os

from tfface.commands.embed import add_model_arguments, add_photo_arguments, embed, load_model, print_lists, summary
from tfface.files import InputError, OutputError


def add_arguments(parser):
    parser.add_argument("gallery", metavar="GALLERY", help="identity folder, or a list file 'photo path<TAB>identity'")
    parser.add_argument("--index", required=True, help="index folder to write")
    add_model_arguments(parser)
    add_photo_arguments(parser, all_faces=False)  # a gallery photo gives its main face only
    parser.add_argument("--threshold", type=float, default=None,
                        help="decision threshold (cosine similarity) stored with the index (default: the model "
                        "metadata's at --far)")
    parser.add_argument("--far", default="1e-3",
                        help="which of the metadata's thresholds to store: the one at this false-accept rate "
                        "(default 1e-3), else the best-accuracy one")
    parser.add_argument("--keep-all", action="store_true", help="store every face embedding too, not only the templates")
    parser.add_argument("--faiss", choices=("ivf", "flat"), default=None,
                        help="also build a FAISS index (needs faiss-cpu) and record its recall@1 against exact search")
    parser.add_argument("--nlist", type=int, default=None, help="IVF cells (default about sqrt(identities))")
    parser.add_argument("--nprobe", type=int, default=32, help="IVF cells visited per query (default 32)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index")


def run(args):
    from tfface.search.index import threshold_from_metadata, write_index
    from tfface.search.photos import gallery_photos

    target = os.path.abspath(args.index)
    if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)) and not args.overwrite:
        raise OutputError(errno.EEXIST, f"{args.index} exists (pass --overwrite to replace the index)", args.index)
    if args.threshold is not None and not -1 <= args.threshold <= 1:
        raise InputError(f"--threshold {args.threshold}: expected a cosine similarity in [-1, 1]")
    if args.faiss:
        from tfface.search.ann import import_faiss

        try:
            import_faiss()
        except ImportError as err:
            raise InputError(str(err)) from None
    names, photos, labels = gallery_photos(args.gallery)
    embedder = load_model(args)
    result = embed(embedder, photos, args, "enrol")
    label_of = {name: label for (name, _), label in zip(photos, labels)}
    face_labels = [label_of[f["file"]] for f in result.faces]
    if args.threshold is not None:
        threshold = {"value": float(args.threshold), "source": "--threshold"}
    else:
        value, source = threshold_from_metadata(embedder.info.get("thresholds"), far=args.far)
        threshold = None if value is None else {"value": value, "source": source}
    enrolment = {"gallery": os.path.abspath(args.gallery), **result.counts(),
                 "faceless": result.faceless, "skipped": result.skipped}
    meta = write_index(args.index, result.embeddings, face_labels, names, embedder.info, threshold=threshold,
                       files=[f["file"] for f in result.faces], keep_all=args.keep_all, faiss=args.faiss,
                       nlist=args.nlist, nprobe=args.nprobe, enrolment=enrolment, overwrite=args.overwrite)
    print("enrol: " + summary(result.counts()))
    print_lists(result)
    missing = meta["enrolment"]["identities_without_faces"]
    print(f"enrol: {len(meta['identities'])} identities enrolled"
          + (f"; {len(missing)} without a usable face: {', '.join(missing[:10])}" if missing else ""))
    if threshold is None:
        print("enrol: no decision threshold (the model has no metadata thresholds and --threshold was not "
              "given): searches will print scores only unless they pass --threshold")
    else:
        print(f"enrol: decision threshold {threshold['value']:.4f} ({threshold['source']})")
    if meta["faiss"]:
        from tfface.search.ann import MIN_RECALL

        f = meta["faiss"]
        print(f"enrol: FAISS {f['kind']} index, recall@1 vs exact {f['recall_at_1']:.3f} on "
              f"{f['recall_queries']} perturbed templates")
        if f["recall_at_1"] < MIN_RECALL:
            print(f"enrol: warning: recall@1 below {MIN_RECALL}; raise --nprobe or search with --exact")
    print(f"enrol: wrote {args.index}")
    return 0
