"""``tfface eval``: run the verification / identification protocols on a trained model.

    tfface eval --model MODEL --pairs pairs.txt --root DIR [--ext jpg]      # LFW layout
    tfface eval --model MODEL --bin lfw.bin --bin cfp_fp.bin --bin agedb_30.bin
    tfface eval --model MODEL --probes DIR [--gallery DIR] [--distractors DIR|feats.npy]

MODEL is a training run directory, a ``.keras`` file or a SavedModel export directory (loaded by
:func:`tfface.export.load_embedder`). Image folders are read with the identity-folder index of
:mod:`tfface.data.images`. Prints a table; with ``--out DIR`` writes ``DIR/eval.json`` and
``DIR/roc.png``. Exit status: 0 done, 2 bad options, model or data.
"""
import os
import sys

import numpy as np

from tfface.data.images import IMAGE_EXTENSIONS, identity_index, scan_tree


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="a training run directory, a .keras model file or a SavedModel export "
                        "directory")
    data = parser.add_argument_group("verification sets")
    data.add_argument("--pairs", help="LFW-style pairs.txt (contiguous folds)")
    data.add_argument("--root", help="image root of --pairs (root/name/name_%%04d.EXT)")
    data.add_argument("--ext", default="jpg", help="image extension for --pairs (default jpg)")
    data.add_argument("--name", help="name of the --pairs set in the report (default: the name "
                      "of the folder holding pairs.txt)")
    data.add_argument("--bin", action="append", default=[], metavar="FILE",
                      help="insightface .bin set; repeat for several")
    ident = parser.add_argument_group("identification")
    ident.add_argument("--probes", help="image folder, one sub-folder per identity")
    ident.add_argument("--gallery", help="image folder, one sub-folder per identity (closed-set "
                       "protocol); without it, MegaFace style: probes are their own mates")
    ident.add_argument("--distractors", help="image folder (all images, recursively) or a .npy "
                       "of features (memory-mapped)")
    ident.add_argument("--ranks", type=int, nargs="+", default=[1, 5, 10])
    opts = parser.add_argument_group("protocol")
    opts.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    opts.add_argument("--no-normalize", action="store_true",
                      help="euclidean on raw (not L2-normalised) features")
    opts.add_argument("--flip", choices=("none", "sum", "concat"), default="none",
                      help="flip test: none, sum (insightface), concat (facenet / MML)")
    opts.add_argument("--folds", type=int, default=10)
    opts.add_argument("--far", type=float, nargs="+", default=None,
                      help="FARs for TAR@FAR (default 1e-1..1e-6; identification 1e-3..1e-6)")
    opts.add_argument("--batch-size", type=int, default=64)
    opts.add_argument("--image-size", type=int, default=None,
                      help="resize images to this square size (default: the model's input)")
    opts.add_argument("--cache", help="directory caching embeddings between runs")
    opts.add_argument("--out", help="write eval.json and roc.png here")
    opts.add_argument("--no-progress", action="store_true")
    return parser


def _image_folder(root):
    """(paths, identity name per path) of an identity-folder tree."""
    if not os.path.isdir(root):
        raise ValueError(f"{root!r} is not a directory")
    index = identity_index(root)
    if not index.paths:
        raise ValueError(f"{root!r} holds no images in identity sub-folders")
    return index.paths, np.asarray(index.names)[np.asarray(index.labels, dtype=int)]


def _all_images(root):
    images, _ = scan_tree(root, IMAGE_EXTENSIONS)
    if not images:
        raise ValueError(f"{root!r} holds no images")
    return [os.path.join(root, rel) for rel in images]


def run(args):
    if not (args.pairs or args.bin or args.probes):
        print("tfface eval: give a data set: --pairs (with --root), --bin or --probes",
              file=sys.stderr)
        return 2
    if args.pairs and not args.root:
        print("tfface eval: --pairs needs --root (the image directory)", file=sys.stderr)
        return 2
    if (args.gallery or args.distractors) and not args.probes:
        print("tfface eval: --gallery/--distractors need --probes", file=sys.stderr)
        return 2
    if args.probes and not (args.gallery or args.distractors):
        print("tfface eval: --probes needs --gallery (closed-set) or --distractors (MegaFace "
              "style: the probes are their own mates)", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as err:
        # Bad data or options: the library's message names the input; no traceback.
        print(f"tfface eval: {err}", file=sys.stderr)
        return 2


def _run(args):
    from tfface.eval.extract import extract_embeddings
    from tfface.eval.report import format_table, plot_roc, write_json
    from tfface.eval.verification import DEFAULT_FAR, verify
    from tfface.export.load import is_saved_model, load_embedder

    if not os.path.exists(args.model):
        print(f"tfface eval: --model {args.model!r} does not exist", file=sys.stderr)
        return 2
    try:
        model = load_embedder(args.model)
    except (FileNotFoundError, ValueError) as err:
        print(f"tfface eval: --model: {err}", file=sys.stderr)
        return 2

    def embed(images):
        # A loaded SavedModel object has no weight fingerprint: key the cache by its path.
        key = f"savedmodel:{os.path.abspath(args.model)}" if is_saved_model(args.model) else None
        return extract_embeddings(model, images, batch_size=args.batch_size,
                                  image_size=args.image_size, flip=args.flip, cache=args.cache,
                                  cache_key=key, progress=not args.no_progress)

    results = {}
    sets = []
    if args.pairs:
        import tfface.data

        paths, issame = tfface.data.read_pairs(args.pairs, args.root, ext=args.ext)
        name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.pairs)))
        sets.append((name or "pairs", paths, issame))
    for path in args.bin:
        import tfface.data

        images, issame = tfface.data.read_bin(path)
        sets.append((os.path.splitext(os.path.basename(path))[0], images, issame))
    far = tuple(args.far) if args.far else DEFAULT_FAR
    for name, images, issame in sets:
        emb = embed(images)
        results[name] = verify(emb[0::2], emb[1::2], issame, metric=args.metric,
                               folds=args.folds, far=far, normalize=not args.no_normalize)
    if args.probes:
        from tfface.eval.identification import DEFAULT_FAR as ID_FAR, identify

        probe_paths, probe_labels = _image_folder(args.probes)
        gallery = gallery_labels = distractors = None
        if args.gallery:
            gallery_paths, gallery_labels = _image_folder(args.gallery)
            gallery = embed(gallery_paths)
        if args.distractors:
            if args.distractors.endswith(".npy"):
                distractors = np.load(args.distractors, mmap_mode="r")
            else:
                distractors = embed(_all_images(args.distractors))
        res = identify(embed(probe_paths), probe_labels, gallery, gallery_labels, distractors,
                       ranks=args.ranks, far=tuple(args.far) if args.far else ID_FAR,
                       progress=not args.no_progress)
        res.pop("query_ranks")
        results["identification"] = res

    print(format_table(results))
    if args.out:
        json_path = write_json(results, os.path.join(args.out, "eval.json"),
                               model=os.path.abspath(args.model), metric=args.metric,
                               flip=args.flip, folds=args.folds)
        written = [json_path]
        if any("roc" in r for r in results.values()):
            written.append(plot_roc(results, os.path.join(args.out, "roc.png")))
        print("wrote " + ", ".join(written))
    return 0
