"""Reference photos of one person: added by button, menu, drop or paste, shown aligned, with the
engine's identity match against the chosen face, and the faces they belong to.

Each reference is analysed in the background, one after another: its tile says "waiting…" while
queued and "analysing…" with a spinning indicator while the engine runs it (``set_running``),
then shows the aligned face; the panel says how many are left.

The panel only displays; the session analyses each new photo (``jobs.AnalyseReference``), keeps
the faces the references belong to (``app.state.Person``) and hands the answers back through
``app.presenter.ReferencePresenter``: ``set_reference``, ``show_matches``, ``show_use``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
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
MATCH, UNSURE, DIFFERS = QColor(40, 160, 80), QColor(215, 140, 20), QColor(215, 55, 45)


def verdict_look(good: bool | None) -> tuple[str, QColor]:
    """The words and colour of a verdict: a match, a different person, or too damaged to tell."""
    if good is None:
        return "? unsure", UNSURE
    return ("✓ match", MATCH) if good else ("✗ differs", DIFFERS)


def paint_verdict_badge(p: QPainter, centre: QPointF, good: bool | None, radius: float = 10) -> None:
    """A filled circle in the verdict's colour with a tick, a cross or a question mark."""
    _, colour = verdict_look(good)
    p.setPen(QPen(QColor(255, 255, 255), 1.5))
    p.setBrush(colour)
    p.drawEllipse(centre, radius, radius)
    mark = QPen(QColor(255, 255, 255), 2.2)
    mark.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(mark)
    p.setBrush(Qt.BrushStyle.NoBrush)
    x, y, r = centre.x(), centre.y(), radius * 0.45
    path = QPainterPath()
    if good is None:
        font = QFont(p.font())
        font.setBold(True)
        p.setFont(font)
        p.drawText(QRectF(x - radius, y - radius, 2 * radius, 2 * radius), Qt.AlignmentFlag.AlignCenter, "?")
        return
    if good:
        path.moveTo(x - r, y)
        path.lineTo(x - r / 3, y + r * 0.8)
        path.lineTo(x + r, y - r * 0.8)
    else:
        path.moveTo(x - r, y - r)
        path.lineTo(x + r, y + r)
        path.moveTo(x + r, y - r)
        path.lineTo(x - r, y + r)
    p.drawPath(path)


@dataclass
class ReferenceEntry:
    id: int
    path: Path
    aligned: QImage | None = None
    error: str | None = None
    similarity: float | None = None
    verdict: str = ""
    good: bool | None = None
    analysing: bool = True  # not analysed yet (queued or running)
    running: bool = False  # the engine is analysing it now


