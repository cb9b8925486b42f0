"""MTCNN face detection and alignment into the crops the papers train on.

Two modes:

* ``arcface``: the 5-point similarity transform onto insightface's template (112×112, or the
  96×112 of SphereFace/CosFace; other square sizes scale the 112 template), as ArcFace,
  CurricularFace, MV-Softmax and ReCurricularFace prepare MS1M/LFW.
* ``facenet``: facenet's ``align_dataset_mtcnn`` crop used by the MML paper: the detector box grown
  by ``margin`` source pixels (``margin/2`` per side), clipped to the image, resized to the output
  size. Default 160 px with margin 32, facenet's documented setting for 160×160 evaluation crops
  (for training facenet aligns at 182 with margin 44 and random-crops 160).
"""
import dataclasses

import numpy as np

from tfface.align import geometry

__all__ = ["FaceAligner", "AlignedFace", "Detection", "MODES", "METHODS", "DEFAULT_DETECT_SIZE", "detection_copy",
           "to_source", "compile_detector"]

MODES = ("arcface", "facenet")
METHODS = ("detected", "given_landmarks", "centre_crop")
_DEFAULT_SIZE = {"arcface": 112, "facenet": 160}
_DEFAULT_MARGIN = 32
DEFAULT_DETECT_SIZE = 320


@dataclasses.dataclass
class Detection:
    """One MTCNN detection in source-image coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    confidence: float
    landmarks: np.ndarray  # (5, 2) left eye, right eye, nose, left mouth, right mouth


@dataclasses.dataclass
class AlignedFace:
    """An aligned crop.

    ``image``: uint8 ``(h, w, 3)``. ``landmarks``: ``(5, 2)`` in crop coordinates (left eye, right
    eye, nose, left mouth, right mouth, as seen in the image), ``None`` for a centre crop.
    ``box``: source-image x1, y1, x2, y2 of the face (the detector's box; for given landmarks a box
    estimated from them; for a centre crop the cropped region). ``confidence``: the detector's
    score, ``None`` unless detected. ``method``: "detected", "given_landmarks" or "centre_crop".
    ``matrix``: 3×3 affine map from source to crop coordinates.
    """

    image: np.ndarray
    landmarks: object
    box: np.ndarray
    confidence: object
    method: str
    matrix: np.ndarray


def as_rgb_uint8(image):
    """Validate an image array and return it as contiguous ``(H, W, 3)`` uint8 (grey is
    replicated, an alpha channel dropped)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image of dtype {arr.dtype}: expected uint8 pixels in [0, 255]")
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
        raise ValueError(
            f"image of shape {np.shape(image)}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    return np.ascontiguousarray(arr)


def detection_copy(image, detect_size):
    """``(copy, scale)``: ``image`` shrunk (PIL's antialiased bilinear filter) so that its long
    side is at most ``detect_size`` px, and the factor applied (``copy ≈ scale × source``).
    Returned unchanged with scale 1.0 when it is already that small or ``detect_size`` is None."""
    h, w = image.shape[:2]
    if detect_size is None or max(h, w) <= detect_size:
        return image, 1.0
    scale = detect_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    from PIL import Image

    copy = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    # The factor actually applied (sizes are rounded); equal in x and y up to the rounding.
    return copy, size[0] / w


def to_source(points, scale):
    """Map ``(K, 2)`` points of a copy made by :func:`detection_copy` back to the source, pixel
    centres onto pixel centres (PIL resizes by pixel area: copy pixel i covers source
    ``[i / scale, (i + 1) / scale)``, centre ``(i + 0.5) / scale - 0.5``)."""
    pts = np.asarray(points, dtype=np.float64)
    if scale == 1.0:
        return pts.copy()
    return (pts + 0.5) / scale - 0.5


class _Compiled:
    """A Keras network called through one ``tf.function`` (one graph per input shape class)
    instead of layer by layer in eager mode: the same kernels and weights, without the Python
    dispatch of every layer on every call."""

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, inputs, *args, **kwargs):
        return self._fn(inputs)

    def __getattr__(self, name):  # anything else (weights, summary, ...) is the model's
        return getattr(self.model, name)


def compile_detector(detector):
    """Run the networks of an ``mtcnn.MTCNN`` (1.0's stages) as ``tf.function`` s; returns
    the detector. Idempotent; a detector of another shape is left as it is."""
    for stage in getattr(detector, "stages", ()):
        model = getattr(stage, "_model", None)
        if model is not None and not isinstance(model, _Compiled) and callable(model):
            stage._model = _Compiled(model)
    return detector


