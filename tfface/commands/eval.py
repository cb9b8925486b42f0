"""``tfface eval``: run the verification / identification protocols on a trained model.

    tfface eval --model MODEL --protocol lfw --data DIR [--protocol agedb_30 --data DIR2 ...]
                [--set-option lfw.far=[1e-3,1e-4]] --out OUT
    tfface eval --model MODEL --pairs pairs.txt --root DIR [--ext jpg]      # LFW layout
    tfface eval --model MODEL --bin lfw.bin --bin cfp_fp.bin --bin agedb_30.bin
    tfface eval --model MODEL --probes DIR [--gallery DIR] [--distractors DIR|feats.npy]

MODEL is a training run directory, a ``.keras`` file, or an export (SavedModel directory,
``.onnx``, ``.tflite``), loaded by :func:`tfface.export.load_embedder`: whatever ``tfface export``
accepts, eval accepts too. Image folders are read with the identity-folder index of
:mod:`tfface.data.images`; every image passes the one image rule (format, at most
``--max-pixels`` pixels declared in its header) before it is decoded, and an image that fails is
named (its file, or ``SET.bin record I``).

Prints a table and, for each verification set, the decision threshold to deploy (cosine, accept
a pair when ``cos >= t``): the mean of the k-fold best-accuracy thresholds and the threshold at
each FAR; ``eval.json`` holds them under ``decision_thresholds`` (``tfface export
--thresholds OUT/eval.json`` records them in the export's metadata). A ``pairs.txt`` is scored with
the folds its header declares. Probes and gallery that are the same folder or the same images are
refused (every probe would find itself: 100% rank-1).

Exit status: 0 done, 2 bad options, model or data (the message names the file), 3 ``--out`` or
``--cache`` cannot be written (a file or dangling link in the way, permissions, full disk),
4 another ``tfface eval`` is writing to the same ``--out``. Outputs are written atomically.

``--protocol NAME --data DIR`` (repeatable, in pairs) runs a benchmark registered under NAME
(:mod:`tfface.eval.protocols`; docs/eval.md lists them) on its files as distributed;
``--set-option NAME.key=value`` passes an option to that protocol (the value is read as JSON,
else kept as a string). ``OUT/eval.json`` is ``{NAME: {metric: value}}`` (strict JSON: a value
that is not finite is null), ``OUT/run.json`` the model and options, and the plots
``roc.png``/``det.png`` (verification) and ``cmc.png`` (identification).
"""
import json
import os
import sys

import numpy as np

from tfface.data.images import IMAGE_EXTENSIONS, identity_index, scan_tree


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="a training run directory, a .keras model file, a SavedModel export "
                        "directory, an .onnx file or a .tflite file")
    bench = parser.add_argument_group("benchmarks (registered protocols)")
    bench.add_argument("--protocol", action="append", default=[], metavar="NAME",
                       help="a registered protocol (lfw, agedb_30, ijbc, ...); repeat with --data")
    bench.add_argument("--data", action="append", default=[], metavar="DIR",
                       help="the benchmark's folder (or file) as distributed, one per --protocol")
    bench.add_argument("--set-option", action="append", default=[], metavar="NAME.KEY=VALUE",
                       help="an option of protocol NAME (VALUE read as JSON, else a string); "
                       "repeatable")
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
    opts.add_argument("--folds", type=int, default=None,
                      help="k-fold count (default: the folds a pairs.txt header declares, else 10)")
    opts.add_argument("--max-pixels", type=int, default=None, metavar="N",
                      help="refuse images whose header declares more pixels (default 25,000,000)")
    opts.add_argument("--far", type=float, nargs="+", default=None,
                      help="FARs for TAR@FAR (default 1e-1..1e-6; identification 1e-3..1e-6)")
    opts.add_argument("--batch-size", type=int, default=64)
    opts.add_argument("--image-size", type=int, default=None,
                      help="resize images to this square size (default: the model's input)")
    opts.add_argument("--cache", help="directory caching embeddings between runs")
    opts.add_argument("--out", help="write eval.json, run.json and the plots here")
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


def _parse_options(items, protocols):
    """``["lfw.far=[0.1]", ...]`` -> ``{"lfw": {"far": [0.1]}}``."""
    out = {}
    for item in items:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise ValueError(f"--set-option {item!r}: expected NAME.KEY=VALUE (e.g. lfw.far=[1e-3])")
        if name not in protocols:
            raise ValueError(f"--set-option {item!r}: {name!r} is not one of the --protocol names "
                             f"{sorted(set(protocols))}")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(name, {})[key] = parsed
    return out


