"""The metadata every tfface export carries, readable without tfface.

One JSON object (schema ``format_version`` 1) describes what a client must know to use an
embedding model correctly::

    {
      "format_version": 1,
      "embedding_size": 512,
      "input": {"name": "images", "size": [112, 112], "dtype": "uint8", "channels": "RGB",
                "range": [0, 255], "resize": false,
                "normalisation": {"applied_by": "model", "formula": "(x - 127.5) / 128"}},
      "output": {"name": "embeddings", "dtype": "float32", "l2_normalised": true},
      "alignment": {"mode": "arcface", "size": [112, 112],
                    "template": [[38.29, 51.70], ...], "source": "..."},
      "flip_fusion": false,
      "thresholds": {"metric": "cosine", "far": {"1e-3": 0.31, ...}, "best_accuracy": 0.27,
                     "set": "lfw", "source": "/abs/EVAL/eval.json", ...} or null,
      "model": {"format": "saved_model", "backbone": "iresnet50", ...},
      "tfface_version": "0.1.0"
    }

``input.size`` is ``[height, width]``; ``alignment.size`` too (the crop the model was trained on,
equal to ``input.size`` for an export); ``alignment.template`` is the five reference points
``[x, y]`` (left eye, right eye, nose, left and right mouth corners) in pixels of that crop, or a
name (``"facenet_box"``: a detection box with a margin, no landmarks). ``thresholds`` are cosine
similarities of the L2-normalised embeddings (accept a pair when ``cos >= t``) measured by
``tfface eval`` with ``tfface export --thresholds EVAL/eval.json``; ``far`` keys are the false
accept rates written ``"1e-3"``; ``best_accuracy`` is the mean of the k-fold thresholds.

Where it is stored (each readable with the format's own tools, no tfface):

* SavedModel: ``OUT/assets/tfface.json`` (:data:`SAVED_MODEL_FILE`), a plain JSON file;
* ONNX: ``model.metadata_props`` entry ``"tfface"`` (:data:`METADATA_KEY`), the JSON text;
* TFLite: a flatbuffer ``Model.metadata`` entry named ``"tfface"`` whose buffer holds the JSON
  text (UTF-8), the mechanism the TFLite schema provides for this (``min_runtime_version`` uses
  it too). It is written with the flatbuffer object API TensorFlow ships, so no new dependency.

:func:`read_metadata` reads any of them (and describes a training run directory or a ``.keras``
file from its config) without importing TensorFlow where the format allows.
"""
import json
import math
import os
import struct
import zipfile

from tfface.files import InputError, dumps_json, read_json, write_json

FORMAT_VERSION = 1
METADATA_KEY = "tfface"
SAVED_MODEL_FILE = os.path.join("assets", "tfface.json")
NORMALISATION = {"applied_by": "model", "formula": "(x - 127.5) / 128",
                 "note": "send raw RGB pixels; the model normalises them itself"}
ALIGNMENT_MODES = ("arcface", "facenet", "unknown")

_TOP_KEYS = ("format_version", "embedding_size", "input", "alignment", "flip_fusion",
             "thresholds", "model", "tfface_version")


# ----------------------------------------------------------------------------- building


def far_key(far):
    """``0.001 -> "1e-3"``, ``0.05 -> "5e-2"``, ``1e-6 -> "1e-6"`` (the keys of ``thresholds.far``)."""
    far = float(far)
    if not (0 < far <= 1):
        raise InputError(f"FAR {far!r}; expected a rate in (0, 1]")
    mantissa, exponent = f"{far:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def alignment_for(size, mode=None, source=None):
    """The ``alignment`` entry for crops of ``size`` ``(H, W)`` aligned by ``mode``.

    ``"arcface"``: the five-point similarity alignment, template scaled to the crop
    (:func:`tfface.align.geometry.arcface_template`, which the crop shape must fit);
    ``"facenet"``: MTCNN box plus margin, resized (no template); ``None``/``"unknown"``: not
    recorded."""
    h, w = (None, None) if size is None else (int(size[0]), int(size[1]))
    mode = mode or "unknown"
    if mode not in ALIGNMENT_MODES:
        raise InputError(f"alignment mode {mode!r}; expected one of {ALIGNMENT_MODES}")
    template = None
    if mode == "arcface" and h is not None:
        try:
            from tfface.align.geometry import arcface_template

            template = [[round(float(x), 4), round(float(y), 4)] for x, y in arcface_template((w, h))]
        except (ValueError, ImportError):
            template = None
    elif mode == "facenet":
        template = "facenet_box"
    return {"mode": mode, "size": None if h is None else [h, w], "template": template,
            "source": source or ("not recorded" if mode == "unknown" else "given")}


