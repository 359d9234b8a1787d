"""Profiles on disk, one folder each under ``<user data>/profiles``; no torch.

A profile folder holds everything derived from the person's photos, so ``delete`` removes all of
it (albums are private data)::

    profile.json          name, references (source photo, face, scores, chosen), adapter record
    faces/NN.png          each reference face aligned to the FFHQ 512 template
    embeddings.npy        each face's identity vector (dlib, mirror-averaged), rows in faces order
    adapter.safetensors   the person's LoRA adapter, once trained (``training.personalise``)
    adapter-preview.png   before/after on one of the person's own photos, degraded (the wizard shows it)
    training/             the adapter's training state while it trains (resume), then removed

``profile.json`` is written atomically and last, so a profile either exists whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LikenessError
from ..files import atomic_folder, write_bytes
from ..userdata import data_root

PROFILE_FILE = "profile.json"
FACES_DIR = "faces"
EMBEDDINGS_FILE = "embeddings.npy"
ADAPTER_FILE = "adapter.safetensors"
TRAINING_DIR = "training"
FORMAT = 1
#: References a profile chooses by default (the engine uses up to MAX_REFERENCES of them).
DEFAULT_CHOSEN = 5
_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,64}$")


class ProfileError(LikenessError):
    """A profile that does not exist, exists already, or has a bad name."""


@dataclass(frozen=True)
class ProfileFace:
    """One reference face of a profile."""

    file: str  # relative to the profile folder (faces/NN.png)
    source: str  # the photo it came from (absolute path at creation)
    face: int  # the face's index in that photo (reading order)
    sharpness: float
    size: float  # the face's size in the photo, pixels
    yaw: float
    chosen: bool = True  # used as a reference (the user may drop one without deleting it)
    held_out: bool = False  # kept out of adapter training to decide when it stops


@dataclass(frozen=True)
class AdapterRecord:
    """What a trained adapter is and how it was made."""

    file: str
    model: str  # the restoration model it adapts (name in the store)
    model_sha256: str
    rank: int
    photos: int
    steps: int
    minutes: float
    validation: dict[str, float] = field(default_factory=dict)  # held-out scores, before → after
    trained: str = ""


@dataclass(frozen=True)
class Profile:
    """A person: their reference faces and, once trained, their adapter."""

    name: str
    folder: Path
    faces: tuple[ProfileFace, ...]
    adapter: AdapterRecord | None = None
    created: str = ""

    @property
    def chosen(self) -> list[ProfileFace]:
        return [f for f in self.faces if f.chosen]

    def face_path(self, face: ProfileFace) -> Path:
        return self.folder / face.file

    def embeddings(self) -> np.ndarray:
        """(faces, D) identity vectors, rows in ``faces`` order."""
        return np.load(self.folder / EMBEDDINGS_FILE)

    @property
    def adapter_path(self) -> Path | None:
        return None if self.adapter is None else self.folder / self.adapter.file

    @property
    def training_dir(self) -> Path:
        return self.folder / TRAINING_DIR

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "created": self.created,
            "faces": [asdict(f) for f in self.faces],
            "adapter": None if self.adapter is None else asdict(self.adapter),
        }


def folder_name(name: str) -> str:
    """A file-system-safe folder name for a profile name (different names never collide: a hash)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "person"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ProfileError(f"{name!r} is not a usable profile name: 1–64 characters, no slashes or control characters")
    return name


class ProfileStore:
    """The user's profiles. ``root``: ``<user data>/profiles`` by default."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_root() / "profiles"

    def folder(self, name: str) -> Path:
        return self.root / folder_name(check_name(name))

    def __iter__(self) -> Iterator[Profile]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if (sub / PROFILE_FILE).is_file():
                try:
                    yield _read(sub)
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # a damaged profile is skipped here; `get` names it

    def names(self) -> list[str]:
        return sorted((p.name for p in self), key=str.casefold)

    def exists(self, name: str) -> bool:
        return (self.folder(name) / PROFILE_FILE).is_file()

    def get(self, name: str) -> Profile:
        folder = self.folder(name)
        if not (folder / PROFILE_FILE).is_file():
            known = ", ".join(self.names()) or "none yet"
            raise ProfileError(f"there is no profile called {name!r} (profiles: {known})")
        try:
            return _read(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProfileError(
                f"profile {name!r} is damaged ({folder / PROFILE_FILE}: {exc}); delete it and create it again"
            ) from exc

    def create(self, name: str, faces: list[tuple[ProfileFace, bytes]], embeddings: np.ndarray) -> Profile:
        """A new profile from encoded PNG faces (``ProfileFace.file`` is assigned here) and their vectors.

        The folder is built beside its final place and moved there whole.
        """
        name = check_name(name)
        if self.exists(name):
            raise ProfileError(f"a profile called {name!r} exists already; delete it first or choose another name")
        if not faces:
            raise ProfileError(f"profile {name!r} needs at least one face")
        if len(embeddings) != len(faces):
            raise ValueError("one embedding per face")
        target = self.folder(name)
        if target.exists():  # a leftover without profile.json (interrupted delete): nothing to keep
            shutil.rmtree(target)
        records = []
        with atomic_folder(target) as tmp:
            (tmp / FACES_DIR).mkdir()
            for i, (face, png) in enumerate(faces):
                record = replace(face, file=f"{FACES_DIR}/{i:02d}.png")
                write_bytes(tmp / record.file, png)
                records.append(record)
            np.save(tmp / EMBEDDINGS_FILE, np.asarray(embeddings, np.float32))
            profile = Profile(name, target, tuple(records), None, time.strftime("%Y-%m-%d %H:%M:%S"))
            _write(profile, tmp)
        return profile

    def save(self, profile: Profile) -> Profile:
        """Writes ``profile``'s record (after choosing references or recording an adapter)."""
        _write(profile, profile.folder)
        return profile

    def set_chosen(self, name: str, chosen: list[int]) -> Profile:
        """Chooses which faces (indices into ``faces``) are references."""
        profile = self.get(name)
        bad = [i for i in chosen if not 0 <= i < len(profile.faces)]
        if bad:
            raise ProfileError(f"profile {name!r} has faces 0–{len(profile.faces) - 1}; there is no face {bad[0]}")
        faces = tuple(replace(f, chosen=i in chosen) for i, f in enumerate(profile.faces))
        return self.save(replace(profile, faces=faces))

    def delete(self, name: str) -> Path:
        """Removes the profile and every file derived from the person's photos."""
        folder = self.folder(name)
        if not folder.exists():
            raise ProfileError(f"there is no profile called {name!r}")
        # profile.json first: an interrupted delete leaves no half profile that lists or loads
        (folder / PROFILE_FILE).unlink(missing_ok=True)
        shutil.rmtree(folder)
        return folder


def _write(profile: Profile, folder: Path) -> None:
    write_bytes(folder / PROFILE_FILE, json.dumps(profile.to_json(), indent=1).encode())


def _read(folder: Path) -> Profile:
    data = json.loads((folder / PROFILE_FILE).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
    faces = tuple(ProfileFace(**f) for f in data["faces"])
    adapter = AdapterRecord(**data["adapter"]) if data.get("adapter") else None
    return Profile(data["name"], folder, faces, adapter, data.get("created", ""))
