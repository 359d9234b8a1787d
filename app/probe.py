"""Where things are on screen, for a script that drives the window with real input events.

``scripts/gui_real_display.py`` runs the app under Xvfb and moves the real mouse and keyboard
with xdotool; it needs to know where the faces, the slider and the buttons are, and what the
window shows. With ``LIKENESS_GUI_PROBE=file.json`` set, the window writes that here a few times
a second (screen coordinates). Nothing is written, and nothing runs, without the variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint, QTimer
from PySide6.QtWidgets import QApplication, QWidget

if TYPE_CHECKING:
    from .main_window import MainWindow


def centre(widget: QWidget | None) -> list[int] | None:
    if widget is None or not widget.isVisible():
        return None
    p = widget.mapToGlobal(widget.rect().center())
    return [p.x(), p.y()]


def rect(widget: QWidget) -> list[int]:
    top_left = widget.mapToGlobal(QPoint(0, 0))
    return [top_left.x(), top_left.y(), widget.width(), widget.height()]


def snapshot(window: MainWindow) -> dict:
    """What the window shows and where, in screen pixels."""
    compare, slider, s = window.compare, window.controls.fidelity.slider, window.session

    def on_screen(point) -> list[int]:
        p = compare.mapToGlobal(point.toPoint())
        return [p.x(), p.y()]

    modal = QApplication.activeModalWidget()
    preview = s.selection.preview
    return {
        "window": rect(window),
        "compare": rect(compare),
        "list": rect(window.list),
        "slider": {"rect": rect(slider), "value": slider.value()},
        "faces": [
            {"centre": on_screen(compare.face_center(f.index)), "badge": on_screen(compare.face_badge_center(f.index))}
            for f in compare.faces
        ],
        "selected_face": s.selection.face,
        "preview_w": None if preview is None else preview.fidelity,
        "photos": [
            {
                "name": i.name,
                "status": i.status.name,
                "message": i.message,
                "scanned": i.scanned,
                "excluded": sorted(i.excluded),
                "stale": i.stale,
                "exported_to": str(i.exported_to) if i.exported_to else None,
            }
            for i in window.photos.items()
        ],
        "current": None if window.current is None else window.current.name,
        "busy": window.engine.busy,
        "buttons": {
            name: centre(window.toolbar.widgetForAction(getattr(window.act, name)))
            for name in ("open", "run", "export", "cancel")
        },
        "add_reference": centre(window.controls.references.add_button),
        "modal": None if modal is None else modal.windowTitle(),
        "status": window.status.text.text(),
    }


class Probe(QObject):
    def __init__(self, window: MainWindow, path: Path, interval_ms: int = 200) -> None:
        super().__init__(window)
        self.window, self.path = window, path
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.write)
        self.timer.start(interval_ms)

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot(self.window)))
        os.replace(tmp, self.path)


_probes: list[Probe] = []  # kept alive with their windows


def attach(window: MainWindow) -> Probe | None:
    """A probe on ``window`` when ``LIKENESS_GUI_PROBE`` names a file."""
    target = os.environ.get("LIKENESS_GUI_PROBE")
    if not target:
        return None
    _probes.append(Probe(window, Path(target)))
    return _probes[-1]
