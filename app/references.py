"""Adapter between the reference panel and the engine's reference guidance.

The engine analyses a reference photo (``Restorer.analyse_reference``: main face, aligned,
identity embedding, cached per file), checks references against a face
(``engine.references.check_against``) and restores with them (``RestoreOptions.references`` and
``num_references``). This module imports ``engine.references`` lazily and, with an engine that
lacks it, degrades: references are still detected and aligned with ``Restorer.find_faces`` (so
the user sees what would be used) and the match indicator says it is not available yet. It runs
in the worker thread only.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import RestoreOptions

log = logging.getLogger(__name__)

NOT_AVAILABLE = "Identity match: not available yet"


@dataclass
class Match:
    """How well the references match a face: ``similarity`` in [0, 1] or None, and a verdict."""

    similarity: float | None
    verdict: str
    good: bool | None = None  # None: unknown (no check yet, or the face is too damaged to tell)


def engine_module():
    """``engine.references`` when reference guidance has landed, else None."""
    try:
        return importlib.import_module("engine.references")
    except ImportError:
        return None


def available() -> bool:
    return engine_module() is not None


def supports_option(name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(RestoreOptions)}


def with_references(options: RestoreOptions, paths: list[Path], count: int, guidance_steps: int | None = None
                    ) -> RestoreOptions:
    """``options`` with the reference photos, when the engine accepts them; unchanged otherwise."""
    changes: dict[str, Any] = {}
    if paths and supports_option("references"):
        changes["references"] = tuple(paths)  # the engine ranks them and uses the best ``count``
    if supports_option("num_references"):
        changes["num_references"] = count
    if guidance_steps is not None and supports_option("guidance_steps"):
        changes["guidance_steps"] = guidance_steps
    return dataclasses.replace(options, **changes) if changes else options


@dataclass
class Reference:
    """An analysed reference: the aligned face (512² RGB) and the engine's own record, if any."""

    path: Path
    aligned: np.ndarray | None
    error: str | None
    engine_face: Any = None


def analyse(path: Path, restorer, options: RestoreOptions, helper=None) -> Reference:
    """Detect, align (and, with the engine's references, embed) the main face of a reference photo.

    ``helper`` (an ``app.detector_process.ProcessDetector``) runs the analysis in its process when
    the detector holds the GIL; the result joins the engine's cache, so restoring with this
    reference does not analyse it again.
    """
    from engine.errors import LikenessError

    path = Path(path)
    if engine_module() is not None and hasattr(restorer, "analyse_reference"):
        try:
            if helper is not None and hasattr(restorer, "remember_reference"):
                face = helper.analyse_reference(path)
                restorer.remember_reference(face)
            else:
                face = restorer.analyse_reference(path, options.detector)  # cached per file by the engine
        except LikenessError as err:
            return Reference(path, None, _without_path(str(err), path))
        return Reference(path, face.aligned, None, face)
    from engine.imageio import read_image

    try:
        photo = read_image(path)
    except LikenessError as err:
        return Reference(path, None, _without_path(str(err), path))
    faces = restorer.find_faces(photo.rgb, options)
    if not faces:
        return Reference(path, None, "no face found; a reference must show the person's face")
    largest = max(faces, key=lambda f: f.detection.size)
    return Reference(path, largest.aligned, None)


def match_each(references: list[Reference], face_aligned: np.ndarray, face_size: float | None = None) -> list[Match]:
    """The engine's identity check of each reference against one aligned (unrestored) face, which
    is analysed once (``face_size``: its detection box in the photo, so tiny faces count as too
    damaged). References without a face get NOT_AVAILABLE."""
    module = engine_module()
    usable = [r.engine_face is not None and r.error is None for r in references]
    if module is None or not hasattr(module, "check_against") or not any(usable) or face_aligned is None:
        return [Match(None, NOT_AVAILABLE) for _ in references]
    checks = iter(module.check_against(face_aligned, [r.engine_face for r, ok in zip(references, usable) if ok],
                                       face_size=face_size))
    return [_as_match(next(checks)) if ok else Match(None, NOT_AVAILABLE) for ok in usable]


def match(references: list[Reference], face_aligned: np.ndarray, face_size: float | None = None) -> Match:
    """The best-matching reference's check against one aligned face (``match_each``)."""
    known = [m for m in match_each(references, face_aligned, face_size) if m.similarity is not None]
    return max(known, key=lambda m: m.similarity) if known else Match(None, NOT_AVAILABLE)


def _as_match(check) -> Match:
    unsure = getattr(check, "verdict", None) == "unsure"  # the face is too damaged to tell who it is
    return Match(float(check.similarity), check.text, None if unsure else bool(check.matches))


def _without_path(message: str, path: Path) -> str:
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
