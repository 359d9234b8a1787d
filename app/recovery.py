"""After a crash: offer the sessions that did not end cleanly (``app.journal``) and bring them back.

At start, ``offer`` takes the lock of every session folder whose owner is gone (so a second
instance does not offer the same one), asks once (``app.dialogs.recovery``) and then:

- Restore: the photos come back with their state, their results (the .npy files move into this
  session's folder), the references and the faces they belong to, and the queue: those photos
  show "Queued" and are restored once their faces are found again. The photo that was being
  restored when Likeness closed is not queued again (it may be what closed it). What could not
  come back is named in the dialog and in the status bar.
- Discard: the folders go.
- The box closed without an answer: they stay, and are offered at the next start.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLockFile

from . import jobs
from .dialogs import recovery as dialog
from .imaging import result_readable
from .journal import JOURNAL, VERSION, lock_for, options_from_json
from .photos import PhotoItem, Status

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .session import Session

log = logging.getLogger(__name__)

CLOSED_WHILE_RESTORING = "Likeness closed while restoring it"
RESULT_LOST = "Its result was lost when Likeness closed"
UNREADABLE = "Likeness closed unexpectedly, and the record of what was open could not be read."


@dataclass
class Left:
    """One session that did not end cleanly: its folder, its lock (now ours) and its journal."""

    folder: Path
    lock: QLockFile
    journal: dict[str, Any]

    @property
    def photos(self) -> list[dict[str, Any]]:
        return self.journal.get("photos", [])

    @property
    def references(self) -> list[Path]:
        return [Path(p) for p in self.journal.get("references", [])]

    def result_file(self, record: dict[str, Any]) -> Path | None:
        name = record.get("result")
        return None if not name else self.folder / name  # an absolute name stays as it is

    def unexported(self) -> int:
        return sum(1 for p in self.photos if p.get("result") and not _exported(p))

    def problems(self) -> list[str]:
        """What cannot come back, in plain words."""
        out = []
        for record in self.photos:
            path, result = Path(record["path"]), self.result_file(record)
            if not path.is_file():
                out.append(f"{path.name} (the photo is not in {path.parent} any more)")
            elif result is not None and not result_readable(result):
                out.append(f"the restored {path.name} (its result file is missing)")
        out += [f"reference {p.name} (not found)" for p in self.references if not p.is_file()]
        return out

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.lock.unlock()


def _exported(record: dict[str, Any]) -> bool:
    out = record.get("exported_to")
    return bool(out) and Path(out).is_file()


def read_journal(file: Path) -> dict[str, Any] | None:
    """The journal ({} when there is none), or None when it cannot be read."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("cannot read the session journal %s: %s", file, err)
        return None
    if not well_formed(data):
        log.warning("%s: not a journal this version of Likeness reads", file)
        return None
    return data


def well_formed(data: Any) -> bool:
    """Whether ``data`` has the shape ``app.journal`` writes (so restoring it cannot fail half-way)."""

    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def ints(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, int) for v in value)

    def photo(p: Any) -> bool:
        return (
            isinstance(p, dict)
            and isinstance(p.get("path"), str)
            and isinstance(p.get("message", ""), str)
            and ints(p.get("excluded", []))
            and ints(p.get("result_faces", []))
            and strings(p.get("warnings", []))
            and isinstance(p.get("result") or "", str)
            and isinstance(p.get("exported_to") or "", str)
        )

    return (
        isinstance(data, dict)
        and data.get("version") == VERSION
        and isinstance(data.get("photos", []), list)
        and all(photo(p) for p in data.get("photos", []))
        and strings(data.get("queue", []))
        and strings(data.get("references", []))
        and all(ints(pair) and len(pair) == 2 for pair in data.get("reference_faces", []))
    )


@dataclass
class Found:
    sessions: list[Left] = field(default_factory=list)
    unreadable: int = 0  # sessions whose journal could not be read (removed)


def find(root: Path, own: Path) -> Found:
    """The sessions under ``root`` whose owner is gone, locked for this one; empty ones are removed."""
    found = Found()
    if not root.is_dir():
        return found
    names = {p.name for p in root.iterdir() if p.is_dir()}
    names |= {p.name[: -len(".lock")] for p in root.iterdir() if p.name.endswith(".lock")}
    for name in sorted(names):
        folder = root / name
        if folder == own:
            continue
        lock = lock_for(folder)
        if not lock.tryLock(0):  # its window is still open
            continue
        journal = read_journal(folder / JOURNAL)
        left = Left(folder, lock, journal or {})
        if left.photos or left.references:
            found.sessions.append(left)
        else:  # nothing was open, or nothing can be read of it: nothing to offer
            found.unreadable += journal is None
            left.remove()
    return found


@dataclass
class Outcome:
    photos: int = 0
    results: int = 0
    lost: list[str] = field(default_factory=list)
    queue: list[PhotoItem] = field(default_factory=list)
    not_queued: list[str] = field(default_factory=list)  # being restored when Likeness closed


def restore(session: Session, sessions: list[Left]) -> Outcome:
    """Puts the sessions' photos, results, references and queue into ``session``; removes their folders."""
    out = Outcome()
    for left in sessions:
        _restore_one(session, left, out)
    session.refresh_stale()
    resume_queue(session, out.queue)
    session.journal.flush()  # the moved results are on record before their old folders go
    for left in sessions:
        left.remove()
    return out


