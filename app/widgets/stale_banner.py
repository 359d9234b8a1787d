"""A strip over the compare view when the result shown is out of date, with one-click re-render."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..icons import icon


class StaleBanner(QFrame):
    """Why the photo's result no longer matches the settings, and a button that restores it again."""

    restore_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("staleBanner")
        self.setStyleSheet(
            "#staleBanner { background: rgba(230, 160, 30, 60); border: 1px solid rgb(230, 160, 30);"
            " border-radius: 4px; }"
        )
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.button = QPushButton(icon("run"), "Restore Again")
        self.button.setToolTip("Restore this photo with the current settings (Ctrl+Shift+R)")
        self.button.clicked.connect(self.restore_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(QLabel("↻"))
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)
        self.hide()

    def show_reason(self, reason: str) -> None:
        """``reason``: why the result is out of date; "" hides the banner."""
        self.text.setText(reason)
        self.text.setToolTip(reason)
        self.setVisible(bool(reason))

    def over(self, view: QWidget) -> QWidget:
        """The banner above ``view``, in one widget."""
        both = QWidget()
        layout = QVBoxLayout(both)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self)
        layout.addWidget(view, 1)
        return both
