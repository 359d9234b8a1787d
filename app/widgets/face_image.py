"""A square face image scaled smoothly to its size, with a caption underneath (the face preview,
the face comparison window)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QWidget


class FaceImage(QLabel):
    """A square face image scaled smoothly to the label's size, with a caption underneath."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.image: QImage | None = None
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setFrameShape(QFrame.Shape.NoFrame)

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        self.update()

    def heightForWidth(self, width: int) -> int:
        return width + self.fontMetrics().height() + 6

    def hasHeightForWidth(self) -> bool:
        return True

    def sizeHint(self) -> QSize:
        return QSize(140, 140 + self.fontMetrics().height() + 6)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        side = min(self.width(), self.height() - self.fontMetrics().height() - 6)
        x = (self.width() - side) // 2
        target = self.rect().adjusted(x, 0, 0, 0)
        target.setSize(QSize(side, side))
        p.fillRect(target, self.palette().mid())
        if self.image is not None:
            p.drawImage(target, self.image)
        else:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(target, Qt.AlignmentFlag.AlignCenter, "—")
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(
            self.rect().adjusted(0, side + 4, 0, 0),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            self.caption,
        )
