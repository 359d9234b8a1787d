"""Small vector icons drawn with QPainter: crisp at any size and device pixel ratio.

Each icon is a function that draws on a 24×24 canvas with the palette's text colour, so icons
follow light and dark themes. No bitmap icon set is copied into the project.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)

Draw = Callable[[QPainter, QColor], None]


def _pen(color: QColor, width: float = 1.8) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _open(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    path = QPainterPath()
    path.moveTo(3, 19)
    path.lineTo(3, 5)
    path.lineTo(9, 5)
    path.lineTo(11, 7)
    path.lineTo(18, 7)
    path.lineTo(18, 10)
    p.drawPath(path)
    p.drawPolygon(QPolygonF([QPointF(3, 19), QPointF(6, 10), QPointF(21, 10), QPointF(18, 19)]))


def _photo(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawRoundedRect(QRectF(3, 5, 18, 14), 2, 2)
    p.drawEllipse(QPointF(8.5, 9.5), 1.6, 1.6)
    p.drawPolyline(QPolygonF([QPointF(4, 17), QPointF(10, 12), QPointF(13, 15), QPointF(16, 12), QPointF(20, 16)]))


def _run(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.setBrush(c)
    p.drawPolygon(QPolygonF([QPointF(7, 5), QPointF(19, 12), QPointF(7, 19)]))


def _stop(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.setBrush(c)
    p.drawRoundedRect(QRectF(6, 6, 12, 12), 1.5, 1.5)


def _export(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawPolyline(QPolygonF([QPointF(4, 14), QPointF(4, 20), QPointF(20, 20), QPointF(20, 14)]))
    p.drawLine(QPointF(12, 4), QPointF(12, 15))
    p.drawPolyline(QPolygonF([QPointF(7.5, 10.5), QPointF(12, 15), QPointF(16.5, 10.5)]))


def _split(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawRoundedRect(QRectF(3, 5, 18, 14), 2, 2)
    p.setBrush(c)
    p.drawRect(QRectF(3, 5, 9, 14))
    p.drawLine(QPointF(12, 2.5), QPointF(12, 21.5))


def _side(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawRoundedRect(QRectF(2, 6, 9, 12), 1.5, 1.5)
    p.drawRoundedRect(QRectF(13, 6, 9, 12), 1.5, 1.5)


def _fit(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    for x, y, dx, dy in ((4, 4, 1, 1), (20, 4, -1, 1), (4, 20, 1, -1), (20, 20, -1, -1)):
        p.drawPolyline(QPolygonF([QPointF(x, y + 5 * dy), QPointF(x, y), QPointF(x + 5 * dx, y)]))
    p.drawRect(QRectF(8.5, 8.5, 7, 7))


def _actual(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawEllipse(QPointF(10.5, 10.5), 6.5, 6.5)
    p.drawLine(QPointF(15.5, 15.5), QPointF(20.5, 20.5))
    font = p.font()
    font.setPixelSize(8)
    font.setBold(True)
    p.setFont(font)
    p.drawText(QRectF(4, 4, 13, 13), Qt.AlignmentFlag.AlignCenter, "1:1")


def _models(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    top = QPolygonF([QPointF(12, 3), QPointF(20, 7.5), QPointF(12, 12), QPointF(4, 7.5)])
    p.drawPolygon(top)
    p.drawPolyline(QPolygonF([QPointF(4, 7.5), QPointF(4, 16.5), QPointF(12, 21), QPointF(20, 16.5), QPointF(20, 7.5)]))
    p.drawLine(QPointF(12, 12), QPointF(12, 21))


def _settings(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    for y, x in ((6, 15), (12, 8), (18, 13)):
        p.drawLine(QPointF(3, y), QPointF(21, y))
        p.setBrush(QGuiApplication.palette().color(QPalette.ColorRole.Window))
        p.drawEllipse(QPointF(x, y), 2.4, 2.4)


def _face(p: QPainter, c: QColor, line: float = 1.8, eyes: float = 1.8) -> None:
    p.setPen(_pen(c, line))
    p.drawEllipse(QRectF(5, 3, 14, 17))
    p.setPen(_pen(c, eyes))
    p.drawPoint(QPointF(9.5, 10))
    p.drawPoint(QPointF(14.5, 10))
    p.setPen(_pen(c, line))
    p.drawArc(QRectF(9, 12, 6, 4), 200 * 16, 140 * 16)


def _copy(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawRoundedRect(QRectF(8, 8, 12, 13), 1.5, 1.5)
    p.drawPolyline(QPolygonF([QPointF(5, 16), QPointF(4, 16), QPointF(4, 3), QPointF(15, 3), QPointF(15, 4.5)]))


def _folder(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    path = QPainterPath()
    path.moveTo(3, 19)
    path.lineTo(3, 5)
    path.lineTo(9, 5)
    path.lineTo(11, 7)
    path.lineTo(21, 7)
    path.lineTo(21, 19)
    path.closeSubpath()
    p.drawPath(path)


def _remove(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawLine(QPointF(7, 7), QPointF(17, 17))
    p.drawLine(QPointF(17, 7), QPointF(7, 17))


def _info(p: QPainter, c: QColor) -> None:
    p.setPen(_pen(c))
    p.drawEllipse(QPointF(12, 12), 9, 9)
    p.drawLine(QPointF(12, 11), QPointF(12, 17))
    p.drawPoint(QPointF(12, 7.5))


ICONS: dict[str, Draw] = {
    "open": _open,
    "photo": _photo,
    "run": _run,
    "stop": _stop,
    "export": _export,
    "split": _split,
    "side": _side,
    "fit": _fit,
    "actual": _actual,
    "models": _models,
    "settings": _settings,
    "face": _face,
    "copy": _copy,
    "folder": _folder,
    "remove": _remove,
    "info": _info,
}


class VectorIconEngine(QIconEngine):
    """Paints one of ``ICONS`` at the requested size (and device pixel ratio)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        palette = QGuiApplication.palette()
        group = QPalette.ColorGroup.Disabled if mode == QIcon.Mode.Disabled else QPalette.ColorGroup.Normal
        color = palette.color(group, QPalette.ColorRole.WindowText)
        if mode == QIcon.Mode.Selected:
            color = palette.color(group, QPalette.ColorRole.HighlightedText)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(rect.width(), rect.height())
        painter.translate(rect.x() + (rect.width() - side) / 2, rect.y() + (rect.height() - side) / 2)
        painter.scale(side / 24.0, side / 24.0)
        ICONS[self.name](painter, color)
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        pixmap = QPixmap(size * scale)
        pixmap.setDevicePixelRatio(scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pixmap

    def clone(self) -> QIconEngine:
        return VectorIconEngine(self.name)


_ENGINES: list[VectorIconEngine] = []  # QIcon does not keep the Python wrapper alive


def icon(name: str) -> QIcon:
    """The vector icon called ``name`` (see ``ICONS``)."""
    engine = VectorIconEngine(name)
    _ENGINES.append(engine)
    return QIcon(engine)


def app_icon_image(side: int) -> QImage:
    """The application's icon: the face glyph in white on a warm rounded square (desktop, installers)."""
    image = QImage(side, side, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(side / 24.0, side / 24.0)
    gradient = QLinearGradient(0, 0, 24, 24)
    gradient.setColorAt(0.0, QColor("#e0a15e"))
    gradient.setColorAt(1.0, QColor("#8a4b2a"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(gradient)
    p.drawRoundedRect(QRectF(0.5, 0.5, 23, 23), 5, 5)
    p.translate(12, 12)
    p.scale(0.8, 0.8)
    p.translate(-12, -11.5)
    p.setBrush(Qt.BrushStyle.NoBrush)
    _face(p, QColor("white"), line=1.6, eyes=2.2)  # the toolbar's face glyph, bolder eyes
    p.end()
    return image


def app_icon() -> QIcon:
    """``app_icon_image`` at the sizes window managers ask for."""
    result = QIcon()
    for side in (16, 24, 32, 48, 64, 128, 256):
        result.addPixmap(QPixmap.fromImage(app_icon_image(side)))
    return result
