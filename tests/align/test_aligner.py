"""FaceAligner on real photos shipped with scikit-image and matplotlib.

Checks that do not trust the aligner's own bookkeeping: MTCNN is run again on the aligned crop
(padded, so the face does not touch the border) and must find the eyes on the template; the
facenet crop is rebuilt by hand with PIL; rotated and scaled copies are made with a known
similarity and must give the same crop."""
import numpy as np
import pytest
from PIL import Image
from skimage import transform as sktransform

from tfface.align import ARCFACE_TEMPLATE_112, FaceAligner

FACES = ("astronaut", "camera", "grace_hopper")
# Eye tolerance against the template. camera's face is turned about 40° from frontal, so a
# similarity transform cannot put both eyes exactly on the frontal template.
EYE_TOLERANCE = {"astronaut": 4.0, "grace_hopper": 4.0, "camera": 12.0}


@pytest.fixture(scope="module")
def arcface(detector):
    return FaceAligner("arcface", detector=detector)


@pytest.fixture(scope="module")
def aligned(arcface, photos):
    return {name: arcface.align(photos[name]) for name in FACES}


def _redetect(detector, crop, pad=56):
    canvas = np.zeros((crop.shape[0] + 2 * pad, crop.shape[1] + 2 * pad, 3), np.uint8)
    canvas[pad : pad + crop.shape[0], pad : pad + crop.shape[1]] = crop
    found = FaceAligner(detector=detector).detect(canvas)
    assert found, "MTCNN finds no face in the aligned crop"
    return found[0].landmarks - pad


@pytest.mark.parametrize("name", FACES)
def test_faces_found_and_eyes_on_template(name, aligned, detector):
    face = aligned[name]
    assert face is not None, f"no face found in {name}"
    assert face.method == "detected" and face.confidence > 0.95
    assert face.image.shape == (112, 112, 3) and face.image.dtype == np.uint8
    assert face.landmarks.shape == (5, 2) and face.box.shape == (4,)
    # Left eye left of right eye as seen in the image; mouth below the eyes.
    assert face.landmarks[0, 0] < face.landmarks[1, 0] and face.landmarks[3:, 1].min() > face.landmarks[:2, 1].max()
    seen = _redetect(detector, face.image)
    # The warp moved the pixels where the returned landmarks say ...
    assert np.abs(seen - face.landmarks).max() < 3.0
    # ... and the eyes are on insightface's template.
    assert np.abs(seen[:2] - ARCFACE_TEMPLATE_112[:2]).max() < EYE_TOLERANCE[name]


def test_96x112_variant(photos, aligned, detector):
    ref = aligned["astronaut"]
    # The same source landmarks (given, so no second detection) onto the 96×112 template.
    face = FaceAligner("arcface", size=(96, 112), detector=detector).align(photos["astronaut"], landmarks=_to_source(ref))
    assert face.image.shape == (112, 96, 3)
    np.testing.assert_allclose(face.landmarks, ref.landmarks - [8, 0], atol=1e-6)
    assert np.abs(face.image.astype(int) - ref.image[:, 8:104]).max() <= 1


def test_facenet_mode_matches_facenets_crop(photos, detector):
    image = photos["grace_hopper"]
    face = FaceAligner("facenet", detector=detector).align(image)
    assert face.image.shape == (160, 160, 3) and face.method == "detected"
    # facenet's align_dataset_mtcnn by hand: box ± margin/2 (32 px), clipped, int32, crop, bilinear.
    x1, y1, x2, y2 = face.box
    h, w = image.shape[:2]
    bb = np.array([max(x1 - 16, 0), max(y1 - 16, 0), min(x2 + 16, w), min(y2 + 16, h)]).astype(np.int32)
    expected = np.asarray(Image.fromarray(image[bb[1] : bb[3], bb[0] : bb[2]]).resize((160, 160), Image.BILINEAR))
    np.testing.assert_array_equal(face.image, expected)
    # The returned landmarks are where MTCNN finds them in the crop.
    assert np.abs(_redetect(detector, face.image, pad=80) - face.landmarks).max() < 5.0


def test_no_face(photos, arcface):
    assert arcface.align(photos["coffee"]) is None
    # With the fallback a faceless photo gives a centre crop, flagged as such.
    fallback = arcface.align(photos["chelsea"], fallback="centre")
    assert fallback.method == "centre_crop" and fallback.landmarks is None and fallback.confidence is None
    assert fallback.image.shape == (112, 112, 3)
    np.testing.assert_array_equal(fallback.image, arcface.centre_crop(photos["chelsea"]).image)


