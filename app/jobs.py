"""What crosses between the GUI and the engine thread: jobs in, messages out, all plain data.

The GUI builds a ``Job``; the worker runs it in its thread and answers with ``Message``s: first
``JobStarted``, then any ``JobProgress`` and the job's own result (``Scanned``, ``Restored``…) or
one ``JobFailed``, and always ``JobDone`` last. Every job has an id and its own cancel event,
which the GUI thread may set at any time (the engine checks it between faces).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from PySide6.QtGui import QImage

from engine.api import RestoreOptions, RestoreRequest

from .references import Match

_ids = itertools.count(1)


# Jobs ---------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Job:
    """Base: an id and a cancel flag. Lower ``priority`` runs first; equal priorities in order."""

    id: int = field(default_factory=lambda: next(_ids), init=False)
    cancel: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    priority: ClassVar[int] = 5


@dataclass(kw_only=True)
class PhotoJob(Job):
    """A job about one photo of the list."""

    photo_id: int


@dataclass(kw_only=True)
class Configure(Job):
    """(Re)create the engine with this model, device and backend."""

    model: str = "auto"
    device: str = "auto"
    backend: str = "auto"
    detector: str = "auto"  # loaded now, so the first photo does not pause on it
    priority: ClassVar[int] = 0


@dataclass(kw_only=True)
class Preview(PhotoJob):
    """Restore one face of a photo at ``fidelity``: the encoder runs once, each new w decodes only."""

    path: Path
    options: RestoreOptions = field(default_factory=RestoreOptions)
    face_index: int = 0
    fidelity: float = 0.5
    priority: ClassVar[int] = 1


@dataclass(kw_only=True)
class Scan(PhotoJob):
    """Read a photo, find its faces (no restoration): thumbnails, face boxes and counts."""

    path: Path
    options: RestoreOptions = field(default_factory=RestoreOptions)
    priority: ClassVar[int] = 2


@dataclass(kw_only=True)
class AnalyseReference(Job):
    """Detect, align and embed the main face of a reference photo."""

    ref_id: int
    path: Path
    options: RestoreOptions = field(default_factory=RestoreOptions)
    priority: ClassVar[int] = 2


@dataclass(kw_only=True)
class MatchReferences(PhotoJob):
    """Identity match of the analysed references against one face of a photo."""

    ref_ids: tuple[int, ...]
    path: Path
    options: RestoreOptions = field(default_factory=RestoreOptions)
    face_index: int = 0
    priority: ClassVar[int] = 2


@dataclass(kw_only=True)
class MatchPerson(Job):
    """Identity check of the analysed references against every face of these photos (their faces
    as found when they were added): which faces are the references' person."""

    ref_ids: tuple[int, ...]
    photos: tuple[tuple[int, Path], ...]  # (photo id, path)
    options: RestoreOptions = field(default_factory=RestoreOptions)
    priority: ClassVar[int] = 2


@dataclass(kw_only=True)
class Export(PhotoJob):
    """Write a restored image to ``output`` with the original's EXIF and ICC."""

    source: Path
    output: Path
    image: QImage | None = None  # the result in memory, or
    image_file: Path | None = None  # the result kept on disk by the worker
    quality: int = 95
    priority: ClassVar[int] = 3


@dataclass(kw_only=True)
class Restore(PhotoJob):
    """Restore one photo of a batch."""

    request: RestoreRequest
    priority: ClassVar[int] = 4


# Messages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceInfo:
    """A face as the GUI needs it: box in input pixels, whether it was restored, a small crop."""

    index: int
    box: tuple[float, float, float, float]
    score: float
    thumbnail: QImage | None = None
    restored: bool = False
    affine: tuple[float, ...] | None = None  # (2, 3) row by row: photo → aligned face (the preview's framing)
    profile: str | None = None  # the person profile the face was restored with


@dataclass(frozen=True, eq=False)
class Message:
    """Base of everything the worker sends back (compared by identity unless a subclass says otherwise)."""


@dataclass(frozen=True)
class JobStarted(Message):
    job: Job


@dataclass(frozen=True)
class JobProgress(Message):
    job: Job
    fraction: float
    text: str


@dataclass(frozen=True)
class JobFailed(Message):
    """``message`` is for the user (one line); the traceback of a bug is in the log."""

    job: Job
    message: str
    cancelled: bool = False


@dataclass(frozen=True)
class JobDone(Message):
    """The last message of every job, whatever happened."""

    job: Job


@dataclass(frozen=True)
class EngineInfo(Message):
    """The engine as configured: its device, the devices to choose from, its model or why none."""

    device: str = ""
    device_label: str = ""
    devices: tuple[tuple[str, str], ...] = ()
    model: str | None = None
    model_error: str | None = None


@dataclass(frozen=True, eq=False)  # holds images: compared by identity
class Scanned(Message):
    photo_id: int
    size: tuple[int, int]
    faces: list[FaceInfo]
    thumbnail: QImage


@dataclass(frozen=True, eq=False)  # holds images: compared by identity
class Restored(Message):
    photo_id: int
    image: QImage
    faces: list[FaceInfo]
    model: str
    device: str
    warnings: list[str]
    timings: dict[str, float]
    output: Path | None
    options: RestoreOptions
    result_file: Path | None = None  # the full result as .npy (the GUI keeps few results in memory)


@dataclass(frozen=True, eq=False)  # holds images: compared by identity
class PreviewReady(Message):
    photo_id: int
    face_index: int
    fidelity: float
    before: QImage
    after: QImage
    seconds: float


@dataclass(frozen=True, eq=False)  # holds images: compared by identity
class ReferenceReady(Message):
    ref_id: int
    path: Path
    aligned: QImage | None
    error: str | None
    note: str = ""


@dataclass(frozen=True)
class Matched(Message):
    photo_id: int
    face_index: int
    matches: dict[int, Match]  # ref id -> how well that reference matches the face


@dataclass(frozen=True)
class PersonMatched(Message):
    """The faces (photo id, face index) every checked reference says are their person."""

    job: MatchPerson
    faces: frozenset[tuple[int, int]]
    checked: int  # faces checked


@dataclass(frozen=True)
class Exported(Message):
    job: Export
    path: Path
