"""Jobs for the engine worker (requests in) and what comes back (outcomes out): plain data.

The GUI builds a job, the worker runs it in its thread and answers with an outcome; nothing else
crosses between the two. Every job has an id and its own cancel event, which the GUI thread may
set at any time (the engine checks it between faces).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtGui import QImage

from engine.api import RestoreOptions, RestoreRequest

_ids = itertools.count(1)


@dataclass
class Job:
    """Base: an id and a cancel flag. Lower ``priority`` runs first; equal priorities in order."""

    id: int = field(default_factory=lambda: next(_ids), init=False)
    cancel: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    priority: ClassVar[int] = 5


@dataclass
class Configure(Job):
    """(Re)create the engine with this model, device and backend."""

    model: str = "auto"
    device: str = "auto"
    backend: str = "auto"
    detector: str = "auto"  # loaded now, so the first photo does not pause on it
    priority: ClassVar[int] = 0


@dataclass
class Preview(Job):
    """Restore one face of a photo at ``fidelity``: the encoder runs once, each new w decodes only."""

    photo_id: int = 0
    path: Path = Path()
    options: RestoreOptions = field(default_factory=RestoreOptions)
    face_index: int = 0
    fidelity: float = 0.5
    priority: ClassVar[int] = 1


@dataclass
class Scan(Job):
    """Read a photo, find its faces (no restoration): thumbnails, face boxes and counts."""

    photo_id: int = 0
    path: Path = Path()
    options: RestoreOptions = field(default_factory=RestoreOptions)
    priority: ClassVar[int] = 2


@dataclass
class AnalyseReference(Job):
    """Detect and align the face in a reference photo; match it to a face when one is given."""

    ref_id: int = 0
    path: Path = Path()
    options: RestoreOptions = field(default_factory=RestoreOptions)
    priority: ClassVar[int] = 2


@dataclass
class MatchReferences(Job):
    """Identity match of the analysed references against one face of a photo."""

    ref_ids: tuple[int, ...] = ()
    photo_id: int = 0
    path: Path = Path()
    options: RestoreOptions = field(default_factory=RestoreOptions)
    face_index: int = 0
    priority: ClassVar[int] = 2


@dataclass
class Export(Job):
    """Write a restored image to ``output`` with the original's EXIF and ICC."""

    photo_id: int = 0
    source: Path = Path()
    output: Path = Path()
    image: QImage | None = None  # the result in memory, or
    image_file: Path | None = None  # the result kept on disk by the worker
    quality: int = 95
    priority: ClassVar[int] = 3


@dataclass
class Restore(Job):
    """Restore one photo of a batch."""

    photo_id: int = 0
    request: RestoreRequest | None = None
    priority: ClassVar[int] = 4


# Outcomes -----------------------------------------------------------------------------------


@dataclass
class FaceInfo:
    """A face as the GUI needs it: box in input pixels, whether it was restored, a small crop."""

    index: int
    box: tuple[float, float, float, float]
    score: float
    thumbnail: QImage | None = None
    restored: bool = False


@dataclass
class EngineInfo:
    device: str = ""
    device_label: str = ""
    devices: list[tuple[str, str]] = field(default_factory=list)
    model: str | None = None
    model_error: str | None = None


@dataclass
class ScanOutcome:
    photo_id: int
    size: tuple[int, int]
    faces: list[FaceInfo]
    thumbnail: QImage


@dataclass
class RestoreOutcome:
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


@dataclass
class PreviewOutcome:
    photo_id: int
    face_index: int
    fidelity: float
    before: QImage
    after: QImage
    seconds: float


@dataclass
class ReferenceOutcome:
    ref_id: int
    path: Path
    aligned: QImage | None
    error: str | None
    note: str = ""


@dataclass
class MatchOutcome:
    photo_id: int
    face_index: int
    matches: dict[int, Any]  # ref id -> app.references.Match
