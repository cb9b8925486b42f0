"""insightface IResNet-18/34/50/100 -> tfface ``iresnet18/34/50/100``.

Two importers:

* ``insightface_pth`` — arcface_torch state dicts (``model.pt``/``backbone.pth``; also a
  training checkpoint dict holding ``state_dict_backbone``, and keys prefixed ``module.``),
  read with ``torch.load(weights_only=True)``: no pickle global is ever resolved.
* ``insightface_onnx`` — insightface's ONNX models (``w600k_r50.onnx``, ``glintr100.onnx``, and
  what arcface_torch's ``torch2onnx.py`` writes), parsed with the ``onnx`` package. The graph is
  followed by its structure (Conv / BatchNormalization / PRelu / Add / Flatten / Gemm, in data
  order), so node and initializer names do not matter.

The mapping is exact (see ``tfface/backbones/iresnet.py``: same layers, same zero padding of 1,
same strides, batch-norm epsilon 1e-5):

* convolutions: PyTorch/ONNX ``(O, I, kh, kw)`` -> Keras ``(kh, kw, I, O)``;
* batch norm: ``weight, bias, running_mean, running_var`` -> ``gamma, beta, moving_mean,
  moving_variance`` (an epsilon other than 1e-5 in an ONNX file is moved into the variance:
  ``var + eps − 1e-5``, the same ``1/sqrt(var + eps)``);
* PReLU: ``(C,)`` (ONNX ``(C, 1, 1)``) -> ``alpha (1, 1, C)``;
* ``fc``: PyTorch flattens the 7×7×512 map in NCHW order, Keras in NHWC order, so the rows of
  the Keras kernel are the columns of ``fc.weight`` permuted: ``W.reshape(O, C, H, W)
  .transpose(2, 3, 1, 0).reshape(H·W·C, O)``;
* ``features`` (BatchNorm1d, weight frozen at 1) -> the frozen-scale batch norm ``features``.

Pixels: insightface feeds RGB images normalised as ``(x − 127.5) / 127.5`` (arcface_torch's
``Normalize(0.5, 0.5)`` and ``inference.py``; ``ArcFaceONNX``'s ``input_std = 127.5`` with
``swapRB=True``), tfface models normalise inside as ``(x − 127.5) / 128``. The stem convolution
has no bias and its padding is zero in both, so multiplying its kernel by ``128 / 127.5`` makes
the imported model take the same uint8 RGB pixels as insightface's, exactly. ``input_std``
overrides 127.5 (e.g. 128 for the MXNet-era models); an ONNX graph that normalises inside
(``Sub``/``Mul``/``Div``/``Add`` by constants before the first Conv, as insightface's MXNet
conversions do) is read instead, and must subtract 127.5.

Folded batch norm: ``torch.onnx.export`` in eval mode with constant folding (how insightface
exported its released files) merges every BN that follows a convolution into it
(``W' = W·γ/σ``, a bias ``b' = β − μ·γ/σ``). tfface keeps a BN after every convolution; for a
folded one the convolution takes ``W'`` and the BN becomes the identity plus the bias:
``gamma = 1, beta = b', moving_mean = 0, moving_variance = 1 − 1e-5`` (so ``1/sqrt(var + eps)``
is exactly 1 in float32). The imported model computes the same function; fine-tuning it in
training mode normalises those layers by batch statistics from these starting values. A Conv
with a bias followed by an unfolded BN has the bias moved into the BN's mean.
"""
import os
import re
import zipfile

import numpy as np

from tfface import registry
from tfface.interop.base import ImportError_

BN_EPSILON = 1e-5
TORCH_STD = 127.5  # insightface's (x - 127.5) / 127.5
VARIANTS = {
    (2, 2, 2, 2): "iresnet18",
    (3, 4, 6, 3): "iresnet34",
    (3, 4, 14, 3): "iresnet50",
    (3, 13, 30, 3): "iresnet100",
}
_MARKER = b"layer1.0.prelu.weight"


# --------------------------------------------------------------------------------------------
# the common part: named source tensors -> tfface layers


