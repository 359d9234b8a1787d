"""An album's cache: every photo's faces by content, the people, and the user's corrections.

One SQLite file per album, ``data_root()/albums/<sha256 of the folder's absolute path>[:16]/``
(never beside the photos: they are private). WAL mode, one transaction per photo, so a scan
killed at any point keeps every photo it finished and the next one carries on.

Tables:

* ``files``: path (relative to the album) → size, mtime_ns and content sha256. An unchanged
  (size, mtime_ns) is trusted without reading the file: that is what makes a rescan fast.
* ``photos``: content sha256 → faces found (or why it could not be read). A photo moved or
  renamed has the same content, so it is never processed twice.
* ``faces``: ``<sha256[:16]>:<index>`` → box, landmarks, embedding and the scores.
* ``people``, ``members``: who is who. ``members.pinned`` marks faces of a person the user
  confirmed (named, merged or split): the scan never moves them. Corrections outlive the faces:
  the rows of a photo that left the album stay, so it comes back with them.
* ``rejected``: faces the user removed; they are never grouped into anyone again.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LikenessError
from ..faces.align import FFHQ_SIZE, estimate_affine, warp_face
from ..imageio import read_image
from ..userdata import data_root
from .types import AlbumFace, Person

DB_NAME = "album.sqlite"
SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_sha ON files (sha);
CREATE TABLE IF NOT EXISTS photos (sha TEXT PRIMARY KEY, faces INTEGER NOT NULL, error TEXT);
CREATE TABLE IF NOT EXISTS faces (
    face_id TEXT PRIMARY KEY, sha TEXT NOT NULL, idx INTEGER NOT NULL,
    x0 REAL, y0 REAL, x1 REAL, y1 REAL, landmarks BLOB NOT NULL, embedding BLOB NOT NULL,
    sharpness REAL, size REAL, yaw REAL, quality REAL);
CREATE INDEX IF NOT EXISTS faces_sha ON faces (sha);
CREATE TABLE IF NOT EXISTS people (
    person_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', confirmed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS members (
    face_id TEXT PRIMARY KEY, person_id TEXT NOT NULL, pinned INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS members_person ON members (person_id);
CREATE TABLE IF NOT EXISTS rejected (face_id TEXT PRIMARY KEY, person_id TEXT);
"""


@dataclass(frozen=True)
class FileState:
    """What the cache knows of one file of the album."""

    size: int
    mtime_ns: int
    sha: str


def album_key(folder: Path) -> str:
    """The cache folder's name for an album: its absolute path, hashed."""
    return hashlib.sha256(str(folder).encode("utf-8")).hexdigest()[:16]


def cache_folder(folder: str | Path, root: str | Path | None = None) -> Path:
    """Where the album at ``folder`` is cached (``root`` defaults to the user data folder)."""
    base = Path(root) if root is not None else data_root()
    return base / "albums" / album_key(Path(folder).expanduser().resolve())


