"""Reading photos (each bad kind skipped with its reason, before any decode where it can be) and
the embeddings file: written atomically, read back, damaged files named."""
import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tfface.files import InputError, OutputError
from tfface.search.photos import EmbedResult, PhotoSkip, load_photo, read_embeddings, write_embeddings


def png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def huge_png_header(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_each_bad_photo_has_its_reason(tmp_path):
    good = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)  # ~3.6 kB as PNG
    (tmp_path / "good.png").write_bytes(png(good))
    np.testing.assert_array_equal(load_photo(str(tmp_path / "good.png")), good)
    Image.fromarray(good).save(tmp_path / "good.webp", lossless=True)  # any format PIL reads
    np.testing.assert_array_equal(load_photo(str(tmp_path / "good.webp")), good)
    cases = {
        "missing.jpg": (None, "unreadable"),
        "folder.jpg": ("dir", "not_a_file"),
        "empty.jpg": (b"", "empty"),
        "text.jpg": (b"hello, not an image", "not_an_image"),
        "bomb.png": (huge_png_header(100_000, 100_000), "too_many_pixels"),
        "cut.png": (png(good)[:2000], "corrupt"),
        "big.png": (png(good), "too_large"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        if content == "dir":
            os.mkdir(path)
        elif content is not None:
            path.write_bytes(content)
        with pytest.raises(PhotoSkip) as err:
            load_photo(str(path), max_bytes=1000 if name == "big.png" else 10**8)
        assert err.value.reason == reason, name


def _result():
    return EmbedResult(embeddings=np.eye(2, 4, dtype=np.float32),
                       faces=[{"file": "a.jpg", "face": 0, "box": [1, 2, 3, 4], "confidence": 0.9},
                              {"file": "b.jpg", "face": 0, "box": [0, 0, 8, 8], "confidence": None}],
                       faceless=["c.jpg"], skipped=[{"file": "d.jpg", "reason": "empty", "detail": ""}], seen=4)


def test_embeddings_file_round_trip_and_failures(tmp_path):
    out = tmp_path / "e.npz"
    listing = write_embeddings(out, _result(), {"hash": "x"})
    data = read_embeddings(out)
    assert data["files"].tolist() == ["a.jpg", "b.jpg"] and data["model"] == {"hash": "x"}
    np.testing.assert_array_equal(data["boxes"], [[1, 2, 3, 4], [0, 0, 8, 8]])
    assert data["confidence"][0] == pytest.approx(0.9) and np.isnan(data["confidence"][1])
    assert os.path.basename(listing) == "e.json"
    before = out.read_bytes()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        write_embeddings(tmp_path / "file" / "e.npz", _result(), {})
    with pytest.raises(InputError, match=".npz"):
        write_embeddings(tmp_path / "e.txt", _result(), {})
    assert out.read_bytes() == before
    out.write_bytes(before[:100])
    with pytest.raises(InputError, match="not an embeddings file"):
        read_embeddings(out)
    assert sorted(os.listdir(tmp_path)) == ["e.json", "e.npz", "file"]  # no temporary left


def test_gallery_list_file(tmp_path):
    from tfface.search.photos import gallery_photos

    (tmp_path / "g.txt").write_text("# comment\na/1.jpg\tann\n\nb/2.jpg\tbob\textra\na/3.jpg\tann\n")
    names, photos, labels = gallery_photos(tmp_path / "g.txt")
    assert names == ["ann", "bob"] and labels == [0, 1, 0]
    assert photos[1] == (os.path.join("b", "2.jpg"), os.path.join(str(tmp_path), "b", "2.jpg"))
    (tmp_path / "bad.txt").write_text("a/1.jpg ann\n")
    with pytest.raises(InputError, match=r"bad.txt:1"):
        gallery_photos(tmp_path / "bad.txt")
    (tmp_path / "twice.txt").write_text("a/1.jpg\tann\na/1.jpg\tbob\n")
    with pytest.raises(InputError, match="one identity"):
        gallery_photos(tmp_path / "twice.txt")