class FaceAligner:
    """Detect the main face with MTCNN and align it.

    Args:
        mode: "arcface" (5-point similarity transform onto insightface's template) or "facenet"
            (detector box + margin, resized).
        size: output size, an int (square) or ``(width, height)``; default 112 (arcface) or 160
            (facenet). ``(96, 112)`` selects the 96×112 template.
        margin: facenet mode only: total margin in source pixels added around the box (facenet's
            ``--margin``); default 32.
        min_face_size, scale_factor, thresholds: MTCNN's settings (smallest face in pixels, image
            pyramid factor, P-/R-/O-Net confidence thresholds); defaults are the ``mtcnn``
            package's.
        centre_fraction: fraction of the image's limiting side covered by the centre-crop
            fallback (0.875: insightface's 6.25% border).
        detect_size: MTCNN runs on a copy of the image shrunk so that its long side is at most
            this many pixels (default 320), and the box and landmarks are mapped back to the
            source, where the crop is cut at full resolution. ``min_face_size`` then counts pixels
            of that copy: on a source whose long side is L > detect_size, faces smaller than
            ``min_face_size * L / detect_size`` source pixels are not looked for (with the
            defaults, 1/16 of the long side: the one subject of a data-set photo, not a crowd).
            ``None``: detect at full resolution (slower by the square of the shrink factor).
        detector: an ``mtcnn.MTCNN`` instance to reuse; one is created on first use otherwise.
            Its three networks are wrapped in ``tf.function`` (see :func:`compile_detector`).
    """

    def __init__(
        self,
        mode="arcface",
        size=None,
        margin=None,
        min_face_size=20,
        scale_factor=0.709,
        thresholds=(0.6, 0.7, 0.8),
        centre_fraction=0.875,
        detect_size=DEFAULT_DETECT_SIZE,
        detector=None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; expected one of {MODES}")
        self.mode = mode
        self.size = geometry.output_size(_DEFAULT_SIZE[mode] if size is None else size)
        if mode == "arcface":
            if margin is not None:
                raise ValueError("margin applies to mode='facenet' only (arcface crops are set by the template)")
            self.template = geometry.arcface_template(self.size)
        else:
            self.template = None
        self.margin = (_DEFAULT_MARGIN if margin is None else float(margin)) if mode == "facenet" else None
        if self.margin is not None and self.margin < 0:
            raise ValueError(f"margin={margin!r}; expected a non-negative number of pixels")
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0 <= t <= 1 for t in thresholds):
            raise ValueError(f"thresholds={thresholds!r}; expected three probabilities (P-, R-, O-Net)")
        if min_face_size < 12:
            raise ValueError(f"min_face_size={min_face_size!r}; MTCNN cannot find faces under 12 px")
        if not 0 < scale_factor < 1:
            raise ValueError(f"scale_factor={scale_factor!r}; expected a value in (0, 1)")
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        self.thresholds = thresholds
        self.centre_fraction = float(centre_fraction)
        geometry.centre_box((100, 100), self.size, self.centre_fraction)  # validates the fraction
        if detect_size is not None and (int(detect_size) != detect_size or detect_size < 48):
            raise ValueError(
                f"detect_size={detect_size!r}; expected None (full resolution) or a long side of at least 48 px"
            )
        self.detect_size = None if detect_size is None else int(detect_size)
        self._detector = detector
        if detector is not None:
            compile_detector(detector)

    @property
    def detector(self):
        if self._detector is None:
            # Imported here: mtcnn imports TensorFlow, which `import tfface.align` must not.
            from mtcnn import MTCNN

            self._detector = compile_detector(MTCNN())
        return self._detector

    def detect(self, image):
        """All faces MTCNN finds in ``image``, as :class:`Detection` s in source coordinates,
        best first by facenet's selection rule (largest, most central)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        """:meth:`detect` for a list of images, in one MTCNN call per group of images whose
        detection copies have the same shape (MTCNN stacks a batch, padding every image to the
        largest). Returns one list of detections per image."""
        images = [as_rgb_uint8(im) for im in images]
        results = [[] for _ in images]
        groups = {}
        for i, image in enumerate(images):
            if min(image.shape[:2]) < self.min_face_size:
                continue
            copy, scale = detection_copy(image, self.detect_size)
            if min(copy.shape[:2]) < self.min_face_size:
                continue
            groups.setdefault(copy.shape, []).append((i, copy, scale))
        for members in groups.values():
            rows = self._run_detector([copy for _, copy, _ in members])
            for j, (i, _, scale) in enumerate(members):
                mine = rows[rows[:, 0] == j] if len(rows) else rows
                results[i] = self._detections(mine, scale, images[i].shape)
        return results

    def _run_detector(self, copies):
        try:
            rows = self.detector.detect_faces(
                # float32: mtcnn normalises in the input's dtype and hands the batch to
                # TensorFlow once per pyramid level and stage; float64 would double that.
                [np.asarray(c, np.float32) for c in copies],
                box_format="xyxy",
                output_type="numpy",
                min_face_size=self.min_face_size,
                scale_factor=self.scale_factor,
                threshold_pnet=self.thresholds[0],
                threshold_rnet=self.thresholds[1],
                threshold_onet=self.thresholds[2],
            )
        except ValueError as err:
            # mtcnn 1.0 builds pyramid levels under PNet's 12 px for some sizes and Keras then
            # refuses the empty convolution: no face of the size asked for fits there.
            if "empty output" in str(err):
                return np.empty((0, 16))
            raise
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] < 16:
            return np.empty((0, 16))
        return rows

    def _detections(self, rows, scale, shape):
        # mtcnn 1.0's numpy rows: image id, x1, y1, x2, y2, confidence, then the five x's and the
        # five y's (left eye, right eye, nose, mouth left, mouth right).
        detections = [
            Detection(
                box=to_source(r[1:5].reshape(2, 2), scale).ravel(),
                confidence=float(r[5]),
                landmarks=to_source(np.stack([r[6:11], r[11:16]], axis=1), scale),
            )
            for r in rows
            if r[3] > r[1] and r[4] > r[2]
        ]
        if not detections:
            return []
        # Best first by facenet's rule: largest, most central.
        scores = geometry.face_scores([d.box for d in detections], shape)
        order = np.argsort(-scores, kind="stable")
        return [detections[i] for i in order]

    def align(self, image, landmarks=None, fallback=None):
        """Align the main face of ``image`` (uint8 ``(H, W, 3)``; grey or RGBA accepted).

        ``landmarks``: five ``(x, y)`` source points to use instead of detection (method
        "given_landmarks"). Otherwise MTCNN runs and the largest, most central face is aligned
        (method "detected"). When no face is found, returns ``None``, or with
        ``fallback="centre"`` a centre crop (method "centre_crop").
        """
        if fallback not in (None, "centre"):
            raise ValueError(f"fallback={fallback!r}; expected None or 'centre'")
        image = as_rgb_uint8(image)
        if landmarks is not None:
            pts = geometry.as_landmarks(landmarks)
            return self._from_landmarks(image, pts, geometry.box_from_landmarks(pts), None, "given_landmarks")
        return self._finish(image, self.detect(image), fallback)

    def align_batch(self, images, fallback=None):
        """:meth:`align` (by detection) for a list of images, detecting in batches
        (:meth:`detect_batch`); returns one result per image (``None`` where no face was found
        and there is no fallback)."""
        if fallback not in (None, "centre"):
            raise ValueError(f"fallback={fallback!r}; expected None or 'centre'")
        images = [as_rgb_uint8(im) for im in images]
        found = self.detect_batch(images)
        return [self._finish(image, detections, fallback) for image, detections in zip(images, found)]

    def _finish(self, image, detections, fallback):
        if detections:
            d = detections[0]
            return self._from_landmarks(image, d.landmarks, d.box, d.confidence, "detected")
        if fallback == "centre":
            return self.centre_crop(image)
        return None

    def centre_crop(self, image):
        """The fallback crop without any face information."""
        image = as_rgb_uint8(image)
        crop, box, matrix = geometry.centre_crop(image, self.size, self.centre_fraction)
        return AlignedFace(crop, None, box, None, "centre_crop", matrix)

    def _from_landmarks(self, image, pts, box, confidence, method):
        if self.mode == "arcface":
            crop, out_pts, matrix = geometry.similarity_warp(image, pts, self.template, self.size)
        else:
            crop, _, matrix = geometry.facenet_crop(image, box, self.margin, self.size)
            out_pts = geometry.apply_matrix(matrix, pts)
        return AlignedFace(crop, out_pts, np.asarray(box, dtype=np.float64), confidence, method, matrix)
