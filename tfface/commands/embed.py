"""``tfface embed PHOTOS --model M --out emb.npz``: detect, align as the model expects, embed.

PHOTOS are files and/or folders (walked recursively). Every photo is seen once and is either
embedded (one row per face: the main face, or every face with ``--all-faces``), faceless, or
skipped with a reason (:mod:`tfface.search.photos`). Writes ``OUT`` (.npz: embeddings, file
names, face numbers, boxes, confidences, the model's description) and ``OUT`` with ``.json``
(the listing: counts, faces, faceless photos, skipped photos and why), both atomically.

The alignment (mode, crop size, margin) comes from the model's export metadata; for a model
exported without it, ``--align-mode`` / ``--align-size`` (default arcface at the model's square
input size, else 112). Exit status: 0 done (faceless and skipped photos are listed, not errors),
2 bad arguments, model or no photo at all, 3 output not writable.
"""
import sys

from tfface.commands import parse_size_argument
from tfface.files import InputError


def add_model_arguments(parser, model_required=True):
    parser.add_argument("--model", required=model_required, default=None,
                        help="the embedding model: a run directory, .keras file, SavedModel directory, .onnx or .tflite")
    parser.add_argument("--align-mode", choices=("arcface", "facenet"), default=None,
                        help="crop the model was trained on, for models without export metadata (default: "
                        "the metadata's, else arcface)")
    parser.add_argument("--align-size", default=None,
                        help="crop size N or WxH, for models without export metadata (default: the metadata's, "
                        "else the model's square input size, else 112)")
    parser.add_argument("--flip", choices=("none", "sum"), default=None,
                        help="add the embedding of the mirrored crop (default none; an export with flip fusion "
                        "does it inside)")


def add_photo_arguments(parser, all_faces=True):
    if all_faces:
        parser.add_argument("--all-faces", action="store_true",
                            help="every face of a photo (default: the main face, largest and most central)")
    parser.add_argument("--aligned", action="store_true",
                        help="the photos are already aligned crops (tfface align output): no detection")
    parser.add_argument("--min-face-size", type=int, default=20, help="smallest face MTCNN looks for, in pixels (default 20)")
    parser.add_argument("--batch-size", type=int, default=8, help="photos detected together (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def parse_size(text):
    try:
        return parse_size_argument(text, "--align-size")
    except ValueError as err:
        raise InputError(str(err)) from None


def load_model(args, alignment=None, flip=None):
    """The :class:`FaceEmbedder` of ``args.model`` (alignment/flip given by an index win)."""
    from tfface.search.model import FaceEmbedder

    if alignment is not None:
        height, width = alignment["size"]
        return FaceEmbedder(args.model, align_mode=alignment["mode"], align_size=(width, height),
                            margin=alignment.get("margin"), flip=flip)
    return FaceEmbedder(args.model, align_mode=args.align_mode, align_size=parse_size(args.align_size),
                        flip=args.flip)


def progress_printer(total, label, quiet):
    if quiet or not sys.stderr.isatty():
        return None

    def show(done):
        print(f"\r{label}: {done}/{total} photos", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def embed(embedder, photos, args, label):
    from tfface.search.photos import embed_photos

    return embed_photos(embedder, photos, all_faces=getattr(args, "all_faces", False), aligned=args.aligned,
                        batch_size=args.batch_size, min_face_size=args.min_face_size,
                        progress=progress_printer(len(photos), label, args.quiet))


def summary(counts):
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(counts["skipped_reasons"].items()))
    return (f"seen {counts['seen']} photos: {counts['faces']} faces embedded from {counts['with_faces']} photos; "
            f"faceless {counts['faceless']}; skipped {counts['skipped']}" + (f" ({reasons})" if reasons else ""))


def print_lists(result, limit=10):
    for name in result.faceless[:limit]:
        print(f"  faceless: {name}")
    if len(result.faceless) > limit:
        print(f"  ... and {len(result.faceless) - limit} more faceless")
    for s in result.skipped[:limit]:
        print(f"  skipped: {s['file']}: {s['reason']}" + (f" ({s['detail']})" if s["detail"] else ""))
    if len(result.skipped) > limit:
        print(f"  ... and {len(result.skipped) - limit} more skipped")


def add_arguments(parser):
    parser.add_argument("photos", nargs="+", metavar="PHOTOS", help="photo files and/or folders (walked recursively)")
    parser.add_argument("--out", required=True,
                        help="embeddings file (.npz); the listing is written beside it with .json")
    add_model_arguments(parser)
    add_photo_arguments(parser)


def run(args):
    from tfface.search.photos import list_photos, write_embeddings

    if not args.out.endswith(".npz"):
        raise InputError(f"--out {args.out!r}: expected a file name ending in .npz")
    photos, others = list_photos(args.photos)
    if not photos:
        raise InputError(f"no photos in {', '.join(args.photos)}")
    embedder = load_model(args)
    result = embed(embedder, photos, args, "embed")
    listing = write_embeddings(args.out, result, embedder.info)
    print("embed: " + summary(result.counts()) + (f"; {len(others)} other files ignored" if others else ""))
    print_lists(result)
    print(f"embed: wrote {args.out} and {listing}")
    return 0
