"""Image helpers shared by the face cache (``training.face_import``) and the training data."""

from __future__ import annotations

import cv2
import numpy as np


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """A square image at ``size``²: area averaging when shrinking (no aliasing), bicubic when enlarging."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, (size, size), interpolation=interp))
