"""The question at start after Likeness closed unexpectedly: restore the last session, or discard it."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

SHOWN_PROBLEMS = 6
MIN_WIDTH = 530


def count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(photos: int, unexported: int, references: int) -> str:
    """The dialog's sentence: "Likeness closed unexpectedly. 2 photos were open; 1 result had not been exported."""
    if photos:
        text = count(photos, "photo was open", "photos were open")
        if unexported:
            text += "; " + count(unexported, "result had not been exported", "results had not been exported")
    else:
        text = count(references, "reference photo was open", "reference photos were open")
    return f"Likeness closed unexpectedly. {text}."


def problems_text(problems: list[str]) -> str:
    if not problems:
        return ""
    shown = problems[:SHOWN_PROBLEMS]
    more = len(problems) - len(shown)
    lines = ["These cannot be restored:", *(f"• {p}" for p in shown)]
    return "\n".join(lines + ([f"• and {more} more"] if more else []))


def recovery_box(
    parent: QWidget | None, photos: int, unexported: int, references: int, problems: list[str]
) -> tuple[QMessageBox, object, object]:
    """The message box and its Restore and Discard buttons."""
    text = summary(photos, unexported, references)
    box = QMessageBox(QMessageBox.Icon.Warning, "Restore the Last Session?", text, parent=parent)
    box.setInformativeText(problems_text(problems))
    label = box.findChild(QLabel, "qt_msgbox_label")
    if label is not None:
        label.setMinimumWidth(MIN_WIDTH)  # one line for the sentence, not three
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(restore)
    return box, restore, discard


def ask(parent: QWidget | None, photos: int, unexported: int, references: int, problems: list[str]) -> str:
    """The answer: restore, discard, or later (the box was closed: offered again at the next start)."""
    box, restore, discard = recovery_box(parent, photos, unexported, references, problems)
    box.exec()
    clicked = box.clickedButton()
    return "restore" if clicked is restore else "discard" if clicked is discard else "later"
