"""The album wizard's way to the engine: album work in a worker thread, adapter training in a process.

``AlbumEngine`` is what the wizard needs of the engine; ``ApiAlbumEngine`` is ``engine.api``
(``scan_album``, ``open_album``, ``create_profile``, ``ProfileStore``), a fake in the GUI tests
(``tests/app/fake_album.py``). ``AlbumClient`` runs the album jobs one at a time in their own
``EngineThread`` (like the model manager's downloads: the main engine thread may be busy
restoring) and answers each with a typed message on the GUI thread. ``TrainingRun`` runs
``likeness profile train NAME --json-progress`` as a ``QProcess``: stopping it terminates the
process, and running it again resumes from the training state the engine keeps.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from engine import api
from engine.api import (
    AlbumFace,
    AlbumProgress,
    CancelledError,
    LikenessError,
    Person,
    Profile,
    ProfileStore,
    ScanReport,
)

from .imaging import thumbnail
from .worker import EngineThread

log = logging.getLogger(__name__)

FACE_THUMB = 96
REPO_ROOT = Path(__file__).resolve().parents[1]  # where ``python -m engine.cli`` finds the packages


# -- what the wizard needs of the engine -------------------------------------------------------
class AlbumView(Protocol):
    """``engine.api.open_album(folder)``: an album's people, as scanned and corrected."""

    def people(self) -> list[Person]: ...
    def rename(self, person_id: str, name: str) -> None: ...
    def merge(self, person_ids: list[str]) -> str: ...
    def split(self, person_id: str, face_ids: list[str]) -> str: ...
    def reject(self, face_ids: list[str]) -> None: ...
    def face_image(self, face: AlbumFace, size: int = 512) -> np.ndarray: ...