class _Param:
    """One source tensor bound for one tfface variable."""

    __slots__ = ("source", "array", "layer", "attr", "kind")

    def __init__(self, source, array, layer, attr, kind="vector"):
        self.source, self.array, self.layer, self.attr, self.kind = source, array, layer, attr, kind


def _bn_params(prefix_source, layer, weight, bias, mean, var, epsilon=BN_EPSILON):
    """The four BN tensors (``prefix_source`` names them in errors); epsilon moved into var."""
    var = np.asarray(var, np.float64)
    if epsilon != BN_EPSILON:
        var = var + (float(epsilon) - BN_EPSILON)
        if np.any(var < 0):
            raise ImportError_(
                f"{prefix_source[3]}: epsilon {epsilon} with variances below {BN_EPSILON - epsilon} "
                f"cannot be written with tfface's epsilon {BN_EPSILON}"
            )
    return [
        _Param(prefix_source[0], weight, layer, "gamma"),
        _Param(prefix_source[1], bias, layer, "beta"),
        _Param(prefix_source[2], mean, layer, "moving_mean"),
        _Param(prefix_source[3], var, layer, "moving_variance"),
    ]


def _identity_bn(source, layer, channels, bias=None):
    """The BN of a folded conv: identity plus ``bias``."""
    bias = np.zeros(channels, np.float32) if bias is None else bias
    one_minus_eps = np.float32(1.0) - np.float32(BN_EPSILON)
    return _bn_params(
        (f"{source} (folded: 1)", source, f"{source} (folded: 0)", f"{source} (folded: 1 - eps)"),
        layer,
        np.ones_like(bias, np.float32),
        bias,
        np.zeros_like(bias, np.float32),
        np.full(np.shape(bias), one_minus_eps, np.float32),
    )


def _source_shape(kind, var_shape):
    """The shape the source tensor must have for a Keras variable of ``var_shape``."""
    if kind == "conv":
        kh, kw, cin, cout = var_shape
        return (cout, cin, kh, kw)
    if kind == "fc":
        return (var_shape[1], var_shape[0])
    if kind == "prelu":
        return (var_shape[-1],)
    return tuple(var_shape)


def _convert(kind, array, var_shape, fmap):
    if kind == "conv":
        return array.transpose(2, 3, 1, 0)
    if kind == "fc":
        h, w, c = fmap
        out = array.shape[0]
        return array.reshape(out, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, out)
    return array.reshape(var_shape)


def _fit(model, params, variant):
    """Assign ``params`` to ``model``, in order; the first that does not fit raises naming it."""
    fmap = tuple(model.get_layer("output_flatten").input.shape[1:])
    seen = set()
    for p in params:
        try:
            layer = model.get_layer(p.layer)
        except ValueError:
            raise ImportError_(f"{p.source}: {variant} has no layer {p.layer!r}") from None
        var = getattr(layer, p.attr)
        array = np.asarray(p.array)
        if not np.issubdtype(array.dtype, np.floating):
            raise ImportError_(f"{p.source}: dtype {array.dtype}, expected floating point")
        want = _source_shape(p.kind, tuple(var.shape))
        if tuple(array.shape) != want:
            raise ImportError_(
                f"{p.source}: shape {tuple(array.shape)} does not fit {variant}'s "
                f"{p.layer}.{p.attr} (expects {want})"
            )
        if not np.all(np.isfinite(array)):
            raise ImportError_(f"{p.source}: holds NaN or infinite values")
        var.assign(_convert(p.kind, array.astype(np.float32), tuple(var.shape), fmap))
        seen.add((p.layer, p.attr))
    missing = [
        f"{layer.name}.{v.name}"
        for layer in model.layers
        for v in layer.weights
        if (layer.name, v.name) not in seen
    ]
    if missing:  # a bug in the mappings below, not in the file
        raise ImportError_(f"{variant}: no source tensor for {missing[0]}")
    return model