def run(args):
    if not (args.pairs or args.bin or args.probes or args.protocol):
        print("tfface eval: give a data set: --protocol NAME --data DIR, --pairs (with --root), "
              "--bin or --probes", file=sys.stderr)
        return 2
    if len(args.protocol) != len(args.data):
        print(f"tfface eval: {len(args.protocol)} --protocol for {len(args.data)} --data; give "
              "one --data per --protocol, in order", file=sys.stderr)
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
    from tfface.files import TfFaceError, report

    try:
        return _run(args)
    except TfFaceError as err:
        return report("eval", err)
    except (ValueError, FileNotFoundError, NotADirectoryError, RecursionError) as err:
        # Bad data or options: the library's message names the input; no traceback.
        print(f"tfface eval: {err}", file=sys.stderr)
        return 2


def _run(args):
    from tfface import registry

    options = _parse_options(args.set_option, args.protocol)
    # Unknown names fail before any model is loaded, listing the registered ones.
    for name in args.protocol:
        registry.entry("protocol", name)
    if not os.path.exists(args.model):
        print(f"tfface eval: --model {args.model!r} does not exist", file=sys.stderr)
        return 2
    from tfface.eval.extract import prepare_output_dir

    # Output folders are checked before any work: an unwritable --out fails in a second, not
    # after the embeddings.
    if args.out:
        _check_out(args.out)
        prepare_output_dir(args.out, "--out folder")
    if args.cache:
        prepare_output_dir(args.cache, "--cache folder")
    if args.probes and args.gallery:
        _check_distinct(args.probes, args.gallery)
    if args.out:
        from tfface.files import DirLock

        with DirLock(args.out, "tfface eval"):
            return _evaluate(args, options)
    return _evaluate(args, options)


def _check_out(out):
    import errno

    from tfface.files import OutputError

    if os.path.islink(out) and not os.path.isdir(out):
        raise OutputError(errno.ENOENT, f"--out {out} is a symbolic link to no folder", out)
    for name in ("eval.json", "run.json"):
        target = os.path.join(out, name)
        if os.path.islink(target) or os.path.isdir(target):
            raise OutputError(errno.EEXIST, f"--out {out}: {name} is a "
                              f"{'symbolic link' if os.path.islink(target) else 'folder'}; "
                              "remove it or choose another --out", target)


def _check_distinct(probes, gallery):
    """Refuse probes and gallery that are one set: the same folder (also through a link) or the
    same images (the same files, or copies with the same contents)."""
    from tfface.files import InputError

    if os.path.realpath(probes) == os.path.realpath(gallery):
        raise InputError(f"--probes and --gallery are the same folder ({os.path.realpath(probes)}); "
                         "every probe would be found in the gallery (a meaningless 100% rank-1). "
                         "Give the gallery and the probe images of each identity as separate folders")
    if not (os.path.isdir(probes) and os.path.isdir(gallery)):
        return
    p_paths, _ = _image_folder(probes)
    g_paths, _ = _image_folder(gallery)
    if len(p_paths) != len(g_paths):
        return
    if sorted(map(os.path.realpath, p_paths)) == sorted(map(os.path.realpath, g_paths)):
        raise InputError(f"--probes {probes} and --gallery {gallery} hold the same image files; every "
                         "probe would be found in the gallery (a meaningless 100% rank-1)")
    if sorted(os.path.getsize(p) for p in p_paths) != sorted(os.path.getsize(p) for p in g_paths):
        return
    import hashlib

    def digests(paths):
        return sorted(hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths)

    if digests(p_paths) == digests(g_paths):
        raise InputError(f"--probes {probes} and --gallery {gallery} hold the same images (identical "
                         "contents); every probe would be found in the gallery (a meaningless 100% "
                         "rank-1)")


