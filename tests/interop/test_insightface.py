"""insightface importers against insightface's own architecture, run by PyTorch and onnxruntime.

The reference network below is arcface_torch's ``backbones/iresnet.py`` (deepinsight/insightface,
``recognition/arcface_torch``) written out here with its module names, so its state-dict keys
are insightface's: ``conv1, bn1, prelu, layerN.M.{bn1,conv1,bn2,prelu,conv2,bn3,downsample.0/1},
bn2, fc, features``. Every weight, BN statistic and PReLU slope is random (seeded), the model is
in eval mode and takes insightface's input: RGB, NCHW, ``(x − 127.5) / 127.5``. tfface takes the
same uint8-range pixels, NHWC.
"""
import os
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from torch import nn  # noqa: E402

from tfface.interop import detect_format, import_weights  # noqa: E402
from tfface.interop.importers import insightface  # noqa: E402

TOL = 1e-4
DEPTHS = {"iresnet18": [2, 2, 2, 2], "iresnet50": [3, 4, 14, 3], "iresnet100": [3, 13, 30, 3]}


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    fc_scale = 7 * 7

    def __init__(self, layers, dropout=0.0, num_features=512):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0], 2)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def _make_layer(self, planes, blocks, stride):
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=1e-05)
        )
        layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        return self.features(self.fc(x))


def _randomise(model, seed):
    """Every float tensor random: conv/fc weights, BN weight/bias/mean, positive variances,
    PReLU slopes (features.weight stays 1, as insightface freezes it). Scaled so that the
    embeddings are of order 1 and depend on the image (two random images: cosine ~0.6)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.dtype.is_floating_point or key == "features.weight":
                continue
            uniform = torch.rand(value.shape, generator=gen)
            if key.endswith("running_var"):
                value.copy_(uniform * 0.5 + 0.5)
            elif "prelu" in key:
                value.copy_(uniform * 0.5)
            elif value.ndim == 1 and key.endswith(".weight"):  # BN scale
                value.copy_(uniform * 0.5 + 0.5)
            elif value.ndim == 1:  # BN shift and mean, fc bias
                value.copy_(torch.randn(value.shape, generator=gen) * 0.05)
            else:  # conv kernels: unit gain; fc: 0.3 (embeddings of order 1, cosine ~0.6 between images)
                gain = 0.3 if key == "fc.weight" else 1.0
                value.copy_(torch.randn(value.shape, generator=gen) * gain / value[0].numel() ** 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def folded_onnx(r18):
    model, _, _, folder = r18
    return _onnx(model, folder / "r18_folded.onnx", True)


@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    """(torch model, images uint8-range NHWC float32, torch embeddings, folder)."""
    torch.manual_seed(0)
    model = _randomise(IResNet(DEPTHS["iresnet18"]), seed=0)
    images = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy((images.transpose(0, 3, 1, 2) - 127.5) / 127.5)).numpy()
    return model, images, ref, tmp_path_factory.mktemp("insightface")


def _onnx(model, path, folded):
    torch.onnx.export(
        model,
        torch.zeros(1, 3, 112, 112),
        str(path),
        input_names=["data"],
        opset_version=11,
        dynamo=False,  # the TorchScript exporter, as arcface_torch's torch2onnx.py used
        do_constant_folding=folded,
        dynamic_axes={"data": {0: "batch"}},
    )
    return path


def _ort(path, images):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = ((images.transpose(0, 3, 1, 2) - 127.5) / 127.5).astype(np.float32)
    return session.run(None, {"data": x})[0]


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_pth_matches_torch(r18):
    model, images, ref, folder = r18
    path = folder / "backbone.pth"
    torch.save(model.state_dict(), path)
    assert detect_format(str(path)) == "insightface_pth"
    out = import_weights(str(path), out=str(folder / "r18.keras"))
    assert out.name == "iresnet18" and out.output.shape[-1] == 512
    got = out(images, training=False).numpy()
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
    assert (folder / "r18.keras").exists()


def test_pth_checkpoint_dict_and_ddp_prefix(r18):
    """arcface_torch's checkpoint_gpu_0.pt keeps the backbone under state_dict_backbone; a DDP
    module's keys carry ``module.``: both read as the bare state dict."""
    model, _, _, folder = r18
    path = folder / "checkpoint_gpu_0.pt"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "global_step": 10, "state_dict_backbone": state}, path)
    assert detect_format(str(path)) == "insightface_pth"
    got = insightface.load_state_dict(str(path))
    want = {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize("folded", [True, False], ids=["bn-folded", "bn-separate"])
def test_onnx_matches_torch_and_onnxruntime(r18, folded_onnx, folded):
    model, images, ref, folder = r18
    path = folded_onnx if folded else _onnx(model, folder / "r18_separate.onnx", False)
    # the two forms insightface files come in: BN merged into Conv (the released files) or not
    n_bn = _ops(path).count("BatchNormalization")
    assert n_bn == (1 + 8 + 1 if folded else 1 + 8 * 3 + 4 + 1 + 1)
    runtime = _ort(path, images)
    np.testing.assert_allclose(runtime, ref, atol=TOL, rtol=0)
    assert detect_format(str(path)) == "insightface_onnx"
    got = import_weights(str(path))(images, training=False).numpy()
    np.testing.assert_allclose(got, runtime, atol=TOL, rtol=0)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)


