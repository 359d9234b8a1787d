"""The reference panel's side of the engine's reference guidance (worker thread only).

The engine analyses a reference photo (``Restorer.analyse_reference``: main face, aligned,
identity embedding, cached per file), checks references against a face (``check_against``) and
restores with them (``RestoreOptions.references`` and ``num_references``). This module turns
those answers into what the panel shows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.api import LikenessError, RestoreOptions

if TYPE_CHECKING:  # these names load torch: the worker thread imports them when it runs
    from engine.api import ReferenceCheck, ReferenceFace

NOT_AVAILABLE = "Identity match: not available yet"
UNSURE = "unsure"  # ReferenceCheck.verdict when the face is too damaged to tell who it is


@dataclass(frozen=True)
class Match:
    """How well the references match a face: ``similarity`` in [0, 1] or None, and a verdict."""

    similarity: float | None
    verdict: str
    good: bool | None = None  # None: unknown (no check yet, or the face is too damaged to tell)


@dataclass(frozen=True)
class Reference:
    """An analysed reference: the engine's record of its main face, or why there is none."""

    path: Path
    face: ReferenceFace | None
    error: str | None

    @property
    def aligned(self) -> np.ndarray | None:
        return None if self.face is None else self.face.aligned


class ReferenceAnalyser(Protocol):
    """What ``analyse`` needs of the engine: the analysis, and a place to keep a helper's result."""

    def analyse_reference(self, path: Path, detector: str = "auto") -> ReferenceFace: ...
    def remember_reference(self, face: ReferenceFace) -> None: ...


class ReferenceHelper(Protocol):
    """A detector's helper process that runs the whole analysis (``app.detector_process``)."""

    def analyse_reference(self, path: Path) -> ReferenceFace: ...


def with_references(
    options: RestoreOptions, paths: list[Path], count: int, guidance_steps: int | None = None
) -> RestoreOptions:
    """``options`` with the reference photos (the engine ranks them and uses the best ``count``)."""
    options = replace(options, references=tuple(paths), num_references=count)
    return options if guidance_steps is None else replace(options, guidance_steps=guidance_steps)


def analyse(path: Path, restorer: ReferenceAnalyser, detector: str, helper: ReferenceHelper | None = None) -> Reference:
    """Detect, align and embed the main face of a reference photo.

    ``helper`` runs the analysis in its process when the detector holds the GIL; the result
    joins the engine's cache, so restoring with this reference does not analyse it again.
    """
    path = Path(path)
    try:
        if helper is not None:
            face = helper.analyse_reference(path)
            restorer.remember_reference(face)
        else:
            face = restorer.analyse_reference(path, detector)  # cached per file by the engine
    except LikenessError as err:
        return Reference(path, None, _without_path(str(err), path))
    return Reference(path, face, None)


class Check(Protocol):
    """``engine.api.check_against``."""

    def __call__(
        self, face_aligned: np.ndarray, references: list[ReferenceFace], *, face_size: float | None = None
    ) -> list[ReferenceCheck]: ...


def match_each(
    references: list[Reference], face_aligned: np.ndarray, check: Check, face_size: float | None = None
) -> list[Match]:
    """The engine's identity ``check`` of each reference against one aligned (unrestored) face,
    which is analysed once (``face_size``: its detection box in the photo, so tiny faces count as
    too damaged). References without a face get NOT_AVAILABLE."""
    faces = [r.face for r in references if r.face is not None]
    if not faces:
        return [Match(None, NOT_AVAILABLE) for _ in references]
    checks = iter(check(face_aligned, faces, face_size=face_size))
    return [Match(None, NOT_AVAILABLE) if r.face is None else _as_match(next(checks)) for r in references]


def _as_match(check: ReferenceCheck) -> Match:
    unsure = check.verdict == UNSURE
    return Match(float(check.similarity), check.text, None if unsure else bool(check.matches))


def _without_path(message: str, path: Path) -> str:
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
