"""A second window to drag photos from, as a file manager would (scripts/gui_real_display.py).

``python scripts/gui_drag_source.py PHOTO...``: a small window titled "Likeness drag source";
pressing the mouse on it and moving starts a drag of the photos' file URLs (XDND between two
processes, as from a file manager).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDrag, QMouseEvent
from PySide6.QtWidgets import QApplication, QLabel


class DragSource(QLabel):
    def __init__(self, paths: list[Path]) -> None:
        super().__init__("Drag these photos:\n" + "\n".join(p.name for p in paths))
        self.paths = paths
        self.setWindowTitle("Likeness drag source")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.resize(260, 160)
        self._dragging = False

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not event.buttons() & Qt.MouseButton.LeftButton or self._dragging:
            return
        self._dragging = True
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p.resolve())) for p in self.paths])
        drag = QDrag(self)
        drag.setMimeData(mime)
        result = drag.exec(Qt.DropAction.CopyAction)
        sys.stdout.write(f"drop result: {result}\n")
        sys.stdout.flush()
        self._dragging = False


def main() -> int:
    app = QApplication(sys.argv[:1])
    source = DragSource([Path(p) for p in sys.argv[1:]])
    source.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
