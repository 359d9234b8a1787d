"""Making a profile: each photo's (or album face's) face aligned, embedded and ranked as a reference.

From photos, each photo's main (largest) face is the person; from an album, the faces the user
confirmed as that person. Faces are ranked like references (consistent identity first, then
sharpness and pose, ``references.rank``) and the best ``DEFAULT_CHOSEN`` are chosen; the user
may choose others later. A photo given twice, a face-less or unreadable photo, and a face
that does not match the others become warnings, never a failed profile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ..album.types import AlbumFace
from ..errors import LikenessError
from ..faces.detect import DetectedFace
from ..faces.find import align_detection
from ..identity import make_embedder
from ..imageio import read_image
from ..references.analyse import ReferenceFace, analyse_reference, reference_from_aligned
from ..references.check import check_consistency
from ..references.rank import rank_references
from .store import DEFAULT_CHOSEN, Profile, ProfileError, ProfileFace, ProfileStore

#: A profile needs at least this many usable faces.
MIN_FACES = 1


def create_profile(
    name: str,
    *,
    photos: Sequence[Path] | None = None,
    album_faces: Sequence[AlbumFace] | None = None,
    store: ProfileStore | None = None,
    detector: str = "auto",
    warnings: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Profile:
    """A new profile called ``name`` from ``photos`` (each one's main face) or ``album_faces``."""
    store = store or ProfileStore()
    warnings = warnings if warnings is not None else []
    if store.exists(name):
        raise ProfileError(f"a profile called {name!r} exists already; delete it first or choose another name")
    embedder = make_embedder()
    sources = list(photos or []) + list(album_faces or [])
    faces: list[ReferenceFace] = []
    indices: list[int] = []
    seen: set[str] = set()
    for n, source in enumerate(sources):
        if progress is not None:
            progress(n, len(sources))
        path = Path(source.photo if isinstance(source, AlbumFace) else source)
        try:
            key = f"{_content_key(path)}:{source.index if isinstance(source, AlbumFace) else 'main'}"
            if key in seen:
                warnings.append(f"{path.name}: given twice; used once")
                continue
            seen.add(key)
            if isinstance(source, AlbumFace):
                faces.append(_album_reference(source, embedder))
                indices.append(source.index)
            else:
                faces.append(analyse_reference(path, embedder=embedder, detector=detector))
                indices.append(0)
        except (LikenessError, OSError) as exc:
            warnings.append(f"skipped {exc}" if isinstance(exc, LikenessError) else f"skipped {path}: {exc}")
    if progress is not None:
        progress(len(sources), len(sources))
    if len(faces) < MIN_FACES:
        reasons = "; ".join(w.removeprefix("skipped ") for w in warnings[:3])
        raise ProfileError(f"profile {name!r}: none of the {len(sources)} photos showed a usable face ({reasons})")
    if len(faces) >= 3:  # a majority tells who the person is
        checks = check_consistency(faces, embedder=embedder)
        for face, check in zip(faces, checks, strict=True):
            if not check.matches:
                warnings.append(f"{face.path.name}: may show someone else ({check.text}); kept but not chosen")
    else:
        checks = None
    ranked = rank_references(faces, 0.0, len(faces))
    order = [faces.index(r) for r in ranked]
    chosen = set(order[:DEFAULT_CHOSEN])
    if checks is not None:
        chosen = {i for i in chosen if checks[i].matches} or chosen
    records = []
    for i in order:
        face = faces[i]
        record = ProfileFace(
            file="",
            source=str(face.path.resolve()) if face.path.name else "",
            face=indices[i],
            sharpness=round(face.sharpness, 2),
            size=round(face.detection.size, 1),
            yaw=round(face.yaw, 1),
            chosen=i in chosen,
        )
        records.append((record, _png(face.aligned)))
    embeddings = np.stack([faces[i].verification for i in order])
    return store.create(name, records, embeddings)


def profile_references(profile: Profile, *, chosen_only: bool = True, embedder=None) -> list[ReferenceFace]:
    """The profile's faces as references (best first), with their recorded pose."""
    embedder = embedder or make_embedder()
    references = []
    for face in profile.chosen if chosen_only else profile.faces:
        bgr = cv2.imread(str(profile.face_path(face)), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ProfileError(f"profile {profile.name!r} is damaged: {profile.face_path(face)} cannot be read")
        ref = reference_from_aligned(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), embedder=embedder, path=face.source)
        references.append(_with_pose(ref, face))
    return references


def _with_pose(ref: ReferenceFace, face: ProfileFace) -> ReferenceFace:
    return replace(ref, yaw=face.yaw, sharpness=face.sharpness)


def _album_reference(face: AlbumFace, embedder) -> ReferenceFace:
    rgb = read_image(face.photo).rgb
    detection = DetectedFace(face.box, 1.0, np.asarray(face.landmarks, np.float32))
    aligned = align_detection(rgb, detection)
    ref = reference_from_aligned(aligned.crop, embedder=embedder, path=face.photo)
    return replace(ref, detection=detection, yaw=face.yaw)


def _content_key(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise LikenessError("could not encode a face as PNG")
    return data.tobytes()
