"""Before/after view: a draggable split line or side by side, one zoom and pan for both sides.

Scene coordinates are pixels of the original photo; the restored image (``upscale`` times
larger) is drawn over the same scene rectangle, so face boxes, zoom and pan apply to both sides
alike. 100 % means one pixel of the restored image per screen pixel.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..jobs import FaceInfo

SPLIT_GRAB = 8  # pixels either side of the split line that grab it
GAP = 6  # between the two sides in side-by-side mode
BADGE = 20  # include/exclude badge diameter
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
BACKDROP = QColor(40, 41, 43)
INCLUDED = QColor(80, 200, 120)
EXCLUDED = QColor(235, 90, 80)
SELECTED = QColor(255, 255, 255)
STALE = QColor(200, 120, 10, 220)  # the label of an out-of-date result
PROFILE = QColor(60, 90, 170, 220)  # the tag of a face restored with a person profile


def badge_text(face: FaceInfo) -> str:
    """A face's tag: its number, and the profile it was restored with ("2 · Anna")."""
    return f"{face.index + 1} · {face.profile}" if face.profile else str(face.index + 1)


class CompareView(QWidget):
    face_clicked = Signal(int)  # select: show the face large
    face_toggled = Signal(int)  # include/exclude
    zoom_changed = Signal(float)  # screen pixels per restored-image pixel

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Before and after comparison")
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.scene_size = QSize()
        self.faces: list[FaceInfo] = []
        self.excluded: set[int] = set()
        self.selected_face: int | None = None
        self.side_by_side = False
        self.split = 0.5  # fraction of the widget width
        self.show_faces = True
        self.placeholder = "Drop photos or folders here, or use File → Open"
        self.after_label = "After"  # e.g. "After · w 0.40 · out of date"
        self.after_stale = False
        self._zoom: float | None = None  # None: fit; else screen px per scene px
        self._center = QPointF()  # scene point at the centre of a pane
        self._drag: str | None = None
        self._press = QPointF()
        self._press_center = QPointF()
        self._moved = False

    # -- content -------------------------------------------------------------------------------
    def set_photo(self, before: QImage | None, size: tuple[int, int] | None, after: QImage | None = None) -> None:
        """Shows a new photo, fitted; ``size`` is the original's (width, height)."""
        new_photo = size is None or QSize(*size) != self.scene_size
        self.before = before
        self.after = after
        self.scene_size = QSize(*size) if size else (before.size() if before is not None else QSize())
        if new_photo:
            self._zoom = None
            self._center = QPointF(self.scene_size.width() / 2, self.scene_size.height() / 2)
        self.update()
        self.zoom_changed.emit(self.zoom_percent())

    def set_after(self, after: QImage | None) -> None:
        self.after = after
        self.update()
        self.zoom_changed.emit(self.zoom_percent())

    def set_faces(self, faces: list[FaceInfo], excluded: set[int], selected: int | None) -> None:
        self.faces, self.excluded, self.selected_face = list(faces), set(excluded), selected
        self.update()

    def set_side_by_side(self, on: bool) -> None:
        self.side_by_side = on
        self.update()

    # -- geometry ------------------------------------------------------------------------------
    @property
    def upscale(self) -> float:
        if self.after is None or self.scene_size.width() == 0:
            return 1.0
        return self.after.width() / self.scene_size.width()

    def panes(self) -> list[QRectF]:
        r = QRectF(self.rect())
        if self.side_by_side and self.after is not None:
            half = (r.width() - GAP) / 2
            return [
                QRectF(r.left(), r.top(), half, r.height()),
                QRectF(r.left() + half + GAP, r.top(), half, r.height()),
            ]
        return [r]

    def scale(self) -> float:
        if self._zoom is not None:
            return self._zoom
        return self.fit_scale()

    def fit_scale(self) -> float:
        if self.scene_size.isEmpty():
            return 1.0
        pane = self.panes()[0]
        return max(
            MIN_ZOOM,
            min((pane.width() - 16) / self.scene_size.width(), (pane.height() - 16) / self.scene_size.height()),
        )

    def zoom_percent(self) -> float:
        """Screen pixels per restored-image pixel, as a percentage (100 = 1:1)."""
        return 100.0 * self.scale() / self.upscale * self.devicePixelRatioF()

    def to_screen(self, pane: QRectF, p: QPointF) -> QPointF:
        s = self.scale()
        center = (
            self._center
            if self._zoom is not None
            else QPointF(self.scene_size.width() / 2, self.scene_size.height() / 2)
        )
        return QPointF(pane.center().x() + (p.x() - center.x()) * s, pane.center().y() + (p.y() - center.y()) * s)

    def to_scene(self, pane: QRectF, p: QPointF) -> QPointF:
        s = self.scale()
        center = (
            self._center
            if self._zoom is not None
            else QPointF(self.scene_size.width() / 2, self.scene_size.height() / 2)
        )
        return QPointF(center.x() + (p.x() - pane.center().x()) / s, center.y() + (p.y() - pane.center().y()) / s)

    def scene_rect_on(self, pane: QRectF) -> QRectF:
        top_left = self.to_screen(pane, QPointF(0, 0))
        s = self.scale()
        return QRectF(top_left.x(), top_left.y(), self.scene_size.width() * s, self.scene_size.height() * s)

    def face_rect(self, pane: QRectF, face: FaceInfo) -> QRectF:
        x0, y0, x1, y1 = face.box
        a, b = self.to_screen(pane, QPointF(x0, y0)), self.to_screen(pane, QPointF(x1, y1))
        return QRectF(a, b)

    def badge_rect(self, pane: QRectF, face: FaceInfo) -> QRectF:
        r = self.face_rect(pane, face)
        return QRectF(r.right() - BADGE / 2, r.top() - BADGE / 2, BADGE, BADGE)

    def face_badge_center(self, index: int) -> QPointF:
        """Where to click to include/exclude face ``index`` (tests and accessibility)."""
        face = next(f for f in self.faces if f.index == index)
        return self.badge_rect(self.panes()[-1], face).center()

    def face_center(self, index: int) -> QPointF:
        face = next(f for f in self.faces if f.index == index)
        return self.face_rect(self.panes()[-1], face).center()

    def split_x(self) -> float:
        return self.rect().width() * self.split

    # -- zoom ----------------------------------------------------------------------------------
    def fit(self) -> None:
        self._zoom = None
        self._center = QPointF(self.scene_size.width() / 2, self.scene_size.height() / 2)
        self.update()
        self.zoom_changed.emit(self.zoom_percent())

    def actual_size(self) -> None:
        """100 %: one restored-image pixel per device pixel, centred where the view is."""
        self.set_scale(self.upscale / self.devicePixelRatioF())

    def set_scale(self, scale: float, anchor: QPointF | None = None) -> None:
        pane = self._pane_at(anchor) if anchor is not None else self.panes()[0]
        scene_anchor = self.to_scene(pane, anchor) if anchor is not None else None
        if self._zoom is None:
            self._center = QPointF(self.scene_size.width() / 2, self.scene_size.height() / 2)
        self._zoom = max(MIN_ZOOM, min(MAX_ZOOM, scale))
        if anchor is not None and scene_anchor is not None:  # keep the point under the cursor where it is
            s = self._zoom
            self._center = QPointF(
                scene_anchor.x() - (anchor.x() - pane.center().x()) / s,
                scene_anchor.y() - (anchor.y() - pane.center().y()) / s,
            )
        self.update()
        self.zoom_changed.emit(self.zoom_percent())

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_scale(self.scale() * factor, anchor)

    def _pane_at(self, p: QPointF) -> QRectF:
        for pane in self.panes():
            if pane.contains(p):
                return pane
        return self.panes()[0]

    # -- painting ------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKDROP)
        if self.before is None and self.after is None:
            self._paint_placeholder(p)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale() < 2 * self.upscale)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        panes = self.panes()
        if len(panes) == 2:
            for pane, image, label in ((panes[0], self.before, "Before"), (panes[1], self.after, self.after_label)):
                p.save()
                p.setClipRect(pane)
                self._paint_image(p, pane, image)
                self._paint_faces(p, pane)
                p.restore()
                self._paint_label(p, pane, label, left=True, stale=self.after_stale and image is self.after)
        else:
            pane = panes[0]
            if self.after is None:
                self._paint_image(p, pane, self.before)
                self._paint_faces(p, pane)
                self._paint_label(p, pane, "Original · not restored yet", left=True)
            else:
                x = self.split_x()
                p.save()
                p.setClipRect(QRectF(pane.left(), pane.top(), x - pane.left(), pane.height()))
                self._paint_image(p, pane, self.before)
                p.restore()
                p.save()
                p.setClipRect(QRectF(x, pane.top(), pane.right() - x, pane.height()))
                self._paint_image(p, pane, self.after)
                p.restore()
                self._paint_faces(p, pane)
                self._paint_split(p, pane, x)
                self._paint_label(p, pane, "Before", left=True)
                self._paint_label(p, pane, self.after_label, left=False, stale=self.after_stale)

    def _paint_placeholder(self, p: QPainter) -> None:
        p.setPen(QColor(200, 200, 200))
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        p.setFont(font)
        r = QRectF(self.rect()).adjusted(40, 40, -40, -40)
        pen = QPen(QColor(120, 120, 120), 2, Qt.PenStyle.DashLine)
        p.save()
        p.setPen(pen)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.drawRoundedRect(r, 12, 12)
        p.restore()
        p.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)

    def _paint_image(self, p: QPainter, pane: QRectF, image: QImage | None) -> None:
        if image is None:
            return
        p.drawImage(self.scene_rect_on(pane), image, QRectF(image.rect()))

    def _paint_faces(self, p: QPainter, pane: QRectF) -> None:
        if not self.show_faces:
            return
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        for face in self.faces:
            r = self.face_rect(pane, face)
            included = face.index not in self.excluded
            color = INCLUDED if included else EXCLUDED
            selected = face.index == self.selected_face
            p.setBrush(Qt.BrushStyle.NoBrush)
            if selected:
                p.setPen(QPen(QColor(0, 0, 0, 140), 4))
                p.drawRoundedRect(r, 3, 3)
            p.setPen(
                QPen(
                    SELECTED if selected else color,
                    2.5 if selected else 1.6,
                    Qt.PenStyle.SolidLine if included else Qt.PenStyle.DashLine,
                )
            )
            p.drawRoundedRect(r, 3, 3)
            # number tag, with the person profile the face was restored with
            text = badge_text(face)
            width = max(22, p.fontMetrics().horizontalAdvance(text) + 10)
            tag = QRectF(r.left(), r.bottom() + 3, width, 18)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(PROFILE if face.profile else QColor(0, 0, 0, 170))
            p.drawRoundedRect(tag, 4, 4)
            p.setPen(QColor(255, 255, 255))
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
            # include/exclude badge
            b = self.badge_rect(pane, face)
            p.setPen(QPen(QColor(255, 255, 255), 1.5))
            p.setBrush(color)
            p.drawEllipse(b)
            path = QPainterPath()
            c = b.center()
            if included:
                path.moveTo(c.x() - 4.5, c.y())
                path.lineTo(c.x() - 1.5, c.y() + 3.5)
                path.lineTo(c.x() + 4.5, c.y() - 3.5)
            else:
                path.moveTo(c.x() - 3.5, c.y() - 3.5)
                path.lineTo(c.x() + 3.5, c.y() + 3.5)
                path.moveTo(c.x() + 3.5, c.y() - 3.5)
                path.lineTo(c.x() - 3.5, c.y() + 3.5)
            p.setBrush(Qt.BrushStyle.NoBrush)
            mark = QPen(QColor(255, 255, 255), 2.2)
            mark.setCapStyle(Qt.PenCapStyle.RoundCap)
            p.setPen(mark)
            p.drawPath(path)

    def _paint_split(self, p: QPainter, pane: QRectF, x: float) -> None:
        p.setPen(QPen(QColor(0, 0, 0, 120), 3))
        p.drawLine(QPointF(x, pane.top()), QPointF(x, pane.bottom()))
        p.setPen(QPen(QColor(255, 255, 255), 1.5))
        p.drawLine(QPointF(x, pane.top()), QPointF(x, pane.bottom()))
        handle = QRectF(x - 11, pane.center().y() - 22, 22, 44)
        p.setBrush(QColor(255, 255, 255))
        p.setPen(QPen(QColor(0, 0, 0, 90), 1))
        p.drawRoundedRect(handle, 11, 11)
        p.setPen(QPen(QColor(60, 60, 60), 1.6))
        cy = handle.center().y()
        for dx in (-3, 3):
            p.drawLine(QPointF(x + dx, cy - 8), QPointF(x + dx, cy + 8))

    def _paint_label(self, p: QPainter, pane: QRectF, text: str, left: bool, stale: bool = False) -> None:
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        width = p.fontMetrics().horizontalAdvance(text) + 16
        height = p.fontMetrics().height() + 8
        x = pane.left() + 10 if left else pane.right() - 10 - width
        r = QRectF(x, pane.top() + 10, width, height)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(STALE if stale else QColor(0, 0, 0, 150))
        p.drawRoundedRect(r, height / 2, height / 2)
        p.setPen(QColor(255, 255, 255))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    # -- mouse ---------------------------------------------------------------------------------
    def _face_at(self, pos: QPointF) -> tuple[FaceInfo | None, bool]:
        """(face under ``pos``, whether the badge was hit)."""
        pane = self._pane_at(pos)
        for face in self.faces:
            if self.badge_rect(pane, face).adjusted(-3, -3, 3, 3).contains(pos):
                return face, True
        hits = [f for f in self.faces if self.face_rect(pane, f).contains(pos)]
        if hits:  # the smallest box wins when boxes overlap
            return min(hits, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])), False
        return None, False

    def _near_split(self, pos: QPointF) -> bool:
        return not self.side_by_side and self.after is not None and abs(pos.x() - self.split_x()) <= SPLIT_GRAB

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        pos = event.position()
        self._press, self._moved = pos, False
        if self._near_split(pos):
            self._drag = "split"
        else:
            self._drag = "pan"
            if self._zoom is None:
                self._zoom = self.fit_scale()
                self._center = QPointF(self.scene_size.width() / 2, self.scene_size.height() / 2)
            self._press_center = QPointF(self._center)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is None:
            face, badge = self._face_at(pos)
            if self._near_split(pos):
                self.setCursor(Qt.CursorShape.SplitHCursor)
            elif face is not None:
                self.setCursor(Qt.CursorShape.PointingHandCursor)
                person = f" (restored as {face.profile})" if face.profile else ""
                self.setToolTip(
                    f"Face {face.index + 1}{person}: "
                    + (
                        "click the badge to leave it as it is"
                        if face.index not in self.excluded
                        else "click the badge to restore it"
                    )
                )
            else:
                self.setCursor(Qt.CursorShape.OpenHandCursor)
                self.setToolTip("")
            return
        delta = pos - self._press
        if abs(delta.x()) + abs(delta.y()) > 3:
            self._moved = True
        if self._drag == "split":
            self.split = min(1.0, max(0.0, pos.x() / max(1, self.width())))
        elif self._moved:
            s = self.scale()
            self._center = QPointF(self._press_center.x() - delta.x() / s, self._press_center.y() - delta.y() / s)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        drag, self._drag = self._drag, None
        if drag == "pan" and not self._moved:
            face, badge = self._face_at(event.position())
            if face is not None:
                (self.face_toggled if badge else self.face_clicked).emit(face.index)
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps, event.position())
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._zoom is None:
            self.zoom_changed.emit(self.zoom_percent())
