"""The engine's public boundary: the CLI, the GUI and training use this module and nothing else.

Requests go in as plain records (``RestoreRequest`` with ``RestoreOptions``); ``Progress`` and a
``RestoreResult`` come out. A ``Restorer`` owns the networks and runs the stages of a photo
(``engine.pipeline``: read → find faces → restore → colour → paste → write).

Importing this module loads no torch: a GUI imports it on its window's thread. The names that
need torch (``Restorer``, ``FacePreview``, the reference checks) load their modules at first
use, which a GUI does in its worker thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .album.types import AlbumFace, AlbumProgress, Person, ScanReport
from .devices import available_devices
from .errors import (
    CancelledError,
    InvalidImageError,
    LikenessError,
    ModelMissingError,
    NoFaceFoundError,
    OutOfMemoryError,
    OutputError,
)
from .faces.detect import DetectedFace, make_detector
from .imageio import Photo, read_image, write_image
from .models import ModelRecord, ModelStore
from .profiles.store import AdapterRecord, Profile, ProfileError, ProfileFace, ProfileStore
from .selftest import run_self_test
from .types import (
    DEFAULT_BACKGROUND,
    MAX_REFERENCES,
    FaceResult,
    Progress,
    ProgressCallback,
    RestoreOptions,
    RestoreRequest,
    RestoreResult,
)

if TYPE_CHECKING:
    from .album.index import Album, open_album
    from .album.scan import scan_album
    from .pipeline import finish_face
    from .profiles.build import create_profile
    from .references import ReferenceCheck, ReferenceFace, analyse_reference, check_against
    from .restorer import EngineStatus, FacePreview, Restorer

#: name → module of the names that load torch, imported on first access (PEP 562).
_LOADED_ON_USE = {
    "Restorer": "engine.restorer",
    "FacePreview": "engine.restorer",
    "EngineStatus": "engine.restorer",
    "ReferenceFace": "engine.references",
    "ReferenceCheck": "engine.references",
    "analyse_reference": "engine.references",
    "check_against": "engine.references",
    "finish_face": "engine.pipeline",
    "create_profile": "engine.profiles.build",
    "scan_album": "engine.album.scan",
    "open_album": "engine.album.index",
    "Album": "engine.album.index",
}


def __getattr__(name: str) -> Any:
    module = _LOADED_ON_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AdapterRecord",
    "Album",
    "AlbumFace",
    "AlbumProgress",
    "Person",
    "Profile",
    "ProfileError",
    "ProfileFace",
    "ProfileStore",
    "ScanReport",
    "DEFAULT_BACKGROUND",
    "MAX_REFERENCES",
    "CancelledError",
    "DetectedFace",
    "EngineStatus",
    "FacePreview",
    "FaceResult",
    "InvalidImageError",
    "LikenessError",
    "ModelMissingError",
    "ModelRecord",
    "ModelStore",
    "NoFaceFoundError",
    "OutOfMemoryError",
    "OutputError",
    "Photo",
    "Progress",
    "ProgressCallback",
    "ReferenceCheck",
    "ReferenceFace",
    "RestoreOptions",
    "RestoreRequest",
    "RestoreResult",
    "Restorer",
    "analyse_reference",
    "available_devices",
    "check_against",
    "open_album",
    "scan_album",
    "create_profile",
    "finish_face",
    "make_detector",
    "read_image",
    "run_self_test",
    "write_image",
]
