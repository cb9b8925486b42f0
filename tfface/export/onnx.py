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


def export_onnx(embedder, out_path, flip=False, image_size=None, opset=DEFAULT_OPSET, overwrite=False):
    """Write ``embedder`` as an ONNX model at ``out_path`` (a ``.onnx`` file).

    Arguments as :func:`tfface.export.export_saved_model`; ``opset`` is the ONNX opset to target.
    Returns a metadata dict like the SavedModel export's. Raises ImportError with installation
    advice when tf2onnx is missing.
    """
    import keras
    import tensorflow as tf

    import tfface

    tf2onnx = _import_tf2onnx()
    if not isinstance(embedder, keras.Model):
        raise TypeError(
            f"embedder is a {type(embedder).__name__}; expected a keras.Model from images "
            "(N, H, W, 3) to embeddings (N, D)"
        )
    if os.path.isdir(out_path):
        raise IsADirectoryError(f"ONNX output {out_path!r} is a directory; expected a .onnx file path")
    if os.path.exists(out_path) and not overwrite:
        raise FileExistsError(f"ONNX output {out_path!r} exists; pass overwrite=True (--overwrite)")
    height, width = embedder_image_size(embedder, image_size)
    spec = tf.TensorSpec([None, height, width, 3], tf.uint8, name=INPUT_NAME)
    fn = tf.function(make_embed_fn(embedder, flip=bool(flip)), input_signature=[spec])
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    model_proto, _ = tf2onnx.convert.from_function(
        fn, input_signature=[spec], opset=opset, output_path=out_path
    )
    outputs = [o.name for o in model_proto.graph.output]
    if outputs != [OUTPUT_NAME]:
        raise RuntimeError(
            f"tf2onnx produced outputs {outputs}; expected [{OUTPUT_NAME!r}] (tf2onnx "
            f"{tf2onnx.__version__} may not support this graph)"
        )
    dim = model_proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value or None
    return {
        "format": "onnx",
        "opset": opset,
        "inputs": {INPUT_NAME: {"dtype": "uint8", "shape": [None, height, width, 3]}},
        "outputs": {OUTPUT_NAME: {"dtype": "float32", "shape": [None, dim]}},
        "l2_normalised": True,
        "flip": bool(flip),
        "backbone": embedder.name,
        "tfface_version": tfface.__version__,
        "tf2onnx_version": tf2onnx.__version__,
    }