def test_onnx_with_input_normalisation_nodes(r18, folded_onnx):
    """MXNet-era insightface graphs normalise inside ((x − 127.5)·0.0078125 by Sub/Mul nodes) and
    take raw pixels."""
    _, images, _, folder = r18
    m = onnx.load(str(folded_onnx))
    g = m.graph
    g.initializer.extend([
        onnx.numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
        onnx.numpy_helper.from_array(np.array(1 / 128, np.float32), "scale"),
    ])
    for node in g.node:
        for i, name in enumerate(node.input):
            if name == "data":
                node.input[i] = "scaled"
    g.node.insert(0, onnx.helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="_mulscalar0"))
    g.node.insert(0, onnx.helper.make_node("Sub", ["data", "mean"], ["centred"], name="_minusscalar0"))
    path = folder / "mx.onnx"
    onnx.save(m, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runtime = session.run(None, {"data": images.transpose(0, 3, 1, 2).copy()})[0]
    got = import_weights(str(path))(images, training=False).numpy()
    np.testing.assert_allclose(got, runtime, atol=TOL, rtol=0)


def test_wrong_shape_names_the_tensor(r18):
    model, _, _, folder = r18
    state = model.state_dict()
    state["layer2.1.conv1.weight"] = torch.zeros(128, 64, 3, 3)
    path = folder / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"layer2\.1\.conv1\.weight: shape \(128, 64, 3, 3\)"):
        import_weights(str(path))
    del state["layer2.1.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"layer2\.1\.conv1\.weight: missing"):
        import_weights(str(path))


def test_onnx_wrong_shape_names_the_initializer(r18, folded_onnx):
    folder = r18[3]
    m = onnx.load(str(folded_onnx))
    fc = next(n for n in m.graph.node if n.op_type == "Gemm")
    name = fc.input[1]
    init = next(i for i in m.graph.initializer if i.name == name)
    init.CopyFrom(onnx.numpy_helper.from_array(np.zeros((512, 100), np.float32), name))
    bad = folder / "bad.onnx"
    onnx.save(m, str(bad))
    with pytest.raises(ValueError, match=rf"fc: 100 inputs|{name}: shape"):
        import_weights(str(bad))


class _Touch:
    """A pickle global: unpickling it would create a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_pickle_with_a_global_is_refused(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3), "x": _Touch(str(marker))}, path)
    with pytest.raises(ValueError, match="weights-only"):
        import_weights(str(path), format="insightface_pth")
    assert not marker.exists()


@pytest.mark.parametrize("variant", ["iresnet50", "iresnet100"])
def test_key_layout_of_deeper_models(variant):
    """insightface's r50/r100 keys (module built on the meta device: no weights, no forward) are
    exactly the keys the importer reads, in the same order."""
    with torch.device("meta"):
        model = IResNet(DEPTHS[variant])
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    assert insightface.torch_key_names(variant) == keys


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["iresnet50", "iresnet100"])
def test_deeper_models_match_torch(variant, tmp_path):
    """Slow (a 44M/65M-parameter import and forward pass): r50/r100 .pth -> tfface."""
    model = _randomise(IResNet(DEPTHS[variant]), seed=1)
    images = np.random.default_rng(1).integers(0, 256, (1, 112, 112, 3)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy((images.transpose(0, 3, 1, 2) - 127.5) / 127.5)).numpy()
    path = tmp_path / f"{variant}.pth"
    torch.save(model.state_dict(), path)
    got = import_weights(str(path), backbone=variant)(images, training=False).numpy()
    # random weights let the 30-unit stages' residual stream grow (r100 components reach ~50):
    # 1e-4 relative to the largest component (float32 rounding over 100 layers)
    np.testing.assert_allclose(got, ref, atol=TOL * max(1.0, float(np.abs(ref).max())), rtol=0)


def test_backbone_option_must_match(r18):
    model, _, _, folder = r18
    path = folder / "backbone.pth"
    if not path.exists():
        torch.save(model.state_dict(), path)
    with pytest.raises(ValueError, match="holds iresnet18, backbone iresnet18; requested 'iresnet50'"):
        import_weights(str(path), backbone="iresnet50")
    with pytest.raises(ValueError, match=r"input_shape \(112, 112, 3\); requested \(96, 96, 3\)"):
        import_weights(str(path), input_shape=(96, 96, 3))
    assert os.path.getsize(path) > 0
