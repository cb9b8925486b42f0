"""``tfface export WORKDIR OUT``: a trained run's embedder -> SavedModel, ONNX or TFLite.

    tfface export RUN out/1                                        # SavedModel (TF Serving)
    tfface export RUN out.onnx --format onnx
    tfface export RUN out.tflite --format tflite --quantize none|float16|dynamic|int8 --calibration DIR

WORKDIR is a training run directory holding ``embedder.keras`` (what ``tfface train`` writes), or
a ``.keras`` file, read by :func:`tfface.export.load_embedder`. After writing, the export is
reloaded with its own runtime (TensorFlow, onnxruntime, the LiteRT interpreter) and compared with
the Keras embedder on a sample (``--agreement-images`` images of ``--calibration`` not used for
calibration, else synthetic faces): the min and mean cosine between the two embeddings of each
image are printed, with a loud warning below ``--min-agreement`` (0.99, see
:mod:`tfface.export.agreement` for why). Exit status: 0 written and checked (a disagreement
warns; ``--strict`` makes it 1), 1 the export gives no finite unit embeddings, 2 bad arguments.
"""
import os
import sys

FORMATS = ("saved_model", "onnx", "tflite")


def add_arguments(parser):
    parser.add_argument("workdir", metavar="WORKDIR", help="training run directory (holding embedder.keras) or a .keras file")
    parser.add_argument("out", metavar="OUT", help="output: a directory for saved_model, a .onnx file for onnx, "
                        "a .tflite file for tflite")
    parser.add_argument("--format", choices=FORMATS, default="saved_model", help="export format (default: saved_model)")
    parser.add_argument("--flip", action="store_true", help="fuse each image with its horizontal mirror (sum, then L2-normalise)")
    parser.add_argument(
        "--image-size", type=int, nargs="+", metavar="N",
        help="input height [width]; needed only when the embedder accepts any size",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export at OUT")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")
    parser.add_argument("--quantize", choices=("none", "float16", "dynamic", "int8"), default="none",
                        help="TFLite quantisation: float32 weights (none), float16 weights, dynamic-range "
                        "int8 weights, or full-integer int8 (needs --calibration)")
    parser.add_argument("--calibration", metavar="DIR", default=None,
                        help="representative aligned face crops for int8 (a TFRecord set or an image folder); "
                        "also the agreement sample")
    parser.add_argument("--calibration-size", type=int, default=200, metavar="N",
                        help="images drawn from --calibration for int8 (default 200)")
    parser.add_argument("--agreement-images", type=int, default=32, metavar="N",
                        help="images compared with the Keras model after export (default 32; 0 skips)")
    parser.add_argument("--min-agreement", type=float, default=None, metavar="COS",
                        help="warn when an image's cosine with the Keras embedding is below this (default 0.99)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the agreement is below --min-agreement")
    parser.add_argument("--thresholds", metavar="EVAL_JSON[:SET]", default=None,
                        help="record the decision thresholds tfface eval measured (its OUT/eval.json or "
                        "OUT folder; :SET names the verification set when it holds several)")
    parser.add_argument("--alignment", choices=("arcface", "facenet", "unknown"), default=None,
                        help="the face alignment the model expects, recorded in the metadata (default: "
                        "from the training data's align_report.json when found, else unknown)")


def _image_size(values):
    if values is None:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return tuple(values)
    raise ValueError(f"--image-size takes one or two integers (height [width]); got {values}")


def _dims(shape):
    return "[" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + "]"


def _thresholds(spec):
    from tfface.export.metadata import thresholds_from_eval

    path, set_name = spec, None
    if not os.path.exists(spec) and ":" in spec:
        path, _, set_name = spec.rpartition(":")
    if not os.path.exists(path):
        from tfface.files import InputError

        raise InputError(f"--thresholds {spec}: {path} does not exist; expected tfface eval's "
                         "OUT/eval.json (or OUT)")
    return thresholds_from_eval(path, set_name or None)


def _alignment(args, source, size):
    from tfface.export import metadata as md

    if args.alignment:
        return md.alignment_for(size, args.alignment, source="--alignment")
    run_dir = os.path.dirname(source) if os.path.basename(source) == "embedder.keras" else None
    report = md.find_align_report(run_dir) if run_dir else None
    if report:
        return md.alignment_from_report(report, size)
    return md.alignment_for(size, None)