def _evaluate(args, options):
    from tfface import registry
    from tfface.eval.protocols.runner import evaluate_protocol, make_embed
    from tfface.eval.report import format_table, format_thresholds, to_jsonable, write_plots
    from tfface.eval.verification import DEFAULT_FAR, verify

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    show = None if args.no_progress else progress
    try:
        embed_of = make_embed(args.model, flip=args.flip, batch_size=args.batch_size,
                              image_size=args.image_size, cache=args.cache, progress=show,
                              max_pixels=args.max_pixels)
    except (FileNotFoundError, ValueError) as err:
        print(f"tfface eval: --model: {err}", file=sys.stderr)
        return 2

    def embed(images, key="images", names=None):
        return embed_of(images, key, names)

    results = {}
    counts = {}
    for name in args.protocol:
        counts[name] = counts.get(name, 0) + 1
    seen = {}
    for name, data in zip(args.protocol, args.data):
        opts = dict(options.get(name, {}))
        params = registry.entry("protocol", name).parameters() or {}
        if args.far and "far" in params and "far" not in opts:
            opts["far"] = tuple(args.far)
        seen[name] = seen.get(name, 0) + 1
        label = name if counts[name] == 1 else f"{name}:{os.path.basename(os.path.normpath(data))}"
        if label in results:
            label = f"{name}#{seen[name]}"
        results[label] = evaluate_protocol(name, data, None, progress=show, embed=embed_of,
                                           **opts)

    sets = []
    if args.pairs:
        import tfface.data

        paths, issame, fold_ids = tfface.data.read_pairs(args.pairs, args.root, ext=args.ext,
                                                         return_folds=True)
        name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.pairs)))
        declared = int(fold_ids.max()) + 1
        if declared > 1:
            if args.folds is not None and args.folds != declared:
                raise ValueError(f"--folds {args.folds} but {args.pairs} declares {declared} folds in its "
                                 "header; leave --folds out to use them")
            folds = fold_ids
        else:
            folds = args.folds or 10  # a one-fold list (pairsDevTest.txt): contiguous folds
        sets.append((name or "pairs", paths, issame, folds, args.pairs))
    for path in args.bin:
        import tfface.data

        images, issame = tfface.data.read_bin(path)
        sets.append((os.path.splitext(os.path.basename(path))[0], images, issame, args.folds or 10,
                     path))
    far = tuple(args.far) if args.far else DEFAULT_FAR
    for name, images, issame, folds, source in sets:
        emb = embed(images, f"{name}/images", names=source)
        results[name] = verify(emb[0::2], emb[1::2], issame, metric=args.metric,
                               folds=folds, far=far, normalize=not args.no_normalize)
    if args.probes:
        from tfface.eval.identification import DEFAULT_FAR as ID_FAR, identify

        probe_paths, probe_labels = _image_folder(args.probes)
        gallery = gallery_labels = distractors = None
        if args.gallery:
            gallery_paths, gallery_labels = _image_folder(args.gallery)
            gallery = embed(gallery_paths, "gallery")
            overlap = set(map(os.path.realpath, probe_paths)) & set(map(os.path.realpath, gallery_paths))
            if overlap:
                print(f"tfface eval: warning: {len(overlap)} probe image(s) are also in the gallery "
                      f"(e.g. {sorted(overlap)[0]}); they find themselves at rank 1", file=sys.stderr)
        if args.distractors:
            if args.distractors.endswith(".npy"):
                distractors = np.load(args.distractors, mmap_mode="r")
            else:
                distractors = embed(_all_images(args.distractors), "distractors")
        res = identify(embed(probe_paths, "probes"), probe_labels, gallery, gallery_labels,
                       distractors, ranks=args.ranks, far=tuple(args.far) if args.far else ID_FAR,
                       progress=not args.no_progress)
        res.pop("query_ranks")
        results["identification"] = res

    for res in results.values():
        _add_decision_thresholds(res)
    print(format_table(results))
    thresholds = format_thresholds(results)
    if thresholds:
        print(thresholds)
    if args.out:
        from tfface.files import write_json

        json_path = os.path.join(args.out, "eval.json")
        write_json(json_path, to_jsonable(results))
        run_path = os.path.join(args.out, "run.json")
        write_json(run_path, to_jsonable({
            "model": os.path.abspath(args.model), "flip": args.flip,
            "metric": args.metric, "folds": args.folds,
            "protocols": [{"name": n, "data": os.path.abspath(d), "options": options.get(n, {})}
                          for n, d in zip(args.protocol, args.data)]}))
        written = [json_path, run_path] + write_plots(results, args.out)
        print("wrote " + ", ".join(written))
    return 0


def _add_decision_thresholds(res):
    """``res["decision_thresholds"]``: what to deploy, in one place (see the module doc)."""
    if not isinstance(res, dict) or "far_thresholds" not in res:
        return
    from tfface.eval.report import far_label

    metric = res.get("metric", "cosine")
    entry = {"metric": metric, "accept": ">=" if metric == "cosine" else "<="}
    if "threshold" in res:
        thr = np.asarray(res.get("thresholds", [res["threshold"]]), dtype=float)
        entry.update(best_accuracy=res["threshold"], best_accuracy_std=float(thr.std()),
                     folds=res.get("folds"))
    entry["far"] = {far_label(f): t for f, t in res["far_thresholds"].items()}
    entry["far_resolution"] = res.get("far_resolution")
    res["decision_thresholds"] = entry
