"""The question before closing with restored photos that were not exported."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def ask_before_closing(parent: QWidget, count: int) -> str:
    """Asks in a message box: "export", "discard" or "cancel"."""
    has = "s have" if count != 1 else " has"
    text = f"{count} restored photo{has} not been exported. Unexported results are discarded when Likeness closes."
    box = QMessageBox(QMessageBox.Icon.Warning, "Restored photos not saved", text, parent=parent)
    export = box.addButton("Export…", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Close Without Saving", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    clicked = box.clickedButton()
    return "export" if clicked is export else "discard" if clicked is discard else "cancel"
