"""One window's work: the photos, the selection, the batch and the engine, and every request to it.

``Session`` owns the observable models (``PhotoListModel`` in ``app.photos``; ``Selection``,
``Person``, ``BatchState``, ``EngineState`` and ``ResultCache`` in ``app.state``), the
``EngineClient`` and the ``Journal`` (``app.journal``: the session on disk, for after a crash).
It turns the user's requests into jobs and the engine's messages into model changes; the window
only lays out, connects and shows.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from engine.api import RestoreOptions, RestoreRequest

from . import jobs
from . import references as refs
from .backend import Backend
from .client import EngineClient
from .describe import one_based, stale_reason
from .export import output_path
from .journal import Journal
from .observable import Property
from .photos import PhotoItem, PhotoListModel, Status
from .settings import Settings
from .state import BatchState, EngineState, Person, ResultCache, Selection

log = logging.getLogger(__name__)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class References(Protocol):
    """The reference photos the user gave (the reference panel)."""

    def paths(self) -> list[Path]: ...  # usable references, in the order they were added
    def ready_ids(self) -> tuple[int, ...]: ...  # analysed references that show a face
    def all_paths(self) -> list[Path]: ...  # every reference, analysed or not (the journal keeps them)
    def add_paths(self, paths: list[Path]) -> list: ...  # entries with an ``id``; the session analyses them


class NoReferences:
    def paths(self) -> list[Path]:
        return []

    def ready_ids(self) -> tuple[int, ...]:
        return ()

    def all_paths(self) -> list[Path]:
        return []

    def add_paths(self, paths: list[Path]) -> list:
        return []


class Session(QObject):
    """The photos, the selection, the batch, the engine; requests in, model changes out."""

    notice = Signal(str, int)  # text, milliseconds on screen (0: until the next; -1: keep the timer)
    preview_failed = Signal()
    reference_ready = Signal(object)  # jobs.ReferenceReady (also for a failed analysis)
    last_export_folder_changed = Signal(object)  # Path | None
    last_export_folder = Property[Path | None](None)

    def __init__(
        self,
        settings: Settings,
        references: References | None = None,
        backend: Backend | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.references = references if references is not None else NoReferences()
        self.photos = PhotoListModel(self)
        self.selection = Selection(self)
        self.person = Person(self)
        self.batch = BatchState(self)
        self.engine_state = EngineState(self)
        self.results = ResultCache(self.selection)
        self.journal = Journal(settings.folder, self)  # this session on disk, for after a crash
        self.engine = EngineClient(self, backend, self.journal.results)
        self._exports: dict[int, Path] = {}
        e = self.engine
        e.job_started.connect(self._on_job_started)
        e.progress.connect(self._on_progress)
        e.failed.connect(self._on_failed)
        e.job_done.connect(self._on_job_done)
        e.engine_info.connect(self._on_engine_info)
        e.scanned.connect(self._on_scanned)
        e.restored.connect(self._on_restored)
        e.preview_ready.connect(self._on_preview)
        e.reference_ready.connect(self.reference_ready)
        e.matched.connect(self._on_matched)
        e.exported.connect(self._on_exported)
        settings.changed.connect(lambda _key, _value: self.refresh_stale())
        self.person.faces_changed.connect(lambda _faces: self.refresh_stale())
        self.journal.watch(self)

    # -- requests ------------------------------------------------------------------------------
    def base_options(self) -> RestoreOptions:
        """The settings as options, without references (those go only to their person's photos)."""
        s = self.settings
        return RestoreOptions(
            fidelity=round(s.get("fidelity"), 3),
            upscale=s.get("upscale"),
            only_center_face=s.get("only_center_face"),
            min_face=s.get("min_face"),
            color_fix=s.get("color_fix"),
            background=s.get("background"),
            detector=s.get("detector"),
            jpeg_quality=s.get("jpeg_quality"),
            profile="auto" if s.get("use_profiles") else None,
        )

    def options_for(self, item: PhotoItem) -> RestoreOptions:
        """What restoring ``item`` asks: its chosen faces, and the references when their person is in it."""
        options = replace(self.base_options(), faces=item.chosen_faces())
        paths, s = self.references.paths(), self.settings
        if not paths or not self.person.in_photo(item.id):
            return options
        return refs.with_references(options, paths, s.get("num_references"), s.get("guidance_steps"))

    def configure(self, loading: bool = False) -> None:
        """A new engine with the model, device and backend of the settings (``loading``: say so meanwhile)."""
        if loading:
            self.engine_state.model = "loading…"
        s = self.settings
        model, device, backend, detector = (s.get(k) for k in ("model", "device", "backend", "detector"))
        self.engine.submit(jobs.Configure(model=model, device=device, backend=backend, detector=detector))

    def open_paths(self, paths: list[Path]) -> list[PhotoItem]:
        """Adds photos and folders to the list and starts finding their faces."""
        new = self.photos.add(paths)
        missing = [p for p in paths if not p.exists()]
        for p in paths:
            if p.exists():
                self.settings.add_recent(str(p))
        options = self.base_options()
        for item in new:
            self.engine.submit(jobs.Scan(photo_id=item.id, path=item.path, options=options))
        if missing:
            self.notice.emit(f"Not found: {', '.join(str(p) for p in missing[:3])}", 6000)
        elif paths and not new:
            self.notice.emit("No new photos (already in the list, or not a photo format Likeness reads).", 6000)
        else:
            self.notice.emit(f"Added {plural(len(new), 'photo')}.", 6000)
        return new

    def rescan(self) -> None:
        """Finds the faces of every photo again (faces are numbered by the detector)."""
        options = self.base_options()
        for item in self.photos.items():
            if item.status not in (Status.QUEUED, Status.WORKING):
                self.engine.submit(jobs.Scan(photo_id=item.id, path=item.path, options=options))

    def remove(self, items: list[PhotoItem]) -> None:
        """Removes photos from the list (not the ones being restored) and their kept results."""
        busy = self.engine.photos_in_queue(jobs.Restore)
        items = [i for i in items if i.id not in busy]
        if not items:
            return
        if self.selection.photo in items:
            self.select_photo(None)
        for item in items:
            self.person.forget(item.id)
        self.photos.remove(items)
        exporting = self.engine.photos_in_queue(jobs.Export)
        for item in items:
            self.results.drop(item)
            if item.result_file is not None and item.id not in exporting:
                item.result_file.unlink(missing_ok=True)

    def select_photo(self, item: PhotoItem | None) -> None:
        self.selection.matches = None
        self.selection.face = None
        self.selection.preview = None
        self.selection.photo = item

    def select_face(self, index: int) -> None:
        if self.selection.photo is None:
            return
        if index != self.selection.face:
            self.selection.matches = None
        self.selection.face = index
        self.request_preview()
        self.request_match()

    def use_references_for_face(self, used: bool) -> None:
        """The user says whether the references show the chosen face's person."""
        item, face = self.selection.photo, self.selection.face
        if item is not None and face is not None:
            (self.person.attach if used else self.person.detach)(item.id, face)

    def set_face_included(self, item: PhotoItem, index: int, included: bool) -> None:
        if included:
            item.excluded.discard(index)
        else:
            item.excluded.add(index)
        self.refresh_stale(item)
        self.photos.update(item)

    def request_preview(self) -> None:
        item, face = self.selection.photo, self.selection.face
        if item is None or face is None:
            return
        w, options = self.settings.get("fidelity"), self.base_options()
        self.engine.submit(jobs.Preview(photo_id=item.id, path=item.path, options=options, face_index=face, fidelity=w))

    def analyse_references(self, entries: list) -> None:
        """Analyses new references; they belong to the chosen face, when there is one."""
        item, face = self.selection.photo, self.selection.face
        if item is not None and face is not None:
            self.person.attach(item.id, face)
        options = self.base_options()
        for entry in entries:
            self.engine.submit(jobs.AnalyseReference(ref_id=entry.id, path=entry.path, options=options))

    def request_match(self) -> None:
        item, face, ids = self.selection.photo, self.selection.face, self.references.ready_ids()
        if item is None or face is None or not ids:
            return
        options = self.base_options()
        job = jobs.MatchReferences(ref_ids=ids, photo_id=item.id, path=item.path, options=options, face_index=face)
        self.engine.submit(job)

    # -- the batch -----------------------------------------------------------------------------
    def needs_run(self, item: PhotoItem) -> bool:
        if item.status in (Status.QUEUED, Status.WORKING):
            return False
        if item.status == Status.DONE:
            return bool(stale_reason(item.result_options, self.options_for(item)))
        return True

    def refresh_stale(self, only: PhotoItem | None = None) -> None:
        """Marks restored photos whose result no longer matches the settings (``PhotoItem.stale``)."""
        for item in [only] if only is not None else self.photos.items():
            stale = stale_reason(item.result_options, self.options_for(item)) if item.status == Status.DONE else ""
            if stale != item.stale:
                item.stale = stale
                self.photos.update(item)

    def stale(self) -> list[PhotoItem]:
        """Restored photos whose result was made with other settings than the current ones."""
        return [i for i in self.photos.items() if i.status == Status.DONE and self.needs_run(i)]

    def run(self, items: list[PhotoItem]) -> None:
        """Restores ``items`` (the ones not queued yet), as a new batch or added to the running one."""
        queued = self.engine.photos_in_queue(jobs.Restore)
        items = [i for i in items if i.id not in queued]
        if not items:
            self.notice.emit("Every photo is already restored with these settings.", 6000)
            return
        continuing = self.engine.busy and bool(self.batch.ids)
        auto = self.settings.get("auto_export")
        taken: set[Path] = set()
        for n, item in enumerate(items, start=1):
            item.status, item.progress, item.message = Status.QUEUED, 0.0, ""
            self.photos.update(item)
            options = self.options_for(item)
            output = self.output_path(item, n, options.fidelity, taken) if auto else None
            self.engine.submit(jobs.Restore(photo_id=item.id, request=RestoreRequest(item.path, output, options)))
        self.batch.start([i.id for i in items], continuing)
        self.notice.emit(f"Restoring {plural(len(self.batch.ids), 'photo')}…", 6000)

    def cancel(self) -> None:
        dropped = self.engine.cancel((jobs.Restore,))
        for job in dropped:
            item = self.photos.by_id(job.photo_id) if isinstance(job, jobs.Restore) else None
            if item is not None:
                item.status, item.message = Status.CANCELLED, "Cancelled before it started"
                self.photos.update(item)
                self.batch.finished += 1
        if dropped or isinstance(self.engine.current, jobs.Restore):
            self.notice.emit("Cancelling… the current face finishes first.", 6000)
        self.batch.show()

    def _batch_complete(self) -> None:
        batch = [i for i in self.photos.items() if i.id in self.batch.ids]
        done = sum(1 for i in batch if i.status == Status.DONE)
        cancelled = sum(1 for i in batch if i.status == Status.CANCELLED)
        parts = [f"Restored {done} of {plural(len(self.batch.ids), 'photo')}"]
        if self.batch.failed:
            parts.append(f"{self.batch.failed} failed (see the list)")
        if cancelled:
            parts.append(f"{cancelled} cancelled")
        self.notice.emit(", ".join(parts) + ".", 0)
        self.batch.end()

    # -- results and export --------------------------------------------------------------------
    def result_image(self, item: PhotoItem) -> QImage | None:
        return self.results.image(item)

    def unsaved(self) -> list[PhotoItem]:
        return [i for i in self.photos.items() if i.has_result and i.exported_to is None]

    def output_path(
        self, item: PhotoItem, n: int, fidelity: float, taken: set[Path], folder: Path | None = None
    ) -> Path:
        """Where ``item``'s result goes: ``folder``, else the setting's, else "restored" beside the original."""
        s = self.settings
        if folder is None and s.get("output_folder"):
            folder = Path(s.get("output_folder")).expanduser()
        return output_path(item.path, folder, s.get("naming"), s.get("format"), fidelity, n, taken)

    def export(self, items: list[PhotoItem], folder: Path | None = None) -> list[jobs.Job]:
        """Writes each restored photo; ``folder`` None = the setting (or "restored" beside each original)."""
        taken: set[Path] = set()
        submitted = []
        self._exports = {}
        for n, item in enumerate(items, start=1):
            out = self.output_path(item, n, item.result_fidelity or 0.0, taken, folder)
            kept = item.result_file if item.result is None else None
            job = jobs.Export(
                photo_id=item.id,
                source=item.path,
                output=out,
                image=item.result,
                image_file=kept,
                quality=self.settings.get("jpeg_quality"),
            )
            submitted.append(self.engine.submit(job))
        if submitted:
            self.notice.emit(f"Exporting {plural(len(submitted), 'photo')}…", 6000)
        return submitted

    def shutdown(self) -> None:
        """A clean exit: the engine stops, the journal and the kept results are removed."""
        self.engine.shutdown()
        self.journal.finish()

    # -- engine answers ------------------------------------------------------------------------
    def _item(self, job: jobs.Job) -> PhotoItem | None:
        return self.photos.by_id(job.photo_id) if isinstance(job, jobs.PhotoJob) else None

    def _on_job_started(self, message: jobs.JobStarted) -> None:
        item = self._item(message.job)
        if isinstance(message.job, jobs.Restore) and item is not None:
            item.status, item.progress, item.message = Status.WORKING, 0.0, "Starting"
            self.photos.update(item)
            self.notice.emit(f"Restoring {item.name}…", -1)

    def _on_progress(self, message: jobs.JobProgress) -> None:
        item = self._item(message.job)
        if isinstance(message.job, jobs.Restore) and item is not None and item.status == Status.WORKING:
            item.progress, item.message = message.fraction, message.text
            self.photos.update(item)
            self.batch.show(message.fraction)

    def _on_engine_info(self, message: jobs.EngineInfo) -> None:
        self.engine_state.report(message)
        if message.model_error:
            self.notice.emit(message.model_error + "  (Tools → Models…)", 0)

    def _on_scanned(self, message: jobs.Scanned) -> None:
        item = self.photos.by_id(message.photo_id)
        if item is None:
            return
        item.size, item.faces, item.thumbnail, item.scanned = message.size, message.faces, message.thumbnail, True
        item.excluded &= {f.index for f in item.faces}
        self.person.forget(item.id, keep={f.index for f in item.faces})
        if item.status == Status.SCANNING:
            item.status = Status.READY
        self.photos.update(item)

    def _on_restored(self, message: jobs.Restored) -> None:
        item = self.photos.by_id(message.photo_id)
        if item is None:
            return
        if item.result_file is not None and item.result_file != message.result_file:
            item.result_file.unlink(missing_ok=True)  # an earlier restoration of this photo
        item.result, item.result_file = message.image, message.result_file
        item.exported_to = message.output  # written by the engine when saving as restored
        if message.output is not None:
            self.last_export_folder = message.output.parent
        self.results.keep(item)
        item.faces, item.scanned = message.faces, True
        item.result_faces = {f.index for f in message.faces if f.restored}
        item.result_fidelity = message.options.fidelity
        item.result_options = message.options
        item.warnings = [one_based(w) for w in message.warnings]
        item.status, item.progress, item.message = Status.DONE, 1.0, ""
        item.stale = stale_reason(item.result_options, self.options_for(item))
        self.photos.update(item)
        for warning in item.warnings:
            self.notice.emit(warning, 10000)
        if message.device:
            self.engine_state.device = message.device
        self.engine_state.model = message.model

    def _on_matched(self, message: jobs.Matched) -> None:
        """Shown only while its face is the chosen one; references that match a face belong to it."""
        item = self.selection.photo
        if item is None or (message.photo_id, message.face_index) != (item.id, self.selection.face):
            return
        self.selection.matches = message
        known = [m.good for m in message.matches.values() if m.good is not None]
        if known and all(known):
            self.person.attach(message.photo_id, message.face_index)

    def _on_preview(self, message: jobs.PreviewReady) -> None:
        item = self.selection.photo
        if item is not None and message.photo_id == item.id and message.face_index == self.selection.face:
            self.selection.preview = message

    def _on_failed(self, message: jobs.JobFailed) -> None:
        job, text = message.job, message.message
        if isinstance(job, (jobs.Restore, jobs.Scan)):
            item = self.photos.by_id(job.photo_id)
            if item is None:
                return
            if message.cancelled:
                item.status, item.message = Status.CANCELLED, "Cancelled"
            else:
                item.status, item.message = Status.FAILED, _short(text, item.path)
                if isinstance(job, jobs.Scan):
                    item.scanned = False
            self.photos.update(item)
        elif isinstance(job, jobs.Preview):
            if not message.cancelled:
                self.preview_failed.emit()
                self.notice.emit(text, 10000)
        elif isinstance(job, jobs.AnalyseReference):
            self.reference_ready.emit(jobs.ReferenceReady(job.ref_id, job.path, None, text))
        elif isinstance(job, jobs.Export):
            self.notice.emit(f"Export failed: {text}", 15000)
        elif isinstance(job, jobs.Configure):
            self.notice.emit(text, 15000)
        elif not message.cancelled:
            self.notice.emit(text, 10000)

    def _on_job_done(self, message: jobs.JobDone) -> None:
        job = message.job
        if isinstance(job, jobs.Restore) and job.photo_id in self.batch.ids:
            item = self.photos.by_id(job.photo_id)
            self.batch.finished += 1
            if item is not None and item.status == Status.FAILED:
                self.batch.failed += 1
            self.batch.show()
            if not self.engine.pending(jobs.Restore):
                self._batch_complete()
        if isinstance(job, jobs.Export) and not self.engine.pending(jobs.Export) and self._exports:
            folder = next(iter(self._exports.values())).parent
            self.notice.emit(f"Exported {plural(len(self._exports), 'photo')} to {folder}", 10000)

    def _on_exported(self, message: jobs.Exported) -> None:
        self._exports[message.job.photo_id] = message.path
        self.last_export_folder = message.path.parent
        item = self.photos.by_id(message.job.photo_id)
        if item is not None:
            item.exported_to = message.path


def _short(message: str, path: Path) -> str:
    """The engine's one-line message without the path the list already shows."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
