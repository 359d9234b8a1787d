"""The album's records, shared by the scan, the CLI, profiles and the GUI wizard; no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AlbumFace:
    """One face found in one photo of an album.

    ``face_id`` is stable across rescans and moves: ``<photo content sha256[:16]>:<index>``.
    """

    face_id: str
    photo: Path  # absolute path where the photo was last seen
    index: int  # reading order within the photo
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the upright photo's pixels
    landmarks: np.ndarray  # (5, 2) float32, upright photo's pixels
    embedding: np.ndarray  # (128,) float32 unit vector (dlib, mirror-averaged)
    sharpness: float  # variance of the Laplacian of the aligned face
    size: float  # face size in the photo, pixels
    yaw: float  # degrees, 0 = frontal
    quality: float  # 0..1, from sharpness, size and pose: how good a reference it makes


@dataclass(frozen=True)
class Person:
    """A group of faces the scan believes show one person, after the user's corrections."""

    person_id: str  # stable while the user does not merge or split it
    name: str  # "" until the user names the person
    faces: tuple[AlbumFace, ...]  # best reference first
    confirmed: bool = False  # the user named, merged or split it


@dataclass(frozen=True)
class AlbumProgress:
    done: int
    total: int
    text: str


@dataclass
class ScanReport:
    """What one scan did; ``seconds`` is its wall time."""

    folder: Path
    photos: int = 0  # images in the album now
    processed: int = 0  # photos read this time (new or changed)
    cached: int = 0  # photos unchanged since the last scan (not read)
    removed: int = 0  # photos gone since the last scan
    skipped: int = 0  # files that are not images
    unreadable: list[str] = field(default_factory=list)  # "file: reason"
    faces: int = 0
    people: int = 0
    seconds: float = 0.0