def run(args):
    from tfface.files import DirLock, InputError, report

    try:
        image_size = _image_size(args.image_size)
        source = _check_source(args.workdir)
        if args.quantize != "none" and args.format != "tflite":
            raise ValueError(f"--quantize {args.quantize} is for --format tflite")
        if args.quantize == "int8" and not args.calibration:
            raise ValueError("--quantize int8 needs --calibration DIR (a TFRecord set or an image folder of "
                             "aligned face crops like the training images)")
        if args.calibration and not os.path.exists(args.calibration):
            from tfface.data.images import list_tfrecords

            if not list_tfrecords(args.calibration):
                raise FileNotFoundError(f"--calibration {args.calibration!r} does not exist")
        thresholds = _thresholds(args.thresholds) if args.thresholds else None
    except (FileNotFoundError, ValueError) as err:
        return report("export", err if isinstance(err, InputError) else InputError(str(err)))
    # Refuse a clobbering OUT before spending time loading the model.
    if args.format == "saved_model":
        from tfface.export.saved_model import check_out_dir

        check_out_dir(args.out, args.overwrite)
    else:
        from tfface.export.onnx import check_out_file

        check_out_file(args.out, args.overwrite, args.format.upper() if args.format == "onnx" else "TFLite")
    if args.format == "onnx":
        try:
            import tf2onnx  # noqa: F401
        except ImportError:
            from tfface.export.onnx import _MISSING

            print(f"tfface export: {_MISSING}", file=sys.stderr)
            return 2
    if thresholds and thresholds.get("eval_flip") is not None:
        wanted = "sum" if args.flip else "none"
        if thresholds["eval_flip"] != wanted:
            print(f"tfface export: warning: the thresholds were measured with tfface eval --flip "
                  f"{thresholds['eval_flip']} but this export {'fuses' if args.flip else 'does not fuse'} "
                  f"flips (eval --flip {wanted} measures it); they may not apply", file=sys.stderr)
    with DirLock.beside(args.out, f"tfface export -> {args.out}"):
        _remove_stale_leftovers(args.out)
        return _export(args, source, image_size, thresholds)


def _remove_stale_leftovers(out):
    """Staging folders and temporary files an export to ``out`` killed earlier (``kill -9``, a
    power cut) left beside it. Called under the lock beside ``out``, so no live export owns them."""
    from tfface.files import leftovers, remove

    folder, name = os.path.split(os.path.abspath(out))
    for stale in leftovers(folder):
        if stale.startswith(f".{name}."):
            remove(os.path.join(folder, stale))


def _check_source(workdir):
    from tfface.export.load import resolve_embedder_path

    source = resolve_embedder_path(workdir)
    if not source.endswith(".keras"):
        kind = "a SavedModel" if os.path.isdir(source) else f"an {os.path.splitext(source)[1][1:].upper()}"
        raise ValueError(f"{workdir!r} is already {kind} export; expected a training run "
                         "directory (holding embedder.keras) or a .keras file")
    return source


