"""tfface.export: take a trained embedder to serving.

* :func:`export_saved_model` — SavedModel with
  ``serving_default(images: uint8 [N, H, W, 3]) -> {"embeddings": float32 [N, D]}``,
  L2-normalised, preprocessing and optional flip fusion inside; loads with plain
  ``tf.saved_model.load`` (no tfface, no Keras) and serves with TF Serving.
* :func:`export_onnx` — the same graph as ONNX (needs ``tf2onnx``).
* :func:`export_tflite` — the same graph as TFLite, float32, float16, dynamic-range or
  full-integer int8 (calibrated on :func:`representative_images`).
* :func:`check_agreement` — min and mean cosine between an export's and the Keras embedder's
  embeddings of a sample (the check ``tfface export`` prints, warning below ``MIN_COSINE``).
* :func:`read_metadata` — the metadata every export carries (alignment, input, embedding size,
  flip fusion, thresholds measured by ``tfface eval``), readable without tfface
  (:mod:`tfface.export.metadata`).
* :func:`load_embedder` — the one model loader (evaluation, export and the demo use it): the
  embedder of a training run directory or a ``.keras`` file, or an export (SavedModel directory,
  ``.onnx`` or ``.tflite`` file), so every format is evaluated alike.

``tfface export WORKDIR OUT`` is the command line (``tfface.commands.export``).
Names are resolved lazily so importing this package does not import TensorFlow.
"""
from tfface._lazy import lazy_exports

_EXPORTS = {
    "export_saved_model": "tfface.export.saved_model",
    "export_onnx": "tfface.export.onnx",
    "export_tflite": "tfface.export.tflite",
    "representative_images": "tfface.export.tflite",
    "check_agreement": "tfface.export.agreement",
    "MIN_COSINE": "tfface.export.agreement",
    "load_embedder": "tfface.export.load",
    "read_metadata": "tfface.export.metadata",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
