"""The GUI-thread side of the engine: the queue, cancel, and one signal per message type.

``EngineClient`` keeps the queue (previews first, then scans, exports, then the batch), hands
the worker (``app.worker``) one job at a time and re-emits each message the worker posts on the
signal its type is routed to, so widgets only ever see signals on the GUI thread. Cancel sets the
running job's event (the engine checks it between faces) and drops the queued jobs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, SignalInstance, Slot

from . import jobs
from .backend import Backend
from .worker import EngineThread, EngineWorker

log = logging.getLogger(__name__)


class EngineClient(QObject):
    """Each signal carries one message of the type named beside it (see ``routes``)."""

    busy_changed = Signal(bool)
    job_started = Signal(object)  # jobs.JobStarted
    progress = Signal(object)  # jobs.JobProgress
    failed = Signal(object)  # jobs.JobFailed
    job_done = Signal(object)  # jobs.JobDone, the last message of every job
    engine_info = Signal(object)  # jobs.EngineInfo
    scanned = Signal(object)  # jobs.Scanned
    restored = Signal(object)  # jobs.Restored
    preview_ready = Signal(object)  # jobs.PreviewReady
    reference_ready = Signal(object)  # jobs.ReferenceReady
    matched = Signal(object)  # jobs.Matched
    person_matched = Signal(object)  # jobs.PersonMatched
    exported = Signal(object)  # jobs.Exported
    _submit = Signal(object)  # jobs.Job, to the worker's thread

    def __init__(
        self, parent: QObject | None = None, backend: Backend | None = None, results: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.routes: dict[type[jobs.Message], SignalInstance] = {
            jobs.JobStarted: self.job_started,
            jobs.JobProgress: self.progress,
            jobs.JobFailed: self.failed,
            jobs.JobDone: self.job_done,
            jobs.EngineInfo: self.engine_info,
            jobs.Scanned: self.scanned,
            jobs.Restored: self.restored,
            jobs.PreviewReady: self.preview_ready,
            jobs.ReferenceReady: self.reference_ready,
            jobs.Matched: self.matched,
            jobs.PersonMatched: self.person_matched,
            jobs.Exported: self.exported,
        }
        self._queue: list[jobs.Job] = []
        self._current: jobs.Job | None = None
        self._last: jobs.Job | None = None
        self._thread = EngineThread()
        self._thread.setObjectName("likeness-engine")
        self.worker = EngineWorker(backend, results)  # results: where restored images are kept
        self.worker.moveToThread(self._thread)
        self._thread.finished.connect(self.worker.deleteLater)
        self._submit.connect(self.worker.run)
        self.worker.posted.connect(self._receive)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> jobs.Job | None:
        return self._current

    def pending(self, kind: type[jobs.Job] = jobs.Job) -> list[jobs.Job]:
        return [j for j in self._queue if isinstance(j, kind)]

    def photos_in_queue(self, kind: type[jobs.PhotoJob]) -> set[int]:
        """Photo ids of the running and queued jobs of ``kind``."""
        return {j.photo_id for j in [self._current, *self._queue] if isinstance(j, kind)}

    def submit(self, job: jobs.Job) -> jobs.Job:
        if isinstance(job, jobs.Preview):  # only the newest slider position matters
            self._queue = [j for j in self._queue if not isinstance(j, jobs.Preview)]
        if isinstance(job, jobs.Configure):  # a new engine: previews and scans of the old one are stale
            self._queue = [j for j in self._queue if not isinstance(j, (jobs.Configure, jobs.Preview))]
        self._queue.append(job)
        self._dispatch()
        return job

    def cancel(self, kinds: tuple[type[jobs.Job], ...] = (jobs.Restore,)) -> list[jobs.Job]:
        """Drops queued jobs of these kinds and stops the running one; returns the dropped jobs."""
        dropped = [j for j in self._queue if isinstance(j, kinds)]
        self._queue = [j for j in self._queue if not isinstance(j, kinds)]
        for job in dropped:
            job.cancel.set()
        if isinstance(self._current, kinds):
            self._current.cancel.set()
        return dropped

    def _dispatch(self) -> None:
        if self._current is not None or not self._queue:
            return
        candidates = self._queue
        if isinstance(self._last, jobs.Preview):  # a dragged slider must not starve the batch: alternate
            others = [j for j in self._queue if not isinstance(j, jobs.Preview)]
            candidates = others or candidates
        job = min(candidates, key=lambda j: j.priority)  # min is stable: first of equals
        self._queue.remove(job)
        self._last = job
        was_busy = self.busy
        self._current = job
        if not was_busy:
            self.busy_changed.emit(True)
        self._submit.emit(job)

    @Slot(object)
    def _receive(self, message: jobs.Message) -> None:
        if isinstance(message, jobs.JobDone) and message.job is self._current:
            self._current = None
        self.routes[type(message)].emit(message)
        if isinstance(message, jobs.JobDone):
            self._dispatch()
            if self._current is None:
                self.busy_changed.emit(False)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel everything, let the running job stop at its next check, and end the thread."""
        self.cancel((jobs.Job,))
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("the engine thread did not stop within %d ms", timeout_ms)
        else:
            self.worker.close()  # the thread is gone: safe to touch the worker here