def alignment_from_report(report_path, size):
    """The ``alignment`` entry from a ``tfface align`` report (``align_report.json``)."""
    report = read_json(report_path, "alignment report")
    settings = report.get("settings") if isinstance(report, dict) else None
    if not isinstance(settings, dict) or settings.get("mode") not in ALIGNMENT_MODES:
        raise InputError(f"alignment report {report_path} has no settings.mode; expected a "
                         "tfface align report")
    entry = alignment_for(size, settings["mode"], source=os.path.abspath(report_path))
    aligned = settings.get("size")
    if aligned is not None:
        entry["aligned_size"] = aligned
    return entry


def find_align_report(run_dir):
    """``align_report.json`` of the training data a run directory's recipe names, or None."""
    recipe = os.path.join(run_dir, "recipe.json")
    if not os.path.isfile(recipe):
        return None
    try:
        train = json.load(open(recipe))["data"]["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(train, str):
        return None
    folder = train if os.path.isdir(train) else os.path.dirname(train)
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, "align_report.json")
        if os.path.isfile(path):
            return path
    return None


def thresholds_from_eval(eval_path, set_name=None):
    """The ``thresholds`` entry from a ``tfface eval`` result (``EVAL/eval.json``).

    Takes the verification set ``set_name`` (needed when the file holds several): its k-fold
    mean threshold (``best_accuracy``) and its threshold at each measured FAR. Only cosine
    thresholds apply to the L2-normalised embeddings of an export; a ``--metric euclidean``
    result is refused. ``run.json`` beside it (when present) adds the model and flip test the
    thresholds were measured with."""
    eval_path = os.fspath(eval_path)
    if os.path.isdir(eval_path):
        eval_path = os.path.join(eval_path, "eval.json")
    results = read_json(eval_path, "eval result")
    if not isinstance(results, dict):
        raise InputError(f"eval result {eval_path} is not a JSON object; expected tfface eval's eval.json")
    sets = {k: v for k, v in results.items()
            if isinstance(v, dict) and ("far_thresholds" in v or "threshold" in v)}
    if not sets:
        raise InputError(f"eval result {eval_path} holds no verification set with thresholds; "
                         "run tfface eval with --pairs, --bin or a verification --protocol")
    if set_name is None:
        if len(sets) > 1:
            raise InputError(f"eval result {eval_path} holds several verification sets "
                             f"({', '.join(sorted(sets))}); name one: --thresholds {eval_path}:SET")
        set_name = next(iter(sets))
    if set_name not in sets:
        raise InputError(f"eval result {eval_path} has no verification set {set_name!r}; it has "
                         f"{', '.join(sorted(sets))}")
    res = sets[set_name]
    metric = res.get("metric", "cosine")
    if metric != "cosine":
        raise InputError(f"eval result {eval_path} [{set_name}] was measured with --metric {metric}; "
                         "export thresholds are cosine similarities: rerun tfface eval with the "
                         "default --metric cosine")
    far = {}
    for key, value in (res.get("far_thresholds") or {}).items():
        if value is None or not math.isfinite(float(value)):
            continue
        far[far_key(float(key))] = float(value)
    best = res.get("threshold")
    entry = {"metric": "cosine", "far": far,
             "best_accuracy": None if best is None else float(best),
             "accuracy": res.get("accuracy"), "folds": res.get("folds"),
             "num_pairs": res.get("num_pairs"), "far_resolution": res.get("far_resolution"),
             "set": set_name, "source": os.path.abspath(eval_path)}
    run_path = os.path.join(os.path.dirname(os.path.abspath(eval_path)), "run.json")
    if os.path.isfile(run_path):
        try:
            run = json.load(open(run_path))
            entry["eval_flip"] = run.get("flip")
            entry["eval_model"] = run.get("model")
        except (OSError, ValueError, AttributeError):
            pass
    return entry


def build_metadata(embedding_size, image_size, flip=False, alignment=None, thresholds=None,
                   model=None, input_dtype="uint8", resize=False):
    """A complete metadata dict (schema in the module doc), checked by :func:`validate`."""
    import tfface

    size = None if image_size is None else [int(v) if v is not None else None for v in image_size]
    meta = {
        "format_version": FORMAT_VERSION,
        "embedding_size": None if embedding_size is None else int(embedding_size),
        "input": {"name": "images", "size": size, "dtype": input_dtype, "channels": "RGB",
                  "range": [0, 255], "resize": bool(resize), "normalisation": dict(NORMALISATION)},
        "output": {"name": "embeddings", "dtype": "float32", "l2_normalised": input_dtype == "uint8"},
        "alignment": alignment if alignment is not None else alignment_for(size, None),
        "flip_fusion": bool(flip),
        "thresholds": thresholds,
        "model": dict(model or {}),
        "tfface_version": tfface.__version__,
    }
    validate(meta, "metadata")
    return meta


