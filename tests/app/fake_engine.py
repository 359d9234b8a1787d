"""A fake engine for GUI tests: the worker's ``Backend`` and ``Restorer`` surface, torch-free.

Like krita-ai-diffusion's ``tests/mock/client.py``: the window, the session, the client's queue
and the worker thread run for real, only the engine behind them is replaced. Photos come from
``make_photo``: a grey background with light, plain squares for faces. The fake detector finds
those squares (connected light pixels, left to right); "restoring" a face brightens its aligned
crop by an amount that depends on w and paints it over the upscaled photo, so results, previews
and excluded faces can be told apart by their pixels. Reading and writing files is the real
``engine.api.read_image`` / ``write_image`` (no torch), so EXIF, ICC and bad files behave as in
the app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.api import (
    CancelledError,
    DetectedFace,
    FaceResult,
    LikenessError,
    ModelMissingError,
    NoFaceFoundError,
    Progress,
    RestoreOptions,
    RestoreRequest,
    RestoreResult,
    read_image,
    write_image,
)

ALIGNED = 64  # side of the fake aligned faces (the real template is 512)
BACKGROUND = (90, 90, 90)
FACE = (250, 250, 250)
OTHER_FACE = (250, 215, 215)  # someone else: a reference check tells them apart
NO_MODEL = "No face restoration model is installed. Open Tools → Models… to download or import one."


def make_photo(
    path: Path,
    size: tuple[int, int] = (240, 120),
    faces: Sequence[tuple[int, int, int]] = (),
    colour: tuple[int, int, int] = FACE,
    **save,
) -> Path:
    """A photo of ``size`` (w, h) with a square face of side s at each (x, y, s) of ``faces``."""
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = BACKGROUND
    for x, y, s in faces:
        rgb[y : y + s, x : x + s] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **save)
    return path


def two_faces(path: Path, **save) -> Path:
    return make_photo(path, (240, 120), [(20, 30, 60), (140, 30, 60)], **save)


def one_face(path: Path, colour: tuple[int, int, int] = FACE, **save) -> Path:
    return make_photo(path, (120, 120), [(30, 30, 60)], colour, **save)


def restore_face(aligned: np.ndarray, w: float) -> np.ndarray:
    """The fake network: lighter and flatter at low w, the input itself at w = 1."""
    lift = (1.0 - w) * 0.6
    return np.clip(aligned * (1 - lift) + 255 * lift, 0, 255).astype(np.uint8)


def tint(rgb: np.ndarray) -> np.ndarray:
    """What the fake's references do to a face they guide: less red, so it can be told apart."""
    out = rgb.copy()
    out[..., 0] = (out[..., 0] * 0.6).astype(np.uint8)
    return out


