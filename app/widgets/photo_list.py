"""The photo list: thumbnail, name, status (with the reason of a failure or of an out-of-date
result) and face count. Long lines are elided; the row's tooltip has them whole."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ..photos import PhotoItem, Roles, Status

ROW_HEIGHT = 76
THUMB = 60
STATUS_COLOURS = {
    Status.SCANNING: QColor(140, 140, 140),
    Status.READY: QColor(120, 140, 160),
    Status.QUEUED: QColor(150, 150, 150),
    Status.WORKING: QColor(60, 140, 230),
    Status.DONE: QColor(70, 175, 100),
    Status.FAILED: QColor(220, 70, 60),
    Status.CANCELLED: QColor(200, 150, 40),
}
STALE = QColor(230, 160, 30)  # a result made with other settings than the current ones


Index = QModelIndex | QPersistentModelIndex


class PhotoDelegate(QStyledItemDelegate):
    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(240, ROW_HEIGHT)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        item: PhotoItem = index.data(Roles.ITEM)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        r = QRect(option.rect)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(r, palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(r, palette.color(QPalette.ColorRole.AlternateBase))
        text_colour = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)

        thumb = QRect(r.left() + 8, r.top() + (r.height() - THUMB) // 2, THUMB, THUMB)
        painter.fillRect(thumb, palette.color(QPalette.ColorRole.Mid))
        if item.thumbnail is not None and not item.thumbnail.isNull():
            image = item.thumbnail
            size = image.size().scaled(thumb.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(thumb.center())
            painter.drawImage(target, image)

        x = thumb.right() + 10
        width = r.right() - x - 8
        name_font = QFont(option.font)
        name_font.setBold(True)
        painter.setFont(name_font)
        painter.setPen(text_colour)
        fm = painter.fontMetrics()
        name = fm.elidedText(item.name, Qt.TextElideMode.ElideMiddle, width)
        painter.drawText(QRect(x, r.top() + 8, width, fm.height()), Qt.AlignmentFlag.AlignLeft, name)

        status_font = QFont(option.font)
        status_font.setPointSizeF(max(7.0, status_font.pointSizeF() - 0.5))
        painter.setFont(status_font)
        fm = painter.fontMetrics()
        dot_y = r.top() + 8 + fm.height() + 6
        colour = STALE if item.status == Status.DONE and item.stale else STATUS_COLOURS[item.status]
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(QRectF(x, dot_y + fm.height() / 2 - 4, 8, 8))
        painter.setPen(text_colour)
        lines = self._status_lines(item)
        for n, line in enumerate(lines[:2]):
            text = fm.elidedText(line, Qt.TextElideMode.ElideRight, width - 14)
            painter.drawText(
                QRect(x + 14, dot_y + n * fm.height(), width - 14, fm.height()), Qt.AlignmentFlag.AlignLeft, text
            )

        if item.status == Status.WORKING:
            bar = QRectF(x, r.bottom() - 10, width, 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Mid))
            painter.drawRoundedRect(bar, 2, 2)
            painter.setBrush(colour)
            painter.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * max(0.02, item.progress), 4), 2, 2)
        painter.restore()

    @staticmethod
    def _status_lines(item: PhotoItem) -> list[str]:
        if item.status == Status.FAILED:
            return ["Failed", item.message]
        if item.status == Status.WORKING:
            return [f"Working {item.progress:.0%}", item.message]
        if item.status == Status.DONE:
            faces = len(item.faces)
            first = f"Done · {len(item.result_faces)} of {faces} face{'s' if faces != 1 else ''} restored"
            if item.stale:
                return [first, "↻ " + item.stale]
            if item.warnings:
                return [first, "⚠ " + item.warnings[0]]
            options = item.result_options
            made = f"{options.upscale}× · likeness w {options.fidelity:.2f}" if options is not None else ""
            return [first, item.message or made]
        if item.status == Status.SCANNING:
            return [Status.SCANNING.value]
        return [item.status.value, item.face_count_text()]


class PhotoListView(QListView):
    """The list of photos; Delete removes the selected ones."""

    remove_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setItemDelegate(PhotoDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setMinimumWidth(240)
        self.setAccessibleName("Photos")
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.remove_requested.emit()
            return
        super().keyPressEvent(event)
