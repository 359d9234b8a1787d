"""Shows the session's chosen photo, its faces and the chosen face's preview in the widgets.

The compare view gets the photo's thumbnail at once and the full-size original (and a result
kept on disk) when ``PhotoLoader`` has read it on a pool thread; the face preview follows the
chosen face. ``changed`` tells the window that what the actions act on may have changed.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from . import jobs
from .imaging import PhotoLoader
from .photos import PhotoItem, Status
from .session import Session
from .widgets.compare_view import CompareView
from .widgets.controls import FacePreview

EMPTY_HINT = "Drop photos or folders here, or use File → Open"


def placeholder(item: PhotoItem) -> str:
    """What the compare view says while it has no picture of ``item``."""
    if item.status == Status.FAILED and not item.scanned:
        return f"{item.name} cannot be shown: {item.message}"
    return "Loading…"


class PhotoPresenter(QObject):
    changed = Signal()

    def __init__(self, session: Session, compare: CompareView, preview: FacePreview) -> None:
        super().__init__(session)
        self.session, self.compare, self.preview = session, compare, preview
        self.loader = PhotoLoader(self)
        self.loader.loaded.connect(self._on_loaded)
        selection = session.selection
        selection.photo_changed.connect(self._show_photo)
        selection.face_changed.connect(self._show_face)
        selection.preview_changed.connect(self._show_preview)
        session.photos.item_changed.connect(self._on_item_changed)
        session.preview_failed.connect(lambda: preview.note.setText("Preview failed"))

    def _show_photo(self, item: PhotoItem | None) -> None:
        self.preview.show_face(None, True)
        if item is None:
            self.compare.placeholder = EMPTY_HINT
            self.compare.set_photo(None, None)
            self.compare.set_faces([], set(), None)
        else:  # the thumbnail at once, the full-size original when the loader has read it
            self.compare.placeholder = placeholder(item)
            self.compare.set_photo(item.thumbnail, item.size, item.result)
            self.compare.set_faces(item.faces, item.excluded, None)
            self.loader.load(item.id, item.path)
            if item.result is None and item.result_file is not None:
                self.loader.load(("result", item.id), item.result_file)
        self.changed.emit()

    def _on_loaded(self, key, image: QImage) -> None:
        item = self.session.selection.photo
        if isinstance(key, tuple):  # a result read back from disk
            if item is not None and item.id == key[1] and not image.isNull() and item.result is None:
                item.result = image
                self.session.results.keep(item)
                self.compare.set_after(image)
                self.changed.emit()
        elif item is not None and item.id == key and not image.isNull():
            self.compare.set_photo(image, item.size or (image.width(), image.height()), item.result)
            self.compare.set_faces(item.faces, item.excluded, self.session.selection.face)

    def _on_item_changed(self, item: PhotoItem) -> None:
        if item is not self.session.selection.photo:
            return
        self.compare.placeholder = placeholder(item)
        if self.compare.after is not item.result or (item.size and self.compare.scene_size.width() != item.size[0]):
            self.compare.set_photo(self.compare.before, item.size, item.result)
        self._show_face(self.session.selection.face)
        self.changed.emit()

    def _show_face(self, index: int | None) -> None:
        item = self.session.selection.photo
        if item is not None:
            self.compare.set_faces(item.faces, item.excluded, index)
            if index is not None:
                self.preview.show_face(index + 1, item.included(index))

    def _show_preview(self, preview: jobs.PreviewReady | None) -> None:
        if preview is not None:
            self.preview.show_preview(preview.before, preview.after, preview.fidelity, preview.seconds)
