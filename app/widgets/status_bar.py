"""The window's status bar: notices, the batch's progress, zoom, device and model."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar, QWidget

from ..state import BatchProgress


class ElidedLabel(QLabel):
    """One line that never widens the window: cut with "…" where it does not fit, whole in its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def shown_text(self) -> str:
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        p.drawText(self.contentsRect(), align, self.shown_text())


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = ElidedLabel("Ready")
        self.overall = QProgressBar()
        self.overall.setFixedWidth(200)
        self.overall.setTextVisible(True)
        self.overall.hide()
        self.zoom = QLabel("")
        self.device = QLabel("Device: starting…")
        self.model = QLabel("Model: …")
        for label in (self.zoom, self.device, self.model):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._timer = QTimer(self)  # owned by the bar: never fires after it is gone
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self.text.setText(""))
        self.addWidget(self.text, 1)
        self.addPermanentWidget(self.overall)
        self.addPermanentWidget(self.zoom)
        self.addPermanentWidget(self.device)
        self.addPermanentWidget(self.model)

    def notify(self, text: str, timeout_ms: int = 6000) -> None:
        """Shows ``text`` for ``timeout_ms`` (0: until the next notice; -1: keep the running timer)."""
        self.text.setText(text)
        if timeout_ms < 0:
            return
        self._timer.stop()
        if timeout_ms:
            self._timer.start(timeout_ms)

    def show_batch(self, progress: BatchProgress | None) -> None:
        if progress is None:
            self.overall.hide()
            return
        total, finished = progress.total, progress.finished
        self.overall.setMaximum(total * 100)
        self.overall.setValue(min(total * 100, int(100 * (finished + progress.current))))
        self.overall.setFormat(f"{finished} of {total} photos")
        self.overall.setToolTip(f"{progress.fraction:.0%} of the batch")
        self.overall.show()

    def show_zoom(self, percent: float) -> None:
        self.zoom.setText(f"Zoom {percent:.0f} %")

    def show_device(self, label: str | None) -> None:
        self.device.setText(f"Device: {label}")

    def show_model(self, name: str | None) -> None:
        self.model.setText(f"Model: {name}")
