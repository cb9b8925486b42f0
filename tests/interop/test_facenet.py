"""facenet weights -> tfface: the imported embedder against the third party's own runtime.

* ``facenet_pb``: facenet's real CASIA-WebFace 20180408-102900 model (a frozen graph, batch norm
  folded) against TensorFlow running that same graph (``tf.compat.v1`` graph import + Session),
  on real photos aligned by ``tfface.align`` in facenet mode (160×160).
* ``facenet_ckpt``: a checkpoint written here with ``tf.compat.v1`` variables under facenet's
  names, holding the real model's weights *unfolded* (random batch-norm statistics chosen so the
  network computes exactly what the graph computes), against the same TensorFlow reference. It
  proves the checkpoint reading and the unfolded batch-norm mapping on facenet's variable names
  (those of facenet's slim scopes: ``<conv>/weights``, ``<conv>/BatchNorm/{beta,moving_mean,
  moving_variance}``, as the graph shows for the bottleneck); not that a checkpoint written by
  facenet's own training script has no further variable (none is known to, other than the
  ignored ``Logits``/``global_step``, which this one includes).
* ``facenet_pytorch``: facenet-pytorch's own ``InceptionResnetV1`` with seeded random weights and
  batch-norm statistics (its pretrained files download at run time), through ``tfface import``.
"""
import os
import pickle

import numpy as np
import pytest

FACES = ("astronaut", "camera", "grace_hopper")


def _l2(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _photos():
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {
        "astronaut": skimage.data.astronaut(),
        "camera": np.stack([skimage.data.camera()] * 3, axis=-1),
        "grace_hopper": hopper,
    }


@pytest.fixture(scope="module")
def faces():
    """The three real faces aligned as facenet aligns them (160×160, margin 32): uint8 (3, 160,
    160, 3)."""
    from tfface.align import FaceAligner

    aligner = FaceAligner("facenet")
    crops = []
    for name, photo in _photos().items():
        face = aligner.align(photo)
        assert face is not None, f"no face found in {name}"
        crops.append(face.image)
    return np.stack(crops)


@pytest.fixture(scope="module")
def graph_reference(facenet_graph, faces):
    """TensorFlow running facenet's graph itself: (pre-normalisation bottleneck, embeddings:0)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(facenet_graph, "rb") as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    feeds = {}
    names = {op.name for op in graph.get_operations()}
    if "phase_train" in names:  # facenet's own frozen graphs; this one has it folded away
        feeds["phase_train:0"] = False
    raw, emb = [], []
    with tf.compat.v1.Session(graph=graph) as sess:
        for image in faces.astype(np.float32):  # the graph's input is fixed at batch 1
            feeds["input:0"] = ((image - 127.5) / 128.0)[None]  # fixed_image_standardization
            r, e = sess.run(["InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1:0", "embeddings:0"], feeds)
            raw.append(r)
            emb.append(e)
    return np.concatenate(raw), np.concatenate(emb)


def _embed(model, images):
    return np.asarray(model(images.astype(np.float32), training=False))


def test_facenet_pb_equals_tensorflow_on_real_faces(facenet_graph, faces, graph_reference):
    from tfface.interop import detect_format, import_weights

    assert detect_format(facenet_graph) == "facenet_pb"
    model = import_weights(facenet_graph)
    assert model.output_shape == (None, 512)
    assert model.count_params() == 23_497_424  # facenet's figure
    raw_ref, emb_ref = graph_reference
    raw = _embed(model, faces)
    print("facenet_pb max |Δ| raw", np.abs(raw - raw_ref).max(), "normalised", np.abs(_l2(raw) - emb_ref).max())
    np.testing.assert_allclose(_l2(raw), emb_ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(raw, raw_ref, rtol=0, atol=1e-5 * np.abs(raw_ref).max())
    # The three people are told apart: each face is closest to itself only.
    cos = _l2(raw) @ _l2(raw).T
    assert np.all(cos[~np.eye(3, dtype=bool)] < 0.5)


def _unfolded_variables(graph_path, rng):
    """facenet's variables for the real model with batch norm unfolded: for each folded conv
    (kernel ``w·s``, bias ``c``) random statistics ``μ, σ²`` and ``w``, ``β`` such that
    ``BN(conv_w(x)) = conv_{w·s}(x) + c`` with ``s = 1/√(σ²+ε)``."""
    from tfface.interop.importers.facenet import graph_constants

    consts = graph_constants(graph_path)
    out = {}
    for name, value in consts.items():
        if name.endswith("/Conv2D_bn_offset"):
            scope = name[: -len("/Conv2D_bn_offset")]
            channels = value.shape[0]
            mean = rng.normal(0, 0.5, channels).astype(np.float32)
            var = rng.uniform(0.5, 2.0, channels).astype(np.float32)
            s = 1.0 / np.sqrt(var.astype(np.float64) + 1e-3)
            out[f"{scope}/weights"] = (consts[f"{scope}/weights"] / s).astype(np.float32)
            out[f"{scope}/BatchNorm/beta"] = (value + mean * s).astype(np.float32)
            out[f"{scope}/BatchNorm/moving_mean"] = mean
            out[f"{scope}/BatchNorm/moving_variance"] = var
        elif name.endswith(("/biases", "Bottleneck/weights")) or "Bottleneck/BatchNorm/moving" in name or name.endswith("BatchNorm/beta"):
            out[name] = value
        elif name.endswith("/weights") and f"{name[:-len('/weights')]}/biases" in consts:
            out[name] = value  # the blocks' projections (bias, no norm)
    out["Logits/weights"] = rng.normal(size=(512, 10)).astype(np.float32)  # ignored
    out["Logits/biases"] = np.zeros(10, np.float32)
    return out


def _write_tf1_checkpoint(variables, prefix):
    """A TF1 checkpoint as facenet's ``tf.train.Saver`` writes it (``.meta``, ``.index``,
    ``.data``), the values loaded into the variables rather than baked into the graph."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        feeds = {}
        for name, value in variables.items():
            placeholder = tf.compat.v1.placeholder(tf.float32, value.shape)
            tf.compat.v1.Variable(placeholder, name=name)
            feeds[placeholder] = value
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer(), feeds)
            saver.save(sess, prefix, global_step=90)


