"""facenet-pytorch ``InceptionResnetV1`` state dicts (``.pt``/``.pth``) -> tfface
``inception_resnet_v1``.

The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only; a
pickle naming any other global is refused by torch). Accepted: the state dict itself, one
wrapped as ``{"state_dict": ...}``, and keys prefixed ``module.`` (``DataParallel``).

Key names (facenet-pytorch 2.x, ``models/inception_resnet_v1.py``): ``conv2d_1a`` …
``conv2d_4b``, ``repeat_1.{0-4}`` (Block35), ``mixed_6a``, ``repeat_2.{0-9}`` (Block17),
``mixed_7a``, ``repeat_3.{0-4}`` (Block8), ``block8``, ``last_linear`` (1792×D, no bias),
``last_bn``; each ``BasicConv2d`` is ``<p>.conv.weight`` (OIHW, transposed to HWIO) and
``<p>.bn.{weight,bias,running_mean,running_var}`` (eps 1e-3 as facenet), each block projection
``<p>.conv2d.{weight,bias}``. ``logits.*`` (the classifier) and ``*.num_batches_tracked`` are
ignored. facenet-pytorch's batch norms have a scale γ (1 in the published models, converted
from facenet); tfface's have none, so γ is folded into the moving variance
(:mod:`tfface.interop.facenet_layout`). facenet-pytorch expects ``(x − 127.5)/128`` inputs
(its ``fixed_image_standardization``), tfface's in-model normalisation.
"""
import os
import zipfile

import numpy as np

from tfface import registry

EPSILON = 1e-3
_MARKER = b"conv2d_1a.conv.weight"


def torch_prefixes():
    """tfface layer name -> facenet-pytorch module path, for every weight-holding layer."""
    out = {
        "Conv2d_1a_3x3": "conv2d_1a", "Conv2d_2a_3x3": "conv2d_2a", "Conv2d_2b_3x3": "conv2d_2b",
        "Conv2d_3b_1x1": "conv2d_3b", "Conv2d_4a_3x3": "conv2d_4a", "Conv2d_4b_3x3": "conv2d_4b",
        "Bottleneck": "last_linear",
    }

    def block(t, p, branches):
        for b, convs in enumerate(branches):
            for j, conv in enumerate(convs):
                out[f"{t}_b{b}_{conv}"] = f"{p}.branch{b}" + (f".{j}" if len(convs) > 1 else "")
        out[f"{t}_up"] = f"{p}.conv2d"

    for i in range(5):
        block(f"Repeat_block35_{i + 1}", f"repeat_1.{i}",
              [["1x1"], ["0a_1x1", "0b_3x3"], ["0a_1x1", "0b_3x3", "0c_3x3"]])
    for i in range(10):
        block(f"Repeat_1_block17_{i + 1}", f"repeat_2.{i}", [["1x1"], ["0a_1x1", "0b_1x7", "0c_7x1"]])
    for i in range(5):
        block(f"Repeat_2_block8_{i + 1}", f"repeat_3.{i}", [["1x1"], ["0a_1x1", "0b_1x3", "0c_3x1"]])
    block("Block8", "block8", [["1x1"], ["0a_1x1", "0b_1x3", "0c_3x1"]])
    # Mixed_6a/7a have no projection; branch0 of Mixed_7a is a Sequential.
    for t, p, branches in (
        ("Mixed_6a", "mixed_6a", [["1a_3x3"], ["0a_1x1", "0b_3x3", "1a_3x3"]]),
        ("Mixed_7a", "mixed_7a", [["0a_1x1", "1a_3x3"], ["0a_1x1", "1a_3x3"], ["0a_1x1", "0b_3x3", "1a_3x3"]]),
    ):
        for b, convs in enumerate(branches):
            for j, conv in enumerate(convs):
                out[f"{t}_b{b}_{conv}"] = f"{p}.branch{b}" + (f".{j}" if len(convs) > 1 else "")
    return out