class ReferenceTile(QWidget):
    """One reference: the aligned face, a match bar and a remove button."""

    remove = Signal(int)

    def __init__(self, entry: ReferenceEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = entry
        self.phase = 0  # of the busy indicator, in steps of 30°
        self.setFixedSize(TILE, TILE + 22)
        self.close_button = QToolButton(self)
        self.close_button.setIcon(icon("remove"))
        self.close_button.setIconSize(QSize(12, 12))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Remove this reference")
        self.close_button.setGeometry(TILE - 20, 2, 18, 18)
        self.close_button.clicked.connect(lambda: self.remove.emit(entry.id))

    @property
    def busy(self) -> bool:
        return self.entry.analysing and self.entry.running

    def paint_busy(self, p: QPainter, face: QRectF) -> None:
        """A turning arc over the tile: the analysis of this reference is running."""
        pen = QPen(self.palette().color(self.palette().ColorRole.Highlight), 3)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        ring = QRectF(face.center().x() - 12, face.top() + 12, 24, 24)
        p.drawArc(ring, -self.phase * 30 * 16, 270 * 16)

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
            if self.busy:
                self.paint_busy(p, face)
            p.setPen(self.palette().color(self.foregroundRole()))
            words = ("analysing…" if e.running else "waiting…") if e.analysing else "No face"
            flags = Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap
            p.drawText(face.adjusted(4, 40 if self.busy else 4, -4, -4), flags | Qt.AlignmentFlag.AlignVCenter, words)
        # match indicator: a bar under the face, green when the engine says same person
        bar = QRectF(0, TILE + 4, TILE, 5)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.palette().mid())
        p.drawRoundedRect(bar, 2.5, 2.5)
        text_colour = self.palette().color(self.foregroundRole())
        if e.similarity is not None:
            words, text_colour = verdict_look(e.good)
            p.setBrush(text_colour)
            p.drawRoundedRect(QRectF(0, bar.top(), TILE * max(0.05, min(1.0, e.similarity)), 5), 2.5, 2.5)
            text = f"{words.split(' ', 1)[1]} {e.similarity:.2f}"  # the badge shows ✓ ✗ ?; the tooltip says all
        else:
            text = "no face" if e.error else ("" if e.analysing else "not checked")
        font = p.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        font.setBold(e.similarity is not None)
        p.setFont(font)
        p.setPen(text_colour)
        p.drawText(QRectF(-4, TILE + 9, TILE + 8, 13), Qt.AlignmentFlag.AlignCenter, text)
        if e.similarity is not None:
            paint_verdict_badge(p, QPointF(12, 12), e.good)
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
    add_requested = Signal()  # the Add… button: the window asks for files
    use_toggled = Signal(bool)  # the references show (or not) the chosen face
    use_everywhere_requested = Signal()  # find the references' person in every open photo

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
            "Add or drop up to five clear photos of the person: they guide the restoration of their face "
            "towards how they really look. Click their face in a photo first."
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
        self.add_button = QPushButton(icon("open"), "Add…")
        self.add_button.setToolTip("Add reference photos of the person (File → Add Reference Photos…)")
        self.add_button.clicked.connect(self.add_requested)
        self.use = QCheckBox("Use for the chosen face")
        self.use.setEnabled(False)
        self.use.toggled.connect(self.use_toggled)
        self.use_everywhere = QPushButton("Use for every face of this person")
        self.use_everywhere.setToolTip(
            "Check every face of the open photos against the references and use them for each face that matches"
        )
        self.use_everywhere.clicked.connect(self.use_everywhere_requested)
        self.used_for = QLabel("")
        self.used_for.setWordWrap(True)
        self.used_for.setProperty("hint", True)
        self.analysis = QLabel("")  # how many references are left to analyse
        self.analysis.setProperty("hint", True)
        self.analysis.setWordWrap(True)
        self._spinner = QTimer(self)
        self._spinner.setInterval(90)
        self._spinner.timeout.connect(self._turn)
        self._tiles: list[ReferenceTile] = []

        row = QHBoxLayout()
        row.addWidget(QLabel("Use"))
        row.addWidget(self.count)
        row.addWidget(QLabel("references"))
        row.addStretch(1)
        row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self.drop)
        layout.addWidget(self.analysis)
        layout.addLayout(row)
        layout.addWidget(self.use)
        layout.addWidget(self.use_everywhere)
        layout.addWidget(self.used_for)
        layout.addWidget(self.status)
        self._relayout()
        self._show_left()

    def paths(self) -> list[Path]:
        """Usable references in the order they were added."""
        return [e.path for e in self.entries if e.error is None and not e.analysing]

    def ready_ids(self) -> tuple[int, ...]:
        """Analysed references that show a face (the ones an identity check can use)."""
        return tuple(e.id for e in self.entries if e.aligned is not None)

    def all_paths(self) -> list[Path]:
        """Every reference in the panel, analysed or not."""
        return [e.path for e in self.entries]

    def add_paths(self, paths: list[Path]) -> list[ReferenceEntry]:
        room = MAX_REFERENCES - len(self.entries)
        known = {e.path for e in self.entries}
        new = [ReferenceEntry(next(_ids), Path(p)) for p in paths if Path(p) not in known][: max(0, room)]
        if len(paths) > room:
            self.status.setText(f"At most {MAX_REFERENCES} references; the others were not added.")
        self.entries += new
        self._relayout()
        self._show_left()
        if new:
            self.added.emit(new)
        return new

    def entry(self, ref_id: int) -> ReferenceEntry | None:
        return next((e for e in self.entries if e.id == ref_id), None)

    def set_reference(self, ref_id: int, aligned: QImage | None, error: str | None, note: str) -> None:
        e = self.entry(ref_id)
        if e is None:
            return
        e.aligned, e.error, e.analysing, e.running = aligned, error, False, False
        if note:
            self.status.setText(note)
        self._relayout()
        self._show_left()
        self.changed.emit()

    def set_running(self, ref_id: int) -> None:
        """The engine started analysing this reference: its tile turns busy."""
        e = self.entry(ref_id)
        if e is not None and e.analysing:
            e.running = True
            self._relayout()
            self._show_left()

    def left(self) -> int:
        """References not analysed yet."""
        return sum(1 for e in self.entries if e.analysing)

    def _show_left(self) -> None:
        left = self.left()
        if left:
            self.analysis.setText(f"Analysing references in the background: {left} left.")
            self._spinner.start()
        else:
            self.analysis.setText("")
            self._spinner.stop()
        self.analysis.setVisible(bool(left))

    def _turn(self) -> None:
        for tile in self._tiles:
            if tile.busy:
                tile.phase = (tile.phase + 1) % 12
                tile.update()

    def show_use(self, face: str | None, used: bool, used_for: str) -> None:
        """``face``: the chosen face in words (None: none chosen); ``used``: the references are theirs."""
        self.use.blockSignals(True)
        self.use.setChecked(used and face is not None)
        self.use.blockSignals(False)
        self.use.setEnabled(face is not None)
        self.use.setText(f"Use for {face}" if face else "Use for the chosen face (click a face first)")
        self.used_for.setText(used_for)

    def show_matches(self, matches: dict | None) -> None:
        """The identity check against the chosen face; None clears it (another face or photo)."""
        if matches is None:
            for e in self.entries:
                e.similarity, e.verdict, e.good = None, "", None
            self.status.setText("")
            self._relayout()
            return
        self.set_match(matches)

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
        self._show_left()
        self.removed.emit(ref_id)
        self.changed.emit()

    def _relayout(self) -> None:
        while self.tiles.count():
            item = self.tiles.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._tiles = []
        for n, e in enumerate(self.entries):
            tile = ReferenceTile(e)
            self._tiles.append(tile)
            tile.remove.connect(self.remove)
            tile.setToolTip(f"{e.path}\n{e.error or e.verdict or ''}".strip())
            self.tiles.addWidget(tile, n // 3, n % 3)
        self.empty.setVisible(not self.entries)
        self.use.setVisible(bool(self.entries))
        self.used_for.setVisible(bool(self.entries))
        self.use_everywhere.setVisible(bool(self.entries))