@pytest.mark.slow  # writes a 94 MB checkpoint and builds a second full model (~1-3 min here)
def test_facenet_ckpt_unfolded_equals_tensorflow(facenet_graph, faces, graph_reference, tmp_path):
    from tfface.interop import detect_format, import_weights

    variables = _unfolded_variables(facenet_graph, np.random.default_rng(0))
    folder = tmp_path / "20180408-102900"
    folder.mkdir()
    _write_tf1_checkpoint(variables, str(folder / "model-20180408-102900.ckpt"))
    assert sorted(p.suffix for p in folder.iterdir() if p.name.startswith("model-")) == [
        ".data-00000-of-00001", ".index", ".meta"]
    assert detect_format(str(folder)) == "facenet_ckpt"
    model = import_weights(str(folder))
    raw_ref, emb_ref = graph_reference
    raw = _embed(model, faces)
    print("facenet_ckpt max |Δ| raw", np.abs(raw - raw_ref).max(), "normalised", np.abs(_l2(raw) - emb_ref).max())
    np.testing.assert_allclose(_l2(raw), emb_ref, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def scratch_model():
    """One 512-d inception_resnet_v1 for the error tests (its weights get partly overwritten)."""
    from tfface import backbones

    return backbones.get("inception_resnet_v1")


def test_facenet_wrong_shape_names_the_first_tensor(scratch_model, tmp_path):
    from tfface.interop import import_weights
    from tfface.interop.facenet_layout import TensorSource
    from tfface.interop.importers.facenet import load_facenet_tensors

    rng = np.random.default_rng(1)
    variables = {
        "InceptionResnetV1/Bottleneck/weights": rng.normal(size=(1792, 128)).astype(np.float32),
        "InceptionResnetV1/Conv2d_1a_3x3/weights": rng.normal(size=(3, 3, 3, 32)).astype(np.float32),
        "InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/beta": np.zeros(32, np.float32),
        "InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/moving_mean": np.zeros(32, np.float32),
        "InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/moving_variance": np.ones(32, np.float32),
        "InceptionResnetV1/Conv2d_2a_3x3/weights": rng.normal(size=(3, 3, 32, 16)).astype(np.float32),
        "InceptionResnetV1/Conv2d_2b_3x3/weights": rng.normal(size=(3, 3, 7, 64)).astype(np.float32),
    }
    source = TensorSource({k: v.shape for k, v in variables.items()}, variables.__getitem__, "ckpt")
    with pytest.raises(ValueError, match=r"ckpt: tensor 'InceptionResnetV1/Conv2d_2a_3x3/weights' has shape \(3, 3, 32, 16\), expected \(3, 3, 32, 32\)"):
        load_facenet_tensors(scratch_model, source)
    del variables["InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/beta"]
    with pytest.raises(ValueError, match=r"'InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/beta' is missing"):
        load_facenet_tensors(scratch_model, source.__class__(
            {k: v.shape for k, v in variables.items()}, variables.__getitem__, "ckpt"))
    # Through the importer: the embedding size is read from the file (128-d: the 2017 layout).
    _write_tf1_checkpoint({"InceptionResnetV1/Bottleneck/weights": variables["InceptionResnetV1/Bottleneck/weights"]},
                          str(tmp_path / "model-20170512-110547.ckpt"))
    with pytest.raises(ValueError, match=r"'InceptionResnetV1/Bottleneck/weights' has shape \(1792, 128\): the model's embedding size is 128, not the requested 512"):
        import_weights(str(tmp_path), embedding_size=512)


# ---------------------------------------------------------------------------------------------
# facenet-pytorch


@pytest.fixture(scope="module")
def torch_net(facenet_pytorch_module):
    """facenet-pytorch's InceptionResnetV1, seeded random weights, random BN statistics and
    scales (γ > 0), eval mode."""
    import torch

    torch.manual_seed(0)
    net = facenet_pytorch_module.InceptionResnetV1(pretrained=None).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return net


def _torch_embed(net, images):
    import torch

    x = torch.from_numpy(((images.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        return net(x).numpy()  # L2-normalised by facenet-pytorch


@pytest.fixture(scope="module")
def torch_file(torch_net, tmp_path_factory):
    import torch

    pt = str(tmp_path_factory.mktemp("facenet_pytorch") / "facenet_pytorch.pt")
    torch.save(torch_net.state_dict(), pt)
    return pt


def _test_images(faces):
    rng = np.random.default_rng(0)
    return np.concatenate([faces, rng.integers(0, 256, size=(2, 160, 160, 3))]).astype(np.uint8)


def test_facenet_pytorch_state_dict_equals_torch(torch_net, torch_file, faces):
    from tfface.interop import detect_format, import_weights

    assert detect_format(torch_file) == "facenet_pytorch"
    model = import_weights(torch_file)
    images = _test_images(faces)
    ref = _torch_embed(torch_net, images)
    got = _l2(_embed(model, images))
    print("facenet_pytorch max |Δ| normalised", np.abs(got - ref).max())
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


@pytest.mark.slow  # a full model built, saved (94 MB) and reloaded (~1 min here)
def test_tfface_import_command_writes_a_loadable_embedder(torch_net, torch_file, faces, tmp_path, capsys):
    import keras

    from tfface.cli import main

    out = str(tmp_path / "facenet.keras")
    assert main(["import", torch_file, out, "--embedding-size", "512"]) == 0
    assert "23,497,424 parameters" in capsys.readouterr().out
    assert main(["import", torch_file, out]) == 2  # no clobbering without --overwrite
    images = _test_images(faces)
    got = _l2(_embed(keras.models.load_model(out), images))
    np.testing.assert_allclose(got, _torch_embed(torch_net, images), rtol=0, atol=1e-4)


def test_tfface_import_command_reports_a_misfit(torch_file, tmp_path, capsys):
    from tfface.cli import main

    out = str(tmp_path / "x.keras")
    assert main(["import", torch_file, out, "--embedding-size", "128"]) == 2
    assert "'last_linear.weight' has shape (512, 1792)" in capsys.readouterr().err
    assert main(["import", torch_file, str(tmp_path / "x.h5")]) == 2
    assert not os.path.exists(out)


def test_facenet_pytorch_wrong_shape_names_the_first_tensor(torch_net, scratch_model):
    from tfface.interop.importers.facenet_pytorch import load_facenet_pytorch_tensors

    state = {k: v.numpy() for k, v in torch_net.state_dict().items()}
    good = dict(state)
    state["repeat_1.2.branch1.1.conv.weight"] = np.zeros((32, 32, 3, 1), np.float32)
    state["repeat_2.0.conv2d.bias"] = np.zeros(7, np.float32)
    with pytest.raises(ValueError, match=r"pt: tensor 'repeat_1\.2\.branch1\.1\.conv\.weight' has shape \(3, 1, 32, 32\), expected \(3, 3, 32, 32\)"):
        load_facenet_pytorch_tensors(scratch_model, state, "pt")
    good["repeat_1.5.conv2d.weight"] = np.zeros((256, 96, 1, 1), np.float32)  # a sixth Block35
    with pytest.raises(ValueError, match=r"pt: tensor 'repeat_1\.5\.conv2d\.weight' has no place"):
        load_facenet_pytorch_tensors(scratch_model, good, "pt")


class _Payload:
    """Unpickling this would create a directory: proof of code execution."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_pickle_with_a_global_is_refused_and_not_run(tmp_path):
    pytest.importorskip("torch")
    import torch

    from tfface.interop import import_weights

    marker = str(tmp_path / "executed")
    pt = str(tmp_path / "evil.pt")
    torch.save({"conv2d_1a.conv.weight": torch.zeros(1), "x": _Payload(marker)}, pt)
    with pytest.raises(ValueError, match="weights_only"):
        import_weights(pt, format="facenet_pytorch")
    assert not os.path.exists(marker)
    # A plain pickle (not a torch archive) is refused the same way.
    raw = str(tmp_path / "evil.pth")
    with open(raw, "wb") as f:
        pickle.dump(_Payload(marker), f)
    with pytest.raises(ValueError, match="weights_only"):
        import_weights(raw, format="facenet_pytorch")
    assert not os.path.exists(marker)


def test_init_from_accepts_a_keras_embedder(tmp_path):
    """``init_from: OUT.keras`` (what ``tfface import`` writes) loads the backbone, moving
    statistics included; a different architecture is refused."""
    import types

    from tfface import backbones
    from tfface.training import init_from

    source = backbones.get("tiny", input_shape=(32, 32, 3), embedding_size=16)
    for w in source.weights:
        w.assign(np.random.default_rng(len(w.path)).normal(size=w.shape).astype("float32") ** 2)
    path = str(tmp_path / "imported.keras")
    source.save(path)
    target = types.SimpleNamespace(backbone=backbones.get("tiny", input_shape=(48, 48, 3), embedding_size=16))
    assert init_from(target, path, print_fn=lambda *a: None) == ["backbone"]
    for got, want in zip(target.backbone.weights, source.weights):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    other = types.SimpleNamespace(backbone=backbones.get("tiny", input_shape=(32, 32, 3), embedding_size=8))
    with pytest.raises(ValueError, match="does not match this recipe's backbone"):
        init_from(other, path)
