"""``Restorer``: the engine as one object a worker thread owns (``engine.api`` exports it).

It holds the loaded networks (``runtime.Networks``) and the analysed references, and runs each
request through the stages of ``engine.pipeline``. ``FacePreview`` serves a GUI's live preview:
faces found once per photo and encoded once per face, so that a slider move is a decode.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LikenessError
from .faces.detect import FaceDetector
from .imageio import read_image
from .models import ModelStore
from .pipeline import PhotoRestoration, find_faces, finish_face
from .profiles.match import LoadedProfile
from .profiles.store import PROFILE_FILE, Profile, ProfileStore
from .profiles.use import AUTO, ProfileSet, load_profile
from .references import GuidanceSettings, ReferenceFace, ReferenceSet, analyse_reference
from .runtime.face_restorer import FaceNetwork
from .runtime.networks import Networks
from .types import FaceResult, ProgressCallback, RestoreOptions, RestoreRequest, RestoreResult


@dataclass(frozen=True)
class EngineStatus:
    """What a status bar shows: the restoration model and the device it runs on."""

    model: str
    device: str
    device_label: str


class Restorer:
    """Restores photos with networks loaded at first use. Not thread-safe: one per worker thread.

    Args:
        model: restoration model name from the store, or "auto" (bundled default, then the
            official CodeFormer when installed).
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        store: where models are looked up (the user's store by default).
        backend: "torch", "onnx" (ONNX Runtime, CPU only) or "auto" (ONNX Runtime on the CPU,
            where it is about 40 % faster, torch on GPUs).
        fidelity: the fidelity path's model (``engine.runtime.two_path``) beside the generative
            one: "auto" = the bundled ``likeness-fidelity`` when installed; None = the
            generative network alone (w is then CodeFormer's own CFT weight).
    """

    def __init__(
        self,
        model: str = "auto",
        device: str = "auto",
        store: ModelStore | None = None,
        backend: str = "auto",
        fidelity: str | None = "auto",
        profile_store: ProfileStore | None = None,
    ) -> None:
        self.networks = Networks(model, device, store or ModelStore(), backend, fidelity)
        self._references: dict[tuple[str, int], ReferenceFace] = {}
        self._profiles: dict[Path, tuple[int, LoadedProfile]] = {}
        self.profile_store = profile_store or ProfileStore()
        self._preview: FacePreview | None = None

    # -- what is loaded ----------------------------------------------------------------------------
    @property
    def store(self) -> ModelStore:
        return self.networks.store

    @property
    def backend(self) -> str:
        return self.networks.backend

    @property
    def device(self):
        """The torch device in use (it becomes the CPU after a GPU ran out of memory)."""
        return self.networks.device

    @property
    def model_name(self) -> str:
        """The restoration model in use; ModelMissingError (with the fix) when none is installed."""
        return self.networks.model_name

    @property
    def fidelity_model(self) -> str | None:
        return self.networks.fidelity_model

    @property
    def face_restorer(self):
        return self.networks.face_restorer

    @property
    def torch_restorer(self):
        return self.networks.torch_restorer

    def device_label(self) -> str:
        return self.networks.describe_device()

    def status(self) -> EngineStatus:
        """The model and device; LikenessError (with the fix) when no restoration model is installed."""
        return EngineStatus(self.model_name, str(self.device), self.device_label())

    def detector(self, name: str) -> FaceDetector:
        return self.networks.detector(name)

    def use_detector(self, name: str, detector: FaceDetector) -> None:
        """Serve detector ``name`` with ``detector`` (any object with ``detect(rgb, min_face=)``).

        The GUI runs dlib's CNN detector in a helper process through this: dlib holds the GIL for
        the whole detection (seconds), which would freeze the window's thread meanwhile.
        """
        self.networks.use_detector(name, detector)

    def gil_bound_detectors(self) -> tuple[str, ...]:
        """Detector names that hold the GIL for a whole detection here (run them in a helper process)."""
        return self.networks.gil_bound_detectors()

    def upscaler(self, name: str):
        return self.networks.upscaler(name)

    # -- photos ------------------------------------------------------------------------------------
    def restore(
        self, request: RestoreRequest, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> RestoreResult:
        """Restores one photo; writes ``request.output`` atomically when given.

        Raises LikenessError subclasses with one-line messages (bad file, no model, cancelled).
        """
        opts = request.options
        run = PhotoRestoration(self.networks, request, progress=progress, cancel=cancel)

        def prepare(warnings: list[str]) -> ReferenceSet:
            settings = GuidanceSettings(opts.num_references, opts.identity_guidance, opts.guidance_steps)
            return ReferenceSet.prepare(
                opts.references, lambda p: self.analyse_reference(p, opts.detector), warnings, settings
            )

        def profiles(warnings: list[str]) -> ProfileSet:
            settings = GuidanceSettings(opts.num_references, opts.identity_guidance, opts.guidance_steps)
            return ProfileSet.prepare(opts.profile or AUTO, settings, self.loaded_profile, self.profile_store)

        return run.run(prepare if opts.references else None, profiles if opts.profile else None)

    def find_faces(
        self, rgb: np.ndarray, options: RestoreOptions, timings: dict[str, float] | None = None
    ) -> list[FaceResult]:
        """Detected faces in reading order, each with its 512² alignment (no restoration)."""
        return find_faces(rgb, self.detector(options.detector), options.min_face, timings)

    def restore_faces(self, crops: list[np.ndarray], w: float, color_fix: bool = True) -> list[np.ndarray]:
        """Restores aligned faces (uint8 RGB), falling back to the CPU on GPU out-of-memory."""
        restored = self.networks.restore(crops, w)
        return [finish_face(r, a, color_fix) for r, a in zip(restored, crops, strict=True)]

    def mix_with_fidelity_path(
        self, faces: list[np.ndarray], generative: list[np.ndarray], w: float
    ) -> list[np.ndarray]:
        return self.networks.mix_with_fidelity_path(faces, generative, w)

    def encode_face(self, aligned: np.ndarray) -> object:
        """Encoder pass for one aligned face, kept by callers so a fidelity change is decode-only."""
        return self.networks.encode(aligned)

    def decode_face(self, encoded: object, aligned: np.ndarray, w: float, color_fix: bool = True) -> np.ndarray:
        """The restored face at fidelity ``w`` from ``encode_face``'s result (the GUI's live preview)."""
        return finish_face(self.networks.decode(encoded, w), aligned, color_fix)

    def preview(self) -> FacePreview:
        """This restorer's preview session (one per restorer, so its caches are shared)."""
        if self._preview is None:
            self._preview = FacePreview(self)
        return self._preview

    # -- references --------------------------------------------------------------------------------
    def analyse_reference(self, path: Path | str, detector: str = "auto") -> ReferenceFace:
        """A reference photo's aligned face and identity (cached per file and modification time)."""
        key = _file_key(path)
        if key not in self._references:
            self._references[key] = analyse_reference(Path(path), detector=detector)
        return self._references[key]

    def remember_reference(self, face: ReferenceFace) -> None:
        """Adds a reference analysed elsewhere (the GUI analyses them in a helper process, since
        dlib's CNN detector holds the GIL) to the cache that ``analyse_reference`` reads."""
        self._references[_file_key(face.path)] = face

    # -- profiles ----------------------------------------------------------------------------------
    def profile_network(self, face: FaceResult, options: RestoreOptions) -> tuple[FaceNetwork | None, str | None]:
        """For the live preview: the adapter-folded network of the profile ``face`` shows, and its
        name ((None, name) for a profile without an adapter; (None, None) for nobody's face)."""
        if not options.profile:
            return None, None
        settings = GuidanceSettings(options.num_references, options.identity_guidance, options.guidance_steps)
        profiles = ProfileSet.prepare(options.profile, settings, self.loaded_profile, self.profile_store)
        if not profiles:
            return None, None
        found = profiles.match(face.index, face.aligned, face.detection.size)
        if found is None:
            return None, None
        adapter = found.profile.adapter_path
        if adapter is None:
            return None, found.name
        try:
            return self.networks.personalised(adapter, found.name), found.name
        except LikenessError:
            return None, found.name

    def loaded_profile(self, profile: Profile) -> LoadedProfile:
        """``profile`` with its references analysed, cached until its record changes."""
        stamp = (profile.folder / PROFILE_FILE).stat().st_mtime_ns
        cached = self._profiles.get(profile.folder)
        if cached is None or cached[0] != stamp:
            self._profiles[profile.folder] = (stamp, load_profile(profile))
        return self._profiles[profile.folder][1]


def _file_key(path: Path | str) -> tuple[str, int]:
    path = Path(path)
    return str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0


class FacePreview:
    """Faces of the photos on screen, found once per photo and encoded once per face.

    Photos are named by the caller's ids. The last ``photos`` photos' faces and the last
    ``encodings`` faces' encoder outputs are kept, so a slider move costs one decode.
    """

    def __init__(self, restorer: Restorer, photos: int = 4, encodings: int = 16) -> None:
        self.restorer = restorer
        self.max_photos, self.max_encodings = photos, encodings
        self._faces: OrderedDict[int, list[FaceResult]] = OrderedDict()
        # (photo, face, profile option) → (the face's adapter network or None, its encoding)
        self._encoded: OrderedDict[tuple[int, int, str | None], tuple[FaceNetwork | None, object]] = OrderedDict()
        self._device = restorer.device

    def faces(self, photo_id: int, path: Path, options: RestoreOptions) -> list[FaceResult]:
        """The photo's faces with their alignments (found now unless remembered)."""
        if photo_id in self._faces:
            self._faces.move_to_end(photo_id)
            return self._faces[photo_id]
        faces = self.restorer.find_faces(read_image(path).rgb, options)
        self.remember(photo_id, faces)
        return faces

    def remember(self, photo_id: int, faces: list[FaceResult]) -> None:
        """Keeps a photo's faces (found by a scan or a restoration); its old encodings are dropped,
        since the faces may be numbered anew."""
        self._drop_encodings(photo_id)
        self._faces[photo_id] = faces
        self._faces.move_to_end(photo_id)
        while len(self._faces) > self.max_photos:
            old, _ = self._faces.popitem(last=False)
            self._drop_encodings(old)

    def forget(self, photo_id: int | None = None) -> None:
        """Drops one photo's faces and encodings, or everything (None)."""
        if photo_id is None:
            self._faces.clear()
            self._encoded.clear()
            return
        self._faces.pop(photo_id, None)
        self._drop_encodings(photo_id)

    def render(
        self, photo_id: int, path: Path, face_index: int, w: float, options: RestoreOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        """(aligned input face, restored face at ``w``) for one face of a photo."""
        if self.restorer.device != self._device:  # fell back to the CPU: encodings live on the old device
            self._encoded.clear()
            self._device = self.restorer.device
        faces = self.faces(photo_id, path, options)
        if not 0 <= face_index < len(faces):
            raise LikenessError(f"{path.name}: face {face_index + 1} is not in this photo any more")
        face = faces[face_index]
        aligned = face.aligned
        key = (photo_id, face_index, options.profile)
        cached = self._encoded.get(key)
        if cached is None:
            network, face.profile = self.restorer.profile_network(face, options)
            cached = (network, network.encode([aligned]) if network else self.restorer.encode_face(aligned))
            self._encoded[key] = cached
            while len(self._encoded) > self.max_encodings:
                self._encoded.popitem(last=False)
        self._encoded.move_to_end(key)
        network, encoded = cached
        if network is None:
            return aligned, self.restorer.decode_face(encoded, aligned, w, options.color_fix)
        return aligned, finish_face(network.decode(encoded, w)[0], aligned, options.color_fix)

    def _drop_encodings(self, photo_id: int) -> None:
        for key in [k for k in self._encoded if k[0] == photo_id]:
            del self._encoded[key]