def _build(variant, fc_in, embedding_size, checks, options):
    """The tfface backbone for ``variant``; ``fc_in`` (= 512·h·w) fixes the input size.
    ``checks``: the caller's optional ``backbone``, ``embedding_size``, ``input_shape``, which
    must equal what the file holds."""
    from tfface import backbones

    side = int(round((fc_in / 512) ** 0.5))
    if fc_in % 512 or side * side * 512 != fc_in:
        raise ImportError_(f"fc: {fc_in} inputs is not 512·s·s (a square s×s×512 feature map)")
    input_shape = (16 * side, 16 * side, 3)
    held = {"backbone": variant, "embedding_size": int(embedding_size), "input_shape": input_shape}
    for name, value in checks.items():
        if value is not None and (tuple(value) if name == "input_shape" else value) != held[name]:
            raise ImportError_(f"the file holds {variant}, {name} {held[name]}; requested {value!r}")
    return backbones.get(variant, input_shape=input_shape, embedding_size=int(embedding_size), **options)


def _variant(depths, where):
    depths = tuple(depths)
    if depths not in VARIANTS:
        known = ", ".join(f"{v} {list(d)}" for d, v in VARIANTS.items())
        raise ImportError_(f"{where}: units per stage {list(depths)} match no tfface IResNet ({known})")
    return VARIANTS[depths]


def _options(dropout, sync_bn):
    return {"dropout": dropout, "sync_bn": sync_bn}


def _stem_scale(input_std):
    std = TORCH_STD if input_std is None else float(input_std)
    if not std > 0:
        raise ImportError_(f"input_std must be positive, got {input_std!r}")
    from tfface.backbones.common import PIXEL_SCALE

    return PIXEL_SCALE / std


# --------------------------------------------------------------------------------------------
# insightface_pth


def _torch_layer_names(depths):
    """(torch module prefix, tfface layer, kind) in forward order."""
    out = [("conv1", "stem_conv", "conv"), ("bn1", "stem_bn", "bn"), ("prelu", "stem_prelu", "prelu")]
    for s, depth in enumerate(depths, start=1):
        for u in range(depth):
            t, k = f"layer{s}.{u}", f"stage{s}_unit{u + 1}"
            out += [
                (f"{t}.bn1", f"{k}_bn1", "bn"),
                (f"{t}.conv1", f"{k}_conv1", "conv"),
                (f"{t}.bn2", f"{k}_bn2", "bn"),
                (f"{t}.prelu", f"{k}_prelu", "prelu"),
                (f"{t}.conv2", f"{k}_conv2", "conv"),
                (f"{t}.bn3", f"{k}_bn3", "bn"),
            ]
            if u == 0:
                out += [
                    (f"{t}.downsample.0", f"{k}_down_conv", "conv"),
                    (f"{t}.downsample.1", f"{k}_down_bn", "bn"),
                ]
    out += [("bn2", "output_bn", "bn"), ("fc", "output_fc", "fc"), ("features", "features", "bn")]
    return out


def torch_key_names(variant):
    """The arcface_torch state-dict keys of ``variant`` (``num_batches_tracked`` left out), in
    forward order."""
    depths = {v: d for d, v in VARIANTS.items()}[variant]
    keys = []
    for module, _, kind in _torch_layer_names(depths):
        if kind == "bn":
            keys += [f"{module}.{n}" for n in ("weight", "bias", "running_mean", "running_var")]
        elif kind == "fc":
            keys += [f"{module}.weight", f"{module}.bias"]
        else:
            keys.append(f"{module}.weight")
    return keys


