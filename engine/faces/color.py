"""Colour correction of restored faces, and keeping gray photos gray.

Restoration networks shift colour (warmer skin, a tint on gray faces) and overall brightness. The
fix replaces the restored face's low frequencies in CIELAB with the input's: colour casts and
brightness or shading changes live there, while the detail the network adds lives above the
cutoff and is kept. Matching the input's low frequencies also makes the face meet the untouched
background at the paste-back feather without a step.

The cutoff (Gaussian sigma = 1/16 of the crop, 32 px at 512) is a compromise, measured in
tests/engine/faces/test_color.py: lower cutoffs follow the input more closely but bring back its
blur and, for small JPEG faces, its 8x8 blocks (100 px in the crop of a 40 px face: a 32 px sigma
passes 13 % of them, 16 px passes 60 %); global Lab mean/std transfer (Reinhard) is immune to that
but flattens the restored contrast toward the blurry input's and cannot follow uneven lighting.
"""

from __future__ import annotations

import cv2
import numpy as np

LOW_PASS_FRACTION = 1 / 16


def match_color(restored_face: np.ndarray, input_face: np.ndarray) -> np.ndarray:
    """``restored_face`` with the input face's colour and brightness at large scales (uint8 RGB)."""
    size = restored_face.shape[0]
    if input_face.shape[:2] != restored_face.shape[:2]:
        input_face = cv2.resize(input_face, restored_face.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    restored, reference = _to_lab(restored_face), _to_lab(input_face)
    sigma = max(size * LOW_PASS_FRACTION, 1.0)
    matched = restored - _low_pass(restored, sigma) + _low_pass(reference, sigma)
    rgb = cv2.cvtColor(matched, cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def restore_grayness(rgb: np.ndarray, was_gray: bool) -> np.ndarray:
    """The image as three equal channels of its luminance if the input was gray, else unchanged.

    Networks tint gray photos; apply this to the final image (faces and background) of a gray
    input so the output is gray again.
    """
    if not was_gray:
        return rgb
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _low_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma``; a wide one runs on a grid ``sigma / 8`` times coarser (what it
    keeps varies slowly there) at a tenth of the cost."""
    step = int(sigma // 8)
    if step < 2:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // step), max(1, height // step)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma * small.shape[1] / width, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