def test_given_landmarks_reproduce_the_detected_crop(photos, aligned, detector):
    ref = aligned["astronaut"]
    source_pts = _to_source(ref)
    face = FaceAligner(detector=detector).align(photos["astronaut"], landmarks=source_pts.ravel())
    assert face.method == "given_landmarks" and face.confidence is None
    np.testing.assert_array_equal(face.image, ref.image)


def test_several_faces_keeps_largest_most_central(photos, detector):
    # astronaut on the left, grace_hopper (larger face) on the right of one canvas (at half
    # size: detection time grows with the pixels).
    def half(image):
        return np.asarray(Image.fromarray(image).resize((image.shape[1] // 2, image.shape[0] // 2), Image.BILINEAR))

    canvas = np.zeros((300, 512, 3), np.uint8)
    canvas[:256, :256] = half(photos["astronaut"])
    canvas[:, 256:] = half(photos["grace_hopper"])
    aligner = FaceAligner(detector=detector)
    found = aligner.detect(canvas)
    assert len(found) >= 2
    boxes = np.array([d.box for d in found])
    # facenet's rule written out: area − 2·squared offset of the box centre from the image centre.
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    off = (boxes[:, :2] + boxes[:, 2:]) / 2 - [256, 150]
    best = int(np.argmax(area - 2 * (off**2).sum(axis=1)))
    face = aligner.align(canvas)
    np.testing.assert_allclose(face.box, boxes[best])
    assert face.box[0] > 256, "expected grace_hopper's face (right half) to be chosen"


def _to_source(face):
    return np.asarray(sktransform.AffineTransform(matrix=face.matrix).inverse(face.landmarks))


def _transformed(image, angle, scale, centre):
    cx, cy = centre
    known = (
        sktransform.SimilarityTransform(translation=(-cx, -cy))
        + sktransform.SimilarityTransform(rotation=np.deg2rad(angle), scale=scale)
        + sktransform.SimilarityTransform(translation=(cx * scale, cy * scale))
    )
    h, w = image.shape[:2]
    out = sktransform.warp(
        image, known.inverse, output_shape=(round(h * scale), round(w * scale)), order=1, preserve_range=True
    )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), known


def _grey_centre(crop):
    return crop.astype(float).mean(axis=-1)[16:96, 16:96].ravel()


@pytest.mark.parametrize("name", FACES)
def test_rotated_and_scaled_copies_agree(name, photos, aligned, arcface):
    upright = aligned[name]
    upright_src = _to_source(upright)
    # Rotation and scale together keep the number of (slow) detections down.
    variants = [(15, 1.25), (-15, 0.7)]
    for angle, scale in variants:
        image, known = _transformed(photos[name], angle, scale, upright_src.mean(axis=0))
        face = arcface.align(image)
        assert face is not None, f"{name} rotated {angle}° scaled {scale}: no face"
        # MTCNN's landmarks on the copy are the upright ones moved by the known transform (up to
        # the detector's jitter: 4 px, or 8% of the eye distance on a large face).
        err = np.abs(_to_source(face) - known(upright_src)).max() / scale
        tolerance = max(4.0, 0.08 * np.hypot(*(upright_src[1] - upright_src[0])))
        assert err < tolerance, f"{name} {angle}° ×{scale}: landmarks off by {err:.1f} px"
        # The aligned crops agree: same landmark positions, highly correlated pixels.
        assert np.abs(face.landmarks - upright.landmarks).max() < 3.5
        corr = np.corrcoef(_grey_centre(face.image), _grey_centre(upright.image))[0, 1]
        assert corr > 0.8, f"{name} {angle}° ×{scale}: crop correlation {corr:.3f}"


def test_bad_arguments(detector):
    with pytest.raises(ValueError, match="mode"):
        FaceAligner("sphereface")
    with pytest.raises(ValueError, match="margin"):
        FaceAligner("arcface", margin=10)
    with pytest.raises(ValueError, match="fallback"):
        FaceAligner(detector=detector).align(np.zeros((50, 50, 3), np.uint8), fallback="zoom")
    # An image smaller than the smallest face has no face (and does not reach the detector).
    assert FaceAligner(detector=detector).align(np.zeros((10, 10, 3), np.uint8)) is None