def load_state_dict(src):
    """The backbone state dict of an arcface_torch file as ``{key: float32 numpy array}``.

    ``torch.load(weights_only=True)``: a pickle that names any global other than tensors and
    plain containers is refused. Accepts the bare state dict, a dict holding it under
    ``state_dict_backbone`` (arcface_torch's ``checkpoint_gpu_*.pt``) or ``state_dict``, and keys
    prefixed ``module.`` (a DistributedDataParallel wrapper)."""
    import torch

    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError and friends: say why, name the file
        raise ImportError_(f"{src}: not a weights-only PyTorch file ({type(err).__name__}: {err})") from err
    for key in ("state_dict_backbone", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ImportError_(f"{src}: holds a {type(obj).__name__}, not a state dict")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ImportError_(f"{src}: entry {key!r} is not a named tensor")
        name = key[len("module."):] if key.startswith("module.") else key
        if name.endswith("num_batches_tracked"):
            continue
        if not value.dtype.is_floating_point:
            raise ImportError_(f"{name}: dtype {value.dtype}, expected floating point")
        state[name] = value.detach().to(torch.float32).numpy()
    return state


def from_state_dict(
    state, backbone=None, dropout=0.0, sync_bn=False, input_std=None, embedding_size=None, input_shape=None
):
    """The tfface embedder holding the arcface_torch ``state`` (``{key: array}``); the depth
    comes from the ``layerN.M.`` keys, the embedding size from ``fc.weight``."""
    depths = []
    for s in range(1, 5):
        units = {int(m.group(1)) for k in state for m in [re.match(rf"layer{s}\.(\d+)\.", k)] if m}
        if not units:
            raise ImportError_(f"layer{s}.0.bn1.weight: missing (not an arcface_torch IResNet state dict)")
        depths.append(max(units) + 1)
    variant = _variant(depths, "layer1..layer4")
    if "fc.weight" not in state:
        raise ImportError_("fc.weight: missing")
    fc = np.asarray(state["fc.weight"])
    if fc.ndim != 2:
        raise ImportError_(f"fc.weight: shape {fc.shape}, expected (embedding_size, 512·7·7)")
    expected = torch_key_names(variant)
    for key in expected:
        if key not in state:
            raise ImportError_(f"{key}: missing from the state dict ({variant})")
    extra = [k for k in state if k not in set(expected)]
    if extra:
        raise ImportError_(f"{extra[0]}: unexpected in an {variant} state dict")
    checks = {"backbone": backbone, "embedding_size": embedding_size, "input_shape": input_shape}
    model = _build(variant, fc.shape[1], fc.shape[0], checks, _options(dropout, sync_bn))

    params = []
    for module, layer, kind in _torch_layer_names(depths):
        if kind == "bn":
            names = tuple(f"{module}.{n}" for n in ("weight", "bias", "running_mean", "running_var"))
            params += _bn_params(names, layer, *(state[n] for n in names))
        elif kind == "fc":
            params += [
                _Param("fc.weight", state["fc.weight"], layer, "kernel", "fc"),
                _Param("fc.bias", state["fc.bias"], layer, "bias"),
            ]
        elif kind == "conv":
            params.append(_Param(f"{module}.weight", state[f"{module}.weight"], layer, "kernel", "conv"))
        else:
            params.append(_Param(f"{module}.weight", state[f"{module}.weight"], layer, "alpha", "prelu"))
    # insightface's (x - 127.5)/127.5 from tfface's (x - 127.5)/128: scale the bias-free stem conv
    params[0].array = np.asarray(params[0].array, np.float32) * np.float32(_stem_scale(input_std))
    return _fit(model, params, variant)


def _head(src, size=1 << 20):
    with open(src, "rb") as f:
        return f.read(size)


def is_insightface_pth(src):
    """A PyTorch file (zip or legacy pickle) whose pickle names arcface_torch's keys."""
    if not os.path.isfile(src) or not str(src).endswith((".pth", ".pt", ".bin", ".ckpt")):
        return False
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as z:
                pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
                return bool(pkl) and _MARKER in z.read(pkl[0])
        return _MARKER in _head(src)
    except (OSError, zipfile.BadZipFile):
        return False


@registry.register("importer", "insightface_pth", inject=("src",), detect=is_insightface_pth)
def insightface_pth(
    src, backbone=None, dropout=0.0, sync_bn=False, input_std=None, embedding_size=None, input_shape=None
):
    """An arcface_torch IResNet-18/34/50/100 state dict (``.pth``/``.pt``) as a tfface embedder.

    Args:
      src: the file (``torch.save(backbone.state_dict())``, or a checkpoint holding
        ``state_dict_backbone``).
      backbone: optional; must equal the depth found in the file (``iresnet50`` ...).
      dropout, sync_bn: for the tfface backbone (fine-tuning); dropout is off at inference.
      input_std: the pixel scale the network was trained with (127.5, arcface_torch's).
      embedding_size, input_shape: optional checks (``tfface import``'s options): read from
        ``fc`` (512; 112×112×3).
    """
    return from_state_dict(
        load_state_dict(src), backbone, dropout, sync_bn, input_std, embedding_size, input_shape
    )


# --------------------------------------------------------------------------------------------
# insightface_onnx

_PASS = ("Identity", "Dropout")


class _Graph:
    """An ONNX graph's constants (initializers, Constant nodes, and the few ops on constants the
    exporters leave: Identity, Unsqueeze, Squeeze, Reshape, Cast) and its data flow."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.numpy_helper = numpy_helper
        graph = model.graph
        self.const = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.consumers = {}
        self.nodes = []
        for node in graph.node:
            if not self._fold(node):
                self.nodes.append(node)
                for name in node.input:
                    if name:
                        self.consumers.setdefault(name, []).append(node)
        inputs = [i.name for i in graph.input if i.name not in self.const]
        if len(inputs) != 1:
            raise ImportError_(f"graph inputs {inputs}: expected one image input")
        self.input = inputs[0]
        self.outputs = [o.name for o in graph.output]

    def attr(self, node, name, default=None):
        from onnx import helper

        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def _fold(self, node):
        op = node.op_type
        if op == "Constant":
            value = self.attr(node, "value")
            if value is None:
                raise ImportError_(f"node {node.name or node.output[0]}: Constant without a tensor value")
            self.const[node.output[0]] = self.numpy_helper.to_array(value)
            return True
        ins = [i for i in node.input if i]
        if not ins or not all(i in self.const for i in ins):
            return False
        x = self.const[ins[0]]
        if op in _PASS:
            y = x
        elif op in ("Unsqueeze", "Squeeze"):
            axes = self.attr(node, "axes")
            if axes is None and len(ins) > 1:
                axes = self.const[ins[1]].tolist()
            if op == "Unsqueeze":
                y = x
                for a in sorted(a % (x.ndim + len(axes)) for a in axes):
                    y = np.expand_dims(y, a)
            else:
                y = np.squeeze(x, axis=tuple(axes) if axes is not None else None)
        elif op == "Reshape":
            shape = [d if d != 0 else x.shape[i] for i, d in enumerate(self.const[ins[1]].tolist())]
            y = x.reshape(shape)
        elif op == "Cast":
            y = x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else x
        else:
            return False
        self.const[node.output[0]] = y
        return True

    def where(self, node):
        return f"node {node.name or node.output[0]!r} ({node.op_type})"

    def next(self, tensor):
        """The consumers of ``tensor``, looking through Identity and Dropout."""
        out = []
        for node in self.consumers.get(tensor, []):
            if node.op_type in _PASS:
                out += self.next(node.output[0])
            else:
                out.append(node)
        return out

    def one(self, tensor, ops, what):
        nodes = self.next(tensor)
        if len(nodes) != 1 or nodes[0].op_type not in ops:
            found = ", ".join(self.where(n) for n in nodes) or "nothing"
            raise ImportError_(f"{what}: expected {'/'.join(ops)} after tensor {tensor!r}, found {found}")
        return nodes[0]

    def constant(self, node, index, what):
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.const:
            raise ImportError_(f"{self.where(node)}: {what} (input {index}) is not a constant")
        return name, np.asarray(self.const[name])

    def data_input(self, node):
        data = [i for i in node.input if i and i not in self.const]
        if len(data) != 1:
            raise ImportError_(f"{self.where(node)}: expected one data input, found {data}")
        return data[0]


def _check_conv(g, node, kernel, stride):
    pads = list(g.attr(node, "pads", [0, 0, 0, 0]))
    want = [kernel // 2] * 4
    auto = g.attr(node, "auto_pad", b"NOTSET")
    checks = [
        ("strides", list(g.attr(node, "strides", [1, 1])), [stride, stride]),
        ("pads", pads, want),
        ("group", g.attr(node, "group", 1), 1),
        ("dilations", list(g.attr(node, "dilations", [1, 1])), [1, 1]),
        ("auto_pad", auto.decode() if isinstance(auto, bytes) else auto, "NOTSET"),
    ]
    for name, got, expected in checks:
        if got != expected:
            raise ImportError_(f"{g.where(node)}: {name} {got}, the IResNet expects {expected}")


def _conv_bn(g, tensor, conv_layer, bn_layer, kernel, stride, what, consume=None):
    """Conv (+ BN, or BN folded into the conv) starting at ``tensor`` (or the node ``consume``).
    Returns (params, output tensor, Conv node)."""
    conv = consume or g.one(tensor, ("Conv",), what)
    _check_conv(g, conv, kernel, stride)
    wname, w = g.constant(conv, 1, "the kernel")
    params = [_Param(wname, w, conv_layer, "kernel", "conv")]
    bias = g.constant(conv, 2, "the bias") if len(conv.input) > 2 and conv.input[2] else None
    out = conv.output[0]
    following = g.next(out)
    if len(following) == 1 and following[0].op_type == "BatchNormalization":
        bn = following[0]
        names, arrays = _bn_inputs(g, bn)
        if bias is not None:  # conv bias moved into the BN mean
            arrays[2] = np.asarray(arrays[2], np.float64) - bias[1]
        params += _bn_params(names, bn_layer, *arrays, epsilon=g.attr(bn, "epsilon", 1e-5))
        out = bn.output[0]
    else:
        name, b = bias if bias is not None else (f"{wname} (no bias)", None)
        params += _identity_bn(name, bn_layer, w.shape[0], b)
    return params, out, conv


def _bn(g, node, layer):
    names, arrays = _bn_inputs(g, node)
    return _bn_params(names, layer, *arrays, epsilon=g.attr(node, "epsilon", 1e-5))


def _bn_inputs(g, node):
    """The names and arrays of a BatchNormalization's scale, B, mean and var."""
    found = [g.constant(node, i, n) for i, n in enumerate(("scale", "B", "mean", "var"), start=1)]
    return tuple(n for n, _ in found), [a for _, a in found]


def _prelu_param(name, slope, layer, channels):
    """A PRelu slope: ``(C,)``, ``(C, 1, 1)`` or ``(1, C, 1, 1)`` as ``(C,)``; one shared slope
    is repeated per channel (the same function). Any other shape is left to fail naming it."""
    slope = np.asarray(slope, np.float32)
    if slope.size == 1:
        slope = np.full((channels,), slope.reshape(()), np.float32)
    elif slope.size == channels and sum(d != 1 for d in slope.shape) == 1:
        slope = slope.reshape(-1)
    return _Param(name, slope, layer, "alpha", "prelu")


def _preprocess(g, tensor):
    """Sub/Add/Mul/Div by constants before the first Conv: returns (tensor, a, b) with the
    graph computing ``a·x + b`` (per channel), or (tensor, None, None)."""
    a, b, found = np.float64(1.0), np.float64(0.0), False
    while True:
        nodes = g.next(tensor)
        if len(nodes) != 1 or nodes[0].op_type not in ("Sub", "Add", "Mul", "Div"):
            break
        node = nodes[0]
        if node.input[0] != tensor and node.op_type in ("Sub", "Div"):
            raise ImportError_(f"{g.where(node)}: constant {node.op_type.lower()} by the image")
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        if other not in g.const:
            raise ImportError_(f"{g.where(node)}: the second operand is not a constant")
        c = np.asarray(g.const[other], np.float64).reshape(-1)
        if node.op_type == "Sub":
            b = b - c
        elif node.op_type == "Add":
            b = b + c
        elif node.op_type == "Mul":
            a, b = a * c, b * c
        else:
            a, b = a / c, b / c
        found = True
        tensor = node.output[0]
    return (tensor, a, b) if found else (tensor, None, None)


def parse_onnx(path, input_std=None):
    """Read an insightface IResNet ONNX file into ``(variant, embedding_size, fc_in, params)``."""
    import onnx

    try:
        model = onnx.load(path)
    except Exception as err:
        raise ImportError_(f"{path}: not an ONNX model ({type(err).__name__}: {err})") from err
    g = _Graph(model)

    x, a, b = _preprocess(g, g.input)
    if a is None:
        scale = _stem_scale(input_std)
    else:
        if input_std is not None:
            raise ImportError_(f"{path}: the graph normalises its input itself; input_std does not apply")
        a = np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape))
        b = np.broadcast_to(b, a.shape)
        if np.ptp(a) > 1e-12 * np.abs(a).max() or not np.allclose(b, -127.5 * a, rtol=1e-6, atol=0):
            raise ImportError_(
                f"input preprocessing x·{a.tolist()} + {b.tolist()} is not (x − 127.5)·s, which "
                "is what tfface's models compute (with the zero padding after it)"
            )
        from tfface.backbones.common import PIXEL_SCALE

        scale = float(a.reshape(-1)[0]) * PIXEL_SCALE

    params, x, stem = _conv_bn(g, x, "stem_conv", "stem_bn", 3, 1, "stem")
    w = params[0]
    if w.array.ndim != 4 or w.array.shape[1] != 3:
        raise ImportError_(f"{w.source}: shape {w.array.shape}, expected (64, 3, 3, 3)")
    w.array = np.asarray(w.array, np.float32) * np.float32(scale)
    node = g.one(x, ("PRelu",), "stem")
    pname, slope = g.constant(node, 1, "the slope")
    params.append(_prelu_param(pname, slope, "stem_prelu", w.array.shape[0]))
    x = node.output[0]

    depths = []
    while True:
        nodes = g.next(x)
        bns = [n for n in nodes if n.op_type == "BatchNormalization"]
        if len(bns) != 1:
            raise ImportError_(
                f"tensor {x!r}: expected one BatchNormalization after it, found "
                f"{', '.join(g.where(n) for n in nodes) or 'nothing'}"
            )
        after = g.next(bns[0].output[0])
        if len(after) == 1 and after[0].op_type in ("Flatten", "Reshape", "Gemm", "MatMul"):
            if len(nodes) != 1:
                raise ImportError_(f"tensor {x!r}: the output block's input feeds {len(nodes)} nodes")
            break
        downs = [n for n in nodes if n.op_type == "Conv"]
        stage_start = bool(downs)
        if stage_start:
            depths.append(0)
        elif not depths:
            raise ImportError_(f"{g.where(bns[0])}: the first unit has no downsampling Conv")
        depths[-1] += 1
        s, u = len(depths), depths[-1]
        k = f"stage{s}_unit{u}"
        what = f"unit {u} of stage {s}"
        stride = 2 if stage_start else 1
        params += _bn(g, bns[0], f"{k}_bn1")
        p, y, _ = _conv_bn(g, bns[0].output[0], f"{k}_conv1", f"{k}_bn2", 3, 1, what)
        params += p
        node = g.one(y, ("PRelu",), what)
        pname, slope = g.constant(node, 1, "the slope")
        params.append(_prelu_param(pname, slope, f"{k}_prelu", p[0].array.shape[0]))
        p, y, _ = _conv_bn(g, node.output[0], f"{k}_conv2", f"{k}_bn3", 3, stride, what)
        params += p
        add = g.one(y, ("Add",), what)
        other = [i for i in add.input if i != y]
        if len(other) != 1:
            raise ImportError_(f"{g.where(add)}: inputs {list(add.input)}")
        if stage_start:
            if len(downs) != 1:
                raise ImportError_(f"tensor {x!r}: {len(downs)} Conv consumers, expected one shortcut")
            p, z, _ = _conv_bn(g, x, f"{k}_down_conv", f"{k}_down_bn", 1, 2, what, consume=downs[0])
            params += p
            if other[0] != z:
                raise ImportError_(f"{g.where(add)}: the shortcut {other[0]!r} is not the downsampling {z!r}")
        elif other[0] != x:
            raise ImportError_(f"{g.where(add)}: the shortcut {other[0]!r} is not the unit input {x!r}")
        x = add.output[0]
    variant = _variant(depths, "graph")

    params += _bn(g, bns[0], "output_bn")
    x = bns[0].output[0]
    node = g.one(x, ("Flatten", "Reshape", "Gemm", "MatMul"), "output")
    if node.op_type == "Flatten":
        if g.attr(node, "axis", 1) != 1:
            raise ImportError_(f"{g.where(node)}: axis {g.attr(node, 'axis')}, expected 1")
        x = node.output[0]
        node = g.one(x, ("Gemm", "MatMul"), "output")
    elif node.op_type == "Reshape":
        _, shape = g.constant(node, 1, "the shape")
        if shape.size != 2:
            raise ImportError_(f"{g.where(node)}: shape {shape.tolist()}, expected (batch, features)")
        x = node.output[0]
        node = g.one(x, ("Gemm", "MatMul"), "output")
    fname, fw = g.constant(node, 1, "the weight")
    fw = np.asarray(fw)
    if fw.ndim != 2:
        raise ImportError_(f"{fname}: shape {fw.shape}, expected 2-D")
    if node.op_type == "Gemm":
        for attr, want in (("alpha", 1.0), ("beta", 1.0), ("transA", 0)):
            if g.attr(node, attr, want) != want:
                raise ImportError_(f"{g.where(node)}: {attr} {g.attr(node, attr)}, expected {want}")
        if not g.attr(node, "transB", 0):
            fw = fw.T
        bias = g.constant(node, 2, "the bias") if len(node.input) > 2 and node.input[2] else None
        x = node.output[0]
    else:
        fw = fw.T
        x = node.output[0]
        adds = g.next(x)
        bias = None
        if len(adds) == 1 and adds[0].op_type == "Add":
            other = [i for i in adds[0].input if i != x]
            if other and other[0] in g.const:
                bias = (other[0], np.asarray(g.const[other[0]]).reshape(-1))
                x = adds[0].output[0]
    out_features = fw.shape[0]
    bname, barr = bias if bias is not None else (f"{fname} (no bias)", np.zeros(out_features, np.float32))
    params += [_Param(fname, fw, "output_fc", "kernel", "fc"), _Param(bname, barr, "output_fc", "bias")]
    following = g.next(x)
    if len(following) == 1 and following[0].op_type == "BatchNormalization":
        params += _bn(g, following[0], "features")
        x = following[0].output[0]
        following = g.next(x)
    else:
        params += _identity_bn(f"{fname} (features folded)", "features", out_features)
    if following or x not in g.outputs:
        raise ImportError_(
            f"tensor {x!r}: the embedding should be the graph output, found "
            f"{', '.join(g.where(n) for n in following) or 'an unused tensor'}"
        )
    return variant, out_features, fw.shape[1], params