class Album:
    """One album's cache, open. Use ``Album.open``; ``scan_album`` fills it."""

    def __init__(self, folder: Path, cache: Path, connection: sqlite3.Connection) -> None:
        self.folder = folder
        self.cache = cache
        self._db = connection

    @classmethod
    def open(cls, folder: str | Path, root: str | Path | None = None, *, create: bool = False) -> Album:
        """The album of ``folder``. LikenessError when it was never scanned (unless ``create``)."""
        path = Path(folder).expanduser().resolve()
        cache = cache_folder(path, root)
        if not (cache / DB_NAME).is_file():
            if not create:
                raise LikenessError(f"{path}: this album has not been scanned; run `likeness album scan {folder}`")
            cache.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(cache / DB_NAME, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # in WAL: safe against a killed process
        db.executescript(SCHEMA)
        with _transaction(db):
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (str(path),))
        return cls(path, cache, db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Album:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------

    def faces(self) -> list[AlbumFace]:
        """Every face in the photos now in the album (rejected ones too), by photo then index."""
        return sorted(self._faces().values(), key=lambda f: (str(f.photo), f.index))

    def people(self) -> list[Person]:
        """The people, most faces first; each person's faces best reference first (``quality``)."""
        faces = self._faces()
        rows = self._db.execute("SELECT person_id, name, confirmed FROM people").fetchall()
        members: dict[str, list[AlbumFace]] = {}
        for face_id, person_id in self._db.execute("SELECT face_id, person_id FROM members"):
            if face_id in faces:
                members.setdefault(person_id, []).append(faces[face_id])
        people = []
        for person_id, name, confirmed in rows:
            mine = sorted(members.get(person_id, []), key=lambda f: (-f.quality, f.face_id))
            if mine:
                people.append(Person(person_id, name, tuple(mine), bool(confirmed)))
        return sorted(people, key=lambda p: (-len(p.faces), p.person_id))

    def person(self, person_id: str) -> Person:
        for person in self.people():
            if person.person_id == person_id:
                return person
        raise LikenessError(f"{self.folder}: no person {person_id!r} in this album (see `likeness album people`)")

    def rejected(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT face_id FROM rejected")}

    def face_image(self, face: AlbumFace, size: int = FFHQ_SIZE) -> np.ndarray:
        """The face aligned to the FFHQ template at ``size``², re-read from its photo (uint8 RGB)."""
        rgb = read_image(face.photo).rgb
        return warp_face(rgb, estimate_affine(face.landmarks, size), size)

    # -- the user's corrections ---------------------------------------------------------------

    def rename(self, person_id: str, name: str) -> None:
        self.person(person_id)
        with _transaction(self._db):
            self._db.execute("UPDATE people SET name = ?, confirmed = 1 WHERE person_id = ?", (name.strip(), person_id))
            self._db.execute("UPDATE members SET pinned = 1 WHERE person_id = ?", (person_id,))

    def merge(self, person_ids: Sequence[str]) -> str:
        """One person of all of them; keeps the first one's id and the first name given."""
        people = [self.person(p) for p in dict.fromkeys(person_ids)]
        if not people:
            raise LikenessError("merge needs at least one person")
        keep = people[0]
        name = next((p.name for p in people if p.name), "")
        with _transaction(self._db):
            for other in people[1:]:
                self._db.execute(
                    "UPDATE members SET person_id = ? WHERE person_id = ?", (keep.person_id, other.person_id)
                )
                self._db.execute("DELETE FROM people WHERE person_id = ?", (other.person_id,))
            self._db.execute("UPDATE people SET name = ?, confirmed = 1 WHERE person_id = ?", (name, keep.person_id))
            self._db.execute("UPDATE members SET pinned = 1 WHERE person_id = ?", (keep.person_id,))
        return keep.person_id

    def split(self, person_id: str, face_ids: Sequence[str]) -> str:
        """Moves ``face_ids`` out of the person into a new one; returns the new person's id."""
        person = self.person(person_id)
        mine = {f.face_id for f in person.faces}
        moved = list(dict.fromkeys(face_ids))
        strangers = [f for f in moved if f not in mine]
        if strangers:
            raise LikenessError(f"{', '.join(strangers)}: not faces of person {person_id}")
        if not moved or len(moved) == len(mine):
            raise LikenessError(f"split {person_id}: name some but not all of its faces")
        new_id = self._new_person_id(moved)
        with _transaction(self._db):
            self._db.execute("INSERT INTO people VALUES (?, '', 1)", (new_id,))
            self._db.execute("UPDATE people SET confirmed = 1 WHERE person_id = ?", (person_id,))
            self._db.execute("UPDATE members SET pinned = 1 WHERE person_id = ?", (person_id,))
            self._db.executemany("UPDATE members SET person_id = ? WHERE face_id = ?", [(new_id, f) for f in moved])
        return new_id

    def reject(self, face_ids: Iterable[str]) -> None:
        """Removes faces from their people for good: no rescan puts them back into anyone."""
        known = self._faces()
        ids = list(dict.fromkeys(face_ids))
        unknown = [f for f in ids if f not in known]
        if unknown:
            raise LikenessError(f"{', '.join(unknown)}: no such face in {self.folder}")
        with _transaction(self._db):
            for face_id in ids:
                row = self._db.execute("SELECT person_id FROM members WHERE face_id = ?", (face_id,)).fetchone()
                self._db.execute("INSERT OR REPLACE INTO rejected VALUES (?, ?)", (face_id, row[0] if row else None))
                self._db.execute("DELETE FROM members WHERE face_id = ?", (face_id,))

    def forget(self) -> None:
        """Deletes this album's cache (faces, people, corrections); the photos are not touched."""
        self.close()
        shutil.rmtree(self.cache, ignore_errors=True)

    # -- what the scan uses -------------------------------------------------------------------

    def files(self) -> dict[str, FileState]:
        rows = self._db.execute("SELECT path, size, mtime_ns, sha FROM files")
        return {path: FileState(size, mtime, sha) for path, size, mtime, sha in rows}

    def known_photos(self) -> dict[str, str | None]:
        """Content sha256 → None, or why the photo could not be read."""
        return dict(self._db.execute("SELECT sha, error FROM photos").fetchall())

    def record_files(self, files: dict[str, FileState]) -> None:
        with _transaction(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                [(path, s.size, s.mtime_ns, s.sha) for path, s in files.items()],
            )

    def record_photo(
        self, sha: str, files: dict[str, FileState], faces: Sequence[AlbumFace], error: str | None = None
    ) -> None:
        """One processed photo and the files holding it, in one transaction."""
        with _transaction(self._db):
            self._db.execute("DELETE FROM faces WHERE sha = ?", (sha,))
            self._db.execute("INSERT OR REPLACE INTO photos VALUES (?, ?, ?)", (sha, len(faces), error))
            self._db.executemany(
                "INSERT INTO faces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f.face_id,
                        sha,
                        f.index,
                        *map(float, f.box),
                        np.asarray(f.landmarks, np.float32).tobytes(),
                        np.asarray(f.embedding, np.float32).tobytes(),
                        f.sharpness,
                        f.size,
                        f.yaw,
                        f.quality,
                    )
                    for f in faces
                ],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                [(path, s.size, s.mtime_ns, s.sha) for path, s in files.items()],
            )

    def remove_files(self, paths: Iterable[str]) -> int:
        """Forgets files no longer in the album, then photos no file holds; returns photos removed.

        Unpinned memberships of the removed faces go; corrections (pinned, rejected) stay.
        """
        with _transaction(self._db):
            self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
            orphans = [
                row[0] for row in self._db.execute("SELECT sha FROM photos WHERE sha NOT IN (SELECT sha FROM files)")
            ]
            for sha in orphans:
                self._db.execute(
                    "DELETE FROM members WHERE pinned = 0 AND face_id IN (SELECT face_id FROM faces WHERE sha = ?)",
                    (sha,),
                )
                self._db.execute("DELETE FROM faces WHERE sha = ?", (sha,))
                self._db.execute("DELETE FROM photos WHERE sha = ?", (sha,))
            self._drop_empty_people()
        return len(orphans)

    def grouping(self) -> tuple[list[AlbumFace], list[list[int]]]:
        """(faces to group, the rows of each confirmed person's faces); rejected faces left out."""
        rejected = self.rejected()
        faces = [f for f in self.faces() if f.face_id not in rejected]
        row = {f.face_id: i for i, f in enumerate(faces)}
        fixed: dict[str, list[int]] = {}
        for face_id, person_id in self._db.execute("SELECT face_id, person_id FROM members WHERE pinned = 1"):
            if face_id in row:
                fixed.setdefault(person_id, []).append(row[face_id])
        return faces, [fixed[p] for p in sorted(fixed)]

    def needs_grouping(self) -> bool:
        """Whether a face is in no person and not rejected (a scan stopped before grouping)."""
        row = self._db.execute(
            "SELECT 1 FROM faces WHERE face_id NOT IN (SELECT face_id FROM members) "
            "AND face_id NOT IN (SELECT face_id FROM rejected) LIMIT 1"
        ).fetchone()
        return row is not None

    def write_groups(self, groups: Sequence[Sequence[str]]) -> None:
        """Stores a new grouping (lists of face ids), keeping person ids where the groups overlap."""
        members = {
            f: (p, bool(pin)) for f, p, pin in self._db.execute("SELECT face_id, person_id, pinned FROM members")
        }
        confirmed = {row[0] for row in self._db.execute("SELECT person_id FROM people WHERE confirmed = 1")}
        ids: list[str | None] = [None] * len(groups)
        taken: set[str] = set()
        for k, group in enumerate(groups):  # a confirmed person keeps its id (and its pinned faces)
            owners = {members[f][0] for f in group if f in members and members[f][1]}
            if owners:
                ids[k] = min(owners)
                taken |= owners
        overlaps = []  # (faces shared, group, old unconfirmed person)
        for k, group in enumerate(groups):
            if ids[k] is None:
                counts: dict[str, int] = {}
                for f in group:
                    old = members.get(f, (None, False))[0]
                    if old is not None and old not in confirmed:
                        counts[old] = counts.get(old, 0) + 1
                overlaps += [(n, k, old) for old, n in counts.items()]
        for _, k, old in sorted(overlaps, key=lambda t: (-t[0], t[1], t[2])):
            if ids[k] is None and old not in taken:
                ids[k] = old
                taken.add(old)
        with _transaction(self._db):
            self._db.execute("DELETE FROM members WHERE pinned = 0")
            for k, group in enumerate(groups):
                person_id = ids[k] or self._new_person_id(group, taken)
                taken.add(person_id)
                self._db.execute("INSERT OR IGNORE INTO people (person_id) VALUES (?)", (person_id,))
                self._db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?, 0)", [(f, person_id) for f in group])
            self._drop_empty_people()

    # -- inside -------------------------------------------------------------------------------

    def _faces(self) -> dict[str, AlbumFace]:
        paths: dict[str, str] = {}
        for path, sha in self._db.execute("SELECT path, sha FROM files ORDER BY path DESC"):
            paths[sha] = path  # the first path holding the content, when copies are in the album
        out = {}
        for row in self._db.execute("SELECT * FROM faces"):
            face_id, sha, idx, x0, y0, x1, y1, landmarks, embedding, sharpness, size, yaw, quality = row
            if sha not in paths:
                continue
            out[face_id] = AlbumFace(
                face_id=face_id,
                photo=self.folder / paths[sha],
                index=idx,
                box=(x0, y0, x1, y1),
                landmarks=np.frombuffer(landmarks, np.float32).reshape(5, 2),
                embedding=np.frombuffer(embedding, np.float32),
                sharpness=sharpness,
                size=size,
                yaw=yaw,
                quality=quality,
            )
        return out

    def _new_person_id(self, face_ids: Sequence[str], taken: set[str] | None = None) -> str:
        """A new id from the group's first face (so a rebuilt cache names people the same)."""
        used = {row[0] for row in self._db.execute("SELECT person_id FROM members UNION SELECT person_id FROM people")}
        used |= taken or set()
        seed = min(face_ids)
        for n in range(1000):
            candidate = "p" + hashlib.sha1(f"{seed}/{n}".encode()).hexdigest()[:8]
            if candidate not in used:
                return candidate
        raise LikenessError("could not find a free person id")  # 1000 collisions: never in practice

    def _drop_empty_people(self) -> None:
        self._db.execute("DELETE FROM people WHERE confirmed = 0 AND person_id NOT IN (SELECT person_id FROM members)")


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on an exception) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")


def open_album(folder: str | Path, root: str | Path | None = None) -> Album:
    """A scanned album's people and faces (LikenessError naming the folder when it was never scanned)."""
    return Album.open(folder, root)
