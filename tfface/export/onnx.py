"""ONNX export of a face embedder (optional: needs the ``tf2onnx`` package).

The ONNX graph has the same contract as the SavedModel: input ``images`` uint8 ``[N, H, W, 3]``,
output ``embeddings`` float32 ``[N, D]``, L2-normalised, preprocessing and optional flip fusion
inside. It is converted by ``tf2onnx.convert.from_function`` from the very function the SavedModel
signature wraps, so the two exports cannot disagree on preprocessing.

tf2onnx 1.17 converts TF 2.21 / Keras 3 graphs of the layers tfface backbones use (convolutions,
depthwise convolutions, BatchNorm, PReLU, dense); it is not a hard dependency of tfface:
``pip install tf2onnx onnxruntime`` to use this export.
"""
import os

from tfface.export.saved_model import INPUT_NAME, OUTPUT_NAME, embedder_image_size, make_embed_fn

DEFAULT_OPSET = 17

_MISSING = (
    "ONNX export needs the 'tf2onnx' package, which is not installed; install it with "
    "'pip install tf2onnx onnxruntime' (tested: tf2onnx 1.17 with TensorFlow 2.21), or export "
    "--format saved_model"
)


def _import_tf2onnx():
    try:
        import tf2onnx
    except ImportError as err:
        raise ImportError(_MISSING) from err
    return tf2onnx


def check_out_file(out_path, overwrite, what):
    """Refuse an output file path that is a folder, a symbolic link, or an existing file without
    ``overwrite`` (:class:`tfface.files.OutputError`, exit status 3, naming it)."""
    import errno

    from tfface.files import OutputError

    out_path = os.fspath(out_path)
    if os.path.islink(out_path):
        raise OutputError(errno.EEXIST, f"{what} output {out_path} is a symbolic link; give a real path",
                          out_path)
    if os.path.isdir(out_path):
        raise OutputError(errno.EISDIR, f"{what} output {out_path} is a directory; expected a file path",
                          out_path)
    if os.path.exists(out_path) and not overwrite:
        raise OutputError(errno.EEXIST, f"{what} output {out_path} exists; pass overwrite=True "
                          "(--overwrite) to replace it", out_path)


def export_onnx(embedder, out_path, flip=False, image_size=None, opset=DEFAULT_OPSET, overwrite=False,
                alignment=None, thresholds=None, model_info=None):
    """Write ``embedder`` as an ONNX model at ``out_path`` (a ``.onnx`` file).

    Arguments as :func:`tfface.export.export_saved_model`; ``opset`` is the ONNX opset to target.
    The model is converted in memory, its metadata (:mod:`tfface.export.metadata`) put in
    ``metadata_props["tfface"]``, and written to a temporary file renamed onto ``out_path``: a
    failed conversion or write leaves a previous file untouched. Returns the metadata dict.
    Raises ImportError with installation advice when tf2onnx is missing.
    """
    import keras
    import tensorflow as tf

    from tfface.export import metadata as md
    from tfface.files import atomic_write

    tf2onnx = _import_tf2onnx()
    if not isinstance(embedder, keras.Model):
        raise TypeError(
            f"embedder is a {type(embedder).__name__}; expected a keras.Model from images "
            "(N, H, W, 3) to embeddings (N, D)"
        )
    check_out_file(out_path, overwrite, "ONNX")
    height, width = embedder_image_size(embedder, image_size)
    spec = tf.TensorSpec([None, height, width, 3], tf.uint8, name=INPUT_NAME)
    fn = tf.function(make_embed_fn(embedder, flip=bool(flip)), input_signature=[spec])
    model_proto, _ = tf2onnx.convert.from_function(fn, input_signature=[spec], opset=opset)
    outputs = [o.name for o in model_proto.graph.output]
    if outputs != [OUTPUT_NAME]:
        raise RuntimeError(
            f"tf2onnx produced outputs {outputs}; expected [{OUTPUT_NAME!r}] (tf2onnx "
            f"{tf2onnx.__version__} may not support this graph)"
        )
    dim = model_proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value or None
    size = None if height is None else [height, width]
    info = {"format": "onnx", "opset": opset, "backbone": embedder.name,
            "parameters": int(embedder.count_params()), "tf2onnx_version": tf2onnx.__version__}
    info.update(model_info or {})
    meta = md.build_metadata(dim, size, flip=flip, thresholds=thresholds, model=info,
                             alignment=alignment if alignment is not None else md.alignment_for(size, None))
    md.set_onnx_metadata(model_proto, meta)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    atomic_write(out_path, model_proto.SerializeToString())
    return meta
