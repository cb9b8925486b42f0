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

__all__ = ["FaceAligner", "AlignedFace", "Detection", "MODES", "METHODS"]

MODES = ("arcface", "facenet")
METHODS = ("detected", "given_landmarks", "centre_crop")
_DEFAULT_SIZE = {"arcface": 112, "facenet": 160}
_DEFAULT_MARGIN = 32


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
        detector: an ``mtcnn.MTCNN`` instance to reuse; one is created on first use otherwise.
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
        self._detector = detector

    @property
    def detector(self):
        if self._detector is None:
            # Imported here: mtcnn imports TensorFlow, which `import tfface.align` must not.
            from mtcnn import MTCNN

            self._detector = MTCNN()
        return self._detector

    def detect(self, image):
        """All faces MTCNN finds in ``image``, as :class:`Detection` s in source coordinates,
        best first by facenet's selection rule (largest, most central)."""
        image = as_rgb_uint8(image)
        if min(image.shape[:2]) < self.min_face_size:
            return []
        rows = self.detector.detect_faces(
            image,
            box_format="xyxy",
            output_type="numpy",
            min_face_size=self.min_face_size,
            scale_factor=self.scale_factor,
            threshold_pnet=self.thresholds[0],
            threshold_rnet=self.thresholds[1],
            threshold_onet=self.thresholds[2],
        )
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] < 16:
            return []
        # mtcnn 1.0's numpy rows: image id, x1, y1, x2, y2, confidence, then the five x's and the
        # five y's (left eye, right eye, nose, mouth left, mouth right).
        detections = [
            Detection(box=r[1:5].copy(), confidence=float(r[5]), landmarks=np.stack([r[6:11], r[11:16]], axis=1))
            for r in rows
            if r[3] > r[1] and r[4] > r[2]
        ]
        if not detections:
            return []
        # Best first by facenet's rule: largest, most central.
        scores = geometry.face_scores([d.box for d in detections], image.shape)
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
        detections = self.detect(image)
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
