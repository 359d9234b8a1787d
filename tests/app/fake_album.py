"""A fake album and profile engine for the wizard's tests: ``app.album_client.AlbumEngine``, torch-free.

Albums are folders of ``fake_engine.make_photo`` photos: plain squares on grey. A face is a
square; its colour is the person, so the fake "clusters" by colour. The scan goes photo by photo
(``scan_seconds`` each), keeps what it did when cancelled and skips those photos next time, as the
engine's does. Profiles are real ``ProfileStore`` profiles (in the test's private
LIKENESS_HOME); training runs ``tests/app/fake_trainer.py`` as the process the wizard starts.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.api import (
    AlbumFace,
    AlbumProgress,
    CancelledError,
    LikenessError,
    Person,
    Profile,
    ProfileFace,
    ProfileStore,
    ScanReport,
    read_image,
)

from .fake_engine import BACKGROUND

IMAGES = {".png", ".jpg", ".jpeg"}


def find_squares(rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], tuple[int, ...]]]:
    """(box, colour) of each plain square that is not background, left to right."""
    labelled: Any = ndimage.label(np.abs(rgb.astype(np.int16) - BACKGROUND).max(axis=2) > 0)
    labels = labelled[0]
    found = []
    for rows, cols in ndimage.find_objects(labels):
        colour = tuple(int(v) for v in rgb[rows.start, cols.start])
        found.append(((float(cols.start), float(rows.start), float(cols.stop), float(rows.stop)), colour))
    return sorted(found, key=lambda f: f[0][0])


@dataclass
class FakeAlbum:
    """``engine.api.open_album``'s album, in memory: faces by photo, people, rejected faces."""

    folder: Path
    faces: dict[Path, list[AlbumFace]] = field(default_factory=dict)  # photo → its faces
    groups: dict[str, list[str]] = field(default_factory=dict)  # person id → face ids
    names: dict[str, str] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    next_id: int = 1

    def all_faces(self) -> dict[str, AlbumFace]:
        return {f.face_id: f for faces in self.faces.values() for f in faces}

    def new_person(self, face_ids: list[str]) -> str:
        person_id = f"p{self.next_id}"
        self.next_id += 1
        self.groups[person_id] = face_ids
        return person_id

    def add(self, face: AlbumFace) -> None:
        """Into the group of the same colour (the fake's identity), else a new group."""
        known = self.all_faces()
        for ids in self.groups.values():
            if ids and np.allclose(known[ids[0]].embedding, face.embedding):
                ids.append(face.face_id)
                return
        self.new_person([face.face_id])

    def people(self) -> list[Person]:
        known = self.all_faces()
        out = []
        for person_id, ids in self.groups.items():
            faces = sorted((known[i] for i in ids if i in known and i not in self.rejected), key=lambda f: -f.quality)
            if faces:
                out.append(Person(person_id, self.names.get(person_id, ""), tuple(faces), person_id in self.confirmed))
        return sorted(out, key=lambda p: -len(p.faces))

    def _check(self, person_id: str) -> None:
        if person_id not in self.groups:
            raise LikenessError(f"no person {person_id!r} in this album")

    def rename(self, person_id: str, name: str) -> None:
        self._check(person_id)
        self.names[person_id] = name
        self.confirmed.add(person_id)

    def merge(self, person_ids: list[str]) -> str:
        for p in person_ids:
            self._check(p)
        kept, *others = person_ids
        for other in others:
            self.groups[kept] += self.groups.pop(other)
            if not self.names.get(kept) and self.names.get(other):
                self.names[kept] = self.names[other]
        self.confirmed.add(kept)
        return kept

    def split(self, person_id: str, face_ids: list[str]) -> str:
        self._check(person_id)
        moved = [i for i in self.groups[person_id] if i in face_ids]
        self.groups[person_id] = [i for i in self.groups[person_id] if i not in face_ids]
        new = self.new_person(moved)
        self.confirmed.update({person_id, new})
        return new

    def reject(self, face_ids: list[str]) -> None:
        self.rejected.update(face_ids)

    def face_image(self, face: AlbumFace, size: int = 512) -> np.ndarray:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        crop = read_image(face.photo).rgb[y0:y1, x0:x1]
        return np.asarray(Image.fromarray(crop).resize((size, size)))