def _resize(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = np.arange(h) * rgb.shape[0] // h
    xs = np.arange(w) * rgb.shape[1] // w
    return rgb[ys][:, xs]


@dataclass(frozen=True)
class FakeStatus:
    model: str
    device: str
    device_label: str


@dataclass(frozen=True, eq=False)
class FakeReference:
    """``engine.api.ReferenceFace``'s fields that the app reads."""

    path: Path
    aligned: np.ndarray
    detection: DetectedFace


@dataclass(frozen=True)
class FakeCheck:
    """``engine.api.ReferenceCheck``."""

    similarity: float
    threshold: float
    verdict: str

    @property
    def matches(self) -> bool:
        return self.verdict == "match"

    @property
    def text(self) -> str:
        if self.verdict == "unsure":
            return "cannot be confirmed: the face is too damaged to tell who it is"
        return "same person" if self.matches else "may be a different person"


class FakeDetector:
    """Light squares on the photo, left to right; counts its detections in ``backend.detections``."""

    def __init__(self, name: str, backend: FakeBackend | None = None) -> None:
        self.name = name
        self.backend = backend

    def detect(self, rgb: np.ndarray, *, min_face: float = 32) -> list[DetectedFace]:
        if self.backend is not None:
            self.backend.detections += 1
        labels, _ = ndimage.label(rgb.min(axis=2) > 200)
        found = []
        for rows, cols in ndimage.find_objects(labels):
            x0, y0, x1, y1 = float(cols.start), float(rows.start), float(cols.stop), float(rows.stop)
            if min(x1 - x0, y1 - y0) < min_face:
                continue
            cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4
            marks = np.array([[cx - s, cy - s], [cx + s, cy - s], [cx, cy], [cx - s, cy + s], [cx + s, cy + s]])
            found.append(DetectedFace((x0, y0, x1, y1), 0.99, marks.astype(np.float32)))
        return sorted(found, key=lambda f: f.box[0])


class FakePreview:
    """``engine.api.FacePreview``: faces found once per photo, each face encoded once."""

    def __init__(self, restorer: FakeRestorer) -> None:
        self.restorer = restorer
        self._faces: dict[int, list[FaceResult]] = {}
        self._encoded: dict[tuple[int, int], np.ndarray] = {}

    def faces(self, photo_id: int, path: Path, options: RestoreOptions) -> list[FaceResult]:
        if photo_id not in self._faces:
            self.remember(photo_id, self.restorer.find_faces(read_image(path).rgb, options))
        return self._faces[photo_id]

    def remember(self, photo_id: int, faces: list[FaceResult]) -> None:
        self.forget(photo_id)
        self._faces[photo_id] = faces

    def forget(self, photo_id: int | None = None) -> None:
        if photo_id is None:
            self._faces.clear()
            self._encoded.clear()
            return
        self._faces.pop(photo_id, None)
        for key in [k for k in self._encoded if k[0] == photo_id]:
            del self._encoded[key]

    def render(
        self, photo_id: int, path: Path, face_index: int, w: float, options: RestoreOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        faces = self.faces(photo_id, path, options)
        if not 0 <= face_index < len(faces):
            raise LikenessError(f"{path.name}: face {face_index + 1} is not in this photo any more")
        aligned = faces[face_index].aligned
        if (photo_id, face_index) not in self._encoded:
            self.restorer.backend.encodes += 1
            self._encoded[(photo_id, face_index)] = aligned
        return aligned, restore_face(self._encoded[(photo_id, face_index)], w)


class FakeRestorer:
    """``engine.api.Restorer`` as the worker uses it."""

    def __init__(self, backend: FakeBackend, model: str, device: str) -> None:
        self.backend = backend
        self.device = "cpu" if device == "auto" else device
        self._model = backend.model if model == "auto" else model
        self._detectors: dict[str, object] = {}
        self._references: dict[Path, FakeReference] = {}
        self._preview = FakePreview(self)

    @property
    def model_name(self) -> str:
        if self._model is None:
            raise ModelMissingError(NO_MODEL)
        return self._model

    def device_label(self) -> str:
        return dict(self.backend.devices).get(self.device, self.device)

    def status(self) -> FakeStatus:
        return FakeStatus(self.model_name, self.device, self.device_label())

    def detector(self, name: str) -> object:
        if name not in self._detectors:
            self._detectors[name] = FakeDetector(name, self.backend)
        return self._detectors[name]

    def use_detector(self, name: str, detector: object) -> None:
        self._detectors[name] = detector

    def gil_bound_detectors(self) -> tuple[str, ...]:
        return self.backend.gil_bound

    def preview(self) -> FakePreview:
        return self._preview

    def find_faces(self, rgb: np.ndarray, options: RestoreOptions) -> list[FaceResult]:
        if self.backend.bug is not None:
            raise self.backend.bug
        detector = self.detector(options.detector)
        faces = []
        for i, d in enumerate(detector.detect(rgb, min_face=options.min_face)):
            x0, y0, x1, y1 = (int(v) for v in d.box)
            scale = ALIGNED / (x1 - x0)
            affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
            faces.append(FaceResult(i, d, affine, _resize(rgb[y0:y1, x0:x1], ALIGNED, ALIGNED)))
        return faces

    def restore(
        self,
        request: RestoreRequest,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RestoreResult:
        report = progress or (lambda p: None)
        self.backend.requests.append(request)
        opts = request.options
        report(Progress("read", 0.0, "Reading"))
        photo = read_image(request.input)
        faces = self.find_faces(photo.rgb, opts)
        up = opts.upscale
        image = np.repeat(np.repeat(photo.rgb, up, axis=0), up, axis=1)
        chosen = set(range(len(faces)) if opts.faces is None else opts.faces)
        guided = self._guided(request, faces, chosen)
        model = self.model_name
        for face in faces:
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            report(Progress("restore", 0.1 + 0.8 * face.index / len(faces), f"Restoring face {face.index + 1}"))
            time.sleep(self.backend.face_seconds)
            if face.index not in chosen:
                continue
            face.restored = restore_face(face.aligned, opts.fidelity)
            if face.index in guided:  # the references pull the face towards them: a blue tint here
                face.restored = tint(face.restored)
            x0, y0, x1, y1 = (int(v) * up for v in face.box)
            image[y0:y1, x0:x1] = _resize(face.restored, y1 - y0, x1 - x0)
        if self.backend.out_of_memory:  # what the engine does on a GPU out-of-memory error
            self.device = "cpu"
        if request.output is not None:
            write_image(request.output, image, like=photo, quality=opts.jpeg_quality)
        warnings = list(self.backend.warnings) + self._reference_warnings(request, faces, guided)
        return RestoreResult(request.input, request.output, image, faces, model, self.device_label(), {}, warnings)

    def _guided(self, request: RestoreRequest, faces: list[FaceResult], chosen: set[int]) -> set[int]:
        """The engine's rule: references go only to the chosen faces they match."""
        if not request.options.references:
            return set()
        refs = [self.analyse_reference(p, request.options.detector) for p in request.options.references]
        check = self.backend.check_against
        return {f.index for f in faces if f.index in chosen and any(c.matches for c in check(f.aligned, refs))}

    def _reference_warnings(self, request: RestoreRequest, faces: list[FaceResult], guided: set[int]) -> list[str]:
        """One line per face guided by references, and one when they match none."""
        if not request.options.references:
            return []
        used = [f for f in faces if f.index in guided]
        warnings = [f"face {f.index}: clear enough to be restored from the photo itself" for f in used]
        if not used:
            name = request.input.name
            warnings.append(
                f"{name}: the references show someone other than the faces in this photo; they were not used"
            )
        return warnings

    def analyse_reference(self, path: Path, detector: str = "auto") -> FakeReference:
        if path not in self._references:
            time.sleep(self.backend.analyse_seconds)
            faces = self.find_faces(read_image(path).rgb, RestoreOptions(detector=detector))
            if not faces:
                raise NoFaceFoundError(f"{path}: no face found; a reference must show the person's face")
            face = max(faces, key=lambda f: f.detection.size)
            self._references[path] = FakeReference(path, face.aligned, face.detection)
        return self._references[path]

    def remember_reference(self, face: FakeReference) -> None:
        self._references[face.path] = face


@dataclass
class FakeBackend:
    """The worker's ``Backend``: makes ``FakeRestorer``s and records what they were asked."""

    model: str | None = "fake"  # None: no restoration model installed
    devices: tuple[tuple[str, str], ...] = (("cpu", "CPU (fake)"),)
    bad_devices: tuple[str, ...] = ()  # devices whose restorer cannot be made
    face_seconds: float = 0.0  # time per face of a restoration (for cancel tests)
    analyse_seconds: float = 0.0  # time per reference analysis (for progress tests)
    warnings: tuple[str, ...] = ()
    out_of_memory: bool = False
    gil_bound: tuple[str, ...] = ()
    bug: Exception | None = None  # raised by find_faces: a bug in the engine
    restorers: list[FakeRestorer] = field(default_factory=list)
    encodes: int = 0
    detections: int = 0  # calls of a face detector's detect
    requests: list[RestoreRequest] = field(default_factory=list)  # every restore, in order

    def restorer(self, config) -> FakeRestorer:
        if config.device in self.bad_devices:
            raise LikenessError(f"device {config.device!r} is not available here")
        restorer = FakeRestorer(self, config.model, config.device)
        self.restorers.append(restorer)
        return restorer

    def available_devices(self) -> list[tuple[str, str]]:
        return list(self.devices)

    def check_against(
        self, face_aligned: np.ndarray, references: list, *, face_size: float | None = None
    ) -> list[FakeCheck]:
        """Similarity from the faces' mean colours: the same colour is the same person."""
        if face_size is not None and face_size < 24:
            return [FakeCheck(0.5, 0.6, "unsure") for _ in references]
        checks = []
        for ref in references:
            distance = np.abs(face_aligned.mean(axis=(0, 1)) - ref.aligned.mean(axis=(0, 1))).mean()
            similarity = float(max(0.0, 1.0 - distance / 20))
            checks.append(FakeCheck(similarity, 0.6, "match" if similarity >= 0.6 else "mismatch"))
        return checks