def _export(args, source, image_size, thresholds):
    from tfface.export.agreement import MIN_COSINE, check_agreement, describe, sample_images
    from tfface.export.load import load_embedder
    from tfface.export.saved_model import embedder_image_size

    print(f"loading {source}")
    embedder = load_embedder(args.workdir)
    try:
        size = embedder_image_size(embedder, image_size)
    except ValueError as err:
        print(f"tfface export: {err}", file=sys.stderr)
        return 2
    alignment = _alignment(args, source, None if None in size else list(size))
    common = dict(flip=args.flip, image_size=image_size, overwrite=args.overwrite, alignment=alignment,
                  thresholds=thresholds, model_info={"source": os.path.abspath(source)})
    what = args.format + (f" ({args.quantize})" if args.format == "tflite" else "")
    print(f"exporting {embedder.name} ({embedder.count_params():,} parameters) as {what}"
          f"{' with flip fusion' if args.flip else ''} -> {args.out}", flush=True)
    try:
        if args.format == "saved_model":
            from tfface.export.saved_model import export_saved_model

            meta = export_saved_model(embedder, args.out, **common)
        elif args.format == "onnx":
            from tfface.export.onnx import DEFAULT_OPSET, export_onnx

            meta = export_onnx(embedder, args.out, opset=args.opset or DEFAULT_OPSET, **common)
        else:
            from tfface.export.tflite import export_tflite

            meta = export_tflite(
                embedder, args.out, quantize=args.quantize, calibration=args.calibration,
                calibration_size=args.calibration_size, **common,
            )
    except (ValueError, FileNotFoundError) as err:
        print(f"tfface export: {err}", file=sys.stderr)
        return 2

    in_shape = list(meta["input"]["size"] or [None, None]) + [3]
    threshold = MIN_COSINE if args.min_agreement is None else args.min_agreement
    report = None
    status = 0
    if None in in_shape[:2]:
        check = "not run (the spatial size is free; pass --image-size to fix it)"
    elif args.agreement_images <= 0:
        check = "not run (--agreement-images 0)"
    elif args.format == "onnx" and not _have("onnxruntime"):
        check = "not run (onnxruntime is not installed)"
    else:
        # Images the int8 calibration did not see when the source has enough.
        skip = args.calibration_size if args.quantize == "int8" else 0
        sample = sample_images(in_shape[:2], args.calibration, count=args.agreement_images, skip=skip)
        report = check_agreement(embedder, args.out, sample, flip=args.flip, threshold=threshold)
        sample_name = f"images of {args.calibration}" if args.calibration else "synthetic faces"
        if report["worst_image"] is None or not report["unit_norm"]:
            print(f"tfface export: the reloaded export gave embeddings that are not finite unit vectors "
                  f"on {report['images']} {sample_name}", file=sys.stderr)
            return 1
        check = f"reloaded and run on {report['images']} {sample_name}: unit-norm embeddings; " + describe(report, what)
        if not report["ok"]:
            print(describe(report, f"{what} export"), file=sys.stderr, flush=True)
            status = 1 if args.strict else 0
    if report is not None and args.format == "saved_model":
        from tfface.export.metadata import write_saved_model_metadata

        meta["agreement"] = report
        write_saved_model_metadata(args.out, meta)
    size = _size(args.out)
    print(f"wrote {args.out} ({what}, {size / 1e6:.2f} MB): images uint8 {_dims([None, *in_shape])} -> "
          f"embeddings float32 {_dims([None, meta['embedding_size']])}, L2-normalised, flip fusion "
          f"{'on' if meta['flip_fusion'] else 'off'}")
    from tfface.export.metadata import METADATA_KEY, SAVED_MODEL_FILE

    where = {"saved_model": os.path.join(args.out, SAVED_MODEL_FILE),
             "onnx": f"{args.out} metadata_props[{METADATA_KEY!r}]",
             "tflite": f"{args.out} flatbuffer metadata {METADATA_KEY!r}"}[args.format]
    align = meta["alignment"]
    print(f"metadata: {where}: alignment {align['mode']}"
          + (f" ({align['source']})" if align['mode'] != 'unknown' else " (not recorded; pass --alignment)"))
    thr = meta["thresholds"]
    if thr:
        fars = ", ".join(f"FAR {k}: {v:.4f}" for k, v in thr["far"].items())
        best = "n/a" if thr.get("best_accuracy") is None else f"{thr['best_accuracy']:.4f}"
        print(f"thresholds (cosine, from {thr['source']} [{thr['set']}]): best accuracy "
              f"{best}" + (f"; {fars}" if fars else "")
              + (f" (not recorded, below the set's resolution: FAR {', '.join(thr['below_resolution'])})"
                 if thr.get("below_resolution") else ""))
    print(f"check: {check}")
    if args.format == "saved_model":
        print(
            "use it:\n"
            f"  fn = tf.saved_model.load({os.path.abspath(args.out)!r}).signatures['serving_default']\n"
            "  emb = fn(images=tf.constant(uint8_batch))['embeddings']   # (N, D), L2-normalised"
        )
    elif args.format == "onnx":
        print(
            "use it:\n"
            f"  session = onnxruntime.InferenceSession({os.path.abspath(args.out)!r})\n"
            "  emb = session.run(['embeddings'], {'images': uint8_batch})[0]   # (N, D), L2-normalised"
        )
    else:
        print(
            "use it:\n"
            f"  interpreter = ai_edge_litert.interpreter.Interpreter({os.path.abspath(args.out)!r})"
            "   # or tf.lite.Interpreter\n"
            "  (resize the input to the batch, allocate_tensors, set_tensor uint8 images, invoke, get_tensor)\n"
            f"  measure it: tfface eval --model {args.out} --pairs pairs.txt --root DIR"
        )
    return status


def _have(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
