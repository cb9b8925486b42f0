"""Detection on a shrunk copy (``detect_size``) and batched detection give the crops of
full-resolution, one-at-a-time detection.

The reference is the aligner with ``detect_size=None`` (MTCNN on the full-resolution photo, as
before the copy existed). Tolerance: MTCNN's output network regresses the landmarks from the face
box resampled to 48×48 in both cases, so the copy only changes what the earlier stages propose
and the resampling of that 48×48 input; the landmarks it gives may move by a fraction of a
48-px cell, i.e. about 2% of the box. On the 112×112 template (box ≈ 100 crop px) that is the
2 crop px allowed below, which is 6% of the template's 35 px eye distance and within the 3.5 px
the rotated/scaled-copy test allows MTCNN on rescaled photos (test_aligner.py). Pixels: a shift of
under 2 px keeps the crops' correlation above 0.9 (camera, grey and smooth, above 0.97)."""
import numpy as np
import pytest
from PIL import Image

from tfface.align import FaceAligner
from tfface.align.aligner import detection_copy, to_source

FACES = ("astronaut", "camera", "grace_hopper")


@pytest.fixture(scope="module")
def full(detector):
    return FaceAligner(detector=detector, detect_size=None)


@pytest.fixture(scope="module")
def shrunk(detector):
    return FaceAligner(detector=detector)  # the default detect_size


def _corr(a, b):
    return np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1]


@pytest.mark.parametrize("name", FACES)
def test_shrunk_detection_gives_the_full_resolution_crop(name, photos, full, shrunk):
    image = photos[name]
    assert max(image.shape[:2]) > shrunk.detect_size, "the photo must actually be shrunk"
    ref, got = full.align(image), shrunk.align(image)
    assert got.method == ref.method == "detected"
    assert np.abs(got.landmarks - ref.landmarks).max() < 2.0
    assert _corr(got.image, ref.image) > (0.97 if name == "camera" else 0.9)
    # The box and landmarks are in source pixels: within 2% of the box size of the reference's.
    side = ref.box[2] - ref.box[0]
    src_ref = np.linalg.solve(ref.matrix, np.c_[ref.landmarks, np.ones(5)].T)[:2].T
    src_got = np.linalg.solve(got.matrix, np.c_[got.landmarks, np.ones(5)].T)[:2].T
    assert np.abs(src_got - src_ref).max() < 0.02 * side + 1.0
    assert np.abs(got.box - ref.box).max() < 0.08 * side


def test_twice_the_size_gives_the_same_crop(photos, shrunk):
    # A 1024×1024 astronaut (a full-size portrait) is shrunk 3.2×: the crop is the one of the
    # 512 px photo (same face, same template), as sharp or sharper.
    image = photos["astronaut"]
    big = np.asarray(Image.fromarray(image).resize((1024, 1024), Image.BICUBIC))
    small_face, big_face = shrunk.align(image), shrunk.align(big)
    assert np.abs(big_face.landmarks - small_face.landmarks).max() < 2.0
    assert _corr(big_face.image, small_face.image) > 0.9
    assert big_face.box[2] - big_face.box[0] == pytest.approx(2 * (small_face.box[2] - small_face.box[0]), rel=0.08)


def test_batch_equals_one_at_a_time(photos, shrunk):
    names = ("astronaut", "coffee", "grace_hopper", "chelsea", "camera")
    one = [shrunk.align(photos[n]) for n in names]
    batch = shrunk.align_batch([photos[n] for n in names])
    for name, a, b in zip(names, one, batch):
        if a is None:
            assert b is None, f"{name}: a face found in the batch only"
            continue
        # MTCNN pads a batch to its largest member; the padding may move a landmark slightly.
        assert b is not None, f"{name}: face lost in the batch"
        assert np.abs(a.landmarks - b.landmarks).max() < 1.0, name
        assert _corr(a.image, b.image) > 0.97, name
    assert [b is None for b in batch] == [False, True, False, True, False]
    # Fallbacks apply per image.
    with_fallback = shrunk.align_batch([photos["coffee"], photos["astronaut"]], fallback="centre")
    assert [f.method for f in with_fallback] == ["centre_crop", "detected"]
    assert shrunk.align_batch([]) == []


def test_detection_copy_maps_pixel_centres_back():
    # A bright 8×8 block in a 1200×900 image; in the 320 px copy its centre, mapped back by
    # to_source, is the block's centre in the source.
    image = np.zeros((900, 1200, 3), np.uint8)
    image[400:408, 700:708] = 255  # centre (703.5, 403.5)
    copy, scale = detection_copy(image, 320)
    assert copy.shape == (240, 320, 3) and scale == pytest.approx(320 / 1200)
    grey = copy[..., 0].astype(float)
    ys, xs = np.indices(grey.shape)
    centre = np.array([(xs * grey).sum(), (ys * grey).sum()]) / grey.sum()
    np.testing.assert_allclose(to_source(centre[None], scale)[0], [703.5, 403.5], atol=0.05)
    # Small images are not copied or rescaled.
    small = np.zeros((200, 300, 3), np.uint8)
    same, one = detection_copy(small, 320)
    assert same is small and one == 1.0
    np.testing.assert_array_equal(to_source([[3.0, 4.0]], 1.0), [[3.0, 4.0]])


def test_bad_detect_size(detector):
    for bad in (0, 20, 100.5):
        with pytest.raises(ValueError, match="detect_size"):
            FaceAligner(detect_size=bad, detector=detector)
