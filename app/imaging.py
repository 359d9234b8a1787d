"""Pixels between the engine (numpy RGB arrays) and Qt (QImage), and photo loading for display."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

THUMB_SIZE = 112


def to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage owning a copy of an HxWx3 uint8 RGB (or HxW gray) array."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim == 2:
        h, w = rgb.shape
        return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_Grayscale8).copy()
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def to_array(image: QImage) -> np.ndarray:
    """HxWx3 uint8 RGB copy of a QImage."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(h, image.bytesPerLine())
    return data[:, : w * 3].reshape(h, w, 3).copy()


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIZE) -> QImage:
    """A thumbnail no larger than ``side`` on its long edge, smooth."""
    image = to_qimage(rgb)
    return image.scaled(
        QSize(side, side), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def read_upright(path: Path, max_side: int | None = None) -> QImage:
    """A photo as shown to the user: EXIF orientation applied (as the engine does), optionally scaled."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    if max_side:
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > max_side:
            size.scale(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio)
            reader.setScaledSize(size)
    image = reader.read()
    return image


def save_result(path: Path, rgb: np.ndarray) -> Path:
    """Keeps a restored image on disk, uncompressed (fast to write and read back exactly)."""
    np.save(path, np.ascontiguousarray(rgb), allow_pickle=False)
    return path


def load_result(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def result_readable(path: Path) -> bool:
    """Whether a kept result is whole (its header read, its size checked; the pixels not read)."""
    try:
        rgb = np.load(path, mmap_mode="r", allow_pickle=False)
        whole = rgb.dtype == np.uint8 and rgb.ndim in (2, 3)
        del rgb  # closes the file (Windows cannot move an open one)
        return whole
    except (OSError, ValueError):
        return False


class PhotoLoader(QObject):
    """Reads full-size images for display on a pool thread, so the window never waits on a decode."""

    loaded = Signal(object, QImage)  # key, image (null when unreadable)

    def load(self, key, path: Path) -> None:
        """Key and image of a photo file, or of a restored result (``.npy``)."""
        QThreadPool.globalInstance().start(_Load(self, key, path))


class _Load(QRunnable):
    def __init__(self, loader: PhotoLoader, key, path: Path) -> None:
        super().__init__()
        self.loader, self.key, self.path = loader, key, path

    def run(self) -> None:
        if self.path.suffix == ".npy":
            try:
                image = to_qimage(load_result(self.path))
            except (OSError, ValueError):
                image = QImage()
        else:
            image = read_upright(self.path)
        try:
            self.loader.loaded.emit(self.key, image)
        except RuntimeError:  # the window closed meanwhile
            pass
