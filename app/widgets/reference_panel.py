"""Reference photos of the person: dropped here, shown aligned, with the engine's identity match.

The panel only displays; the main window sends each dropped photo to the worker
(``jobs.AnalyseReference``) and hands the answers back with ``set_reference`` / ``set_match``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon
from ..photos import IMAGE_SUFFIXES
from ..settings import BY_KEY, Settings

MAX_REFERENCES = 5
TILE = 76
_ids = itertools.count(1)


@dataclass
class ReferenceEntry:
    id: int
    path: Path
    aligned: QImage | None = None
    error: str | None = None
    similarity: float | None = None
    verdict: str = ""
    good: bool | None = None
    analysing: bool = True


class ReferenceTile(QWidget):
    """One reference: the aligned face, a match bar and a remove button."""

    remove = Signal(int)

    def __init__(self, entry: ReferenceEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = entry
        self.setFixedSize(TILE, TILE + 22)
        self.close_button = QToolButton(self)
        self.close_button.setIcon(icon("remove"))
        self.close_button.setIconSize(QSize(12, 12))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Remove this reference")
        self.close_button.setGeometry(TILE - 20, 2, 18, 18)
        self.close_button.clicked.connect(lambda: self.remove.emit(entry.id))

    def paintEvent(self, event) -> None:
        e = self.entry
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        face = QRectF(0, 0, TILE, TILE)
        p.fillRect(face, self.palette().mid())
        if e.aligned is not None:
            p.drawImage(face, e.aligned)
        else:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(
                face.adjusted(4, 4, -4, -4),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "Finding the face…" if e.analysing else "No face",
            )
        # match indicator: a bar under the face, green when the engine says same person
        bar = QRectF(0, TILE + 4, TILE, 5)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.palette().mid())
        p.drawRoundedRect(bar, 2.5, 2.5)
        if e.similarity is not None:
            colour = QColor(70, 175, 100) if e.good else QColor(220, 150, 40) if e.good is None else QColor(220, 70, 60)
            p.setBrush(colour)
            p.drawRoundedRect(QRectF(0, bar.top(), TILE * max(0.05, min(1.0, e.similarity)), 5), 2.5, 2.5)
        if e.similarity is not None:
            text = f"{'✓ match' if e.good else '? unsure' if e.good is None else '✗ differs'} · {e.similarity:.2f}"
        else:
            text = "no face" if e.error else ("…" if e.analysing else "not checked")
        p.setPen(self.palette().color(self.foregroundRole()))
        font = p.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        p.setFont(font)
        p.drawText(QRectF(0, TILE + 9, TILE, 13), Qt.AlignmentFlag.AlignCenter, text)
        if e.error:
            p.setPen(QPen(QColor(220, 70, 60), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(face.adjusted(1, 1, -1, -1))


class DropArea(QFrame):
    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("referenceDrop")
        self.setMinimumHeight(TILE + 40)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls()]
        self.dropped.emit([p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES])
        event.acceptProposedAction()


class ReferencePanel(QGroupBox):
    """Reference photos of the person, the number to use and how well they match."""

    added = Signal(list)  # list[ReferenceEntry] to analyse
    removed = Signal(int)
    changed = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("References of this person", parent)
        self.settings = settings
        self.entries: list[ReferenceEntry] = []
        self.drop = DropArea()
        self.drop.dropped.connect(self.add_paths)
        self.tiles = QGridLayout()
        self.tiles.setSpacing(6)
        self.tiles.setContentsMargins(8, 8, 8, 8)
        self.empty = QLabel(
            "Drop up to five clear photos of the person here: they guide the restoration towards how they really look."
        )
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setProperty("hint", True)
        drop_layout = QVBoxLayout(self.drop)
        drop_layout.setContentsMargins(0, 0, 0, 0)
        drop_layout.addWidget(self.empty)
        drop_layout.addLayout(self.tiles)

        self.count = QSpinBox()
        self.count.setRange(1, MAX_REFERENCES)
        self.count.setValue(settings.get("num_references"))
        self.count.setToolTip(BY_KEY["num_references"].help)
        self.count.setAccessibleName("Number of references")
        self.count.valueChanged.connect(lambda n: settings.set("num_references", n))
        settings.changed.connect(lambda k, v: self.count.setValue(v) if k == "num_references" else None)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setProperty("hint", True)

        row = QHBoxLayout()
        row.addWidget(QLabel("Use"))
        row.addWidget(self.count)
        row.addWidget(QLabel("references"))
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self.drop)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self._relayout()

    def paths(self) -> list[Path]:
        """Usable references in the order they were added."""
        return [e.path for e in self.entries if e.error is None and not e.analysing]

    def ready_ids(self) -> tuple[int, ...]:
        """Analysed references that show a face (the ones an identity check can use)."""
        return tuple(e.id for e in self.entries if e.aligned is not None)

    def add_paths(self, paths: list[Path]) -> list[ReferenceEntry]:
        room = MAX_REFERENCES - len(self.entries)
        known = {e.path for e in self.entries}
        new = [ReferenceEntry(next(_ids), Path(p)) for p in paths if Path(p) not in known][: max(0, room)]
        if len(paths) > room:
            self.status.setText(f"At most {MAX_REFERENCES} references; the others were not added.")
        self.entries += new
        self._relayout()
        if new:
            self.added.emit(new)
        return new

    def entry(self, ref_id: int) -> ReferenceEntry | None:
        return next((e for e in self.entries if e.id == ref_id), None)

    def set_reference(self, ref_id: int, aligned: QImage | None, error: str | None, note: str) -> None:
        e = self.entry(ref_id)
        if e is None:
            return
        e.aligned, e.error, e.analysing = aligned, error, False
        if note:
            self.status.setText(note)
        self._relayout()
        self.changed.emit()

    def set_match(self, matches: dict) -> None:
        checked = []
        for ref_id, m in matches.items():
            e = self.entry(ref_id)
            if e is not None:
                e.similarity, e.verdict, e.good = m.similarity, m.verdict, m.good
                checked.append(m)
        measured = [m for m in checked if m.similarity is not None]
        known = [m for m in measured if m.good is not None]
        if measured and not known:
            self.status.setText(
                "This face is too damaged to confirm who it is: make sure the references show this person."
            )
        elif known:
            same = sum(1 for m in known if m.good)
            if same == len(known):
                text = (
                    f"All {len(known)} references look like this person."
                    if len(known) > 1
                    else "The reference looks like this person."
                )
            else:
                text = (
                    f"{len(known) - same} of {len(known)} references may show someone else: a wrong reference "
                    "pulls the face towards another person."
                )
            self.status.setText(text)
        elif checked:
            self.status.setText(checked[0].verdict)
        self._relayout()

    def remove(self, ref_id: int) -> None:
        self.entries = [e for e in self.entries if e.id != ref_id]
        self._relayout()
        self.removed.emit(ref_id)
        self.changed.emit()

    def _relayout(self) -> None:
        while self.tiles.count():
            item = self.tiles.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for n, e in enumerate(self.entries):
            tile = ReferenceTile(e)
            tile.remove.connect(self.remove)
            tile.setToolTip(f"{e.path}\n{e.error or e.verdict or ''}".strip())
            self.tiles.addWidget(tile, n // 3, n % 3)
        self.empty.setVisible(not self.entries)
