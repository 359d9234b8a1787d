"""Face detection with five landmarks, at a resolution chosen for the faces wanted.

Detectors: dlib's CNN (MMOD) and HOG detectors with dlib's 68-point shape predictor (both ship in
face_recognition_models), and facexlib's RetinaFace ResNet-50 when the user installed its weights.
"auto" is RetinaFace when installed, else ``CascadeDetector``: HOG, and the CNN only for a photo
where HOG finds no face. On the real-world whole photos and 80 held-out identity photos
(``benchmarks/detectors.py``) it finds every face the CNN finds and a few more (recall 0.988
against the CNN's 0.976, of the union of what any detector found) in 0.18 s a photo against 4.9 s.

Detection resolution. dlib finds a face only when its box is about 80 px or larger (measured on
FFHQ crops: HOG from ~73 px, CNN from 80 px), so old group photos with 40 px faces must be
upsampled, while a 24 MP photo searched at full size takes minutes on the CNN. Each detector
therefore runs on the image scaled by ``target / min_face`` (the scale at which a face of
``min_face`` px has the box the detector reliably finds), capped at 4x and at a pixel budget
(``max_pixels``: CNN 2 MP ~ 9 s on two CPU cores, HOG 16 MP ~ 1 s, RetinaFace 4 MP). Boxes and
landmarks are mapped back to the input's pixels. When the budget wins, faces smaller than
``target / scale`` may be missed, and a log line says so.

Landmarks are in pixel-centre coordinates and in the FFHQ/facexlib order: image-left eye centre,
image-right eye centre, nose tip, image-left mouth corner, image-right mouth corner.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from ..errors import CheckpointFormatError, LikenessError, ModelMissingError, NoFaceFoundError

log = logging.getLogger(__name__)

DEFAULT_MIN_FACE = 32
#: The smallest face that can be asked for: below it there is nothing left to restore.
SMALLEST_FACE = 8
MAX_UPSAMPLE = 4.0
#: dlib's detectors corrupt the heap on images narrower than their windows (a 1×100 image aborts
#: the process) and on very long ones (HOG at 80000 px wide): every side of what they see is
#: padded to at least MIN_DETECTION_SIDE, and the longest kept under MAX_DETECTION_SIDE.
MIN_DETECTION_SIDE = 160
MAX_DETECTION_SIDE = 32768
DetectorName = Literal["cnn", "hog", "retinaface", "auto"]


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face: box (x0, y0, x1, y1) and (5, 2) float32 landmarks, in input-image pixels."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        """Side of the square with the box's area: the "face size" that min_face refers to."""
        x0, y0, x1, y1 = self.box
        return math.sqrt(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


class FaceDetector(Protocol):
    """Finds faces of at least ``min_face`` px (box side) in an RGB uint8 image."""

    name: str

    def detect(self, rgb: np.ndarray, *, min_face: float = DEFAULT_MIN_FACE) -> list[DetectedFace]: ...


def detection_scale(shape: tuple[int, ...], min_face: float, *, target: float, max_pixels: float) -> float:
    """Scale at which a ``min_face`` face has a ``target`` box, within the upsample and pixel caps."""
    height, width = shape[:2]
    wanted = target / max(float(min_face), 1.0)
    budget = min(math.sqrt(max_pixels / (height * width)), MAX_DETECTION_SIDE / max(height, width))
    scale = min(wanted, MAX_UPSAMPLE, budget)
    if scale < wanted:
        log.info("detecting at %.2fx (pixel budget); faces under %.0f px may be missed", scale, target / scale)
    return scale


def resize_for_detection(rgb: np.ndarray, scale: float) -> np.ndarray:
    """The image resized by ``scale``: area-averaged when shrinking, bilinear when enlarging."""
    if abs(scale - 1.0) < 1e-3:
        return np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def pad_for_detection(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` padded at the bottom and right (coordinates unchanged) to MIN_DETECTION_SIDE a side."""
    height, width = rgb.shape[:2]
    bottom, right = max(0, MIN_DETECTION_SIDE - height), max(0, MIN_DETECTION_SIDE - width)
    if not bottom and not right:
        return rgb
    return cv2.copyMakeBorder(rgb, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def reading_order(faces: list[DetectedFace]) -> list[DetectedFace]:
    """Faces left to right by box centre (top to bottom on ties), so indices are stable."""
    return sorted(faces, key=lambda f: (round(f.center[0], 1), f.center[1]))


def dlib_model_path(filename: str) -> Path:
    """A model file shipped by face_recognition_models (found without importing the package)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError("dlib face models are missing: install the face_recognition_models package")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise ModelMissingError(f"{path}: dlib model file missing; reinstall face_recognition_models")
    return path


@functools.cache
def _load_dlib(kind: str, filename: str):
    """A dlib model, loaded once per process (the 68-point predictor takes ~0.4 s)."""
    import dlib

    return getattr(dlib, kind)(str(dlib_model_path(filename)))


class _DlibDetector:
    """Shared part of the dlib detectors: scaling and 68-point landmarks reduced to five."""

    name: str
    target: float
    max_pixels: float

    def __init__(self) -> None:
        import dlib

        self._dlib: Any = dlib  # dlib's stubs lack most of what it has (rectangle, detectors)
        self._predictor = _load_dlib("shape_predictor", "shape_predictor_68_face_landmarks.dat")

    def _find(self, rgb: np.ndarray) -> list[tuple[Any, float]]:
        """dlib rectangles with scores on ``rgb``."""
        raise NotImplementedError

    def detect(self, rgb: np.ndarray, *, min_face: float = DEFAULT_MIN_FACE) -> list[DetectedFace]:
        if min(rgb.shape[:2]) < max(min_face, 1):
            return []  # no face of ``min_face`` px fits
        scale = detection_scale(rgb.shape, min_face, target=self.target, max_pixels=self.max_pixels)
        small = pad_for_detection(resize_for_detection(rgb, scale))
        # The predictor samples single pixels: an upsampled image gives it sub-pixel positions,
        # a downsampled one loses detail, so it runs on the larger of the two.
        shape_img, shape_scale = (small, scale) if scale >= 1 else (np.ascontiguousarray(rgb), 1.0)
        faces = []
        for rect, score in self._find(small):
            x0, y0 = rect.left() / scale, rect.top() / scale
            x1, y1 = (rect.right() + 1) / scale, (rect.bottom() + 1) / scale
            k = shape_scale
            shape_rect = self._dlib.rectangle(round(x0 * k), round(y0 * k), round(x1 * k) - 1, round(y1 * k) - 1)
            points = self._predictor(shape_img, shape_rect)
            pts = np.array([(p.x, p.y) for p in points.parts()], dtype=np.float64)
            five = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
            landmarks = ((five + 0.5) / shape_scale - 0.5).astype(np.float32)
            faces.append(DetectedFace(box=(x0, y0, x1, y1), score=float(score), landmarks=landmarks))
        return reading_order(faces)


class DlibCnnDetector(_DlibDetector):
    """dlib's MMOD CNN: finds turned and tilted faces HOG misses; ~4 s per megapixel on a CPU."""

    name = "cnn"
    target = 80.0
    max_pixels = 2e6

    def __init__(self) -> None:
        super().__init__()
        self._cnn = _load_dlib("cnn_face_detection_model_v1", "mmod_human_face_detector.dat")

    def _find(self, rgb: np.ndarray) -> list[tuple[Any, float]]:
        return [(d.rect, d.confidence) for d in self._cnn(rgb, 0)]


class DlibHogDetector(_DlibDetector):
    """dlib's HOG detector: frontal faces only, but ~60x faster than the CNN."""

    name = "hog"
    target = 80.0
    max_pixels = 16e6

    def __init__(self) -> None:
        super().__init__()
        self._hog = self._dlib.get_frontal_face_detector()

    def _find(self, rgb: np.ndarray) -> list[tuple[Any, float]]:
        rects, scores, _ = self._hog.run(rgb, 0, 0.0)
        return list(zip(rects, scores, strict=True))


class RetinaFaceDetector:
    """facexlib's RetinaFace (ResNet-50) from a local weights file; it never downloads.

    facexlib's ``init_detection_model`` fetches weights from the internet, so the network is built
    from its class here and the given state dict loaded strictly.
    """

    name = "retinaface"
    target = 48.0  # anchors start at 16 px; landmarks are steadier on faces of 48 px and more
    max_pixels = 4e6

    def __init__(self, weights_path: str | Path, device: str = "cpu", conf_threshold: float = 0.8) -> None:
        import torch
        from facexlib.detection.retinaface import RetinaFace

        path = Path(weights_path)
        if not path.is_file():
            raise ModelMissingError(f"{path}: RetinaFace weights not found; install the retinaface model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's note on resnet50(pretrained=False)
            net = RetinaFace(network_name="resnet50", half=False, device=torch.device(device))
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k.removeprefix("module."): v for k, v in state.items()}
            net.load_state_dict(state, strict=True)
        except (RuntimeError, AttributeError, ValueError, OSError) as exc:
            raise CheckpointFormatError(f"{path}: not RetinaFace ResNet-50 weights ({exc})") from None
        self._torch = torch
        self._net = net.eval()
        self.conf_threshold = conf_threshold

    def detect(self, rgb: np.ndarray, *, min_face: float = DEFAULT_MIN_FACE) -> list[DetectedFace]:
        if min(rgb.shape[:2]) < max(min_face, 1):
            return []  # no face of ``min_face`` px fits
        scale = detection_scale(rgb.shape, min_face, target=self.target, max_pixels=self.max_pixels)
        bgr = resize_for_detection(rgb, scale)[..., ::-1]
        with self._torch.inference_mode():
            dets = self._net.detect_faces(bgr, conf_threshold=self.conf_threshold, use_origin_size=True)
        faces = []
        for det in dets:
            x0, y0, x1, y1 = (float(v) / scale for v in det[:4])
            # RetinaFace regresses continuous coordinates (0 = left edge); landmarks use pixel centres.
            landmarks = (det[5:15].reshape(5, 2) / scale - 0.5).astype(np.float32)
            faces.append(DetectedFace(box=(x0, y0, x1, y1), score=float(det[4]), landmarks=landmarks))
        return reading_order(faces)


class CascadeDetector:
    """dlib's HOG, then its CNN for a photo where HOG finds no face (turned, tilted, small faces).

    HOG finds frontal faces about 60× faster than the CNN; the CNN, loaded at first need, covers
    the photos HOG misses entirely.
    """

    name = "auto"

    def __init__(self) -> None:
        self.hog = DlibHogDetector()
        self._cnn: DlibCnnDetector | None = None

    def detect(self, rgb: np.ndarray, *, min_face: float = DEFAULT_MIN_FACE) -> list[DetectedFace]:
        faces = self.hog.detect(rgb, min_face=min_face)
        if faces or min(rgb.shape[:2]) < max(min_face, 1):
            return faces
        self._cnn = self._cnn or DlibCnnDetector()
        return self._cnn.detect(rgb, min_face=min_face)


def retinaface_available() -> bool:
    """facexlib and torchvision are installed (a development install; the bundle leaves them out)."""
    return all(importlib.util.find_spec(m) is not None for m in ("facexlib", "torchvision"))


def make_detector(
    name: DetectorName | str = "auto", retinaface_weights: Path | None = None, device: str = "cpu"
) -> FaceDetector:
    """A detector by name; "auto" is RetinaFace when its weights exist, else ``CascadeDetector``."""
    if name == "auto":
        if retinaface_weights is None or not Path(retinaface_weights).is_file() or not retinaface_available():
            return CascadeDetector()
        name = "retinaface"
    if name == "cnn":
        return DlibCnnDetector()
    if name == "hog":
        return DlibHogDetector()
    if name == "retinaface":
        if not retinaface_available():
            raise LikenessError(
                "the RetinaFace detector needs facexlib and torchvision, which this installation lacks "
                "(the app's bundle leaves them out); use --detector auto, hog or cnn"
            )
        if retinaface_weights is None:
            raise ModelMissingError("the RetinaFace detector needs its weights; install the retinaface model")
        return RetinaFaceDetector(retinaface_weights, device=device)
    raise ValueError(f"unknown face detector {name!r} (use cnn, hog, retinaface or auto)")


def select_faces(
    faces: list[DetectedFace],
    image_shape: tuple[int, ...],
    *,
    indices: Sequence[int] | None = None,
    only_center: bool = False,
    min_size: float = 0,
) -> list[tuple[int, DetectedFace]]:
    """The faces to restore, as (index in ``faces``, face) pairs.

    ``indices`` name faces by their position in ``faces`` (reading order, as shown to the user),
    so they stay valid whatever the other options drop. Faces smaller than ``min_size`` are
    dropped; ``only_center`` then keeps the one nearest the image centre.
    """
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(faces)]
        if bad:
            raise NoFaceFoundError(f"face number {bad[0]} was asked for, but {len(faces)} faces were found")
        chosen = [(i, faces[i]) for i in sorted(set(indices))]
    else:
        chosen = list(enumerate(faces))
    chosen = [(i, f) for i, f in chosen if f.size >= min_size]
    if only_center and chosen:
        cy, cx = image_shape[0] / 2, image_shape[1] / 2
        chosen = [min(chosen, key=lambda item: math.hypot(item[1].center[0] - cx, item[1].center[1] - cy))]
    return chosen
