"""TFLite export of a face embedder: float32, float16, dynamic-range and full-integer int8.

The ``.tflite`` file has the SavedModel's contract: input ``images`` uint8 ``[N, H, W, 3]``
(N free: the interpreter resizes it), output ``embeddings`` float32 ``[N, D]``, L2-normalised,
preprocessing and optional flip fusion inside. It is converted from the very function the
SavedModel signature wraps (it converts the SavedModel export), so the formats cannot disagree on
preprocessing.

Quantisation (``quantize``):

* ``"none"``: float32 weights and activations (the reference: agrees with Keras to ~1e-6);
* ``"float16"``: weights stored as float16 (half the file), computed in float32 on CPU;
* ``"dynamic"``: dynamic-range — weights int8 (a quarter of the file), activations quantised on
  the fly per batch;
* ``"int8"``: full-integer — weights and activations int8 with ranges calibrated on a
  *representative set* (``calibration``: aligned face crops as a TFRecord set, an image folder or
  a uint8 array), the form integer-only accelerators (Edge TPU, NPUs, DSPs) run. Input stays
  uint8 pixels and output float32 embeddings, so the contract does not change.

Calibration images must be preprocessed like training images (the same aligned crops at the
same size): ranges calibrated on other images clip real activations, the most common cause of a
quantised face model losing accuracy. :func:`representative_images` reads them with the training
pipeline's own decoding and resizing.
"""
import os
import tempfile

import numpy as np

from tfface.export.saved_model import embedder_image_size, export_saved_model

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
DEFAULT_CALIBRATION_SIZE = 200


def representative_images(source, image_size, count=DEFAULT_CALIBRATION_SIZE, seed=0, skip=0):
    """Up to ``count`` uint8 images ``(n, H, W, 3)`` drawn from ``source`` at ``image_size``.

    ``source``: a uint8 array ``(N, H, W, 3)``, a directory of TFRecords (``tfface build``'s
    ``image`` feature), a ``.tfrecord`` file or glob, or an image folder (searched recursively).
    Files are drawn at random (``seed``) without replacement; ``skip`` leaves out the first
    ``skip`` of that draw, so a second call with ``skip=count`` gives a disjoint sample (the
    agreement report checks on images the calibration did not see when there are enough).
    Decoded and resized as training does (:func:`tfface.data.images.decode_and_resize`).
    """
    import tensorflow as tf

    from tfface.data.images import (ALL_IMAGE_EXTENSIONS, decode_and_resize, list_tfrecords,
                                    parse_image_size, resize_image, scan_tree)

    size = parse_image_size(image_size)
    rng = np.random.default_rng(seed)
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise ValueError(f"calibration array has shape {source.shape}; expected (N, H, W, 3)")
        order = rng.permutation(len(source))[skip:skip + count]
        images = source[np.sort(order)]
        if size is not None and tuple(images.shape[1:3]) != size:
            images = resize_image(tf.constant(images, tf.float32), size).numpy()
        return np.asarray(images).astype(np.uint8)
    source = os.fspath(source)
    if not os.path.exists(source) and not list_tfrecords(source):
        raise FileNotFoundError(f"calibration source {source!r} does not exist; expected a TFRecord "
                                "set (file, glob or directory) or an image folder")
    records = list_tfrecords(source)
    encoded = []
    if records:
        feature = {"image": tf.io.FixedLenFeature([], tf.string)}
        # Enough records for the draw, read in file order (a TFRecord set is already shuffled by
        # tfface build); the draw is taken from the first 20 x count records.
        ds = tf.data.TFRecordDataset(records).map(
            lambda s: tf.io.parse_single_example(s, feature)["image"])
        pool = [r.numpy() for r in ds.take(20 * (skip + count))]
        for i in np.sort(rng.permutation(len(pool))[skip:skip + count]):
            encoded.append(pool[i])
    else:
        if not os.path.isdir(source):
            raise ValueError(f"calibration source {source!r} is neither a TFRecord set nor an image "
                             "folder")
        files, _ = scan_tree(source, extensions=ALL_IMAGE_EXTENSIONS)
        for i in np.sort(rng.permutation(len(files))[skip:skip + count]):
            with open(os.path.join(source, files[i]), "rb") as fh:
                encoded.append(fh.read())
    if not encoded:
        raise ValueError(f"calibration source {source!r} holds no image"
                         + (f" beyond the first {skip}" if skip else ""))
    return np.stack([decode_and_resize(tf.constant(e), size).numpy() for e in encoded])


def _saved_model_metadata(path):
    from tfface.export.metadata import SAVED_MODEL_FILE, read_metadata

    meta = read_metadata(path)
    if meta is None:
        raise ValueError(f"{path!r} is a SavedModel without {SAVED_MODEL_FILE}; expected a tfface export "
                         "(or pass the Keras model)")
    return meta


def _convert(saved_model_dir, quantize, calibration):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            for image in calibration:
                yield [image[None]]

        converter.representative_dataset = representative
        # Integer kernels only: conversion fails rather than silently leaving float ops, which an
        # integer-only accelerator could not run.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_output_type = tf.float32
    return converter.convert()