def _restore_one(session: Session, left: Left, out: Outcome) -> None:
    records = left.photos
    out.lost += left.problems()
    present = [(n, r) for n, r in enumerate(records) if Path(r["path"]).is_file()]
    new = {item.path.resolve(): item for item in session.photos.add([Path(r["path"]) for _, r in present])}
    rows: dict[int, PhotoItem] = {}
    options = session.base_options()
    for n, record in present:
        item = new.get(Path(record["path"]).resolve())
        if item is None:  # already in the list
            continue
        rows[n] = item
        out.results += _apply(record, item, left, session)
        session.photos.update(item)
        session.engine.submit(jobs.Scan(photo_id=item.id, path=item.path, options=options))
    out.photos += len(rows)
    by_path = {str(Path(r["path"])): n for n, r in enumerate(records)}
    for path in left.journal.get("queue", []):
        item = rows.get(by_path.get(str(path), -1))
        if item is None:
            continue
        if item.message == CLOSED_WHILE_RESTORING:  # it may be what closed Likeness: the user decides
            out.not_queued.append(item.name)
            continue
        item.status = Status.QUEUED  # restored once its faces are found (resume_queue)
        session.photos.update(item)
        out.queue.append(item)
    session.references.add_paths([p for p in left.references if p.is_file()])
    faces = left.journal.get("reference_faces", [])
    mine = {(rows[n].id, int(f)) for n, f in faces if n in rows}
    if mine:
        session.person.faces = session.person.faces | mine


def _apply(record: dict[str, Any], item: PhotoItem, left: Left, session: Session) -> int:
    """The photo's state and result from its record; 1 when its result came back."""
    item.excluded = {int(i) for i in record.get("excluded", [])}
    status, message = record.get("status"), str(record.get("message", ""))
    source, results = left.result_file(record), session.journal.results
    if source is not None and results is not None and _move(source, results / f"recovered-{item.id}.npy"):
        item.result_file = results / f"recovered-{item.id}.npy"
        item.result_options = options_from_json(record.get("result_options"))
        item.result_fidelity = None if item.result_options is None else item.result_options.fidelity
        item.result_faces = {int(i) for i in record.get("result_faces", [])}
        item.warnings = [str(w) for w in record.get("warnings", [])]
        item.exported_to = Path(record["exported_to"]) if _exported(record) else None
        item.status = Status.DONE
        if status == "working":
            item.message = CLOSED_WHILE_RESTORING
        return 1
    if source is not None:
        item.message = RESULT_LOST
    if status == "failed":
        item.status, item.message = Status.FAILED, message
    elif status == "cancelled":
        item.status, item.message = Status.CANCELLED, message
    elif status == "working":
        item.message = CLOSED_WHILE_RESTORING
    return 0


def _move(source: Path, target: Path) -> bool:
    if not result_readable(source):
        return False
    try:
        shutil.move(source, target)
    except OSError as err:
        log.warning("cannot keep the result %s: %s", source, err)
        return False
    return True


def resume_queue(session: Session, items: list[PhotoItem]) -> None:
    """Restores ``items`` once their faces are found and the references analysed (their options need both)."""
    engine = session.engine
    if not items:
        return

    def on_done(_message: jobs.JobDone) -> None:
        if engine.pending(jobs.Scan) or engine.pending(jobs.AnalyseReference):
            return
        engine.job_done.disconnect(on_done)
        busy = engine.photos_in_queue(jobs.Restore)
        listed = [i for i in items if session.photos.by_id(i.id) is i]  # not removed meanwhile
        waiting = [i for i in listed if i.status == Status.QUEUED and i.id not in busy]
        if waiting:
            session.run(waiting)

    engine.job_done.connect(on_done)


def summary(out: Outcome) -> str:
    counts = [dialog.count(out.photos, "photo", "photos")]
    if out.results:
        counts.append(dialog.count(out.results, "result", "results"))
    text = f"Restored {' and '.join(counts)} from the last session."
    if out.lost:
        more = f" and {len(out.lost) - 3} more" if len(out.lost) > 3 else ""
        text += " Not restored: " + "; ".join(out.lost[:3]) + more + "."
    if out.not_queued:
        text += f" Not queued again: {', '.join(out.not_queued)} (being restored when Likeness closed)."
    return text


def offer(window: MainWindow) -> None:
    """Asks once about the sessions that did not end cleanly, and restores or discards them."""
    session = window.session
    journal = session.journal
    if not journal.active:
        return
    found = find(journal.root, journal.folder)
    if not found.sessions:
        if found.unreadable:
            session.notice.emit(UNREADABLE, 0)
        return
    photos = sum(len(left.photos) for left in found.sessions)
    unexported = sum(left.unexported() for left in found.sessions)
    references = sum(len(left.references) for left in found.sessions)
    problems = [p for left in found.sessions for p in left.problems()]
    problems += ["another session (its record could not be read)"] * bool(found.unreadable)
    answer = dialog.ask(window, photos, unexported, references, problems)
    if answer == "restore":
        out = restore(session, found.sessions)
        if window.current is None and window.photos.rowCount():
            window.list.setCurrentIndex(window.photos.index(0))
        session.notice.emit(summary(out), 0)
    elif answer == "discard":
        for left in found.sessions:
            left.remove()
    else:
        for left in found.sessions:
            left.lock.unlock()
