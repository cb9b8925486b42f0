"""tfface.data.images: the one image I/O module (extensions, identity-folder index, TFRecord listing,
decode-and-resize), and that training and evaluation preprocess an image file identically."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from tfface.data import images

# --- names and folders ------------------------------------------------------------------------


def test_image_names_are_case_insensitive():
    assert images.is_image_name("a/B.JPG") and images.is_image_name("x.jpeg") and images.is_image_name("y.Png")
    assert images.is_image_name("z.bmp")
    assert not images.is_image_name("notes.txt") and not images.is_image_name("jpg")
    # GIF and friends are images PIL reads (tfface align takes them) but not training formats.
    assert not images.is_image_name("a.gif")
    assert images.is_image_name("a.gif", images.ALL_IMAGE_EXTENSIONS)


def _write(path, size=(8, 6), colour=(10, 20, 30)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fmt = {".png": "PNG", ".bmp": "BMP"}.get(os.path.splitext(path)[1].lower(), "JPEG")
    Image.new("RGB", size, colour).save(path, fmt)


@pytest.fixture
def tree(tmp_path):
    """ROOT with two identities (one with a nested folder), an identity folder without images,
    a file directly in ROOT, a folder named like an image and a symlinked identity folder."""
    root = tmp_path / "root"
    _write(str(root / "bob" / "x.jpg"))
    _write(str(root / "alice" / "1.png"))
    _write(str(root / "alice" / "sub" / "2.JPG"))
    (root / "alice" / "notes.txt").write_text("not an image")
    _write(str(root / "alice" / "folder.jpg" / "inside.jpg"))
    (root / "carol").mkdir()
    (root / "carol" / "readme.md").write_text("no images")
    _write(str(root / "loose.jpg"))
    outside = tmp_path / "outside"
    _write(str(outside / "o.jpg"))
    os.symlink(outside, root / "dave")
    return root


def test_identity_index(tree):
    index = images.identity_index(tree)
    r = str(tree)
    # Written out by hand: sorted identities with images; nested files belong to their identity;
    # a folder named like an image, a symlinked identity folder and loose files are not walked.
    assert index.names == ["alice", "bob"]
    assert index.paths == [os.path.join(r, "alice", "1.png"), os.path.join(r, "alice", "sub", "2.JPG"),
                           os.path.join(r, "bob", "x.jpg")]
    assert index.labels == [0, 0, 1]
    paths, labels, names = index  # unpacks as the (paths, labels, names) tuple it replaces
    assert names == ["alice", "bob"]


def test_scan_identity_folders_lists_every_entry(tree):
    entries, loose = images.scan_identity_folders(tree)
    assert loose == ["loose.jpg"]
    got = [(e.identity, e.rel, e.walked) for e in entries]
    assert got == [
        ("alice", "alice/1.png", True),
        ("alice", "alice/folder.jpg", False),
        ("alice", "alice/notes.txt", True),
        ("alice", "alice/sub/2.JPG", True),
        ("bob", "bob/x.jpg", True),
        ("carol", "carol/readme.md", True),
        ("dave", "dave", False),
    ]


def test_identity_index_labels_match_tfface_build(tree, tmp_path):
    """The folder source of the input pipeline and a TFRecord build label identities alike."""
    import json

    from tfface.data.build import build_tfrecords

    out = tmp_path / "records"
    build_tfrecords(str(tree), str(out), progress=False)
    built = json.loads((out / "labels.json").read_text())
    index = images.identity_index(tree)
    assert built == {name: i for i, name in enumerate(index.names)}


def test_scan_tree(tmp_path):
    root = tmp_path / "src"
    _write(str(root / "a" / "1.jpg"))
    _write(str(root / "2.gif"))
    (root / "a" / "b.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "a" / "b.txt").write_text("x")
    _write(str(root / "out" / "done.jpg"))
    imgs, others = images.scan_tree(root, exclude=root / "out")
    assert imgs == ["2.gif", "a/1.jpg"] and others == ["a/b.txt"]
    imgs, _ = images.scan_tree(root, images.IMAGE_EXTENSIONS)
    assert imgs == ["a/1.jpg", "out/done.jpg"]


def test_list_tfrecords(tmp_path):
    for name in ("b.tfrecord", "a.tfrecord", "labels.json"):
        (tmp_path / name).write_bytes(b"")
    want = [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]
    assert images.list_tfrecords(tmp_path) == want
    assert images.list_tfrecords(str(tmp_path / "*.tfrecord")) == want
    assert images.list_tfrecords(str(tmp_path / "a.tfrecord")) == want[:1]
    assert images.list_tfrecords([want[1], want[0]]) == want
    assert images.list_tfrecords(str(tmp_path / "none-*.tfrecord")) == []
    with pytest.raises(FileNotFoundError, match="missing.tfrecord"):
        images.list_tfrecords([str(tmp_path / "missing.tfrecord")])


# --- decode and resize ------------------------------------------------------------------------


def _triangle_resize(x, out_h, out_w):
    """Independent numpy reference: separable triangle (bilinear) filter with half-pixel centres,
    as wide as the scale when shrinking (antialiasing), weights renormalised at the borders."""

    def weights(n_in, n_out):
        width = max(1.0, n_in / n_out)
        centre = (np.arange(n_out) + 0.5) * n_in / n_out
        w = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] + 0.5 - centre[:, None]) / width)
        return w / w.sum(axis=1, keepdims=True)

    x = x.astype(np.float64)
    return np.einsum("oh,hwc->owc", weights(x.shape[0], out_h), np.einsum("pw,hwc->hpc", weights(x.shape[1], out_w), x))


@pytest.mark.parametrize("shape,size", [((50, 37), (32, 32)), ((20, 24), (32, 32)), ((40, 20), (32, 32))])
def test_resize_image_against_a_numpy_reference(shape, size):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    got = images.resize_image(x, size).numpy()
    assert got.dtype == np.uint8 and got.shape == size + (3,)
    ref = _triangle_resize(x, *size)
    # Rounded to the uint8 grid: at most one level from the exact value.
    assert np.abs(got.astype(np.float64) - ref).max() <= 1.0 + 1e-9
    # Batched and per image alike; floats keep their dtype, on the uint8 grid.
    batch = images.resize_image(np.stack([x, x]).astype(np.float32), size).numpy()
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], got.astype(np.float32))


def test_decode_and_resize_keeps_an_image_of_the_right_size():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "PNG")
    np.testing.assert_array_equal(images.decode_and_resize(buf.getvalue(), (16, 12)).numpy(), x)
    np.testing.assert_array_equal(images.decode_and_resize(buf.getvalue()).numpy(), x)
    with pytest.raises(ValueError, match="image size"):
        images.parse_image_size((0, 3))


@pytest.mark.parametrize("shape", [(50, 37), (20, 24), (32, 32)])
def test_training_and_evaluation_preprocess_a_file_identically(tmp_path, shape):
    """The same image file, through the training pipeline (training=False: no augmentation) and
    through embedding extraction (as paths, as encoded bytes, and as a decoded array), gives the
    identical pixels (uint8 from the pipeline): both call the one decode-and-resize."""
    from tfface.data.pipeline import make_dataset
    from tfface.eval.extract import extract_embeddings

    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    # Smooth content, like a face crop. JPEG (decoding matters) and PNG (lossless, so a PIL-decoded
    # array holds exactly the pixels TensorFlow decodes).
    pixels = np.asarray(Image.fromarray(pixels).resize(shape[::-1], Image.BILINEAR))
    size = (32, 32)
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png")):
        root = tmp_path / fmt
        path = root / "someone" / f"crop.{ext}"
        path.parent.mkdir(parents=True)
        Image.fromarray(pixels).save(path, fmt)

        train_images, labels = next(iter(make_dataset(str(root), 1, size, training=False)))
        train_image = train_images.numpy()[0]
        assert train_image.dtype == np.uint8 and labels.numpy().tolist() == [0]

        def identity(batch):  # a "model" that returns its input, flattened
            return np.asarray(batch).reshape(len(batch), -1)

        sources = [[str(path)], [path.read_bytes()]]
        if fmt == "PNG":
            sources.append(np.asarray(Image.open(path).convert("RGB"))[None])
        for source in sources:
            got = extract_embeddings(identity, source, image_size=size, progress=False)
            np.testing.assert_array_equal(got.reshape(size + (3,)), train_image)
        np.testing.assert_array_equal(images.load_image(path, size).astype(np.float32), train_image)