def export_tflite(embedder, out_path, quantize="none", calibration=None, flip=False, image_size=None,
                  calibration_size=DEFAULT_CALIBRATION_SIZE, overwrite=False, alignment=None,
                  thresholds=None, model_info=None):
    """Write ``embedder`` as a TFLite flatbuffer at ``out_path`` (a ``.tflite`` file).

    Args:
        embedder: a ``keras.Model`` from float images in [0, 255] ``(N, H, W, 3)`` to ``(N, D)``,
            or a SavedModel directory written by :func:`tfface.export.export_saved_model`
            (converted as it is: its image size and flip fusion; cheaper when one model is
            converted to several quantisations).
        out_path: the file to write.
        quantize: one of :data:`QUANTIZE_MODES` (see the module doc).
        calibration: for ``"int8"`` (required there): a uint8 array ``(N, H, W, 3)`` or a source
            :func:`representative_images` reads (TFRecord set or image folder).
        flip: fuse each image with its horizontal mirror (sum, then L2-normalise).
        image_size: (H, W) or an int; needed only when the embedder accepts any size.
        calibration_size: how many calibration images to draw.
        overwrite: replace an existing file (written to a temporary file renamed onto it, so a
            failure leaves the previous file untouched).
        alignment, thresholds, model_info: as :func:`tfface.export.export_saved_model` (taken
            from the SavedModel's own metadata when converting one and not given).

    The metadata (:mod:`tfface.export.metadata`) is stored in the flatbuffer's ``Model.metadata``
    under ``"tfface"``. Returns it (its ``model`` entry holds ``quantize``, the number of
    calibration images and the file size).
    """
    import keras
    import tensorflow as tf

    from tfface.export.load import is_saved_model

    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize={quantize!r}; expected one of {QUANTIZE_MODES}")
    source_dir = None
    if isinstance(embedder, (str, os.PathLike)) and is_saved_model(embedder):
        source_dir = os.fspath(embedder)
        source_meta = _saved_model_metadata(source_dir)
        if image_size is not None or flip:
            raise ValueError("converting a SavedModel export keeps its image size and flip fusion; "
                             "pass the Keras model to change them")
        height, width = source_meta["input"]["size"]
        flip = source_meta.get("flip_fusion", False)
        name = source_meta.get("model", {}).get("backbone")
        if alignment is None:
            alignment = source_meta.get("alignment")
        if thresholds is None:
            thresholds = source_meta.get("thresholds")
    elif not isinstance(embedder, keras.Model):
        raise TypeError(f"embedder is a {type(embedder).__name__}; expected a keras.Model from images "
                        "(N, H, W, 3) to embeddings (N, D), or a tfface SavedModel export directory")
    else:
        height, width = embedder_image_size(embedder, image_size)
        name = embedder.name
    from tfface.export.onnx import check_out_file

    check_out_file(out_path, overwrite, "TFLite")
    if height is None or width is None:
        raise ValueError("the embedder accepts any image size; TFLite needs it fixed: pass image_size "
                         "(--image-size)")
    images = None
    if quantize == "int8":
        if calibration is None:
            raise ValueError("quantize='int8' needs calibration images (--calibration DIR: a TFRecord "
                             "set or an image folder of aligned face crops like the training images)")
        images = representative_images(calibration, (height, width), count=calibration_size)
    if source_dir is not None:
        flatbuffer = _convert(source_dir, quantize, images)
    else:
        # Converted from the SavedModel export itself (written to a temporary directory): the same
        # serving function, with the variables frozen by the converter. (Converting the concrete
        # function of a Keras 3 model directly leaves its variables as uninitialised resource
        # variables in the flatbuffer: NaN embeddings.)
        from tfface.files import OutputError

        try:
            with tempfile.TemporaryDirectory(prefix="tfface-tflite-") as tmp_dir:
                saved = os.path.join(tmp_dir, "saved_model")
                export_saved_model(embedder, saved, flip=bool(flip), image_size=(height, width))
                flatbuffer = _convert(saved, quantize, images)
        except OSError as err:
            raise OutputError(err.errno, f"cannot write TFLite output {out_path}: its intermediate "
                              f"SavedModel could not be written ({err.args[-1] if err.args else err})",
                              os.fspath(out_path)) from None
    from tfface.export import metadata as md
    from tfface.export.load import TFLiteEmbedder
    from tfface.files import atomic_write

    # Checked from a temporary copy before anything replaces out_path: the interpreter must load
    # it and give (N, D) embeddings.
    with tempfile.TemporaryDirectory(prefix="tfface-tflite-") as tmp_dir:
        probe = os.path.join(tmp_dir, "model.tflite")
        with open(probe, "wb") as fh:
            fh.write(flatbuffer)
        dim = TFLiteEmbedder(probe).embedding_size
    info = {"format": "tflite", "quantize": quantize, "backbone": name,
            "calibration_images": 0 if images is None else int(len(images)),
            "tensorflow_version": tf.__version__}
    info.update(model_info or {})
    size = [height, width]
    meta = md.build_metadata(dim, size, flip=flip, thresholds=thresholds, model=info,
                             alignment=alignment if alignment is not None else md.alignment_for(size, None))
    flatbuffer = md.add_tflite_metadata(flatbuffer, meta)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    atomic_write(out_path, flatbuffer)
    meta["model"]["bytes"] = os.path.getsize(out_path)
    return meta
