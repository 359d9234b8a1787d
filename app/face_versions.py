"""The chosen face with and without its references, in the preview's framing.

The face preview restores the aligned face without references (the slider's path). When the
photo's restored result was made with references and they were used for this face, the face is
cut out of that result with the face's own alignment (``FaceInfo.affine``), so before, without
and with references line up pixel for pixel side by side.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter, QTransform

from .photos import PhotoItem
from .session import Session


def face_from_result(result: QImage, photo_width: int, affine: tuple[float, ...], side: int) -> QImage:
    """The face of a restored photo (``result``, ``upscale`` × the photo) as the aligned ``side``² crop."""
    u = result.width() / max(1, photo_width)
    a, b, c, d, e, f = affine  # photo → aligned: x' = a x + b y + c, y' = d x + e y + f
    out = QImage(side, side, QImage.Format.Format_RGB888)
    out.fill(Qt.GlobalColor.black)
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    p.setTransform(QTransform(a / u, d / u, b / u, e / u, c, f))  # result pixels → photo → aligned
    p.drawImage(0, 0, result)
    p.end()
    return out


def with_references(session: Session, item: PhotoItem, index: int, side: int) -> tuple[QImage, str] | None:
    """The face as restored with references and its caption; None when its result was made without them."""
    options = item.result_options
    if options is None or not options.references or index not in item.result_faces:
        return None
    if not session.person.has(item.id, index) or item.size is None:
        return None
    face = next((f for f in item.faces if f.index == index), None)
    result = session.result_image(item)
    if face is None or face.affine is None or result is None:
        return None
    caption = f"With references · w {options.fidelity:.2f}" + (" · out of date" if item.stale else "")
    return face_from_result(result, item.size[0], face.affine, side), caption


class VersionCache:
    """The last face cut from a result, so progress updates of the photo do not cut it again."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: tuple[QImage, str] | None = None

    def get(self, session: Session, item: PhotoItem, index: int, side: int) -> tuple[QImage, str] | None:
        used = session.person.has(item.id, index)
        key = (item.id, index, side, item.result_file, id(item.result), item.result_options, item.stale, used)
        if key != self._key:
            self._key, self._value = key, with_references(session, item, index, side)
        return self._value
