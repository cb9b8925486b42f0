"""The one model loader of tfface: :func:`load_embedder`, used by evaluation, export and the demo.

It takes what a person has at hand: a training run directory (``WORKDIR/embedder.keras``, what
``tfface train`` writes), a ``.keras`` file (an embedder, or a saved training model whose
``embedder`` is returned), or any export ``tfface export`` writes: a SavedModel directory, an
``.onnx`` file (run with onnxruntime) or a ``.tflite`` file (run with the LiteRT interpreter), so
that every format is evaluated by the same protocol on the same pairs.
"""
import hashlib
import importlib
import os
import warnings
import zipfile

import numpy as np

from tfface.files import InputError

EMBEDDER_FILE = "embedder.keras"
SAVED_MODEL_FILE = "saved_model.pb"

# Packages whose modules register tfface's Keras classes (layers, backbone blocks, heads, losses
# and the training model) on import, so that ``keras.saving.load_model`` finds them by their
# registered names.
_REGISTERING_PACKAGES = ("tfface.backbones", "tfface.layers", "tfface.heads", "tfface.losses", "tfface.training")

EXPORT_SUFFIXES = (".onnx", ".tflite")
_EXPECTED = ("a training run directory (holding embedder.keras), a .keras file, a SavedModel directory, "
             "an .onnx file or a .tflite file")


def is_saved_model(path):
    """Whether ``path`` is a SavedModel directory (holds ``saved_model.pb``)."""
    return os.path.isfile(os.path.join(os.fspath(path), SAVED_MODEL_FILE))


def resolve_embedder_path(path):
    """The file or directory :func:`load_embedder` reads for ``path``: ``path/embedder.keras`` for
    a run directory, ``path`` itself for a ``.keras`` file or a SavedModel directory. Raises
    :class:`tfface.files.InputError` (a ValueError) naming what was expected."""
    path = os.fspath(path)
    if os.path.isdir(path):
        candidate = os.path.join(path, EMBEDDER_FILE)
        if os.path.isfile(candidate):
            return candidate
        if is_saved_model(path):
            return path
        raise InputError(
            f"{path!r} holds no {EMBEDDER_FILE} and no {SAVED_MODEL_FILE}; expected a training run "
            f"directory ('tfface train RECIPE --workdir {path}' writes {EMBEDDER_FILE} when training "
            "ends), a .keras file or a SavedModel directory"
        )
    if not os.path.exists(path):
        raise InputError(f"{path!r} does not exist; expected {_EXPECTED}")
    if not path.endswith((".keras",) + EXPORT_SUFFIXES):
        raise InputError(f"{path!r} is not a .keras file; expected {_EXPECTED}")
    return path


def _register_tfface_objects():
    for name in _REGISTERING_PACKAGES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            # A package missing from a partial install only matters if the model needs its
            # classes; load_model then names the class it cannot find.
            if err.name != name:
                raise


def load_embedder(path):
    """The embedder stored at ``path``.

    * a run directory or a ``.keras`` file -> the embedder ``keras.Model`` (float32 images in
      [0, 255] -> embeddings). A saved training model (one with an ``embedder`` attribute, like
      ``tfface.FaceModel``) is accepted too and its embedder returned.
    * a SavedModel directory -> the loaded SavedModel (``tf.saved_model.load``); its
      ``signatures["serving_default"]`` takes uint8 images, the tfface export contract.
    * an ``.onnx`` file -> an :class:`OnnxEmbedder`; a ``.tflite`` file -> a
      :class:`TFLiteEmbedder`: callables from uint8 images ``(N, H, W, 3)`` to float32
      embeddings ``(N, D)`` (the export contract), with ``image_size`` and a content
      ``fingerprint()``.

    ``tfface.eval.extract_embeddings`` accepts each of them.
    """
    model_path = resolve_embedder_path(path)
    if model_path.endswith(".onnx"):
        return OnnxEmbedder(model_path)
    if model_path.endswith(".tflite"):
        return TFLiteEmbedder(model_path)
    if os.path.isdir(model_path):
        import tensorflow as tf

        return tf.saved_model.load(model_path)
    import keras

    _register_tfface_objects()
    _check_keras_archive(model_path)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except (ValueError, KeyError, OSError, TypeError, zipfile.BadZipFile) as err:
        raise InputError(f"{model_path}: cannot load the Keras model ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:300] if str(err) else ''}); it may be damaged, "
                         "or need a newer tfface/Keras") from None
    embedder = getattr(model, "embedder", None)
    return embedder if isinstance(embedder, keras.Model) else model


