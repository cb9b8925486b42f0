"""The ``tf.data`` input pipeline: TFRecord shards (or a plain image folder) -> batches of
``(images uint8 (B, H, W, 3), labels int32 (B,))``: the images go to the model as uint8 (a
quarter of float32's bytes through the pipeline and to the device); the backbones cast them to
float and normalise them, ``(x − 127.5)/128``, inside the model, on the device.

Stages (training)::

    shard files --shuffle(seed, epoch)--> parallel interleave of TFRecordDataset
      --shuffle(buffer, seed, epoch)--> enumerate --batch of 128 records--> parallel map,
      vectorised: parse, label check, flip bits --unbatch--> parallel map per image: decode,
      [random crop], resize, [flip], [colour] (uint8 throughout)--> batch --> prefetch

    RecordIO (``train.rec``): the image records' byte spans --permutation(seed, epoch)-->
      batches of 128 spans and positions --> one reader, read ahead: one Python call reads them
      (a ``pread`` each, framing, header and label checks vectorised, one joined buffer),
      ``substr`` cuts the images out, flip bits --unbatch--> the same per-image map, batch,
      prefetch

What runs per image is what must (decode, resize when the size differs, the reverse of an image
that flips, crop and colour when asked for); the rest runs once per batch of records
(``tf.io.parse_example``, one label check, one ``index_shuffle`` for the flips), so the flip-only
pipeline costs about what bare ``decode_jpeg`` does (``benchmarks/input_pipeline.py``).

Reproducibility. Each epoch is its own sub-pipeline seeded by ``(seed, epoch)``, and each element
carries a key ``(seed, epoch, position in the epoch)`` from which all its augmentation is drawn
with stateless random ops (the flip: the low bit of a seeded permutation of the position). So with ``deterministic=True`` the order *and* the augmentation of
every element are a function of the seed alone, and a run resumed at ``start_epoch=e`` sees
exactly what the original run saw from epoch ``e`` on. With ``deterministic=False`` (default)
parallel stages may hand elements out of order for speed; each image is still augmented the
same way, only the batch composition varies.

Distribution. :func:`distribute_dataset` wraps ``strategy.distribute_datasets_from_function``:
each input pipeline reads its own shards (or every n-th record when there are fewer shards than
pipelines), with the per-replica batch size from its ``tf.distribute.InputContext``.
"""
import json
import os

import numpy as np
import tensorflow as tf

from tfface.data import recordio
from tfface.data.images import IMAGE_EXTENSIONS, decode_and_resize, identity_index, list_tfrecords, parse_image_size
from tfface.data.tfrecord import FEATURES

AUTOTUNE = tf.data.AUTOTUNE
# Epoch index stride inside an element key: epochs never exceed 2**40 elements.
_EPOCH_STRIDE = 2**40
# Records parsed (TFRecord) or read (RecordIO) per vectorised call.
_PARSE_BATCH = 128


# ---------------------------------------------------------------------------------------------
# sources


