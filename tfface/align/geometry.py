"""Pure geometry of face alignment: templates, face selection, the similarity warp and the
box crops. No detector here, so everything is testable with numpy alone.

Coordinates are ``(x, y)`` in pixels with pixel centres at integers (the convention of MTCNN's
landmarks, OpenCV's ``warpAffine`` and scikit-image's ``warp``). Landmark order everywhere:
left eye, right eye, nose, left mouth corner, right mouth corner, left/right as seen in the image.
"""
import numpy as np
from PIL import Image
from skimage import transform as sktransform

# insightface's reference landmarks for 112×112 ArcFace crops (arcface_torch / insightface
# face_align.py ``arcface_dst``): the 96×112 template of SphereFace/CosFace shifted by 8 px in x.
ARCFACE_TEMPLATE_96x112 = np.array(
    [
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_TEMPLATE_112 = ARCFACE_TEMPLATE_96x112 + np.array([8.0, 0.0])


def output_size(size):
    """``size`` (an int for a square, or ``(width, height)``) -> ``(width, height)``."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        w = h = int(size)
    else:
        try:
            w, h = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError(f"size={size!r}; expected an int or a (width, height) pair") from None
    if w < 8 or h < 8:
        raise ValueError(f"size={size!r}; expected at least 8×8 pixels")
    return w, h


def arcface_template(size=112):
    """The five reference points for an ArcFace crop of ``size``.

    A square ``s×s`` crop uses the 112×112 template scaled by ``s/112``; a ``96×112``-shaped crop
    (``(96k, 112k)``) uses the 96×112 template scaled by ``k``. Other shapes have no template.
    """
    w, h = output_size(size)
    if w == h:
        return ARCFACE_TEMPLATE_112 * (w / 112.0)
    if w * 112 == h * 96:
        return ARCFACE_TEMPLATE_96x112 * (h / 112.0)
    raise ValueError(
        f"size={size!r}: the ArcFace templates are square (112×112, scaled) or 96×112 (scaled); "
        f"got {w}×{h}"
    )


def face_scores(boxes, image_shape):
    """facenet's preference for each face among ``boxes`` ``(K, 4)`` xyxy: the largest face
    nearest the centre scores highest, ``area − 2·‖box centre − image centre‖²``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = image_shape[:2]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    dx = (boxes[:, 0] + boxes[:, 2]) / 2 - w / 2
    dy = (boxes[:, 1] + boxes[:, 3]) / 2 - h / 2
    return area - 2.0 * (dx * dx + dy * dy)


def select_face(boxes, image_shape):
    """Index of the face to keep among ``boxes`` (facenet's rule, :func:`face_scores`)."""
    scores = face_scores(boxes, image_shape)
    if len(scores) == 0:
        raise ValueError("select_face: no boxes to select from")
    return int(np.argmax(scores))


def as_landmarks(landmarks):
    """Validate five (x, y) points (10 numbers in any shape) -> float64 ``(5, 2)``."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.size != 10 or not np.all(np.isfinite(pts)):
        raise ValueError(
            f"landmarks of shape {np.shape(landmarks)}: expected 5 finite (x, y) points (10 numbers: "
            "left eye, right eye, nose, left mouth, right mouth)"
        )
    return pts.reshape(5, 2)


def similarity_warp(image, landmarks, template, size):
    """Warp ``image`` so that ``landmarks`` map onto ``template`` by the least-squares similarity
    transform (rotation, uniform scale, translation; Umeyama's method in scikit-image).

    Returns ``(crop uint8 (h, w, C), landmarks in the crop (5, 2), 3×3 matrix source -> crop)``.
    Pixels outside the source are black, as in insightface's ``norm_crop``.
    """
    w, h = output_size(size)
    src = as_landmarks(landmarks)
    tform = sktransform.SimilarityTransform.from_estimate(src, np.asarray(template, np.float64))
    if not tform:
        raise ValueError(f"landmarks {src.tolist()}: no similarity transform fits them (degenerate points)")
    # Only the source window the crop samples from is converted and interpolated (a full-size
    # photo is megapixels; the crop reads a few thousand of them). The window holds every pixel
    # a bilinear sample can touch, grown by 2 px and clipped to the image, so the result is the
    # warp of the whole image: samples outside the window are outside the image too.
    x0, y0, window = _sample_window(image, tform.inverse, w, h)
    shift = sktransform.AffineTransform(translation=(-x0, -y0))
    warped = sktransform.warp(
        window,
        tform.inverse + shift,
        output_shape=(h, w),
        order=1,
        mode="constant",
        cval=0.0,
        preserve_range=True,
    )
    crop = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return crop, tform(src), np.array(tform.params)


def _sample_window(image, inverse, w, h, grow=2):
    """``(x0, y0, image[y0:y1, x0:x1])``: the part of ``image`` that output pixels ``(0..w-1,
    0..h-1)`` mapped by ``inverse`` (crop -> source) can sample bilinearly, plus ``grow`` px."""
    corners = inverse(np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64))
    ih, iw = image.shape[:2]
    lo = np.floor(corners.min(axis=0)) - grow
    hi = np.ceil(corners.max(axis=0)) + grow + 1
    x0, y0 = (int(np.clip(v, 0, n)) for v, n in zip(lo, (iw, ih)))
    x1, y1 = (int(np.clip(v, 0, n)) for v, n in zip(hi, (iw, ih)))
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the image: all black
        x0, y0, x1, y1 = 0, 0, min(iw, 1), min(ih, 1)
        window = np.zeros((1, 1) + image.shape[2:], image.dtype)
        return -10**6, -10**6, window
    return x0, y0, image[y0:y1, x0:x1]


def _resize_box(image, box, size):
    """Crop ``box`` (x1, y1, x2, y2; may be fractional) of ``image`` and resize it to ``size`` with
    PIL's bilinear filter (what facenet's ``misc.imresize`` did). Returns the crop and the 3×3
    matrix source -> crop under PIL's pixel-area convention."""
    w, h = output_size(size)
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise ValueError(f"box {list(box)} is empty; expected x2 > x1 and y2 > y1")
    pil = Image.fromarray(image)
    crop = np.asarray(pil.resize((w, h), Image.BILINEAR, box=(x1, y1, x2, y2)))
    sx, sy = w / (x2 - x1), h / (y2 - y1)
    # PIL maps output pixel i's centre (i + 0.5) to box_start + (i + 0.5) / scale.
    matrix = np.array(
        [[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5], [0.0, 0.0, 1.0]]
    )
    return crop, matrix


def facenet_box(box, image_shape, margin):
    """facenet's ``align_dataset_mtcnn`` crop box: the detector box grown by ``margin/2`` source
    pixels on each side, clipped to the image, truncated to integers."""
    h, w = image_shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    half = margin / 2.0
    return np.array(
        [max(x1 - half, 0), max(y1 - half, 0), min(x2 + half, w), min(y2 + half, h)]
    ).astype(np.int32)


def facenet_crop(image, box, margin, size):
    """The MML paper's / facenet's crop: :func:`facenet_box`, cut out, then a bilinear resize to
    ``size`` (cut first, as facenet does, so no pixel outside the box reaches the crop).
    Returns ``(crop, crop box, 3×3 matrix source -> crop)``."""
    bb = facenet_box(box, image.shape, margin)
    x1, y1, x2, y2 = (int(v) for v in bb)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {list(box)} is empty inside the {image.shape[1]}×{image.shape[0]} image")
    cut = np.ascontiguousarray(image[y1:y2, x1:x2])
    crop, matrix = _resize_box(cut, (0, 0, x2 - x1, y2 - y1), size)
    shift = np.array([[1.0, 0.0, -x1], [0.0, 1.0, -y1], [0.0, 0.0, 1.0]])
    return crop, bb, matrix @ shift


def centre_box(image_shape, size, fraction=0.875):
    """The centred box of the output's aspect ratio covering ``fraction`` of the image's limiting
    side (0.875 leaves a 6.25% border each side, insightface's fallback box for undetected LFW
    faces)."""
    h, w = image_shape[:2]
    ow, oh = output_size(size)
    if not 0 < fraction <= 1:
        raise ValueError(f"centre fraction {fraction!r}; expected a value in (0, 1]")
    scale = fraction * min(w / ow, h / oh)
    cw, ch = ow * scale, oh * scale
    x1, y1 = (w - cw) / 2, (h - ch) / 2
    return np.array([x1, y1, x1 + cw, y1 + ch])


def centre_crop(image, size, fraction=0.875):
    """Crop :func:`centre_box` and resize it to ``size``: ``(crop, box, matrix)``."""
    box = centre_box(image.shape, size, fraction)
    crop, matrix = _resize_box(image, box, size)
    return crop, box, matrix


def box_from_landmarks(landmarks):
    """An MTCNN-like face box (x1, y1, x2, y2) estimated from five landmarks, for inputs that come
    with landmarks but no box (facenet mode needs a box).

    With d the distance from the eyes' midpoint to the mouth's midpoint, the box is 2.0·d wide and
    2.6·d tall, centred 0.36·d below the eyes' midpoint; these ratios were measured on MTCNN's
    boxes for the test photos (astronaut, camera, grace_hopper) and are approximate.
    """
    pts = as_landmarks(landmarks)
    eyes = pts[:2].mean(axis=0)
    mouth = pts[3:].mean(axis=0)
    d = float(np.hypot(*(mouth - eyes)))
    if d <= 0:
        raise ValueError(f"landmarks {pts.tolist()}: eyes and mouth coincide; cannot size a box")
    cx, cy = eyes[0] + 0.36 * (mouth[0] - eyes[0]), eyes[1] + 0.36 * (mouth[1] - eyes[1])
    return np.array([cx - 1.0 * d, cy - 1.3 * d, cx + 1.0 * d, cy + 1.3 * d])


def apply_matrix(matrix, points):
    """Map ``(K, 2)`` points by a 3×3 affine matrix."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ np.asarray(matrix)[:2, :2].T + np.asarray(matrix)[:2, 2]
