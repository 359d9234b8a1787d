"""Scan an album: find, align, embed and score every face, cache it by content, group people.

A rescan trusts a file whose (size, mtime_ns) is unchanged without reading it; any other file is
hashed, and content already in the cache (a moved, renamed or touched photo) is not processed
again. Each processed photo is committed on its own, so a cancelled or killed scan resumes where
it stopped. People are regrouped only when faces came or went.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from threading import Event

import numpy as np

from ..errors import CancelledError, LikenessError
from ..faces.detect import FaceDetector, make_detector
from ..faces.find import find_faces
from ..identity import make_embedder
from ..imageio import read_image
from ..references.analyse import estimate_yaw, face_sharpness, verification_embeddings
from .cluster import cluster_faces
from .index import Album, FileState
from .types import AlbumFace, AlbumProgress, ScanReport

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
#: Faces smaller than this (box side, photo pixels) carry too little identity to group.
MIN_FACE = 40
#: Faces are embedded from crops of this size (dlib's network sees 150 px chips).
ALIGN_SIZE = 256
DEFAULT_DETECTOR = "hog"

Progress = Callable[[AlbumProgress], None]


def scan_album(
    folder: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Event | None = None,
    detector: str = DEFAULT_DETECTOR,
    root: str | Path | None = None,
) -> ScanReport:
    """Scan ``folder`` (recursively) into its album cache and group the faces into people.

    ``root``: the data folder holding album caches (default: the user's). Raises CancelledError
    when ``cancel`` is set, after committing every finished photo; a later scan carries on.
    """
    started = time.perf_counter()
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise LikenessError(f"{folder}: not a folder")
    report = ScanReport(folder)
    tell = progress or (lambda _p: None)
    tell(AlbumProgress(0, 0, f"listing {folder}"))
    images, report.skipped = list_images(folder)
    report.photos = len(images)
    with Album.open(folder, root, create=True) as album:
        known = album.files()
        photos = album.known_photos()
        current: dict[str, FileState] = {}
        unknown: list[tuple[str, os.stat_result]] = []
        for rel, st in images.items():
            state = known.get(rel)
            if state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns):
                current[rel] = state
            else:
                unknown.append((rel, st))
        for n, (rel, st) in enumerate(unknown):
            tell(AlbumProgress(n, len(unknown), f"checking {rel}"))
            try:
                current[rel] = FileState(st.st_size, st.st_mtime_ns, content_hash(folder / rel))
            except OSError as err:  # gone since the listing, or not ours to read
                report.unreadable.append(f"{rel}: {err.strerror or err}")
        cached = {rel: s for rel, s in current.items() if s.sha in photos}
        album.record_files({rel: s for rel, s in cached.items() if known.get(rel) != s})
        gone = [rel for rel in known if rel not in images]
        report.removed = album.remove_files(gone)
        todo: dict[str, dict[str, FileState]] = {}
        for rel, state in sorted(current.items()):
            if state.sha not in photos:
                todo.setdefault(state.sha, {})[rel] = state
        report.cached = len(current) - sum(len(files) for files in todo.values())
        if todo:
            _process(album, folder, todo, make_detector(detector), report, tell, cancel)
            report.removed += album.remove_files([])  # the old content of photos that changed
        if report.processed or report.removed or album.needs_grouping():
            tell(AlbumProgress(0, 1, "grouping faces into people"))
            faces, fixed = album.grouping()
            groups = cluster_faces(np.stack([f.embedding for f in faces]), fixed=fixed) if faces else []
            album.write_groups([[faces[i].face_id for i in group] for group in groups])
        errors = album.known_photos()
        report.unreadable += [f"{rel}: {errors[s.sha]}" for rel, s in current.items() if errors.get(s.sha)]
        report.unreadable.sort()
        report.faces = len(album.faces())
        report.people = len(album.people())
    report.seconds = time.perf_counter() - started
    tell(AlbumProgress(1, 1, "done"))
    return report


def _process(
    album: Album,
    folder: Path,
    todo: dict[str, dict[str, FileState]],
    detector: FaceDetector,
    report: ScanReport,
    tell: Progress,
    cancel: Event | None,
) -> None:
    embedder = make_embedder()
    for n, (sha, files) in enumerate(todo.items()):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"album scan cancelled after {n} of {len(todo)} new photos; scan again to carry on")
        rel = min(files)
        tell(AlbumProgress(n, len(todo), rel))
        try:
            faces = photo_faces(folder / rel, sha, detector, embedder)
        except LikenessError as err:
            album.record_photo(sha, files, [], error=_reason(err, folder / rel))
        else:
            album.record_photo(sha, files, faces)
        report.processed += len(files)
    tell(AlbumProgress(len(todo), len(todo), "every new photo read"))


def photo_faces(path: Path, sha: str, detector: FaceDetector, embedder) -> list[AlbumFace]:
    """Every face of at least MIN_FACE px in the photo, embedded and scored."""
    found = find_faces(read_image(path).rgb, detector, min_face=MIN_FACE, size=ALIGN_SIZE)
    if not found:
        return []
    embeddings = verification_embeddings([f.crop for f in found], embedder)
    faces = []
    for index, (face, embedding) in enumerate(zip(found, embeddings, strict=True)):
        sharpness = face_sharpness(face.crop)
        yaw = estimate_yaw(face.detection.landmarks)
        size = face.detection.size
        faces.append(
            AlbumFace(
                face_id=f"{sha[:16]}:{index}",
                photo=path,
                index=index,
                box=tuple(float(v) for v in face.detection.box),  # type: ignore[arg-type]
                landmarks=np.asarray(face.detection.landmarks, np.float32),
                embedding=np.asarray(embedding, np.float32),
                sharpness=round(sharpness, 2),
                size=round(float(size), 1),
                yaw=round(yaw, 1),
                quality=face_quality(sharpness, size, yaw),
            )
        )
    return faces


def face_quality(sharpness: float, size: float, yaw: float) -> float:
    """0..1: how good a reference the face makes, from its size, sharpness and pose.

    Each part rises from 0 to 1 over the range that matters: size 40 → 200 px (a face under
    ~40 px has little identity left), sharpness 2 → 100 (variance of the Laplacian of the face
    enlarged to 512², log scale; sharp portraits in the faces set read 20-60), yaw 45° → 0°
    (profiles are poor references).
    """
    by_size = min(max((size - 40.0) / 160.0, 0.0), 1.0)
    by_sharpness = min(max(math.log(max(sharpness, 1e-6) / 2.0) / math.log(50.0), 0.0), 1.0)
    by_pose = min(max(1.0 - abs(yaw) / 45.0, 0.0), 1.0)
    return round(0.4 * by_size + 0.4 * by_sharpness + 0.2 * by_pose, 4)


def list_images(folder: Path) -> tuple[dict[str, os.stat_result], int]:
    """(image path relative to ``folder`` → its stat, number of other files), recursively.

    Folder links are not followed (an album linking to itself would never end); file links are.
    Hidden files, dangling links and names that are not valid UTF-8 count as other files.
    """
    images: dict[str, os.stat_result] = {}
    others = 0
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(top) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES or name.startswith(".") or not _utf8(path):
                others += 1
                continue
            try:
                st = path.stat()
            except OSError:  # a dangling link
                others += 1
                continue
            images[path.relative_to(folder).as_posix()] = st
    return images, others


def _utf8(path: Path) -> bool:
    """Whether the name can be stored (a name of undecodable bytes is left out, as a non-image)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(err: LikenessError, path: Path) -> str:
    """The error's message without the path it starts with (the report names the file itself)."""
    text = str(err)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