def is_insightface_onnx(src):
    """An ``.onnx`` file whose graph (serialised before the weights) has PRelu nodes."""
    if not os.path.isfile(src) or not str(src).endswith(".onnx"):
        return False
    try:
        head = _head(src, 4 << 20)
    except OSError:
        return False
    return b"PRelu" in head and b"Conv" in head


@registry.register("importer", "insightface_onnx", inject=("src",), detect=is_insightface_onnx)
def insightface_onnx(
    src, backbone=None, dropout=0.0, sync_bn=False, input_std=None, embedding_size=None, input_shape=None
):
    """An insightface IResNet-18/34/50/100 ONNX model (``w600k_r50.onnx`` ...) as a tfface
    embedder; batch norm folded into the convolutions or not (see the module docstring).

    Args:
      src: the ``.onnx`` file.
      backbone: optional; must equal the depth found in the graph.
      dropout, sync_bn: for the tfface backbone (fine-tuning).
      input_std: the pixel scale for a graph without its own normalisation (127.5,
        insightface's ``ArcFaceONNX``).
      embedding_size, input_shape: optional checks, as for ``insightface_pth``.
    """
    variant, size, fc_in, params = parse_onnx(src, input_std)
    checks = {"backbone": backbone, "embedding_size": embedding_size, "input_shape": input_shape}
    model = _build(variant, fc_in, size, checks, _options(dropout, sync_bn))
    return _fit(model, params, variant)
