"""Adding references by button, menu and paste, and using them for every face of their person.

- ``pasted_paths``: what the clipboard holds as reference photos. Image files (file URLs) are
  used where they are; an image (a screenshot, a photo copied from a browser) is first saved in
  the app's folder as ``pasted-reference-<content hash>.png``, atomically, so pasting the same
  image twice gives the same file and the journal can bring it back after a crash.
- ``ReferenceCommands``: the window's reference commands. "Use for every face of this person"
  sends the engine's identity check over every face of the open photos (``jobs.MatchPerson``,
  the faces found when the photos were added) and attaches the faces that match to the
  ``Person``, so the user does not tick each one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QWidget

from . import jobs
from .photos import IMAGE_SUFFIXES, Status
from .session import Session, plural
from .widgets.reference_panel import ReferencePanel

PASTED_FOLDER = "pasted-references"
PASTED_PREFIX = "pasted-reference-"
OPEN_FILTER = "Photos (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


def is_pasted(path: Path) -> bool:
    """Whether ``path`` is an image the user pasted (saved by ``save_pasted``)."""
    return path.parent.name == PASTED_FOLDER and path.name.startswith(PASTED_PREFIX)


def save_pasted(image: QImage, folder: Path) -> Path:
    """Saves a pasted image as PNG in ``folder``/pasted-references, named by its content; the file
    appears whole or not at all (written beside, then renamed)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    digest = hashlib.sha256(bytes(image.constBits()) + f"{image.width()}x{image.height()}".encode()).hexdigest()
    target = folder / PASTED_FOLDER / f"{PASTED_PREFIX}{digest[:16]}.png"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial.png")
    if not image.save(str(partial)):  # PNG, by the suffix
        partial.unlink(missing_ok=True)
        raise OSError(f"cannot write {partial}")
    os.replace(partial, target)
    return target


def pasted_paths(mime: QMimeData | None, folder: Path) -> list[Path]:
    """The reference photos on the clipboard: image files, else an image saved into ``folder``."""
    if mime is None:
        return []
    files = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if images or files:
        return images
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return [save_pasted(image, folder)]
    return []


class ReferenceCommands(QObject):
    """Add (dialog), paste and "use for every face of this person", for the window's actions."""

    def __init__(self, session: Session, panel: ReferencePanel, window: QWidget, last_dir: Callable[[], str]) -> None:
        super().__init__(window)
        self.session, self.panel, self.window, self.last_dir = session, panel, window, last_dir
        panel.add_requested.connect(self.add_dialog)
        panel.use_everywhere_requested.connect(self.use_for_every_face)
        session.engine.person_matched.connect(self._on_person_matched)
        session.engine.failed.connect(self._on_failed)

    def add_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self.window, "Add Reference Photos", self.last_dir(), OPEN_FILTER)
        if files:
            self.panel.add_paths([Path(f) for f in files])

    def paste(self) -> list:
        """Adds the clipboard's photos (or image) as references of the chosen face's person."""
        try:
            paths = pasted_paths(QGuiApplication.clipboard().mimeData(), self.session.settings.folder)
        except OSError as err:
            self.session.notice.emit(f"Could not keep the pasted image: {err}", 10000)
            return []
        if not paths:
            self.session.notice.emit("The clipboard holds no photo to use as a reference.", 6000)
            return []
        added = self.panel.add_paths(paths)
        if added:
            self.session.notice.emit(f"Pasted {plural(len(added), 'reference photo')}.", 6000)
        return added

    def use_for_every_face(self) -> jobs.Job | None:
        """Checks every face of the open photos against the references; the ones that match are theirs."""
        s = self.session
        ids = s.references.ready_ids()
        photos = tuple((i.id, i.path) for i in s.photos.items() if i.scanned and i.status != Status.FAILED)
        if not ids or not photos:
            s.notice.emit("Add references (and photos) first: there is nothing to check yet.", 6000)
            return None
        self.panel.use_everywhere.setEnabled(False)
        s.notice.emit(f"Looking for this person in {plural(len(photos), 'photo')}…", -1)
        return s.engine.submit(jobs.MatchPerson(ref_ids=ids, photos=photos, options=s.base_options()))

    def _on_person_matched(self, message: jobs.PersonMatched) -> None:
        s = self.session
        self.panel.use_everywhere.setEnabled(True)
        faces = {f for f in message.faces if s.photos.by_id(f[0]) is not None}
        new = faces - s.person.faces
        s.person.faces = s.person.faces | faces
        in_photos = len({p for p, _ in faces})
        if faces:
            text = f"The references match {plural(len(faces), 'face')} in {plural(in_photos, 'photo')}"
            s.notice.emit(text + (f" ({len(new)} new)." if new != faces else "."), 10000)
        else:
            s.notice.emit(f"None of the {plural(message.checked, 'face')} matches the references.", 10000)

    def _on_failed(self, message: jobs.JobFailed) -> None:
        if isinstance(message.job, jobs.MatchPerson):
            self.panel.use_everywhere.setEnabled(True)