def _check_keras_archive(path):
    """A ``.keras`` file is a zip archive holding ``config.json`` and ``model.weights.h5``; a
    truncated copy fails here with a message naming the file (Keras itself reports 'file not
    found' for the member it cannot locate)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"{path} is not a readable .keras archive ({err}); it may be truncated "
                         "(an interrupted copy or download)") from None
    missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
    if missing or bad is not None:
        what = f"lacks {', '.join(missing)}" if missing else f"member {bad} is damaged"
        raise InputError(f"{path} is a damaged .keras archive ({what}); it may be truncated")


def hash_file(path):
    """sha256 hex digest of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ExportedEmbedder:
    """An exported embedder file run by its own runtime: ``self(images) -> (N, D)`` float32.

    ``images``: uint8 ``(N, H, W, 3)``, or floats holding whole pixel values in [0, 255]; any
    other float input (e.g. [0, 1] images) is refused rather than cast. ``image_size``: the fixed ``(H, W)`` or None;
    ``embedding_size``: D; ``fingerprint()``: a key that changes with the file's contents (the
    evaluation cache uses it)."""

    format = None

    def __init__(self, path):
        self.path = os.fspath(path)
        self._fingerprint = None

    def fingerprint(self):
        if self._fingerprint is None:
            self._fingerprint = f"{self.format}:" + hash_file(self.path)
        return self._fingerprint

    @staticmethod
    def _as_uint8(images):
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images have shape {images.shape}; expected (N, H, W, 3)")
        if images.dtype != np.uint8:
            if images.size and not np.issubdtype(images.dtype, np.number):
                raise ValueError(f"images have dtype {images.dtype}; expected uint8 pixels")
            values = images.astype(np.float64)
            lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
            if not (np.isfinite(values).all() and lo >= 0 and hi <= 255 and (values == np.round(values)).all()):
                # Never cast silently: float [0, 1] images would become 0/1 pixels and
                # normal-looking but meaningless embeddings.
                raise ValueError(
                    f"images have dtype {images.dtype} with values in [{lo:g}, {hi:g}]; the export takes "
                    "uint8 pixels in [0, 255] (send uint8; float images in [0, 1] must be scaled by "
                    "255 and rounded)")
            images = values.astype(np.uint8)
        return np.ascontiguousarray(images)

    def _check_size(self, images):
        size = getattr(self, "image_size", None)
        if size is not None and tuple(images.shape[1:3]) != tuple(size):
            raise ValueError(f"{self.path}: images are {images.shape[1]}x{images.shape[2]}; this export "
                             f"takes {size[0]}x{size[1]} (height x width) aligned crops")
        return images

    def __repr__(self):
        return f"{type(self).__name__}({self.path!r})"


class OnnxEmbedder(ExportedEmbedder):
    """An ``.onnx`` export run with onnxruntime (CPU)."""

    format = "onnx"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        try:
            import onnxruntime
        except ImportError as err:
            raise ImportError(f"{path!r}: running an ONNX model needs the 'onnxruntime' package "
                              "('pip install onnxruntime')") from err
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.session = onnxruntime.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(f"{path!r} has inputs {[(i.name, i.shape) for i in inputs]}; expected one "
                             "image input (N, H, W, 3)")
        self.input_name = inputs[0].name
        self.input_dtype = np.uint8 if inputs[0].type == "tensor(uint8)" else np.float32
        h, w = inputs[0].shape[1:3]
        self.image_size = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = "embeddings" if "embeddings" in outputs else outputs[0]
        dim = self.session.get_outputs()[outputs.index(self.output_name)].shape[-1]
        self.embedding_size = dim if isinstance(dim, int) else None

    def __call__(self, images):
        images = self._check_size(self._as_uint8(images)).astype(self.input_dtype, copy=False)
        out = self.session.run([self.output_name], {self.input_name: images})[0]
        return np.asarray(out, dtype=np.float32)


def tflite_interpreter(path, num_threads=None):
    """A LiteRT interpreter for ``path``: ``ai_edge_litert``'s when installed (the supported
    runtime since TensorFlow 2.20 deprecated ``tf.lite.Interpreter``), else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
        with warnings.catch_warnings():
            # TF 2.21 still ships it and it runs the same kernels; the warning would only repeat
            # the advice to install ai-edge-litert, given in docs/export.md.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            return Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    return Interpreter(model_path=os.fspath(path), num_threads=num_threads)


class TFLiteEmbedder(ExportedEmbedder):
    """A ``.tflite`` export run with the LiteRT interpreter (:func:`tflite_interpreter`); the
    batch dimension is resized to each call's batch."""

    format = "tflite"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        self.interpreter = tflite_interpreter(self.path, num_threads=num_threads)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4:
            raise ValueError(f"{path!r} has inputs {[(i['name'], list(i['shape'])) for i in inputs]}; "
                             "expected one image input (N, H, W, 3)")
        if len(outputs) != 1 or len(outputs[0]["shape"]) != 2:
            raise ValueError(f"{path!r} has outputs {[(o['name'], list(o['shape'])) for o in outputs]}; "
                             "expected embeddings (N, D)")
        self._input, self._output = inputs[0], outputs[0]
        self.input_dtype = inputs[0]["dtype"]
        self.image_size = tuple(int(v) for v in inputs[0]["shape"][1:3])
        self.embedding_size = int(outputs[0]["shape"][-1])
        self._batch = None

    def __call__(self, images):
        images = self._check_size(self._as_uint8(images))
        if self.input_dtype != np.uint8:
            images = images.astype(self.input_dtype)
        n = images.shape[0]
        if n != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [n, *images.shape[1:]])
            self.interpreter.allocate_tensors()
            self._batch = n
        self.interpreter.set_tensor(self._input["index"], images)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        if self._output["dtype"] != np.float32:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return np.array(out, dtype=np.float32)
