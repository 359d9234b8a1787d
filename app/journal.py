"""The session journal: what the window holds, kept on disk so that a crash loses nothing.

Each running window owns one folder under ``<settings folder>/sessions/`` (``Settings.folder``)::

    sessions/<id>.lock       a QLockFile with the owner's PID: a live owner keeps its folder
    sessions/<id>/results/   the restored images as .npy (the worker writes them, app.worker)
    sessions/<id>/journal.json

``journal.json`` is rewritten (a temporary file, then ``os.replace``) at most every
``DELAY_MS`` after a change, and only when its text changed::

    {"version": 1, "pid": 4242, "started": "2025-01-31T10:02:03",
     "photos": [{"path": "/abs/a.jpg", "status": "done", "message": "", "excluded": [1],
                 "result": "results/3-17.npy", "result_options": {...RestoreOptions...},
                 "result_faces": [0], "warnings": [], "exported_to": null},
                {"path": "/abs/b.jpg", "status": "queued", "message": "", "excluded": []}],
     "queue": ["/abs/b.jpg"],                  # photos waiting to be restored, in order
     "references": ["/abs/ref.jpg"],           # the reference panel's photos
     "reference_faces": [[0, 1]]}              # [photo's index in "photos", face index]

A clean exit (``finish``) removes the folder and the lock; ``app.recovery`` offers what a
session that did not end cleanly left behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLockFile, QObject, QTimer

from engine.api import LikenessError, RestoreOptions

from . import jobs
from .photos import PhotoItem, Status

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

VERSION = 1
JOURNAL = "journal.json"
RESULTS = "results"
DELAY_MS = 500  # at most this long between a change and its journal on disk


def sessions_root(settings_folder: Path) -> Path:
    return settings_folder / "sessions"


def lock_for(folder: Path) -> QLockFile:
    """The lock of a session folder; a lock whose owner died is taken over (PID check, never by age)."""
    lock = QLockFile(str(folder.with_name(folder.name + ".lock")))
    lock.setStaleLockTime(0)
    return lock


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- what is written -------------------------------------------------------------------------
def options_to_json(options: RestoreOptions) -> dict[str, Any]:
    out = asdict(options)
    out["references"] = [str(p) for p in options.references]
    out["faces"] = None if options.faces is None else list(options.faces)
    return out


def options_from_json(data: Any) -> RestoreOptions | None:
    """The options back, or None when they cannot be read (another version wrote them)."""
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(RestoreOptions)}
    kwargs = {k: v for k, v in data.items() if k in known}
    try:
        kwargs["references"] = tuple(Path(p) for p in kwargs.get("references") or ())
        faces = kwargs.get("faces")
        kwargs["faces"] = None if faces is None else tuple(int(i) for i in faces)
        return RestoreOptions(**kwargs)
    except (TypeError, ValueError, LikenessError):
        return None


def photo_record(item: PhotoItem, folder: Path) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": str(item.path.absolute()),
        "status": item.status.name.lower(),
        "message": item.message,
        "excluded": sorted(item.excluded),
    }
    if item.result_file is not None:
        result = item.result_file
        inside = result.is_relative_to(folder)
        record["result"] = result.relative_to(folder).as_posix() if inside else str(result)
        record["result_options"] = None if item.result_options is None else options_to_json(item.result_options)
        record["result_faces"] = sorted(item.result_faces)
        record["warnings"] = list(item.warnings)
        record["exported_to"] = None if item.exported_to is None else str(item.exported_to)
    return record


def snapshot(session: Session, folder: Path) -> dict[str, Any] | None:
    """The session as the journal keeps it; None when there is nothing to keep."""
    items = session.photos.items()
    references = [str(p.absolute()) for p in session.references.all_paths()]
    if not items and not references:
        return None
    row = {item.id: n for n, item in enumerate(items)}
    engine = session.engine
    waiting = [j.photo_id for j in (engine.current, *engine.pending(jobs.Restore)) if isinstance(j, jobs.Restore)]
    queue = [items[row[i]] for i in dict.fromkeys(waiting) if i in row]
    queue += [i for i in items if i.status in (Status.QUEUED, Status.WORKING) and i not in queue]
    return {
        "version": VERSION,
        "pid": os.getpid(),
        "photos": [photo_record(item, folder) for item in items],
        "queue": [str(item.path.absolute()) for item in queue],
        "references": references,
        "reference_faces": sorted([row[p], f] for p, f in session.person.faces if p in row),
    }


# -- the running session's folder ------------------------------------------------------------
class Journal(QObject):
    """This session's folder, its lock, and its journal kept up to date with the session.

    ``results`` is None when the folder cannot be made (a read-only settings folder): the
    session then runs without a journal and its results go to a temporary folder.
    """

    def __init__(self, settings_folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root = sessions_root(settings_folder)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.folder = self.root / name
        self.file = self.folder / JOURNAL
        self.results: Path | None = None
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._session: Session | None = None
        self._written = ""
        self._finished = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        self.lock = lock_for(self.folder)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not self.lock.tryLock(0):  # the lock comes first: a folder without one is abandoned
                raise OSError(f"cannot lock {self.lock.fileName()}")
            (self.folder / RESULTS).mkdir(parents=True)
            self.results = self.folder / RESULTS
        except OSError as err:
            log.warning("no session journal (%s): a crash loses this session", err)
            self._finished = True

    @property
    def active(self) -> bool:
        return not self._finished

    def watch(self, session: Session) -> None:
        """Writes the journal whenever the session's photos, queue, results or references change."""
        self._session = session
        photos = session.photos
        for signal in (photos.rowsInserted, photos.rowsRemoved, photos.modelReset):
            signal.connect(self.schedule)
        photos.item_changed.connect(self.schedule)
        session.person.faces_changed.connect(self.schedule)
        session.reference_ready.connect(self.schedule)
        session.engine.job_done.connect(self.schedule)

    def schedule(self, *_args: object) -> None:
        """Writes within ``DELAY_MS``; changes meanwhile go into the same write."""
        if self.active and not self._timer.isActive():
            self._timer.start(DELAY_MS)

    def flush(self) -> None:
        """Writes the journal now (when it changed)."""
        self._timer.stop()
        if not self.active or self._session is None:
            return
        data = snapshot(self._session, self.folder)
        text = "" if data is None else json.dumps({**data, "started": self.started}, indent=1)
        if text == self._written:
            return
        try:
            if text:
                write_atomic(self.file, text)
            else:
                self.file.unlink(missing_ok=True)
            self._written = text
        except OSError as err:
            log.warning("cannot write the session journal %s: %s", self.file, err)

    def finish(self) -> None:
        """A clean exit: the journal, the kept results and the lock go."""
        self._timer.stop()
        if self._finished:
            return
        self._finished = True
        shutil.rmtree(self.folder, ignore_errors=True)
        self.lock.unlock()