class AlbumEngine(Protocol):
    """The engine as the wizard uses it."""

    def scan_album(
        self,
        folder: Path,
        *,
        progress: Callable[[AlbumProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport: ...
    def open_album(self, folder: Path) -> AlbumView: ...
    def create_profile(self, name: str, *, album_faces: list[AlbumFace]) -> Profile: ...
    def profiles(self) -> ProfileStore: ...
    def train_command(self, name: str, *, minutes: float | None, steps: int | None) -> tuple[str, list[str]]: ...


class ApiAlbumEngine:
    """``engine.api``. Scanning and profile making load torch at first use, in the album thread."""

    def __init__(self, store: ProfileStore | None = None) -> None:
        self._store = store

    def scan_album(
        self,
        folder: Path,
        *,
        progress: Callable[[AlbumProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        return api.scan_album(folder, progress=progress, cancel=cancel)

    def open_album(self, folder: Path) -> AlbumView:
        return api.open_album(folder)

    def create_profile(self, name: str, *, album_faces: list[AlbumFace]) -> Profile:
        return api.create_profile(name, album_faces=album_faces, store=self.profiles())

    def profiles(self) -> ProfileStore:
        return self._store if self._store is not None else ProfileStore()

    def train_command(self, name: str, *, minutes: float | None, steps: int | None) -> tuple[str, list[str]]:
        args = ["-m", "engine.cli", "profile", "train", name, "--json-progress"]
        if minutes is not None:
            args += ["--minutes", f"{minutes:g}"]
        if steps is not None:
            args += ["--steps", str(steps)]
        return sys.executable, args


# -- jobs and messages -------------------------------------------------------------------------
@dataclass(kw_only=True, eq=False)
class AlbumJob:
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass(kw_only=True, eq=False)
class ScanAlbum(AlbumJob):
    folder: Path


@dataclass(kw_only=True, eq=False)
class LoadPeople(AlbumJob):
    folder: Path


@dataclass(kw_only=True, eq=False)
class Rename(AlbumJob):
    person_id: str
    name: str


@dataclass(kw_only=True, eq=False)
class Merge(AlbumJob):
    person_ids: list[str]


@dataclass(kw_only=True, eq=False)
class Split(AlbumJob):
    person_id: str
    face_ids: list[str]


@dataclass(kw_only=True, eq=False)
class Reject(AlbumJob):
    face_ids: list[str]


@dataclass(kw_only=True, eq=False)
class Thumbnails(AlbumJob):
    faces: list[AlbumFace]


@dataclass(kw_only=True, eq=False)
class MakeProfile(AlbumJob):
    """A profile from a person's faces; an existing profile of that name is used as it is (resume)."""

    name: str
    faces: list[AlbumFace]


@dataclass(frozen=True, eq=False)
class ScanProgress:
    progress: AlbumProgress


@dataclass(frozen=True, eq=False)
class ScanDone:
    report: ScanReport


@dataclass(frozen=True, eq=False)
class PeopleLoaded:
    people: list[Person]
    focus: str | None = None  # the person an edit made (merge, split), to select


@dataclass(frozen=True, eq=False)
class ThumbnailReady:
    face_id: str
    image: QImage


@dataclass(frozen=True, eq=False)
class ProfileMade:
    profile: Profile
    existed: bool


@dataclass(frozen=True, eq=False)
class AlbumFailed:
    job: AlbumJob
    message: str
    cancelled: bool = False


@dataclass(frozen=True, eq=False)
class AlbumJobDone:
    """The last message of every job, whatever happened."""

    job: AlbumJob


class AlbumWorker(QObject):
    """Runs album jobs in the album thread; never touch it from the GUI thread except via signals."""

    posted = Signal(object)

    def __init__(self, engine: AlbumEngine) -> None:
        super().__init__()
        self.engine = engine
        self._album: AlbumView | None = None
        self._thumbs: dict[str, QImage] = {}
        self._handlers: dict[type[AlbumJob], Callable[[Any], None]] = {
            ScanAlbum: self._scan,
            LoadPeople: self._load,
            Rename: self._rename,
            Merge: self._merge,
            Split: self._split,
            Reject: self._reject,
            Thumbnails: self._thumbnails,
            MakeProfile: self._make_profile,
        }

    @Slot(object)
    def run(self, job: AlbumJob) -> None:
        try:
            self._handlers[type(job)](job)
        except CancelledError:
            self.posted.emit(AlbumFailed(job, "Stopped", cancelled=True))
        except LikenessError as err:
            self.posted.emit(AlbumFailed(job, str(err)))
        except Exception as err:  # a bug: the traceback goes to the log
            log.exception("album job %s failed", type(job).__name__)
            self.posted.emit(
                AlbumFailed(job, f"Unexpected error ({type(err).__name__}: {err}); details are in the log.")
            )
        finally:
            self.posted.emit(AlbumJobDone(job))

    def album(self) -> AlbumView:
        if self._album is None:
            raise LikenessError("no album is open: scan a folder first")
        return self._album

    def _scan(self, job: ScanAlbum) -> None:
        if job.cancel.is_set():
            raise CancelledError("cancelled")
        self.close_album()  # the next LoadPeople reads the new scan
        report = self.engine.scan_album(
            job.folder, progress=lambda p: self.posted.emit(ScanProgress(p)), cancel=job.cancel
        )
        self.posted.emit(ScanDone(report))

    @Slot()
    def close_album(self) -> None:
        """Closes the open album (its database connection belongs to this thread)."""
        album, self._album = self._album, None
        close = getattr(album, "close", None)
        if callable(close):
            close()

    def _load(self, job: LoadPeople) -> None:
        self.close_album()
        self._album = self.engine.open_album(job.folder)
        self.posted.emit(PeopleLoaded(self._album.people()))

    def _rename(self, job: Rename) -> None:
        self.album().rename(job.person_id, job.name)
        self.posted.emit(PeopleLoaded(self.album().people(), job.person_id))

    def _merge(self, job: Merge) -> None:
        kept = self.album().merge(job.person_ids)
        self.posted.emit(PeopleLoaded(self.album().people(), kept))

    def _split(self, job: Split) -> None:
        new = self.album().split(job.person_id, job.face_ids)
        self.posted.emit(PeopleLoaded(self.album().people(), new))

    def _reject(self, job: Reject) -> None:
        self.album().reject(job.face_ids)
        self.posted.emit(PeopleLoaded(self.album().people()))

    def _thumbnails(self, job: Thumbnails) -> None:
        album = self.album()
        for face in job.faces:
            if job.cancel.is_set():
                return
            image = self._thumbs.get(face.face_id)
            if image is None:
                image = self._thumbs[face.face_id] = thumbnail(album.face_image(face, FACE_THUMB * 2), FACE_THUMB)
            self.posted.emit(ThumbnailReady(face.face_id, image))

    def _make_profile(self, job: MakeProfile) -> None:
        store = self.engine.profiles()
        if store.exists(job.name):
            self.posted.emit(ProfileMade(store.get(job.name), existed=True))
            return
        self.posted.emit(ProfileMade(self.engine.create_profile(job.name, album_faces=job.faces), existed=False))


_stragglers: dict[EngineThread, AlbumWorker] = {}  # album threads still finishing a job, their wizard closed


def wait_for_stragglers(wait_ms: int = 60000) -> None:
    """At exit: lets the album threads whose wizard closed finish their job (a scan saves what it did)."""
    for thread in list(_stragglers):
        if not thread.wait(wait_ms):
            log.warning("an album thread did not stop in %.0f s", wait_ms / 1000)


class AlbumClient(QObject):
    """The album worker and its thread, seen from the GUI thread: jobs in, one signal per message."""

    scan_progress = Signal(object)  # AlbumProgress
    scan_done = Signal(object)  # ScanReport
    people_loaded = Signal(object)  # PeopleLoaded
    thumbnail_ready = Signal(str, QImage)
    profile_made = Signal(object)  # ProfileMade
    failed = Signal(object)  # AlbumFailed
    busy_changed = Signal(bool)
    _submit = Signal(object)
    _close = Signal()

    def __init__(self, engine: AlbumEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._thread = EngineThread()  # one Python thread state for the thread (dlib, see EngineThread)
        self.worker = AlbumWorker(engine)
        self.worker.moveToThread(self._thread)
        self._thread.finished.connect(self.worker.deleteLater)
        self._submit.connect(self.worker.run)
        self._close.connect(self.worker.close_album)
        self.worker.posted.connect(self._on_posted)
        self._pending: list[AlbumJob] = []
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A job other than thumbnails is waiting or running (the album may change)."""
        return any(not isinstance(j, Thumbnails) for j in self._pending)

    def submit(self, job: AlbumJob) -> AlbumJob:
        before = self.busy
        self._pending.append(job)
        if self.busy != before:
            self.busy_changed.emit(True)
        self._submit.emit(job)
        return job

    def cancel(self) -> None:
        """Stops the running and waiting jobs (a scan saves what it did first)."""
        for job in self._pending:
            job.cancel.set()

    def shutdown(self, wait_ms: int = 2000) -> None:
        """Cancels the jobs and ends the thread. A job that does not stop within ``wait_ms`` (a
        profile being made, a photo being read) finishes in the background: the thread is kept
        until then (``wait_for_stragglers`` at exit), so closing never freezes the window."""
        self.cancel()
        if not self._thread.isRunning():
            return
        self._close.emit()  # after the jobs waiting, in the album thread
        self._thread.quit()
        if not self._thread.wait(wait_ms):
            thread, worker = self._thread, self.worker
            _stragglers[thread] = worker  # both must outlive the wizard until the job ends
            thread.finished.connect(lambda: _stragglers.pop(thread, None))
            worker.posted.disconnect(self._on_posted)
            log.info("the album thread finishes its job in the background")

    def _on_posted(self, message: object) -> None:
        match message:
            case ScanProgress(progress=p):
                self.scan_progress.emit(p)
            case ScanDone(report=report):
                self.scan_done.emit(report)
            case PeopleLoaded():
                self.people_loaded.emit(message)
            case ThumbnailReady(face_id=face_id, image=image):
                self.thumbnail_ready.emit(face_id, image)
            case ProfileMade():
                self.profile_made.emit(message)
            case AlbumFailed():
                self.failed.emit(message)
            case AlbumJobDone(job=job):
                before = self.busy
                if job in self._pending:
                    self._pending.remove(job)
                if self.busy != before:
                    self.busy_changed.emit(False)


# -- training ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingEnd:
    ok: bool
    stopped: bool  # the user stopped it: running it again resumes
    message: str


class TrainingRun(QObject):
    """``likeness profile train NAME --json-progress`` in a QProcess, one JSON object per stdout line.

    ``step`` carries each progress object as a dict; ``preview`` the path of a before/after PNG
    when the engine writes one; ``ended`` comes once per run.
    """

    step = Signal(dict)
    preview = Signal(Path)
    ended = Signal(object)  # TrainingEnd
    running_changed = Signal(bool)

    KILL_AFTER_MS = 5000

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self._out = b""
        self._err = b""
        self._stopping = False
        self._done = False

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, program: str, args: list[str]) -> None:
        if self.process is not None:
            return
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setWorkingDirectory(str(REPO_ROOT))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        self._out = self._err = b""
        self._stopping = self._done = False
        log.info("training: %s %s", program, " ".join(args))
        process.start(program, args)
        self.running_changed.emit(True)

    def stop(self) -> None:
        """Terminates the training; what it saved is kept and the next start resumes from it."""
        process = self.process
        if process is None:
            return
        self._stopping = True
        process.terminate()
        QTimer.singleShot(self.KILL_AFTER_MS, lambda: process.kill() if self.process is process else None)

    def stop_and_wait(self, ms: int = 10000) -> None:
        process = self.process
        if process is None:
            return
        self.stop()
        if not process.waitForFinished(ms):
            process.kill()
            process.waitForFinished(ms)

    def _read_stdout(self) -> None:
        if self.process is None:
            return
        self._out += bytes(self.process.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            self._line(line.decode("utf-8", "replace").strip())

    def _read_stderr(self) -> None:
        if self.process is not None:
            self._err = (self._err + bytes(self.process.readAllStandardError().data()))[-20000:]

    def _line(self, text: str) -> None:
        if not text.startswith("{"):
            return
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("training: not JSON: %s", text)
            return
        if not isinstance(data, dict):
            return
        if data.get("done"):
            self._done = True
        self.step.emit(data)
        if data.get("preview"):
            self.preview.emit(Path(data["preview"]))

    def error_text(self) -> str:
        """The engine's ``error: ...`` line, else the last line it wrote on stderr."""
        lines = [x.strip() for x in self._err.decode("utf-8", "replace").splitlines() if x.strip()]
        errors = [x for x in lines if x.startswith("error:")]
        if errors:
            return errors[-1].removeprefix("error:").strip()
        return lines[-1] if lines else ""

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._out.strip():
            self._line(self._out.decode("utf-8", "replace").strip())
            self._out = b""
        if self._stopping:
            end = TrainingEnd(False, True, "Stopped. What was trained is kept: Train continues from there.")
        elif code == 0 and status == QProcess.ExitStatus.NormalExit and self._done:
            end = TrainingEnd(True, False, "Trained.")
        else:
            detail = self.error_text() or f"the training stopped unexpectedly (exit code {code})"
            end = TrainingEnd(False, False, detail)
        self._end(end)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(TrainingEnd(False, False, "The training could not be started (Python was not found)."))

    def _end(self, end: TrainingEnd) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.deleteLater()
        self.running_changed.emit(False)
        self.ended.emit(end)