def is_facenet_pytorch(src):
    """A torch zip archive (``.pt``/``.pth``) whose pickle names facenet-pytorch's first conv."""
    if not (os.path.isfile(src) and src.endswith((".pt", ".pth"))):
        return False
    try:
        with zipfile.ZipFile(src) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return bool(pickles) and _MARKER in archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError):
        return False


def load_state_dict(src):
    """``name -> np.ndarray`` from a torch file, with ``weights_only=True``."""
    import torch

    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's UnpicklingError names the refused global
        raise ValueError(f"{src}: refused or unreadable (read with weights_only=True): {err}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{src}: expected a state dict (name -> tensor), got {type(state).__name__}")
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = key[len("module."):] if key.startswith("module.") else key
        out[key] = value.detach().cpu().numpy()
    return out


def load_facenet_pytorch_tensors(model, arrays, where):
    """Fill ``model`` from a facenet-pytorch state dict (``name -> np.ndarray``)."""
    from tfface.interop.facenet_layout import PlanLoader, TensorSource, _error, conv_layers

    source = TensorSource({k: v.shape for k, v in arrays.items()}, arrays.__getitem__, where)
    load = PlanLoader(model, source, EPSILON)
    prefixes = torch_prefixes()
    conv_t = lambda w: np.transpose(w, (2, 3, 1, 0)) if w.ndim == 4 else w  # noqa: E731
    for name, kernel_shape, has_bias in conv_layers(model):
        p = prefixes[name]
        if name == "Bottleneck":
            weights = [load.tensor(f"{p}.weight", kernel_shape, name, lambda w: w.T)]
            bn, bn_p = "Bottleneck_bn", "last_bn"
        elif has_bias:
            load.set(name, [load.tensor(f"{p}.weight", kernel_shape, name, conv_t),
                            load.tensor(f"{p}.bias", kernel_shape[-1:], name)])
            continue
        else:
            weights = [load.tensor(f"{p}.conv.weight", kernel_shape, name, conv_t)]
            bn, bn_p = f"{name}_bn", f"{p}.bn"
        load.set(name, weights)
        channels = kernel_shape[-1:]
        beta, mean, var = (load.tensor(f"{bn_p}.{leaf}", channels, bn)
                           for leaf in ("bias", "running_mean", "running_var"))
        gamma_name = f"{bn_p}.weight"
        load.batch_norm(bn, beta, mean, var, gamma=load.tensor(gamma_name, channels, bn), gamma_name=gamma_name)
    unused = sorted(
        k for k in source.names() - load.used
        if not k.startswith("logits.") and not k.endswith("num_batches_tracked")
    )
    if unused:
        raise _error(
            f"{where}: tensor {unused[0]!r} has no place in tfface's inception_resnet_v1"
            + (f" (and {len(unused) - 1} more)" if len(unused) > 1 else "")
        )
    return model


@registry.register("importer", "facenet_pytorch", inject=("src",), detect=is_facenet_pytorch)
def facenet_pytorch(src, embedding_size=None, input_shape=None):
    """facenet-pytorch ``InceptionResnetV1`` state dict -> tfface ``inception_resnet_v1``
    embedder; the embedding size is read from ``last_linear.weight`` (``embedding_size``: an
    optional check)."""
    from tfface import backbones
    from tfface.interop.facenet_layout import _error

    arrays = load_state_dict(src)
    key = "last_linear.weight"
    if key not in arrays:
        raise _error(f"{src}: tensor {key!r} is missing; not a facenet-pytorch InceptionResnetV1")
    shape = tuple(arrays[key].shape)
    if len(shape) != 2 or shape[1] != 1792:
        raise _error(f"{src}: tensor {key!r} has shape {shape}, expected (D, 1792)")
    if embedding_size is not None and int(embedding_size) != shape[0]:
        raise _error(
            f"{src}: tensor {key!r} has shape {shape}: the model's embedding size is {shape[0]}, "
            f"not the requested {embedding_size}"
        )
    model = backbones.get(
        "inception_resnet_v1",
        input_shape=None if input_shape is None else tuple(input_shape),
        embedding_size=shape[0],
    )
    return load_facenet_pytorch_tensors(model, arrays, src)
