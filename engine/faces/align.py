"""Alignment of faces to the FFHQ template, the crop every CodeFormer-family network expects.

Affines are OpenCV 2x3 matrices in pixel-centre coordinates (pixel (0, 0) covers [-0.5, 0.5]),
mapping image pixels to face-crop pixels ("face <- image"), as ``cv2.warpAffine`` takes them.
"""

from __future__ import annotations

import cv2
import numpy as np

FFHQ_SIZE = 512
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float32,
)


class DegenerateLandmarksError(ValueError):
    """Five landmarks no similarity fits (all at one point, or a zoom that is no face): a detection to drop."""


# Bilinear sampling aliases fine texture when shrinking by more than this; low-pass first.
MAX_WARP_SHRINK = 1.25


def face_template(size: int = FFHQ_SIZE) -> np.ndarray:
    """The five template points (eyes, nose tip, mouth corners) for a ``size`` crop."""
    return FFHQ_TEMPLATE_512 * np.float32(size / FFHQ_SIZE)


def estimate_affine(landmarks: np.ndarray, size: int = FFHQ_SIZE) -> np.ndarray:
    """Similarity transform (face <- image) taking ``landmarks`` (5,2) onto the template.

    LMEDS, as facexlib and CodeFormer use, so one bad landmark does not skew the crop.
    """
    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    affine, _ = cv2.estimateAffinePartial2D(src, face_template(size), method=cv2.LMEDS)
    if affine is None or not np.all(np.isfinite(affine)):
        raise DegenerateLandmarksError("degenerate landmarks: no similarity transform fits them")
    zoom = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    if not 1e-3 < zoom < 1e4:
        raise DegenerateLandmarksError(f"degenerate landmarks: they would zoom the photo ×{zoom:.3g}")
    return affine.astype(np.float64)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The inverse 2x3 affine (image <- face)."""
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def rescale_affine(affine: np.ndarray, scale: float | tuple[float, float]) -> np.ndarray:
    """The face <- image affine for the image resized by ``scale`` (as ``cv2.resize`` does).

    Resizing maps x to scale*(x+0.5)-0.5; composing with its inverse keeps the face exactly where
    it was, so faces aligned on the input paste onto an upscaled background without a shift.
    Pass (sx, sy) = (out_w / in_w, out_h / in_h) when rounding made the two axes differ.
    """
    sx, sy = (scale, scale) if isinstance(scale, int | float | np.number) else scale
    to_input = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
    return np.asarray(affine, dtype=np.float64) @ to_input


def enlarge_affine(affine: np.ndarray, factor: float) -> np.ndarray:
    """The face <- image affine onto a crop ``factor`` times larger than ``affine``'s.

    Pixel centres: crop pixel x maps to factor*(x+0.5)-0.5, so both crops show the same face.
    """
    out = np.asarray(affine, dtype=np.float64) * factor
    out[:, 2] += 0.5 * (factor - 1)
    return out


def aligned_affine(image_shape: tuple[int, ...], size: int = FFHQ_SIZE) -> np.ndarray:
    """The affine for an input that is already an aligned face crop (any square size)."""
    height, width = image_shape[:2]
    return np.array([[size / width, 0, 0.5 * size / width - 0.5], [0, size / height, 0.5 * size / height - 0.5]])


def affine_scale(affine: np.ndarray) -> float:
    """How many destination pixels one source pixel spans (the similarity's zoom)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(affine)[:, :2]))))


def warp_face(rgb: np.ndarray, affine: np.ndarray, size: int = FFHQ_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` aligned crop of ``rgb``.

    Outside the photo the crop is filled by reflection, not a constant colour: FFHQ itself was
    built by reflect-padding photos, so a mirrored border is what restoration networks saw in
    training, while a flat grey block is a strong edge they try to "restore". Only pixels inside
    the photo are ever pasted back, so the border only has to be harmless. Enlarging is bilinear
    because CodeFormer's training made its low-quality inputs with bilinear upsampling.
    """
    return warp(rgb, affine, (size, size), border=cv2.BORDER_REFLECT_101, flags=cv2.INTER_LINEAR)


def warp(
    src: np.ndarray,
    affine: np.ndarray,
    dsize: tuple[int, int],
    *,
    border: int = cv2.BORDER_REPLICATE,
    flags: int | None = None,
) -> np.ndarray:
    """``cv2.warpAffine`` that low-passes the source first when the warp shrinks it.

    ``dsize`` is (width, height). Bilinear sampling alone aliases fine texture into moire once
    it shrinks by more than ~1.25x, so the source window the output needs is blurred with the
    Gaussian that removes what the smaller grid cannot hold. Enlarging defaults to bicubic,
    shrinking to bilinear, which never overshoots at edges (no ringing to become a halo).
    """
    affine = np.asarray(affine, dtype=np.float64)
    zoom = affine_scale(affine)
    if zoom * MAX_WARP_SHRINK < 1:
        sigma = 0.5 * np.sqrt(1 / zoom**2 - 1)
        src, affine = _source_window(src, affine, dsize, margin=int(np.ceil(3 * sigma)) + 2)
        src = cv2.GaussianBlur(src, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    if flags is None:
        flags = cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(src, affine, dsize, flags=flags, borderMode=border)


def _source_window(
    src: np.ndarray, affine: np.ndarray, dsize: tuple[int, int], margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``src`` the warp reads (plus ``margin``), and the affine from that part."""
    width, height = dsize
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]])
    mapped = corners @ invert_affine(affine)[:, :2].T + invert_affine(affine)[:, 2]
    x0, y0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int) - margin, 0)
    x1 = min(int(np.ceil(mapped[:, 0].max())) + margin + 1, src.shape[1])
    y1 = min(int(np.ceil(mapped[:, 1].max())) + margin + 1, src.shape[0])
    if x1 <= x0 or y1 <= y0:  # the output lies wholly outside the source: keep it all for the border
        return src, affine
    shifted = affine.copy()
    shifted[:, 2] += affine[:, :2] @ (x0, y0)
    return src[y0:y1, x0:x1], shifted
