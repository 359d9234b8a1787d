"""The photo list: one ``PhotoItem`` per photo, with its state, faces and result.

``PhotoListModel`` is the single place that state lives; the list view, the compare view and
the batch all read it, and every change goes through ``update`` so views repaint.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QImage

from engine.api import RestoreOptions

from .jobs import FaceInfo

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
OUTPUT_TAG = "_restored"


class Status(enum.Enum):
    SCANNING = "Finding faces…"
    READY = "Ready"
    QUEUED = "Queued"
    WORKING = "Working"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


_ids = itertools.count(1)


@dataclass(eq=False)
class PhotoItem:
    path: Path
    id: int = field(default_factory=lambda: next(_ids))
    status: Status = Status.SCANNING
    progress: float = 0.0
    message: str = ""
    size: tuple[int, int] | None = None
    faces: list[FaceInfo] = field(default_factory=list)
    scanned: bool = False
    excluded: set[int] = field(default_factory=set)
    thumbnail: QImage | None = None
    result: QImage | None = None  # the restored photo, while it is among the few kept in memory
    result_file: Path | None = None  # the restored pixels on disk (always, once restored)
    result_faces: set[int] = field(default_factory=set)  # faces restored in ``result``
    result_fidelity: float | None = None
    result_options: RestoreOptions | None = None  # what ``result`` was made with
    warnings: list[str] = field(default_factory=list)  # faces numbered from 1, as in the window
    stale: str = ""  # why ``result`` no longer matches the settings ("" when it does)
    exported_to: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def has_result(self) -> bool:
        return self.result is not None or self.result_file is not None

    def included(self, index: int) -> bool:
        return index not in self.excluded

    def chosen_faces(self) -> tuple[int, ...] | None:
        """Face indices for RestoreOptions.faces: None when every face is included."""
        if not self.excluded:
            return None
        return tuple(f.index for f in self.faces if f.index not in self.excluded)

    def status_text(self) -> str:
        faces = self.face_count_text()
        if self.status == Status.WORKING:
            return f"Working {self.progress:.0%}" + (f" · {self.message}" if self.message else "")
        if self.status == Status.FAILED:
            return f"Failed: {self.message}"
        if self.status == Status.DONE:
            restored = len(self.result_faces)
            text = f"Done · {restored} of {len(self.faces)} face{'s' if len(self.faces) != 1 else ''} restored"
            return "\n".join([text, *(["↻ " + self.stale] if self.stale else []), *("⚠ " + w for w in self.warnings)])
        if self.status == Status.SCANNING:
            return Status.SCANNING.value
        return f"{self.status.value} · {faces}" + (f"\n{self.message}" if self.message else "")

    def face_count_text(self) -> str:
        if not self.scanned:
            return "faces not counted yet"
        n = len(self.faces)
        if n == 0:
            return "no face found"
        chosen = n - len(self.excluded & {f.index for f in self.faces})
        text = f"{n} face{'s' if n != 1 else ''}"
        return text if chosen == n else f"{text}, {chosen} chosen"


class Roles:
    ITEM = Qt.ItemDataRole.UserRole + 1


class PhotoListModel(QAbstractListModel):
    """The photos in the order they were added."""

    item_changed = Signal(object)  # PhotoItem

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[PhotoItem] = []

    # Qt model interface
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.path}\n{item.status_text()}"
        if role == Roles.ITEM:
            return item
        return None

    # access
    def items(self) -> list[PhotoItem]:
        return list(self._items)

    def item(self, row: int) -> PhotoItem:
        return self._items[row]

    def by_id(self, photo_id: int) -> PhotoItem | None:
        return next((i for i in self._items if i.id == photo_id), None)

    def row_of(self, item: PhotoItem) -> int:
        return self._items.index(item)

    def add(self, paths: list[Path]) -> list[PhotoItem]:
        """Adds new photos (folders are walked); ones already in the list are skipped."""
        known = {i.path.resolve() for i in self._items}
        new: list[PhotoItem] = []
        for path in expand(paths):
            key = path.resolve()
            if key not in known:
                known.add(key)
                new.append(PhotoItem(path))
        if new:
            self.beginInsertRows(QModelIndex(), len(self._items), len(self._items) + len(new) - 1)
            self._items += new
            self.endInsertRows()
        return new

    def remove(self, items: list[PhotoItem]) -> None:
        for item in items:
            row = self._items.index(item)
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._items[row]
            self.endRemoveRows()

    def update(self, item: PhotoItem) -> None:
        if item in self._items:
            index = self.index(self._items.index(item))
            self.dataChanged.emit(index, index)
            self.item_changed.emit(item)


def expand(paths: list[Path]) -> list[Path]:
    """Image files among ``paths``, folders walked in name order; earlier outputs skipped."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if is_photo(p) and not p.stem.endswith(OUTPUT_TAG))
        elif is_photo(path):
            out.append(path)
    return out


def is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
