"""Alignment geometry without a detector: the similarity warp against a known transform, facenet's
crop box and selection rule written out by hand, the templates, the centre crop."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfface.align import geometry
from tfface.align.aligner import as_rgb_uint8

# insightface's published 112×112 reference points (arcface_torch utils / face_align.arcface_dst).
INSIGHTFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def test_templates():
    np.testing.assert_allclose(geometry.ARCFACE_TEMPLATE_112, INSIGHTFACE_112)
    np.testing.assert_allclose(geometry.ARCFACE_TEMPLATE_96x112, INSIGHTFACE_112 - [8, 0])
    np.testing.assert_allclose(geometry.arcface_template(224), INSIGHTFACE_112 * 2)
    np.testing.assert_allclose(geometry.arcface_template((96, 112)), INSIGHTFACE_112 - [8, 0])
    np.testing.assert_allclose(geometry.arcface_template((192, 224)), (INSIGHTFACE_112 - [8, 0]) * 2)
    with pytest.raises(ValueError, match="100×50"):
        geometry.arcface_template((100, 50))


def _rotation(deg):
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def test_similarity_warp_inverts_a_known_similarity():
    # Source landmarks = a known similarity (rotation 20°, scale 2.5, shift) of the template: the
    # estimated map must be its exact inverse, and marks drawn at the source points must land on
    # the template in the crop.
    template = geometry.ARCFACE_TEMPLATE_112
    rot, scale, shift = _rotation(20.0), 2.5, np.array([180.0, 120.0])
    src = (template @ rot.T) * scale + shift
    image = np.zeros((480, 480, 3), np.uint8)
    marks = np.rint(src).astype(int)
    for x, y in marks:
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop, out_pts, matrix = geometry.similarity_warp(image, src, template, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(out_pts, template, atol=1e-6)
    expected = np.eye(3)
    expected[:2, :2] = rot.T / scale
    expected[:2, 2] = -rot.T @ shift / scale
    np.testing.assert_allclose(matrix, expected, atol=1e-9)
    # Where the (integer) marks must appear: the inverse similarity applied by hand.
    expected_marks = ((marks - shift) @ rot) / scale
    grey = crop[..., 0].astype(float)
    for ex, ey in expected_marks:
        x0, y0 = int(round(ex)), int(round(ey))
        window = grey[y0 - 3 : y0 + 4, x0 - 3 : x0 + 4]
        ys, xs = np.nonzero(window > 0)
        w = window[ys, xs]
        cx, cy = (xs * w).sum() / w.sum() + x0 - 3, (ys * w).sum() / w.sum() + y0 - 3
        assert abs(cx - ex) < 0.5 and abs(cy - ey) < 0.5
    # Outside the source is black (insightface's border value): with source = template/2 − 20,
    # crop pixel (0, 0) comes from source (−20, −20) and the crop centre from (8, 8).
    white = np.full((60, 60, 3), 255, np.uint8)
    crop, _, _ = geometry.similarity_warp(white, template / 2 - 20, template, 112)
    assert crop[0, 0].tolist() == [0, 0, 0] and crop[56, 56].tolist() == [255, 255, 255]


def test_similarity_warp_96x112_is_the_112_crop_minus_8px():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    src = geometry.ARCFACE_TEMPLATE_112 * 1.7 + [40.0, 30.0]
    c112, p112, _ = geometry.similarity_warp(image, src, geometry.arcface_template(112), 112)
    c96, p96, _ = geometry.similarity_warp(image, src, geometry.arcface_template((96, 112)), (96, 112))
    assert c96.shape == (112, 96, 3)
    # Equal up to rounding of the interpolated values (the two estimates differ in the last bits).
    assert np.abs(c96.astype(int) - c112[:, 8:104]).max() <= 1
    np.testing.assert_allclose(p96, p112 - [8, 0], atol=1e-9)


def test_similarity_warp_rejects_bad_landmarks():
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="5 finite"):
        geometry.similarity_warp(image, np.zeros((4, 2)), geometry.ARCFACE_TEMPLATE_112, 112)
    with pytest.raises(ValueError, match="degenerate"):
        geometry.similarity_warp(image, np.ones((5, 2)), geometry.ARCFACE_TEMPLATE_112, 112)


def test_select_face_facenet_rule():
    # Image 100 high, 200 wide: centre (100, 50). Scores area − 2·d²:
    #   A (0,0,60,60): 3600 − 2·(70² + 20²) = −7000; B (90,40,110,60): 400; C (70,20,130,80): 3600.
    boxes = [[0, 0, 60, 60], [90, 40, 110, 60], [70, 20, 130, 80]]
    assert geometry.select_face(boxes, (100, 200, 3)) == 2
    assert geometry.select_face(boxes[:2], (100, 200, 3)) == 1
    # Size can outweigh centring: (0,0,100,100) scores 10000 − 2·(50² + 0²) = 5000 > C's 3600.
    assert geometry.select_face([[70, 20, 130, 80], [0, 0, 100, 100]], (100, 200)) == 1


def test_facenet_box_and_crop_by_hand():
    # facenet: bb = [max(x1 − m/2, 0), max(y1 − m/2, 0), min(x2 + m/2, w), min(y2 + m/2, h)] as int32.
    box = [10.7, 20.2, 110.9, 140.6]
    assert geometry.facenet_box(box, (150, 300, 3), 32).tolist() == [0, 4, 126, 150]
    assert geometry.facenet_box(box, (400, 300, 3), 10).tolist() == [5, 15, 115, 145]
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    crop, bb, matrix = geometry.facenet_crop(image, [50, 40, 130, 120], 32, 160)
    assert bb.tolist() == [34, 24, 146, 136]
    reference = np.asarray(Image.fromarray(image).crop((34, 24, 146, 136)).resize((160, 160), Image.BILINEAR))
    np.testing.assert_array_equal(crop, reference)
    # With the crop the size of the output the resize is the identity: a plain slice, and the
    # matrix a pure shift.
    crop, bb, matrix = geometry.facenet_crop(image, [66, 56, 130, 120], 32, 96)
    np.testing.assert_array_equal(crop, image[40:136, 50:146])
    np.testing.assert_allclose(geometry.apply_matrix(matrix, [[50, 40], [145, 135]]), [[0, 0], [95, 95]], atol=1e-9)


def test_centre_box():
    np.testing.assert_allclose(geometry.centre_box((250, 250, 3), 112), [15.625, 15.625, 234.375, 234.375])
    # 96×112 output: the box has the output's aspect ratio and covers 87.5% of the image height.
    x1, y1, x2, y2 = geometry.centre_box((250, 250, 3), (96, 112))
    assert (y2 - y1) == pytest.approx(218.75) and (x2 - x1) == pytest.approx(218.75 * 96 / 112)
    assert (x1 + x2) / 2 == pytest.approx(125) and (y1 + y2) / 2 == pytest.approx(125)
    with pytest.raises(ValueError, match="fraction"):
        geometry.centre_box((10, 10), 112, fraction=1.5)


def test_box_from_landmarks():
    # Eyes (40,50),(60,50), mouth (42,70),(58,70): d = 20, centre 0.36·d below the eye midpoint.
    pts = [[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]]
    np.testing.assert_allclose(geometry.box_from_landmarks(pts), [30, 31.2, 70, 83.2])


def test_image_validation():
    assert as_rgb_uint8(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb_uint8(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="float32"):
        as_rgb_uint8(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(4, 5, 2\)"):
        as_rgb_uint8(np.zeros((4, 5, 2), np.uint8))
    with pytest.raises(ValueError, match="size"):
        geometry.output_size("big")


def test_importing_align_does_not_load_tensorflow():
    # MTCNN imports TensorFlow; tfface.align must defer that to the first detection.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = "import sys, tfface.align.aligner, tfface.align.folder, tfface.commands.align; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root), timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
