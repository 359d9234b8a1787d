"""What the app needs of the engine, as protocols, and ``ApiBackend``, which is ``engine.api``.

The worker (``app.worker``) talks to the engine only through these: a ``Backend`` makes an
``EngineRestorer`` per configuration, lists the devices and checks references. The real one
imports the names of ``engine.api`` that load torch at first use, in the worker thread; GUI
tests pass a fake (``tests/app/fake_engine.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.api import FaceResult, Progress, RestoreOptions, RestoreRequest, RestoreResult, available_devices

from . import jobs

if TYPE_CHECKING:  # these names load torch: the worker thread imports them when it runs
    from engine.api import ReferenceCheck, ReferenceFace


class PreviewSession(Protocol):
    """``engine.api.FacePreview``: a photo's faces found once, each face encoded once."""

    def faces(self, photo_id: int, path: Path, options: RestoreOptions) -> list[FaceResult]: ...
    def remember(self, photo_id: int, faces: list[FaceResult]) -> None: ...
    def forget(self, photo_id: int | None = None) -> None: ...
    def render(
        self, photo_id: int, path: Path, face_index: int, w: float, options: RestoreOptions
    ) -> tuple[np.ndarray, np.ndarray]: ...


class Status(Protocol):
    """``engine.api.EngineStatus``."""

    @property
    def model(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def device_label(self) -> str: ...


class EngineRestorer(Protocol):
    """The part of ``engine.api.Restorer`` the worker uses (``tests/app/fake_engine.py`` fakes it)."""

    @property
    def device(self) -> object: ...
    def device_label(self) -> str: ...
    def status(self) -> Status: ...
    def restore(
        self, request: RestoreRequest, progress: Callable[[Progress], None] | None = None, cancel: Any = None
    ) -> RestoreResult: ...
    def find_faces(self, rgb: np.ndarray, options: RestoreOptions) -> list[FaceResult]: ...
    def analyse_reference(self, path: Path, detector: str = "auto") -> ReferenceFace: ...
    def remember_reference(self, face: ReferenceFace) -> None: ...
    def detector(self, name: str) -> object: ...
    def use_detector(self, name: str, detector: Any) -> None: ...
    def gil_bound_detectors(self) -> Sequence[str]: ...
    def preview(self) -> PreviewSession: ...


class Backend(Protocol):
    """Where the worker gets its engine: a restorer per configuration, the devices, the reference check."""

    def restorer(self, config: jobs.Configure) -> EngineRestorer: ...
    def available_devices(self) -> list[tuple[str, str]]: ...
    def check_against(
        self, face_aligned: np.ndarray, references: list[ReferenceFace], *, face_size: float | None = None
    ) -> list[ReferenceCheck]: ...


class ApiBackend:
    """``engine.api``. Its restorer and reference check load torch, so they are
    imported here, in the worker thread, at first use."""

    def restorer(self, config: jobs.Configure) -> EngineRestorer:
        from engine.api import Restorer

        return Restorer(model=config.model, device=config.device, backend=config.backend)

    def available_devices(self) -> list[tuple[str, str]]:
        return available_devices()  # torch-free: asks the GPU driver itself

    def check_against(
        self, face_aligned: np.ndarray, references: list[ReferenceFace], *, face_size: float | None = None
    ) -> list[ReferenceCheck]:
        from engine.api import check_against

        return check_against(face_aligned, references, face_size=face_size)
