"""``tfface export WORKDIR OUT``: a trained run's embedder -> SavedModel (or ONNX) for serving.

WORKDIR is a training run directory holding ``embedder.keras`` (what ``tfface train`` writes), or
a ``.keras`` file, read by :func:`tfface.export.load_embedder`. The export is reloaded once after
writing and run on a small random batch, so a broken export fails here rather than in production.
Exit status: 0 written and checked, 1 the check failed, 2 bad arguments.
"""
import os
import sys

FORMATS = ("saved_model", "onnx")


def add_arguments(parser):
    parser.add_argument("workdir", metavar="WORKDIR", help="training run directory (holding embedder.keras) or a .keras file")
    parser.add_argument("out", metavar="OUT", help="output: a directory for saved_model, a .onnx file for onnx")
    parser.add_argument("--format", choices=FORMATS, default="saved_model", help="export format (default: saved_model)")
    parser.add_argument("--flip", action="store_true", help="fuse each image with its horizontal mirror (sum, then L2-normalise)")
    parser.add_argument(
        "--image-size", type=int, nargs="+", metavar="N",
        help="input height [width]; needed only when the embedder accepts any size",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export at OUT")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")


def _image_size(values):
    if values is None:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return tuple(values)
    raise ValueError(f"--image-size takes one or two integers (height [width]); got {values}")


def _check_saved_model(out_dir, shape):
    import numpy as np
    import tensorflow as tf

    from tfface.export.load import load_embedder

    # The export as a server sees it: the serving signature, uint8 images in.
    fn = load_embedder(out_dir).signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 256, size=(2, *shape), dtype=np.uint8)
    emb = fn(images=tf.constant(images))["embeddings"].numpy()
    return emb


def _check_onnx(path, shape):
    import numpy as np

    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).integers(0, 256, size=(2, *shape), dtype=np.uint8)
    return session.run(["embeddings"], {"images": images})[0]


def _dims(shape):
    return "[" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + "]"


def run(args):
    import numpy as np

    from tfface.export.load import load_embedder, resolve_embedder_path

    try:
        image_size = _image_size(args.image_size)
        source = resolve_embedder_path(args.workdir)
        if os.path.isdir(source):
            raise ValueError(f"{args.workdir!r} is already a SavedModel export; expected a training run "
                             "directory (holding embedder.keras) or a .keras file")
    except (FileNotFoundError, ValueError) as err:
        print(f"tfface export: {err}", file=sys.stderr)
        return 2
    try:
        # Refuse a clobbering OUT before spending time loading the model.
        if args.format == "saved_model":
            from tfface.export.saved_model import check_out_dir

            check_out_dir(args.out, args.overwrite)
        elif os.path.exists(args.out) and not args.overwrite:
            raise FileExistsError(f"ONNX output {args.out!r} exists; pass --overwrite to replace it")
    except FileExistsError as err:
        print(f"tfface export: {err}", file=sys.stderr)
        return 2
    if args.format == "onnx":
        try:
            import tf2onnx  # noqa: F401
        except ImportError:
            from tfface.export.onnx import _MISSING

            print(f"tfface export: {_MISSING}", file=sys.stderr)
            return 2
    print(f"loading {source}")
    embedder = load_embedder(args.workdir)
    print(f"exporting {embedder.name} ({embedder.count_params():,} parameters) as {args.format}"
          f"{' with flip fusion' if args.flip else ''} -> {args.out}")
    try:
        if args.format == "saved_model":
            from tfface.export.saved_model import export_saved_model

            meta = export_saved_model(embedder, args.out, flip=args.flip, image_size=image_size, overwrite=args.overwrite)
        else:
            from tfface.export.onnx import DEFAULT_OPSET, export_onnx

            meta = export_onnx(
                embedder, args.out, flip=args.flip, image_size=image_size,
                opset=args.opset or DEFAULT_OPSET, overwrite=args.overwrite,
            )
    except (FileExistsError, IsADirectoryError, ValueError) as err:
        print(f"tfface export: {err}", file=sys.stderr)
        return 2

    in_shape = meta["inputs"]["images"]["shape"][1:]
    if None in in_shape[:2]:
        emb = None
        check = "not run (the spatial size is free; pass --image-size to fix it)"
    else:
        emb = _check_saved_model(args.out, in_shape) if args.format == "saved_model" else _check_onnx(args.out, in_shape)
        if emb is None:
            check = "not run (onnxruntime is not installed)"
        else:
            norms = np.linalg.norm(emb, axis=1)
            if emb.shape[0] != 2 or not np.all(np.isfinite(emb)) or not np.allclose(norms, 1.0, atol=1e-4):
                print(f"tfface export: the reloaded export gave embeddings of shape {emb.shape} with norms {norms}; "
                      "expected finite unit vectors", file=sys.stderr)
                return 1
            check = f"reloaded and run on 2 images: embeddings {emb.shape}, unit norm"
    out_shape = meta["outputs"]["embeddings"]["shape"]
    print(f"wrote {args.out} ({args.format}): images uint8 {_dims(meta['inputs']['images']['shape'])} -> "
          f"embeddings float32 {_dims(out_shape)}, L2-normalised, flip fusion {'on' if meta['flip'] else 'off'}")
    if args.format == "saved_model":
        print(f"metadata: {os.path.join(args.out, 'assets.extra', 'tfface_export.json')}")
    print(f"check: {check}")
    if args.format == "saved_model":
        print(
            "use it:\n"
            f"  fn = tf.saved_model.load({os.path.abspath(args.out)!r}).signatures['serving_default']\n"
            "  emb = fn(images=tf.constant(uint8_batch))['embeddings']   # (N, D), L2-normalised"
        )
    else:
        print(
            "use it:\n"
            f"  session = onnxruntime.InferenceSession({os.path.abspath(args.out)!r})\n"
            "  emb = session.run(['embeddings'], {'images': uint8_batch})[0]   # (N, D), L2-normalised"
        )
    return 0
