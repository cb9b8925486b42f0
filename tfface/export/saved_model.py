"""SavedModel export of a face embedder, ready for ``tf.saved_model.load`` and TF Serving.

The exported signature is the contract between training and serving:

    serving_default(images: uint8 [N, H, W, 3]) -> {"embeddings": float32 [N, D]}

* preprocessing is inside: the aligned crops are sent as raw uint8 pixels and cast to float32
  here; tfface backbones map [0, 255] to (x - 127.5) / 128 themselves, so no client-side
  normalisation can drift from training;
* the embeddings are L2-normalised, so cosine similarity is a dot product and the squared
  Euclidean distance is 2 - 2·cos, whichever the client prefers;
* with ``flip=True`` the embedding is the sum of the embeddings of the image and of its
  horizontal mirror, normalised afterwards (the insightface "flip sum" test-time fusion);
* N is free (any batch size, including 1); H and W are fixed to the size the backbone was
  trained at.

The SavedModel is written with ``keras.export.ExportArchive`` and needs neither Keras nor tfface
to load: it holds only TensorFlow ops. A description of the export (sizes, flip, version) is
written to ``OUT/assets/tfface.json`` (:mod:`tfface.export.metadata`), a plain JSON file.

The signature checks its input: a batch whose height and width are not the export's fails with
an ``InvalidArgumentError`` naming both sizes (a model trained at 160x160 returns meaningless
embeddings for 112x112 crops, so it must not answer), and TensorFlow refuses any dtype but
uint8 (float images are never silently cast).
"""
import os

SIGNATURE_NAME = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
METADATA_PATH = os.path.join("assets", "tfface.json")


def embedder_image_size(embedder, image_size=None):
    """The (height, width) the serving signature fixes, checked against the embedder's input.

    ``image_size`` wins where the model accepts any size (a fully convolutional backbone built
    with ``input_shape=(None, None, 3)``); where the model fixes its size, a different
    ``image_size`` is an error rather than a silent resize. Returns (None, None) when neither
    fixes it, leaving the spatial size free in the signature.
    """
    model_hw = (None, None)
    inputs = getattr(embedder, "inputs", None)
    if inputs:
        if len(inputs) != 1:
            raise ValueError(
                f"embedder has {len(inputs)} inputs; expected one image input (N, H, W, 3)"
            )
        shape = tuple(inputs[0].shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(
                f"embedder input has shape {shape}; expected images (N, H, W, 3)"
            )
        model_hw = (shape[1], shape[2])
    if image_size is None:
        return model_hw
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    image_size = tuple(int(v) for v in image_size)
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size={image_size!r}; expected (height, width) > 0")
    for got, want, axis in zip(model_hw, image_size, ("height", "width")):
        if got is not None and got != want:
            raise ValueError(
                f"image_size={image_size} but the embedder's input {axis} is fixed at {got}; "
                f"export at {model_hw} (leave image_size unset) or rebuild the backbone"
            )
    return image_size


def l2_normalize(x, epsilon=1e-12):
    """Rows of ``x`` scaled to unit L2 norm (a zero row stays zero instead of becoming NaN)."""
    import tensorflow as tf

    return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x), axis=1, keepdims=True), epsilon))


def make_embed_fn(embedder, flip=False, image_size=None):
    """The function the signature wraps: uint8 images -> float32 L2-normalised embeddings.

    With ``image_size`` ``(H, W)`` the function asserts at run time that the batch has that
    height and width (a signature's declared shape is not enforced when it is called)."""
    import tensorflow as tf

    def embed(images):
        if image_size is not None and None not in tuple(image_size):
            h, w = int(image_size[0]), int(image_size[1])
            got = tf.shape(images)[1:3]
            check = tf.debugging.Assert(
                tf.reduce_all(tf.equal(got, tf.constant([h, w], tf.int32))),
                [tf.constant(f"tfface export: images must be {h}x{w} (height x width) uint8 RGB "
                             "aligned crops; got height x width ="), got], summarize=4)
            with tf.control_dependencies([check]):
                images = tf.identity(images)
        x = tf.cast(images, tf.float32)
        if flip:
            # One backbone call on [x; mirror(x)] instead of two: inference-mode BatchNorm makes
            # the rows independent, and one larger batch is faster to serve.
            n = tf.shape(x)[0]
            both = tf.concat([x, tf.reverse(x, axis=[2])], axis=0)
            emb = tf.cast(embedder(both, training=False), tf.float32)
            emb = emb[:n] + emb[n:]
        else:
            emb = tf.cast(embedder(x, training=False), tf.float32)
        return {OUTPUT_NAME: l2_normalize(emb)}

    return embed