@dataclass
class FakeAlbumEngine:
    """The wizard's ``AlbumEngine``; records what it was asked."""

    scan_seconds: float = 0.0  # per photo (for the stop and resume test)
    train_steps: int = 4
    step_seconds: float = 0.0  # per training step
    train_fails: bool = False
    albums: dict[Path, FakeAlbum] = field(default_factory=dict)
    reports: list[ScanReport] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)  # a scan began reading a photo

    def album(self, folder: Path) -> FakeAlbum:
        return self.albums.setdefault(folder.resolve(), FakeAlbum(folder.resolve()))

    def scan_album(
        self,
        folder: Path,
        *,
        progress: Callable[[AlbumProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        start = time.monotonic()
        album = self.album(folder)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        photos = [p for p in files if p.suffix.lower() in IMAGES]
        report = ScanReport(folder, photos=len(photos), skipped=len(files) - len(photos))
        for n, photo in enumerate(photos):
            if progress is not None:
                progress(AlbumProgress(n, len(photos), f"Finding faces in {photo.name}"))
            if photo in album.faces:
                report.cached += 1
                continue
            if cancel is not None and cancel.is_set():
                self.reports.append(report)
                raise CancelledError("cancelled")
            self.started.set()
            time.sleep(self.scan_seconds)
            faces = []
            for i, (box, colour) in enumerate(find_squares(read_image(photo).rgb)):
                side = box[2] - box[0]
                embedding = np.array(colour, np.float32) / np.linalg.norm(colour)
                marks = np.zeros((5, 2), np.float32)
                quality = min(1.0, side / 100)
                faces.append(AlbumFace(f"{photo.stem}:{i}", photo, i, box, marks, embedding, 100.0, side, 0.0, quality))
            album.faces[photo] = faces
            for face in faces:
                album.add(face)
            report.processed += 1
        if progress is not None:
            progress(AlbumProgress(len(photos), len(photos), "Grouping faces by person"))
        report.faces = sum(len(f) for f in album.faces.values())
        report.people = len(album.people())
        report.seconds = time.monotonic() - start
        self.reports.append(report)
        return report

    def open_album(self, folder: Path) -> FakeAlbum:
        if folder.resolve() not in self.albums:
            raise LikenessError(f"{folder}: not scanned yet")
        return self.album(folder)

    def profiles(self) -> ProfileStore:
        return ProfileStore()

    def create_profile(self, name: str, *, album_faces: list[AlbumFace]) -> Profile:
        """Faces best first; the best three chosen (the engine's rule is its own)."""
        store = self.profiles()
        best = sorted(album_faces, key=lambda f: -f.quality)[:8]
        faces = []
        for face in best:
            buffer = io.BytesIO()
            Image.fromarray(self.album(face.photo.parent).face_image(face, 64)).save(buffer, "PNG")
            record = ProfileFace("", str(face.photo), face.index, face.sharpness, face.size, face.yaw)
            faces.append((record, buffer.getvalue()))
        profile = store.create(name, faces, np.stack([f.embedding for f in best]))
        chosen = tuple(replace(f, chosen=i < 3) for i, f in enumerate(profile.faces))
        return store.save(replace(profile, faces=chosen))

    def train_command(self, name: str, *, minutes: float | None, steps: int | None) -> tuple[str, list[str]]:
        args = ["-m", "tests.app.fake_trainer", name, "--json-progress", "--steps", str(steps or self.train_steps)]
        args += ["--step-seconds", str(self.step_seconds)]
        if self.train_fails:
            args.append("--fail")
        return sys.executable, args