def validate(meta, source):
    """Raise :class:`InputError` naming ``source`` unless ``meta`` follows the schema."""
    if not isinstance(meta, dict):
        raise InputError(f"{source}: tfface metadata is not a JSON object")
    missing = [k for k in _TOP_KEYS if k not in meta]
    if missing:
        raise InputError(f"{source}: tfface metadata lacks {', '.join(missing)}")
    if meta["format_version"] != FORMAT_VERSION:
        raise InputError(f"{source}: tfface metadata format_version {meta['format_version']!r}; "
                         f"this tfface reads version {FORMAT_VERSION}")
    size = meta["input"].get("size") if isinstance(meta["input"], dict) else "?"
    if size is not None and (not isinstance(size, list) or len(size) != 2):
        raise InputError(f"{source}: tfface metadata input.size {size!r}; expected [height, width]")
    thr = meta["thresholds"]
    if thr is not None and (not isinstance(thr, dict) or not isinstance(thr.get("far"), dict)):
        raise InputError(f"{source}: tfface metadata thresholds {thr!r}; expected an object with 'far'")
    return meta


def metadata_json(meta):
    """The strict JSON text stored in every format."""
    return dumps_json(meta)


# ----------------------------------------------------------------------------- writers


def write_saved_model_metadata(saved_model_dir, meta):
    """Write ``meta`` to ``SAVED_MODEL_DIR/assets/tfface.json`` (atomically)."""
    path = os.path.join(os.fspath(saved_model_dir), SAVED_MODEL_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, meta)
    return path


def set_onnx_metadata(model_proto, meta):
    """Put ``meta`` into an ``onnx.ModelProto``'s ``metadata_props`` under ``"tfface"`` (in place)."""
    for prop in list(model_proto.metadata_props):
        if prop.key == METADATA_KEY:
            model_proto.metadata_props.remove(prop)
    entry = model_proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = metadata_json(meta)
    return model_proto