def describe_source(source):
    """``("tfrecord", files)``, ``("recordio", RecordIOInfo)`` (a ``.rec`` file, or a directory
    holding ``train.rec``, ``train.idx`` and ``property``: :func:`tfface.data.recordio.describe`)
    or ``("folder", (paths, labels, names))``; raises a clear error for anything else."""
    if isinstance(source, (list, tuple)):
        return "tfrecord", list_tfrecords(source)
    source = os.fspath(source)
    rec = recordio.find_recordio(source)
    if rec is not None:
        try:
            return "recordio", recordio.describe(rec)
        except ValueError as err:
            raise ValueError(f"RecordIO source {source!r}: {err}") from None
    files = list_tfrecords(source)
    if files:
        return "tfrecord", files
    if os.path.isdir(source):
        index = identity_index(source)
        if index.paths:
            return "folder", index
        raise ValueError(
            f"{source!r} holds neither *.tfrecord shards, nor train.rec (insightface RecordIO), nor "
            f"identity sub-folders with images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    if source.endswith(".rec"):
        raise FileNotFoundError(f"RecordIO file {source!r} not found")
    raise FileNotFoundError(f"no TFRecord shards match {source!r} and it is not a directory")


def num_classes(source):
    """Number of classes of a source: ``len(labels.json)`` beside TFRecord shards, the number
    of identity folders with images in an image folder, or a RecordIO set's ``property`` (else
    its header record's identity count)."""
    kind, what = describe_source(source)
    if kind == "folder":
        return len(what[2])
    if kind == "recordio":
        if what.num_classes is None:
            raise FileNotFoundError(
                f"{what.rec!r}: the number of classes is unknown: no 'property' file beside it "
                "('num_classes,height,width') and no header record listing the identities"
            )
        return what.num_classes
    folder = os.path.dirname(what[0])
    path = os.path.join(folder, "labels.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} not found: TFRecord shards need the labels.json written by tfface build")
    with open(path, encoding="utf-8") as f:
        return len(json.load(f))


def labels_map(source):
    """identity -> label of a source (``labels.json``, the folder's sorted identities, or a
    RecordIO set's labels as their decimal strings: RecordIO has no identity names)."""
    kind, what = describe_source(source)
    if kind == "folder":
        return {name: i for i, name in enumerate(what[2])}
    if kind == "recordio":
        return {str(i): i for i in range(num_classes(source))}
    with open(os.path.join(os.path.dirname(what[0]), "labels.json"), encoding="utf-8") as f:
        return json.load(f)


def _recordio_reader(info):
    """``(offsets, ends)`` int64 vectors of image records' bytes in the ``.rec`` -> ``(images,
    labels, ok)``: encoded images (tf.string), int32 classes, and whether each record read. A
    record that does not read (truncated, broken framing or header, a label outside ``[0,
    num_classes)``, data that is not a JPEG/PNG/BMP) is not ok and is dropped by the caller;
    :func:`tfface.data.build.build_tfrecords` counts them by reason.

    One ``tf.numpy_function`` call a batch of records
    (:meth:`tfface.data.recordio.RecordFile.read_image_batch`: a ``pread`` a record, checks
    vectorised) hands back one joined buffer, which ``tf.strings.substr`` cuts into the images,
    so Python touches each record once and TensorFlow converts one string a batch."""
    files = {}

    def read(offsets, ends):
        rec = files.get("rec")
        if rec is None:
            rec = files["rec"] = recordio.RecordFile(info.rec, info.idx, index=False)
        buffer, starts, lengths, labels, ok = rec.read_image_batch(offsets, ends, info.num_classes)
        return np.array(buffer, object), starts, lengths, labels, ok

    def stage(offsets, ends):
        buffer, starts, lengths, labels, ok = tf.numpy_function(
            read, [offsets, ends], [tf.string, tf.int64, tf.int64, tf.int32, tf.bool], stateful=False)
        for t in (starts, lengths, labels, ok):
            t.set_shape(offsets.shape)
        images = tf.strings.substr(tf.reshape(buffer, []), starts, lengths)
        return images, labels, ok

    return stage


# ---------------------------------------------------------------------------------------------
# per-element work


# The per-image random numbers of crop and colour, drawn at once from the element's key:
# (unused), brightness, contrast, saturation, crop row, crop column.
_DRAWS = 6
# Positions (epoch·_EPOCH_STRIDE + index) are below this: the flips' permutation domain.
_MAX_POSITION = 2**62 - 1


def _crop_fraction(random_crop):
    crop = 0.9 if random_crop is True else float(random_crop or 0.0)
    if random_crop and not 0.0 < crop < 1.0:
        raise ValueError(f"random_crop must be True or a fraction in (0, 1), got {random_crop!r}")
    return crop


def _element_fn(size, training, crop, flip, color_jitter):
    """Per element: encoded bytes, key and flip bit -> uint8 ``(H, W, 3)``: decode, [random
    crop], resize (:func:`decode_and_resize`, which evaluation calls too), [flip], [colour].
    The crop and colour draws come from the element's key alone (one draw of ``_DRAWS``
    numbers); the flip bit from :func:`_flip_bits` of its position."""
    draws = training and (crop or color_jitter)

    def element(data, key, flip_bit):
        if not training:
            return decode_and_resize(data, size)
        u = tf.random.stateless_uniform([_DRAWS], seed=key) if draws else None

        def random_crop_fn(image):
            shape = tf.shape(image)
            ch = tf.cast(tf.round(tf.cast(shape[0], tf.float32) * crop), tf.int32)
            cw = tf.cast(tf.round(tf.cast(shape[1], tf.float32) * crop), tf.int32)
            # Offsets uniform in [0, side - crop side], from the element's draws.
            top = tf.minimum(tf.cast(u[4] * tf.cast(shape[0] - ch + 1, tf.float32), tf.int32), shape[0] - ch)
            left = tf.minimum(tf.cast(u[5] * tf.cast(shape[1] - cw + 1, tf.float32), tf.int32), shape[1] - cw)
            return image[top:top + ch, left:left + cw]

        # The one decode-and-resize of tfface (evaluation uses it too); the crop, when training
        # asks for one, comes between the decode and the resize.
        image = decode_and_resize(data, size, crop=random_crop_fn if training and crop else None)
        if flip:
            # On the uint8 image, and only when it flips. Per image: TensorFlow's reverse of a
            # whole (B, H, W, 3) batch and a select between a batch and its mirror costs about
            # twice (measured: 0.47 vs 0.93 of bare decoding) reversing the half that flip.
            image = tf.cond(flip_bit, lambda: tf.reverse(image, axis=[1]), lambda: image)
        if color_jitter:
            # Brightness +-12.5 %, contrast and saturation factors in [0.8, 1.2], per image, as
            # tf.image.random_{brightness,contrast,saturation} (saturation as a blend with grey),
            # then back to the uint8 grid. Per image, not per batch: measured faster in tf.data
            # (cache-sized buffers).
            x = tf.cast(image, tf.float32)
            x = x + (u[1] * 2.0 - 1.0) * (0.125 * 255.0)
            mean = tf.reduce_mean(x)
            x = (x - mean) * (0.8 + 0.4 * u[2]) + mean
            grey = tf.reduce_sum(x * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
            x = grey + (x - grey) * (0.8 + 0.4 * u[3])
            image = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
        return image

    return element


_PNG_END = b"IEND\xaeB`\x82"
# A JPEG's end-of-image marker is looked for in this many final bytes (encoders may pad).
_JPEG_TAIL = 32


def _intact(data):
    """Whether encoded image bytes look whole: a JPEG (``FF D8 FF``) whose last
    ``_JPEG_TAIL`` bytes hold the end-of-image marker ``FF D9``, a PNG ending with its
    ``IEND`` chunk, a BMP or a GIF header. Catches empty, truncated and non-image files with a
    few scalar ops, before the decoder would stop the whole pipeline on them."""
    n = tf.strings.length(data)
    head = tf.strings.substr(data, 0, 4)
    is_jpeg = tf.strings.substr(head, 0, 3) == b"\xff\xd8\xff"
    is_png = head == b"\x89PNG"
    other = tf.logical_or(tf.strings.substr(head, 0, 2) == b"BM", head == b"GIF8")

    def jpeg_end():
        tail = tf.io.decode_raw(tf.strings.substr(data, n - _JPEG_TAIL, _JPEG_TAIL), tf.uint8)
        return tf.reduce_any(tf.logical_and(tf.equal(tail[:-1], 0xFF), tf.equal(tail[1:], 0xD9)))

    jpeg_ok = tf.logical_and(is_jpeg, n >= _JPEG_TAIL)
    jpeg_ok = tf.cond(jpeg_ok, jpeg_end, lambda: tf.constant(False))
    png_ok = tf.logical_and(is_png, tf.strings.substr(data, tf.maximum(n - 8, 0), 8) == _PNG_END)
    return tf.logical_or(tf.logical_or(jpeg_ok, png_ok), tf.logical_and(other, n > 26))


def _flip_bits(seed):
    """positions (any shape, int64) -> whether each element flips: the low bit of a seeded
    pseudo-random permutation of positions (``tf.random.experimental.index_shuffle``), one
    vectorised op per batch of records, so a flip is a function of ``(seed, position)``."""
    key = tf.constant([seed, 0x5EED], tf.int64)

    def bits(positions):
        shuffled = tf.random.experimental.index_shuffle(positions, key, tf.constant(_MAX_POSITION, tf.int64))
        return tf.equal(shuffled % 2, 1)

    return bits


def _label_check(num_classes):
    """labels (a scalar or a vector) -> labels, raising ``InvalidArgumentError`` "label L out of
    range: expected 0 <= label < num_classes=C" when one is not. In the input pipeline, which XLA
    never compiles (inside a compiled step XLA drops assertions), once per batch of records."""
    expected = f"out of range: expected 0 <= label < num_classes={num_classes}"

    def check(label):
        ok = tf.reduce_all(tf.logical_and(label >= 0, label < num_classes))
        bad = tf.boolean_mask(label, tf.logical_or(label < 0, label >= num_classes)) if label.shape.rank else label
        with tf.control_dependencies([tf.debugging.Assert(ok, ["input pipeline: label", bad, expected])]):
            return tf.identity(label)

    return check


# ---------------------------------------------------------------------------------------------
# the dataset


def make_dataset(
    source,
    batch_size,
    image_size,
    training=True,
    seed=None,
    deterministic=False,
    flip=True,
    random_crop=False,
    color_jitter=False,
    shuffle_buffer=10000,
    repeat=None,
    drop_remainder=None,
    input_context=None,
    start_epoch=0,
    cycle_length=16,
    num_parallel_calls=AUTOTUNE,
    prefetch=AUTOTUNE,
    num_classes=None,
    skipped_counter=None,
):
    """Batches of ``(images uint8 (B, H, W, 3), labels int32 (B,))``. The images stay uint8: the
    backbones cast and normalise inside the model (``tf.cast(images, tf.float32)`` gives the
    float pixels in [0, 255] where something else needs them).

    ``source``: a directory of ``*.tfrecord`` shards (from ``tfface build``), a glob pattern or
    list of shard files, or an image folder (one sub-folder per identity; labels = sorted
    folder names, the same as ``tfface build`` gives). ``image_size``: int or (H, W).

    ``training=True`` shuffles (files and a ``shuffle_buffer`` of records, reseeded per epoch)
    and augments: horizontal ``flip`` (default on), ``random_crop`` (True = 0.9 of each side,
    or a fraction, then resized back) and ``color_jitter`` (brightness, contrast, saturation)
    (both off by default). ``training=False`` reads every record once in file order, unaugmented.
    ``repeat``: None = forever when training, once otherwise; an int = that many epochs.
    ``drop_remainder``: default True when training. ``seed``: shuffle and augmentation seed
    (random when None); ``deterministic=True`` fixes order and augmentation for a seed (needs a
    seed when training). ``start_epoch``: resume at that epoch of the same seeded sequence.
    ``input_context``: a ``tf.distribute.InputContext`` (see :func:`distribute_dataset`).
    ``num_classes``: when given, every label is checked against ``[0, num_classes)`` as it is
    read; a label outside stops the iteration with an ``InvalidArgumentError`` naming the label
    and ``num_classes`` (the training step, which XLA may compile, then needs no check).

    Image folders: a file that is empty, truncated or not a JPEG/PNG/BMP/GIF (:func:`_intact`)
    is skipped and counted in ``skipped_counter`` (an int64 ``tf.Variable``, when given), and a
    file that passes that check but still fails to decode is skipped with TensorFlow's warning
    (not counted), so one corrupt image never stops training. TFRecord shards and RecordIO
    sets are checked when they are built or read (``tfface build``, the RecordIO reader).
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    try:
        size = parse_image_size(image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}") from None
    crop = _crop_fraction(random_crop)
    if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) < 1):
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
    if training and deterministic and seed is None:
        raise ValueError("deterministic=True with training=True needs a seed (seed=None draws a random one)")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31 - 1))
    seed = int(seed)
    if repeat is None:
        epochs = None if training else 1
    elif repeat is True:
        epochs = None
    elif repeat is False:
        epochs = 1
    else:
        epochs = int(repeat)
        if epochs < 1:
            raise ValueError(f"repeat must be None, a bool or an int >= 1, got {repeat!r}")
    if drop_remainder is None:
        drop_remainder = bool(training)

    kind, what = describe_source(source)
    pipelines, pipeline_id = 1, 0
    base_seed = seed
    if input_context is not None:
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        # Different pipelines shuffle differently; they read different data anyway.
        seed = seed + 1_000_003 * pipeline_id

    if kind == "tfrecord":
        files = what
        shard_files = pipelines > 1 and len(files) >= pipelines
        if shard_files:
            files = files[pipeline_id::pipelines]
        items = tf.constant(files)
        labels = None
        n_items = len(files)
    elif kind == "recordio":
        # Every n-th record per pipeline, as for an image folder; a record is read by its byte
        # span, so the whole set is shuffled each epoch (a permutation, no shuffle buffer).
        spans = np.stack([what.offsets, what.ends], axis=1)[pipeline_id::pipelines]
        items = tf.constant(spans, tf.int64)
        labels = None
        n_items = len(spans)
        if n_items == 0:
            raise ValueError(f"RecordIO source {source!r} holds no image records for input pipeline {pipeline_id}")
        read_records = _recordio_reader(what)
    else:
        paths, labels_list, _ = what
        shard_files = pipelines > 1
        if shard_files:
            paths, labels_list = paths[pipeline_id::pipelines], labels_list[pipeline_id::pipelines]
        items = tf.constant(paths)
        labels = tf.constant(labels_list, tf.int32)
        n_items = len(paths)
    cycle = max(1, min(int(cycle_length), n_items))

    # Sharding by record needs every pipeline to see the records in the same order before
    # ds.shard: the same file order (base seed) and a deterministic interleave.
    record_shards = kind == "tfrecord" and pipelines > 1 and not shard_files

    def epoch_dataset(epoch):
        epoch_seed = seed * 7919 + epoch
        if kind == "tfrecord":
            ds = tf.data.Dataset.from_tensor_slices(items)
            if training:
                file_seed = (base_seed if record_shards else seed) * 7919 + epoch
                ds = ds.shuffle(n_items, seed=file_seed, reshuffle_each_iteration=False)
            in_order = bool(deterministic) or not training or record_shards
            parallel = {"num_parallel_calls": AUTOTUNE, "deterministic": in_order}
            ds = ds.interleave(
                lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20),
                cycle_length=cycle,
                block_length=1,
                **(parallel if cycle > 1 else {}),
            )
            if record_shards:
                ds = ds.shard(pipelines, pipeline_id)
        elif kind == "recordio":
            spans = items
            if training:
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(n_items, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(1, tf.int64)])
                )
                spans = tf.gather(items, order)
            # Batches of records with their positions straight away: no stage per record
            # before the read.
            first = epoch * _EPOCH_STRIDE

            def records(lo):
                hi = tf.minimum(lo + _PARSE_BATCH, n_items)
                return first + tf.range(lo, hi), spans[lo:hi]

            return tf.data.Dataset.range(0, n_items, _PARSE_BATCH).map(records)
        else:
            ds = tf.data.Dataset.from_tensor_slices((items, labels))
        if training and kind != "recordio":
            buffer = n_items if kind == "folder" else int(shuffle_buffer)
            if buffer > 1:
                ds = ds.shuffle(buffer, seed=epoch_seed + 1, reshuffle_each_iteration=False)
        # The element's position, offset by its epoch: one zip stage, no extra map per element.
        return ds.enumerate(start=epoch * _EPOCH_STRIDE)

    if epochs is None:
        epochs_ds = tf.data.Dataset.counter(int(start_epoch))
    else:
        epochs_ds = tf.data.Dataset.range(int(start_epoch), int(start_epoch) + epochs)
    ds = epochs_ds.flat_map(epoch_dataset)

    flips = training and bool(flip)
    element = _element_fn(size, training, crop, flips, color_jitter)
    flip_bits = _flip_bits(seed)
    seed_t = tf.constant(seed, tf.int64)
    check = _label_check(int(num_classes)) if num_classes is not None else (lambda label: label)
    in_order = bool(deterministic) or not training
    parallel = {"num_parallel_calls": num_parallel_calls, "deterministic": in_order}

    def no_flip(position):
        return tf.zeros_like(position, tf.bool)

    bits = flip_bits if flips else no_flip

    if kind == "tfrecord":
        # Per batch of records, vectorised: parse, label check and flip bits (a fraction of
        # their per-record cost); then per image only the decode (and the flip).
        spec = {"image": FEATURES["image"], "label": FEATURES["label"]}

        def parse(positions, records):
            ex = tf.io.parse_example(records, spec)
            return positions, ex["image"], check(tf.cast(ex["label"], tf.int32)), bits(positions)

        ds = ds.batch(_PARSE_BATCH).map(parse, **parallel).unbatch()

    elif kind == "recordio":
        # Per batch of records: one read (a Python call), the cut into images and the flip
        # bits; the reader drops records that do not read, labels out of range included.

        def read(positions, spans):
            images, labels, ok = read_records(spans[:, 0], spans[:, 1])
            positions = tf.boolean_mask(positions, ok)
            return positions, tf.boolean_mask(images, ok), tf.boolean_mask(labels, ok), bits(positions)

        # One reader (a Python call holds the GIL; parallel calls only contend for it), read
        # ahead of the decoding.
        ds = ds.map(read).prefetch(1).unbatch()

    if kind != "folder":

        def load(position, data, label, flip_bit):
            return element(data, tf.stack([seed_t, position]), flip_bit), label

    else:
        out_shape = (size[0], size[1], 3)

        def load(position, item):
            # An image file that is empty, truncated or not an image is skipped (and counted),
            # not decoded: the decoder's error would end the whole run.
            path, label = item
            data = tf.io.read_file(path)
            ok = _intact(data)

            def skip():
                deps = [] if skipped_counter is None else [skipped_counter.assign_add(1)]
                with tf.control_dependencies(deps):
                    return tf.zeros(out_shape, tf.uint8)

            key = tf.stack([seed_t, position])
            image = tf.cond(ok, lambda: element(data, key, bits(position)), skip)
            return image, check(label), ok

    ds = ds.map(load, **parallel)
    if kind == "folder":
        # Files that pass the check but still fail to decode are dropped too (TensorFlow logs
        # each one as a warning); they are not counted.
        ds = ds.ignore_errors(log_warning=True).filter(lambda image, label, ok: ok)
        ds = ds.map(lambda image, label, ok: (image, label))
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if prefetch:
        ds = ds.prefetch(prefetch)
    options = tf.data.Options()
    options.deterministic = bool(deterministic) or not training
    # Sharding is done above, by file or by record; auto-sharding would shard a second time.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def dataset_fn(source, global_batch_size, image_size, **kwargs):
    """A ``dataset_fn(input_context)`` for ``strategy.distribute_datasets_from_function``: each
    replica gets ``input_context.get_per_replica_batch_size(global_batch_size)`` images."""

    def fn(input_context):
        per_replica = input_context.get_per_replica_batch_size(int(global_batch_size))
        return make_dataset(source, per_replica, image_size, input_context=input_context, **kwargs)

    return fn


def distribute_dataset(strategy, source, global_batch_size, image_size, **kwargs):
    """``strategy.distribute_datasets_from_function`` over :func:`make_dataset`: a distributed
    dataset whose per-replica batches are ``global_batch_size / num_replicas``."""
    if int(global_batch_size) % strategy.num_replicas_in_sync:
        raise ValueError(
            f"global_batch_size {global_batch_size} is not divisible by the "
            f"{strategy.num_replicas_in_sync} replicas of {type(strategy).__name__}"
        )
    return strategy.distribute_datasets_from_function(dataset_fn(source, global_batch_size, image_size, **kwargs))
