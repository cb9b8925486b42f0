"""How closely an export agrees with the Keras embedder it came from.

:func:`check_agreement` embeds a sample of images with both (the Keras model in float32, flip fusion
and L2 normalisation done here in numpy as the export contract states them) and reports the
cosine between the two embeddings of each image: its minimum and mean.

Threshold (:data:`MIN_COSINE` = 0.99): an image whose exported embedding has cosine ``c`` with the
Keras one has moved by ``‖δ‖ = √(2 − 2c)`` on the unit sphere, and the cosine score of a pair
moves by at most ``‖δ_a‖ + ‖δ_b‖``. At ``c = 0.99`` an embedding moves by 0.14, so a pair score
can move by up to 0.28 — the size of the verification thresholds themselves (cos ≈ 0.2–0.4 for
margin-trained models) and of the gap between the threshold and the bulk of genuine or impostor
scores — so below it, decisions near the threshold can flip. Above it the displacement is small
next to that gap; float32 and float16 exports agree to ≥ 0.9999, dynamic-range to ≥ 0.999, and a
well-calibrated int8 export stays ≥ 0.99 (docs/export.md has the measured figures), so a warning
marks a real problem (a calibration set unlike the faces, wrong preprocessing, an op the runtime
computes differently) rather than quantisation's usual noise. The agreement is a quick check; the
accuracy cost is measured by ``tfface eval --model OUT`` on the same pairs as the Keras model.
"""
import numpy as np

MIN_COSINE = 0.99
DEFAULT_SAMPLE = 32


def synthetic_faces(count, size, seed=0):
    """``count`` synthetic face images ``(count, H, W, 3)`` uint8 (the embedded data set's
    renderer, distinct identities), for an agreement check when no real images are at hand."""
    import io

    from PIL import Image

    from tfface.data import synthetic
    from tfface.data.images import parse_image_size

    height, width = parse_image_size(size)
    out = []
    for i in range(count):
        # The renderer of tfface.data.synthetic, in memory (its split 2 is the held-out one).
        params = synthetic._identity_params(seed, 2, i)
        data = synthetic._render(params, seed, 2, i, 0, max(height, width))
        image = Image.open(io.BytesIO(data)).convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR)
        out.append(np.asarray(image, dtype=np.uint8))
    return np.stack(out)


def sample_images(image_size, source=None, count=DEFAULT_SAMPLE, seed=1, skip=0):
    """The agreement sample: ``count`` images of ``source`` (as
    :func:`tfface.export.tflite.representative_images` reads it; ``skip`` images of the draw
    left out, falling back to an overlapping draw when the source is too small), or synthetic faces
    when ``source`` is None."""
    if source is None:
        return synthetic_faces(count, image_size, seed=seed)
    from tfface.export.tflite import representative_images

    try:
        return representative_images(source, image_size, count=count, seed=0, skip=skip)
    except ValueError:
        if not skip:
            raise
        return representative_images(source, image_size, count=count, seed=seed)


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def keras_reference(embedder, images, flip=False, batch_size=32):
    """The export contract computed from the Keras model: L2-normalised float64 ``(N, D)``."""
    out = []
    for start in range(0, len(images), batch_size):
        x = np.asarray(images[start:start + batch_size], dtype=np.float32)
        emb = np.asarray(embedder(x, training=False), dtype=np.float64)
        if flip:
            emb = emb + np.asarray(embedder(x[:, :, ::-1], training=False), dtype=np.float64)
        out.append(emb)
    return _unit(np.concatenate(out))


def run_export(exported, images, batch_size=32):
    """Embeddings ``(N, D)`` of uint8 ``images`` by an export: a path (any format
    :func:`tfface.export.load_embedder` reads), a loaded SavedModel or an
    :class:`tfface.export.load.ExportedEmbedder`."""
    import os

    from tfface.export.load import load_embedder

    if isinstance(exported, (str, os.PathLike)):
        exported = load_embedder(exported)
    signatures = getattr(exported, "signatures", None)
    if signatures is not None and "serving_default" in signatures:
        import tensorflow as tf

        fn = signatures["serving_default"]
        call = lambda x: fn(images=tf.constant(x))["embeddings"].numpy()  # noqa: E731
    else:
        call = exported
    images = np.asarray(images, dtype=np.uint8)
    return np.concatenate([np.asarray(call(images[s:s + batch_size]), dtype=np.float64)
                           for s in range(0, len(images), batch_size)])


def check_agreement(embedder, exported, images, flip=False, threshold=MIN_COSINE, batch_size=32):
    """Cosine between the Keras embedder's and the export's embedding of each image.

    Returns ``{"images", "min_cosine", "mean_cosine", "worst_image", "threshold", "ok",
    "unit_norm", "norm_range"}``: ``ok`` is ``min_cosine >= threshold`` with finite outputs;
    ``unit_norm`` whether the export's embeddings are L2-normalised (its contract; to 5 %, since
    an int8 output quantises the normalised vector), ``norm_range`` their smallest and largest
    norms. The cosine is taken after normalising both sides."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise ValueError(f"agreement images have shape {images.shape}; expected (N, H, W, 3), N >= 1")
    ref = keras_reference(embedder, images, flip=flip, batch_size=batch_size)
    got = run_export(exported, images, batch_size=batch_size)
    if got.shape != ref.shape:
        raise ValueError(f"the export gave embeddings {got.shape} where the Keras model gives {ref.shape}")
    finite = bool(np.all(np.isfinite(got)))
    norms = np.linalg.norm(got, axis=1)
    cos = np.sum(ref * _unit(got), axis=1) if finite else np.full(len(images), np.nan)
    min_cos = float(np.min(cos)) if finite else float("nan")
    return {
        "images": int(len(images)),
        "min_cosine": min_cos,
        "mean_cosine": float(np.mean(cos)) if finite else float("nan"),
        "worst_image": int(np.argmin(cos)) if finite else None,
        "threshold": float(threshold),
        "ok": bool(finite and min_cos >= threshold),
        # An int8 output holds each component to 1/128 of its range: its norm is 1 to about 1 %.
        "unit_norm": bool(finite and np.allclose(norms, 1.0, atol=0.05)),
        "norm_range": [float(norms.min()), float(norms.max())] if finite else None,
    }


def describe(report, label="export"):
    """One line for a report; a loud multi-line warning when it is not ``ok``."""
    line = (f"agreement with the Keras model on {report['images']} images: min cosine "
            f"{report['min_cosine']:.6f}, mean {report['mean_cosine']:.6f} (warn below "
            f"{report['threshold']})")
    if report["ok"]:
        return line
    bar = "!" * 78
    return "\n".join([
        bar,
        f"WARNING: the {label} DISAGREES with the Keras model: {line}.",
        "Verification decisions near the threshold can flip. Check the calibration images (aligned",
        "face crops like the training images), the preprocessing, or export without quantisation;",
        "measure the cost with 'tfface eval --model OUT' on the same pairs as the Keras model.",
        bar,
    ])