def add_tflite_metadata(flatbuffer, meta):
    """``flatbuffer`` (a ``.tflite`` model's bytes) with ``meta`` as its ``"tfface"`` metadata
    entry (replacing an earlier one). Uses the flatbuffer object API TensorFlow ships."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    data = metadata_json(meta).encode("utf-8")
    model.metadata = [m for m in (model.metadata or [])
                      if (m.name.decode() if isinstance(m.name, bytes) else m.name) != METADATA_KEY]
    buffer = schema.BufferT()
    buffer.data = list(data)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# ----------------------------------------------------------------------------- readers


def _tflite_metadata_entries(data):
    """``{name: bytes}`` of a TFLite flatbuffer's ``Model.metadata`` (a minimal flatbuffer walk:
    Model field 4 = buffers, field 6 = metadata; Metadata(name, buffer); Buffer(data, offset,
    size)). Raises ValueError on a malformed buffer."""
    u32 = lambda p: struct.unpack_from("<I", data, p)[0]  # noqa: E731
    i32 = lambda p: struct.unpack_from("<i", data, p)[0]  # noqa: E731
    u16 = lambda p: struct.unpack_from("<H", data, p)[0]  # noqa: E731
    u64 = lambda p: struct.unpack_from("<Q", data, p)[0]  # noqa: E731

    def field(table, index):
        vtable = table - i32(table)
        if 4 + 2 * index >= u16(vtable):
            return 0
        off = u16(vtable + 4 + 2 * index)
        return table + off if off else 0

    def ref(pos):
        return pos + u32(pos)

    def vector(table, index):
        pos = field(table, index)
        if not pos:
            return []
        start = ref(pos)
        return [start + 4 + 4 * i for i in range(u32(start))]

    root = ref(0)
    buffers = [ref(p) for p in vector(root, 4)]
    out = {}
    for slot in vector(root, 6):
        entry = ref(slot)
        name_pos = field(entry, 0)
        if not name_pos:
            continue
        s = ref(name_pos)
        name = bytes(data[s + 4:s + 4 + u32(s)]).decode("utf-8")
        buf_pos = field(entry, 1)
        index = u32(buf_pos) if buf_pos else 0
        if index >= len(buffers):
            raise ValueError(f"metadata {name!r} names buffer {index} of {len(buffers)}")
        buf = buffers[index]
        off_pos, size_pos = field(buf, 1), field(buf, 2)
        if off_pos and u64(off_pos) > 1:
            start, size = u64(off_pos), u64(size_pos) if size_pos else 0
            out[name] = bytes(data[start:start + size])
        else:
            items = vector(buf, 0)
            out[name] = bytes(data[items[0]:items[0] + len(items)]) if items else b""
    return out


def _parse(text, source):
    try:
        meta = json.loads(text)
    except ValueError as err:
        raise InputError(f"{source}: tfface metadata is not valid JSON ({err})") from None
    return validate(meta, source)


def _read_tflite(path):
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        entries = _tflite_metadata_entries(data)
    except (struct.error, ValueError, UnicodeDecodeError, IndexError) as err:
        raise InputError(f"{path} is not a readable TFLite flatbuffer ({err}); it may be truncated") from None
    if METADATA_KEY not in entries:
        return None
    return _parse(entries[METADATA_KEY].decode("utf-8"), path)


def _read_onnx(path):
    try:
        import onnx
    except ImportError as err:
        raise InputError(f"{path}: reading ONNX metadata needs the 'onnx' package "
                         "('pip install onnx')") from err
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # onnx raises DecodeError and others on a damaged file
        raise InputError(f"{path} is not a readable ONNX model ({type(err).__name__}: {err}); "
                         "it may be truncated") from None
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return _parse(prop.value, path)
    return None


def _keras_config(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise InputError(f"{path} is not a readable .keras file ({type(err).__name__}: {err}); it "
                         "may be truncated or not a Keras 3 model") from None


def _describe_keras(path, run_dir=None):
    """Metadata of a ``.keras`` embedder (float32 [0, 255] input, unnormalised output), from its
    config; the embedding size by loading the model only when the config does not say."""
    config = _keras_config(path)
    inner = config.get("config", {}) if isinstance(config, dict) else {}
    size = None
    for layer in inner.get("layers", []) if isinstance(inner, dict) else []:
        if layer.get("class_name") == "InputLayer":
            shape = layer.get("config", {}).get("batch_shape") or layer.get("config", {}).get("batch_input_shape")
            if shape and len(shape) == 4:
                size = [shape[1], shape[2]]
            break
    import keras  # noqa: F401  (the embedding size needs the built model)

    from tfface.export.load import load_embedder

    embedder = load_embedder(path)
    shape = tuple(embedder.inputs[0].shape) if getattr(embedder, "inputs", None) else None
    if shape and len(shape) == 4:
        size = [shape[1], shape[2]]
    dim = int(embedder.outputs[0].shape[-1]) if getattr(embedder, "outputs", None) else None
    report = find_align_report(run_dir) if run_dir else None
    alignment = (alignment_from_report(report, size) if report
                 else alignment_for(size, None))
    meta = build_metadata(dim, size, flip=False, alignment=alignment,
                          model={"format": "keras", "backbone": embedder.name,
                                 "parameters": int(embedder.count_params()),
                                 "path": os.path.abspath(path)},
                          input_dtype="float32")
    meta["output"]["l2_normalised"] = False
    return meta


def read_metadata(model_path):
    """The tfface metadata of ``model_path`` as a dict, or None when it carries none.

    * a SavedModel directory: ``assets/tfface.json`` (None if absent: not a tfface export);
    * an ``.onnx`` file: ``metadata_props["tfface"]`` (needs the ``onnx`` package);
    * a ``.tflite`` file: the flatbuffer's ``"tfface"`` metadata buffer (read here with no
      dependency);
    * a training run directory or a ``.keras`` file: described from the model (input size,
      embedding size; input float32 [0, 255], output not normalised, no flip fusion, no
      thresholds; alignment from the training data's ``align_report.json`` when the run's recipe
      leads to one). This loads the model with Keras.

    Raises :class:`InputError` naming the file for a missing, damaged or unreadable model."""
    path = os.fspath(model_path)
    if os.path.isdir(path):
        keras_file = os.path.join(path, "embedder.keras")
        if os.path.isfile(keras_file):
            return _describe_keras(keras_file, run_dir=path)
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            meta_path = os.path.join(path, SAVED_MODEL_FILE)
            if not os.path.isfile(meta_path):
                return None
            return validate(read_json(meta_path, "SavedModel metadata"), meta_path)
        raise InputError(f"{path} holds no embedder.keras and no saved_model.pb; expected a training "
                         "run directory or a SavedModel export")
    if not os.path.exists(path):
        raise InputError(f"{path} does not exist; expected a run directory, a .keras file or an export")
    if path.endswith(".onnx"):
        return _read_onnx(path)
    if path.endswith(".tflite"):
        return _read_tflite(path)
    if path.endswith(".keras"):
        return _describe_keras(path)
    raise InputError(f"{path} is not a .keras, .onnx or .tflite file nor a model directory")
