"""Adapter between the reference panel and the engine's reference guidance.

``engine.references`` (analyse a reference photo, match it to a face) and the
``RestoreOptions.references`` / ``num_references`` fields arrive with reference guidance. This
module imports them lazily and, until they exist, degrades: references are still detected and
aligned with ``Restorer.find_faces`` (so the user sees what will be used), and the match
indicator says it is not available yet. It runs in the worker thread only.
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
    good: bool | None = None  # None: unknown


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


def with_references(options: RestoreOptions, paths: list[Path], count: int) -> RestoreOptions:
    """``options`` with the reference photos, when the engine accepts them; unchanged otherwise."""
    changes: dict[str, Any] = {}
    if paths and supports_option("references"):
        changes["references"] = tuple(paths[: max(1, count)])
    if supports_option("num_references"):
        changes["num_references"] = count
    return dataclasses.replace(options, **changes) if changes else options


@dataclass
class Reference:
    """An analysed reference: the aligned face (512² RGB) and the engine's own record, if any."""

    path: Path
    aligned: np.ndarray | None
    error: str | None
    engine_face: Any = None


def analyse(path: Path, restorer, options: RestoreOptions) -> Reference:
    """Detect and align the largest face of a reference photo."""
    module = engine_module()
    if module is not None and hasattr(module, "analyse_reference"):
        try:
            face = module.analyse_reference(path, restorer)
        except TypeError:  # a signature without the restorer
            face = module.analyse_reference(path)
        return Reference(Path(path), getattr(face, "aligned", None), getattr(face, "error", None), face)
    from engine.imageio import read_image

    photo = read_image(path)
    faces = restorer.find_faces(photo.rgb, options)
    if not faces:
        return Reference(Path(path), None, "No face found in this photo")
    largest = max(faces, key=lambda f: f.detection.size)
    return Reference(Path(path), largest.aligned, None)


def match(references: list[Reference], face_aligned: np.ndarray) -> Match:
    """The engine's identity match of ``references`` against one aligned face."""
    module = engine_module()
    usable = [r for r in references if r.engine_face is not None and r.error is None]
    if module is None or not hasattr(module, "match") or not usable:
        return Match(None, NOT_AVAILABLE)
    result = module.match([r.engine_face for r in usable], face_aligned)
    similarity = getattr(result, "similarity", None)
    if similarity is None and isinstance(result, tuple):
        similarity = result[0]
    verdict = getattr(result, "verdict", None) or (result[1] if isinstance(result, tuple) and len(result) > 1 else "")
    good = getattr(result, "same_person", None)
    if good is None and isinstance(verdict, str):
        good = not any(word in verdict.lower() for word in ("different", "not ", "unlikely", "no match"))
    return Match(float(similarity) if similarity is not None else None, str(verdict), good)
