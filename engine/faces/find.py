"""Find the faces in a photo and align each to the FFHQ template: the one place that does it.

Restoration, the reference analysis and the training face import all start here, so each sees
exactly the same detections, landmarks and crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .align import FFHQ_SIZE, DegenerateLandmarksError, aligned_affine, estimate_affine, face_template, warp_face
from .detect import DEFAULT_MIN_FACE, DetectedFace, FaceDetector


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A detected face with its alignment: ``affine`` maps photo pixels to the ``crop``."""

    detection: DetectedFace  # box, score and 5 landmarks in photo pixels
    affine: np.ndarray  # (2, 3): photo → aligned crop
    crop: np.ndarray  # uint8 RGB, size² (FFHQ_SIZE unless asked otherwise)


def find_faces(
    rgb: np.ndarray, detector: FaceDetector, *, min_face: float = DEFAULT_MIN_FACE, size: int = FFHQ_SIZE
) -> list[AlignedFace]:
    """Every face of at least ``min_face`` px, in reading order, aligned at ``size``²."""
    return [align_detection(rgb, face, size) for face in alignable(detector.detect(rgb, min_face=min_face))]


def alignable(faces: list[DetectedFace]) -> list[DetectedFace]:
    """The detections whose landmarks give a usable alignment (a detector can return degenerate ones)."""
    kept = []
    for face in faces:
        try:
            estimate_affine(face.landmarks)
        except DegenerateLandmarksError:
            continue
        kept.append(face)
    return kept


def align_detection(rgb: np.ndarray, face: DetectedFace, size: int = FFHQ_SIZE) -> AlignedFace:
    """One detection aligned to the template at ``size``²."""
    affine = estimate_affine(face.landmarks, size)
    return AlignedFace(face, affine, warp_face(rgb, affine, size))


def largest_face(faces: list[AlignedFace]) -> AlignedFace | None:
    """The main face of a portrait: the largest one (in group photos, the one nearest the camera)."""
    return max(faces, key=lambda f: f.detection.size, default=None)


def whole_image_face(rgb: np.ndarray, size: int = FFHQ_SIZE) -> AlignedFace:
    """An input that already is an aligned face crop (any square size), as one face."""
    affine = aligned_affine(rgb.shape, size)
    height, width = rgb.shape[:2]
    landmarks = (face_template(size) * np.float32(width / size)).astype(np.float32)
    detection = DetectedFace((0.0, 0.0, float(width), float(height)), 1.0, landmarks)
    return AlignedFace(detection, affine, warp_face(rgb, affine, size))
