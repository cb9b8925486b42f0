"""``tfface import SRC OUT.keras``: a third-party checkpoint -> a tfface embedder (``.keras``).

SRC is a file or folder as the third party distributes it (a facenet frozen graph ``.pb`` or
checkpoint folder, a facenet-pytorch ``.pt`` state dict, and whatever else is registered as an
``importer``); the format is detected unless ``--format`` names it. The result is the same
``keras.Model`` as a trained run's ``embedder.keras`` (uint8-range pixels in, embeddings out),
usable as ``tfface eval --model``, ``tfface export`` and ``init_from`` in a recipe. Nothing in
SRC is executed (see :mod:`tfface.interop`). Exit status: 0 written, 2 bad arguments or a file
that does not fit (the message names the first tensor that does not).
"""
import os
import sys


def add_arguments(parser):
    parser.add_argument("src", metavar="SRC", help="the third-party checkpoint: file or folder")
    parser.add_argument("out", metavar="OUT", help="output .keras file")
    parser.add_argument(
        "--format", default=None, metavar="NAME",
        help="importer name (default: detected from SRC), e.g. facenet_pb, facenet_ckpt, facenet_pytorch",
    )
    parser.add_argument(
        "--embedding-size", type=int, default=None, metavar="D",
        help="expected embedding size; the import fails if the file's differs (default: read from the file)",
    )
    parser.add_argument(
        "--backbone", default=None, metavar="NAME",
        help="tfface backbone to map onto, for importers that accept several (e.g. iresnet depths)",
    )
    parser.add_argument(
        "--image-size", type=int, nargs="+", metavar="N",
        help="embedder input height [width] (default: the backbone's native size)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")


def run(args):
    if not args.out.endswith(".keras"):
        print(f"tfface import: OUT must be a .keras file, got {args.out!r}", file=sys.stderr)
        return 2
    if os.path.exists(args.out) and not args.overwrite:
        print(f"tfface import: {args.out!r} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    options = {}
    if args.embedding_size is not None:
        options["embedding_size"] = args.embedding_size
    if args.backbone is not None:
        options["backbone"] = args.backbone
    if args.image_size:
        if len(args.image_size) > 2:
            print("tfface import: --image-size takes one or two integers (height [width])", file=sys.stderr)
            return 2
        h, w = (args.image_size * 2)[:2]
        options["input_shape"] = (h, w, 3)

    from tfface import registry
    from tfface.interop import detect_format, import_weights

    try:
        name = args.format or detect_format(args.src)
        print(f"importing {args.src} as {name}")
        model = import_weights(args.src, out=args.out, format=name, **options)
    except (FileNotFoundError, ValueError, registry.RegistryError) as err:
        print(f"tfface import: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out}: {model.name}, input {tuple(model.input_shape[1:])}, "
        f"{model.output_shape[-1]}-d embeddings, {model.count_params():,} parameters"
    )
    return 0
