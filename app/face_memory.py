"""Faces found once per photo: a face detector that remembers what it found (worker thread only).

The engine's ``Restorer.restore`` finds the faces of each photo again, although the app found
them when the photo was added. ``RememberingDetector`` wraps a detector the engine is served
(``Restorer.use_detector``) and answers a photo it has seen with the same detections, so Restore
All, the preview and the reference check detect nothing twice. A photo is known by its pixels
(a digest) and the smallest face size asked: an edited file, another ``min_face`` or another
detector (each wraps its own) is detected afresh.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

KEEP = 256  # photos remembered per detector (a few landmarks each)


class Detector(Protocol):
    def detect(self, rgb: np.ndarray, *, min_face: float = 32) -> list[Any]: ...


def photo_key(rgb: np.ndarray, min_face: float) -> tuple:
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=16).digest()
    return rgb.shape, str(rgb.dtype), float(min_face), digest


class RememberingDetector:
    """``inner``'s detections, found once per photo; ``inner`` stays reachable for its own methods."""

    def __init__(self, inner: Detector, keep: int = KEEP) -> None:
        self.inner = inner
        self.keep = keep
        self._found: OrderedDict[tuple, list[Any]] = OrderedDict()

    def detect(self, rgb: np.ndarray, *, min_face: float = 32) -> list[Any]:
        key = photo_key(rgb, min_face)
        if key in self._found:
            self._found.move_to_end(key)
        else:
            self._found[key] = list(self.inner.detect(rgb, min_face=min_face))
            while len(self._found) > self.keep:
                self._found.popitem(last=False)
        return list(self._found[key])


def unwrap(detector: object) -> object:
    """The detector behind a ``RememberingDetector`` (or ``detector`` itself)."""
    return detector.inner if isinstance(detector, RememberingDetector) else detector