def check_out_dir(out_dir, overwrite=False):
    """Raise if writing an export to ``out_dir`` would clobber something (touches nothing).

    An existing export is replaced only with ``overwrite``; a non-empty directory that is not a
    SavedModel is never replaced; a file or a symbolic link in the way is refused. Raises
    :class:`tfface.files.OutputError` (exit status 3) naming the path.
    """
    import errno

    from tfface.files import OutputError

    if os.path.islink(out_dir):
        raise OutputError(errno.EEXIST, f"export directory {out_dir} is a symbolic link; give a real path",
                          out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise OutputError(errno.ENOTDIR, f"export directory {out_dir} is a file; expected a directory path",
                          out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise OutputError(errno.EEXIST, f"export directory {out_dir} is not empty; choose a new "
                              "directory or pass overwrite=True (--overwrite)", out_dir)
        if not os.path.exists(os.path.join(out_dir, "saved_model.pb")):
            raise OutputError(errno.EEXIST, f"export directory {out_dir} is not empty and holds no "
                              "saved_model.pb; refusing to overwrite a directory that is not a SavedModel",
                              out_dir)


def export_saved_model(embedder, out_dir, flip=False, image_size=None, overwrite=False, alignment=None,
                       thresholds=None, model_info=None):
    """Write ``embedder`` as a SavedModel with the serving signature described in the module doc.

    Args:
        embedder: a ``keras.Model`` from float images in [0, 255] ``(N, H, W, 3)`` to embeddings
            ``(N, D)`` (a tfface backbone, ``FaceModel.embedder``).
        out_dir: directory to create (TF Serving expects ``.../<model name>/<version>/``).
        flip: fuse each image with its horizontal mirror (sum, then L2-normalise).
        image_size: (H, W) or an int; needed only when the embedder accepts any spatial size.
        overwrite: replace an existing export in ``out_dir``. The new export is built beside it
            and swapped in only once complete (:func:`tfface.files.staged_dir`): a failure leaves
            the previous export as it was.
        alignment, thresholds: the ``alignment`` and ``thresholds`` entries of the metadata
            (:mod:`tfface.export.metadata`); defaults: alignment not recorded, no thresholds.
        model_info: extra entries for the metadata's ``model`` object.

    Returns the metadata dict also written to ``out_dir/assets/tfface.json``.
    """
    import keras
    import tensorflow as tf

    from tfface.export import metadata as md
    from tfface.files import staged_dir

    if not isinstance(embedder, keras.Model):
        raise TypeError(
            f"embedder is a {type(embedder).__name__}; expected a keras.Model from images "
            "(N, H, W, 3) to embeddings (N, D)"
        )
    height, width = embedder_image_size(embedder, image_size)
    spec = tf.TensorSpec([None, height, width, 3], tf.uint8, name=INPUT_NAME)
    embed = make_embed_fn(embedder, flip=bool(flip), image_size=(height, width))

    # Trace once here so a model that cannot embed this input fails before anything is written,
    # with the output width known for the metadata.
    out_spec = tf.function(embed).get_concrete_function(spec).structured_outputs[OUTPUT_NAME]
    if out_spec.shape.rank != 2:
        raise ValueError(
            f"embedder output has shape {out_spec.shape} for images {spec.shape}; expected "
            "embeddings (N, D)"
        )
    dim = out_spec.shape[-1]
    info = {"format": "saved_model", "signature": SIGNATURE_NAME, "backbone": embedder.name,
            "parameters": int(embedder.count_params())}
    info.update(model_info or {})
    size = None if height is None else [height, width]
    meta = md.build_metadata(dim, size, flip=flip, thresholds=thresholds, model=info,
                             alignment=alignment if alignment is not None else md.alignment_for(size, None))

    check_out_dir(out_dir, overwrite)
    with staged_dir(out_dir, overwrite=overwrite) as stage:
        archive = keras.export.ExportArchive()
        archive.track(embedder)
        archive.add_endpoint(name=SIGNATURE_NAME, fn=embed, input_signature=[spec])
        try:
            archive.write_out(stage, verbose=False)
        except tf.errors.OpError as err:
            # TensorFlow reports a full disk or an unwritable folder as its own error type.
            import errno

            from tfface.files import OutputError

            raise OutputError(errno.EIO, f"cannot write the SavedModel {out_dir}: "
                              f"{err.message.splitlines()[0] if err.message else type(err).__name__}",
                              out_dir) from None
        md.write_saved_model_metadata(stage, meta)
    return meta
