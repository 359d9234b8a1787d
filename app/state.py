"""The observable state of one window: each property emits ``<name>_changed`` when it changes.

- ``Selection``: the photo shown, the face chosen in it, that face's live preview and how the
  references match it.
- ``Person``: the faces the reference photos belong to (references never apply to a whole session).
- ``BatchState``: how far the running batch is.
- ``EngineState``: the engine's device and model as the status bar shows them.
- ``ResultCache``: which restored photos stay in memory (the others are read back from disk).

The photos and their state are ``app.photos.PhotoListModel``; ``app.session.Session`` changes
all of these from the engine's messages.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from . import jobs
from .imaging import load_result, to_qimage
from .observable import Property
from .photos import PhotoItem

KEEP_RESULTS = 3  # restored photos kept in memory; the others are on disk (see EngineWorker)


class Selection(QObject):
    """The photo shown, the face chosen in it, the newest preview of that face and the references'
    identity check against it (``matches``: always about the chosen face, None until checked)."""

    photo_changed = Signal(object)  # PhotoItem | None
    face_changed = Signal(object)  # int | None
    preview_changed = Signal(object)  # jobs.PreviewReady | None
    matches_changed = Signal(object)  # jobs.Matched | None
    photo = Property[PhotoItem | None](None)
    face = Property[int | None](None)
    preview = Property[jobs.PreviewReady | None](None)
    matches = Property[jobs.Matched | None](None)


FaceKey = tuple[int, int]  # (photo id, face index)


class Person(QObject):
    """The person the reference photos show: the faces (photo id, face index) that are them.

    A restoration gets the references only for photos with one of these faces; the engine then
    applies them only to the faces they match.
    """

    faces_changed = Signal(object)  # frozenset[FaceKey]
    faces = Property[frozenset[FaceKey]](frozenset())

    def attach(self, photo_id: int, index: int) -> None:
        self.faces = self.faces | {(photo_id, index)}

    def detach(self, photo_id: int, index: int) -> None:
        self.faces = self.faces - {(photo_id, index)}

    def has(self, photo_id: int, index: int) -> bool:
        return (photo_id, index) in self.faces

    def in_photo(self, photo_id: int) -> bool:
        return any(p == photo_id for p, _ in self.faces)

    def forget(self, photo_id: int, keep: Collection[int] = ()) -> None:
        """Drops the photo's faces, except the face indices in ``keep`` (faces found again)."""
        self.faces = frozenset(f for f in self.faces if f[0] != photo_id or f[1] in keep)


@dataclass(frozen=True)
class BatchProgress:
    total: int
    finished: int
    current: float = 0.0  # fraction of the photo being restored

    @property
    def fraction(self) -> float:
        return (self.finished + self.current) / self.total


class BatchState(QObject):
    """The photos of the running batch; ``progress`` None when no batch is running."""

    progress_changed = Signal(object)  # BatchProgress | None
    progress = Property[BatchProgress | None](None)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ids: list[int] = []
        self.finished = 0
        self.failed = 0

    def start(self, ids: list[int], continuing: bool) -> None:
        """Adds photos to the running batch (``continuing``) or starts a new one."""
        if not continuing:
            self.ids, self.finished, self.failed = [], 0, 0
        self.ids += ids
        self.show()

    def show(self, current: float = 0.0) -> None:
        if self.ids:
            self.progress = BatchProgress(len(self.ids), min(len(self.ids), self.finished), current)

    def end(self) -> None:
        self.ids = []
        self.progress = None


class EngineState(QObject):
    """What the engine reported (``info``), and the device and model the status bar shows."""

    info_changed = Signal(object)  # jobs.EngineInfo
    device_changed = Signal(object)  # str | None: None until the engine reports
    model_changed = Signal(object)  # str | None: a model name, "loading…" or "none installed"
    info = Property[jobs.EngineInfo](jobs.EngineInfo())
    device = Property[str | None](None)
    model = Property[str | None](None)

    def report(self, info: jobs.EngineInfo) -> None:
        self.info = info
        self.device = info.device_label or "unavailable"
        self.model = info.model or "none installed"

    @property
    def has_model(self) -> bool:
        return bool(self.info.model) or not self.info.model_error


class ResultCache:
    """Keeps the newest few results as images; older ones are read back from disk when shown."""

    def __init__(self, selection: Selection, keep: int = KEEP_RESULTS) -> None:
        self.selection = selection
        self.keep_count = keep
        self._in_memory: list[PhotoItem] = []

    def keep(self, item: PhotoItem) -> None:
        if item in self._in_memory:
            self._in_memory.remove(item)
        self._in_memory.append(item)
        while len(self._in_memory) > self.keep_count:
            old = next((i for i in self._in_memory if i is not self.selection.photo), None)
            if old is None:
                break
            self._in_memory.remove(old)
            if old.result_file is not None:
                old.result = None

    def image(self, item: PhotoItem) -> QImage | None:
        """The restored image of ``item``, read back from disk when it is not in memory."""
        if item.result is None and item.result_file is not None:
            item.result = to_qimage(load_result(item.result_file))
            self.keep(item)
        return item.result

    def drop(self, item: PhotoItem) -> None:
        if item in self._in_memory:
            self._in_memory.remove(item)
