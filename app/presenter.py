"""Shows the session's state in the widgets.

``PhotoPresenter``: the chosen photo, its faces and the chosen face's preview. The compare view
gets the photo's thumbnail at once and the full-size original (and a result kept on disk) when
``PhotoLoader`` has read it on a pool thread; the face preview follows the chosen face; an
out-of-date result is said so over the view, with a button that restores it again. ``changed``
tells the window that what the actions act on may have changed.

``ReferencePresenter``: the reference panel, for the chosen face and the faces the references
belong to.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from . import jobs
from .face_versions import VersionCache
from .imaging import PhotoLoader
from .photos import PhotoItem, Status
from .session import Session
from .widgets.compare_view import CompareView
from .widgets.controls import FacePreview
from .widgets.reference_panel import ReferencePanel
from .widgets.stale_banner import StaleBanner

EMPTY_HINT = "Drop photos or folders here, or use File → Open"


def placeholder(item: PhotoItem) -> str:
    """What the compare view says while it has no picture of ``item``."""
    if item.status == Status.FAILED and not item.scanned:
        return f"{item.name} cannot be shown: {item.message}"
    return "Loading…"


class PhotoPresenter(QObject):
    changed = Signal()

    def __init__(self, session: Session, compare: CompareView, preview: FacePreview, banner: StaleBanner) -> None:
        super().__init__(session)
        self.session, self.compare, self.preview, self.banner = session, compare, preview, banner
        self.loader = PhotoLoader(self)
        self.versions = VersionCache()
        self.loader.loaded.connect(self._on_loaded)
        selection = session.selection
        selection.photo_changed.connect(self._show_photo)
        selection.face_changed.connect(self._show_face)
        selection.preview_changed.connect(self._show_preview)
        session.photos.item_changed.connect(self._on_item_changed)
        session.preview_failed.connect(lambda: preview.note.setText("Preview failed"))

    def _show_state(self, item: PhotoItem | None) -> None:
        """Whether the result on screen is out of date, over the view and in its "After" label."""
        stale = item.stale if item is not None and item.has_result else ""
        self.banner.show_reason(stale)
        options = item.result_options if item is not None else None
        made = f"After · w {options.fidelity:.2f}" if options is not None else "After"
        self.compare.after_label = made + (" · out of date" if stale else "")
        self.compare.after_stale = bool(stale)
        self.compare.update()

    def _show_photo(self, item: PhotoItem | None) -> None:
        self.preview.show_face(None, True)
        self._show_state(item)
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
        self._show_state(item)
        if self.compare.after is not item.result or (item.size and self.compare.scene_size.width() != item.size[0]):
            self.compare.set_photo(self.compare.before, item.size, item.result)
        self._show_face(self.session.selection.face)
        self._show_versions()
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
            self._show_versions()

    def _show_versions(self) -> None:
        """The chosen face as restored with references, beside the preview (without them)."""
        s = self.session
        item, face, preview = s.selection.photo, s.selection.face, s.selection.preview
        if item is None or face is None or preview is None or preview.face_index != face:
            return
        self.preview.show_with_references(self.versions.get(s, item, face, preview.before.width()))


def face_words(item: PhotoItem, index: int) -> str:
    return f"face {index + 1} of {item.name}"


class ReferencePresenter(QObject):
    """The reference panel: analysis answers, the check against the chosen face, whose faces they are."""

    def __init__(self, session: Session, panel: ReferencePanel) -> None:
        super().__init__(session)
        self.session, self.panel = session, panel
        s = session
        s.reference_ready.connect(lambda m: panel.set_reference(m.ref_id, m.aligned, m.error, m.note))
        s.engine.job_started.connect(self._on_job_started)
        s.selection.matches_changed.connect(lambda m: panel.show_matches(None if m is None else m.matches))
        for signal in (s.selection.photo_changed, s.selection.face_changed, s.person.faces_changed):
            signal.connect(lambda _value: self._show_use())
        panel.added.connect(s.analyse_references)
        panel.changed.connect(self._on_changed)
        panel.added.connect(s.journal.schedule)
        panel.changed.connect(s.journal.schedule)
        panel.use_toggled.connect(s.use_references_for_face)
        self._show_use()

    def _on_job_started(self, message: jobs.JobStarted) -> None:
        if isinstance(message.job, jobs.AnalyseReference):
            self.panel.set_running(message.job.ref_id)

    def _on_changed(self) -> None:
        if not self.panel.entries:  # no references left: the next ones may show someone else
            self.session.person.faces = frozenset()
        self.session.refresh_stale()
        self.session.request_match()

    def _show_use(self) -> None:
        s = self.session
        item, face = s.selection.photo, s.selection.face
        chosen = face_words(item, face) if item is not None and face is not None else None
        used = item is not None and face is not None and s.person.has(item.id, face)
        faces = [(s.photos.by_id(p), i) for p, i in sorted(s.person.faces)]
        named = [face_words(photo, i) for photo, i in faces if photo is not None]
        if named:
            more = f" and {len(named) - 3} more" if len(named) > 3 else ""
            text = "Used for " + ", ".join(named[:3]) + more + "; other photos are restored without them."
        else:
            text = "Not used for any face yet: click the person's face in a photo and tick the box above."
        self.panel.show_use(chosen, used, text)
