"""The engine's public API: plain requests in, results and progress out.

The CLI and the GUI use nothing else. A :class:`Restorer` owns the loaded networks (restoration
model, face detector, background upscaler) and runs one photo at a time:

read → detect → align (FFHQ 512) → encode → decode at w → colour fix → upscale background →
paste back → write (atomic; originals are never touched).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import CancelledError, LikenessError, ModelMissingError, OutOfMemoryError
from .faces.detect import DetectedFace
from .models import ModelStore

log = logging.getLogger(__name__)

#: Restoration models tried, in order, when the request says ``model="auto"``.
DEFAULT_MODELS = ("likeness-lite", "codeformer")
#: The fidelity path used beside any generative model when installed (it ships with Likeness).
FIDELITY_MODEL = "likeness-fidelity"
BACKENDS = ("auto", "torch", "onnx")
MAX_REFERENCES = 5


@dataclass(frozen=True)
class RestoreOptions:
    """How to restore; one record shared by CLI flags, GUI controls and saved settings.

    Attributes:
        fidelity: w in [0, 1]: 0 = cleaner, more generated; 1 = closer to the original.
        upscale: output size relative to the input (1, 2, 4...).
        faces: indices (reading order, left to right) of the faces to restore; None = all.
        only_center_face: restore only the face nearest the photo's centre.
        aligned: the input is already a face aligned to the FFHQ template (any square size).
        min_face: faces smaller than this (box side, input pixels) are left alone.
        color_fix: match the restored face's colours to the input's (avoids colour shift).
        background: "bicubic" or the name of an installed upscaler model.
        detector: "auto", "cnn", "hog" or "retinaface".
        jpeg_quality: quality of JPEG outputs.
        references: photos of the same person; each face is restored toward their identity.
        num_references: how many of the references to use per face (the best-ranked 1..5).
        identity_guidance: strength of test-time identity guidance toward the references;
            None = 1.0 when references are given; 0 = off, together with the reference prior
            for badly damaged faces (a reference-trained model still uses them by eq. 6).
        guidance_steps: gradient steps of that guidance (each ≈ one decoder pass and back);
            0 leaves the reference prior alone. Two by default: with one reference they raise
            identity by +0.12 at ``severe`` (one step +0.09) for ≈ 4× an unguided restoration
            of the few faces they go to (docs/references.md).
    """

    fidelity: float = 0.5
    upscale: int = 2
    faces: tuple[int, ...] | None = None
    only_center_face: bool = False
    aligned: bool = False
    min_face: int = 32
    color_fix: bool = True
    background: str = "bicubic"
    detector: str = "auto"
    jpeg_quality: int = 95
    references: tuple[Path, ...] = ()
    num_references: int = 5
    identity_guidance: float | None = None
    guidance_steps: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.num_references <= MAX_REFERENCES:
            raise LikenessError(f"number of references must be between 1 and {MAX_REFERENCES}, got {self.num_references}")
        if self.identity_guidance is not None and self.identity_guidance < 0:
            raise LikenessError(f"identity guidance strength must be ≥ 0, got {self.identity_guidance}")
        if not 0 <= self.guidance_steps <= 20:
            raise LikenessError(f"guidance steps must be between 0 and 20, got {self.guidance_steps}")
        if not 0.0 <= self.fidelity <= 1.0:
            raise LikenessError(f"fidelity w must be between 0 and 1, got {self.fidelity}")
        if not 1 <= self.upscale <= 8:
            raise LikenessError(f"upscale must be between 1 and 8, got {self.upscale}")


@dataclass(frozen=True)
class RestoreRequest:
    """One photo to restore. ``output`` None = return the result without writing a file."""

    input: Path
    output: Path | None = None
    options: RestoreOptions = field(default_factory=RestoreOptions)


@dataclass(frozen=True)
class Progress:
    """A progress message: ``stage`` (read, detect, restore, paste, write), 0..1, text."""

    stage: str
    fraction: float
    text: str = ""


@dataclass
class FaceResult:
    """One detected face. ``restored`` is None for faces the user did not select."""

    index: int
    detection: DetectedFace  # box, score and 5 landmarks in input pixels
    affine: np.ndarray  # (2,3): input image → aligned 512 face
    aligned: np.ndarray  # the aligned input face, uint8 RGB 512²
    restored: np.ndarray | None = None  # restored face after colour fix, uint8 RGB, 512² or larger
    # The crop ``restored`` was made from when larger than ``aligned`` (a face with more detail
    # than the template): it is pasted as a change on the photo, which keeps that detail.
    restored_from: np.ndarray | None = None

    @property
    def restored_affine(self) -> np.ndarray:
        """input image → ``restored`` (larger than 512 for a face with more detail than the template)."""
        from .faces.align import enlarge_affine

        side = 512 if self.restored is None else self.restored.shape[0]
        return self.affine if side == 512 else enlarge_affine(self.affine, side / 512)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.detection.box

    @property
    def selected(self) -> bool:
        return self.restored is not None


@dataclass
class RestoreResult:
    """The restored photo and what happened on the way."""

    input: Path
    output: Path | None
    image: np.ndarray  # uint8 RGB, upscaled
    faces: list[FaceResult]
    model: str
    device: str
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]


class Restorer:
    """Loads networks lazily and restores photos. Not thread-safe: use one per worker thread.

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
        self, model: str = "auto", device: str = "auto", store: ModelStore | None = None, backend: str = "auto",
        fidelity: str | None = "auto",
    ) -> None:
        from .runtime.device import resolve_device

        if backend not in BACKENDS:
            raise LikenessError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.store = store or ModelStore()
        self._requested_model = model
        self._model_name: str | None = None
        self.device = resolve_device(device)
        self._face_restorer = None
        self._detectors: dict[str, object] = {}
        self._upscalers: dict[str, object] = {}
        self._parser = None
        self._references: dict[tuple[str, int], object] = {}
        self._torch_restorer = None
        self._requested_fidelity = fidelity

    # -- models ---------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """The restoration model in use; ModelMissingError (with the fix) when none is installed.

        Resolved at first use so that face detection works without any restoration model.
        """
        if self._model_name is None:
            self._model_name = self._resolve_model(self._requested_model)
        return self._model_name

    def _resolve_model(self, name: str) -> str:
        if name != "auto":
            record = self.store.get(name)
            if record.kind != "restoration":
                raise LikenessError(f"model {name!r} is a {record.kind} model, not a face restoration model")
            self.store.path(name)  # ModelMissingError with the install command when absent
            return name
        for candidate in DEFAULT_MODELS:
            if self.store.is_installed(candidate):
                return candidate
        imported = [r.id for r in self.store.records() if r.kind == "restoration" and r.imported]
        if imported:
            return imported[0]
        raise ModelMissingError(
            "No face restoration model is installed. The bundled likeness-lite model is missing "
            "from this installation; install the official CodeFormer (non-commercial licence) with "
            "`likeness models install codeformer`, or import a checkpoint with "
            "`likeness models import FILE`"
        )

    @property
    def face_restorer(self):
        """The restoration network on the device, loaded at first use."""
        if self._face_restorer is None:
            from .nets.codeformer import load_codeformer
            from .runtime.face_restorer import FaceRestorer

            path = self.store.path(self.model_name)
            use_onnx = self.backend == "onnx" or (self.backend == "auto" and self.device.type == "cpu")
            if use_onnx and self.device.type != "cpu":
                raise LikenessError("the onnx backend runs on the CPU only; use --backend torch for the GPU")
            if use_onnx:
                try:
                    self._face_restorer = self._onnx_restorer(path)
                except Exception as exc:  # export or runtime problem: torch always works
                    if self.backend == "onnx":
                        raise LikenessError(f"{path}: ONNX Runtime could not run this model ({exc})") from exc
                    log.warning("ONNX Runtime unavailable for %s (%s); using torch", self.model_name, exc)
            if self._face_restorer is None:
                log.info("loading %s from %s on %s", self.model_name, path, self.device)
                self._face_restorer = FaceRestorer(load_codeformer(path), self.device, self.model_name)
            self._face_restorer = self._add_fidelity_path(self._face_restorer)
        return self._face_restorer

    @property
    def fidelity_model(self) -> str | None:
        """The fidelity path's model name, or None when faces go through the generative network alone."""
        name = self._requested_fidelity
        if name == "auto":
            return FIDELITY_MODEL if self.store.is_installed(FIDELITY_MODEL) else None
        return name

    def _add_fidelity_path(self, generative):
        """``generative`` and the fidelity path behind one restorer (engine.runtime.two_path)."""
        name = self.fidelity_model
        if name is None:
            return generative
        from .nets.fidelity import load_fidelity
        from .runtime.two_path import FidelityPath, TwoPathRestorer

        record = self.store.get(name)
        if record.kind != "fidelity":
            raise LikenessError(f"model {name!r} is a {record.kind} model, not a fidelity path")
        path = self.store.path(name)
        model = load_fidelity(path)
        onnx = None
        if generative.backend == "onnx":  # ONNX Runtime on the CPU for both paths
            from .runtime.two_path import export_correction

            try:
                onnx = export_correction(model, path, self.store.root.parent / "cache" / "onnx")
            except Exception as exc:  # export or runtime problem: torch always works
                log.warning("ONNX Runtime unavailable for %s (%s); using torch", name, exc)
        try:
            return TwoPathRestorer(generative, FidelityPath(model, self.device, onnx))
        except Exception as exc:
            if onnx is None:
                raise
            log.warning("ONNX Runtime could not load %s (%s); using torch", name, exc)
            return TwoPathRestorer(generative, FidelityPath(model, self.device))

    def _onnx_restorer(self, path: Path):
        from .nets.codeformer import load_codeformer
        from .runtime.onnx_restorer import OnnxFaceRestorer, export_cached

        cache = self.store.root.parent / "cache" / "onnx"
        encoder, decoder, size, names = export_cached(lambda: load_codeformer(path), path, cache)
        return OnnxFaceRestorer(encoder, decoder, size, names, self.model_name)

    def device_label(self) -> str:
        from .runtime.device import describe_device

        return describe_device(self.device)

    def detector(self, name: str):
        if name not in self._detectors:
            from .faces.detect import make_detector

            weights = None
            if name in ("retinaface", "auto") and self.store.is_installed("retinaface-resnet50"):
                weights = self.store.path("retinaface-resnet50")
            self._detectors[name] = make_detector(name, retinaface_weights=weights, device=str(self.device))
        return self._detectors[name]

    def use_detector(self, name: str, detector) -> None:
        """Serve detector ``name`` with ``detector`` (any object with ``detect(rgb, min_face=)``).

        The GUI runs dlib's CNN detector in a helper process through this: dlib holds the GIL for
        the whole detection (seconds), which would freeze the window's thread meanwhile.
        """
        self._detectors[name] = detector

    def upscaler(self, name: str):
        if name not in self._upscalers:
            from .background import BicubicUpscaler, SpandrelUpscaler

            if name == "bicubic":
                self._upscalers[name] = BicubicUpscaler()
            else:
                record = self.store.get(name)
                if record.kind != "upscaler":
                    raise LikenessError(f"model {name!r} is a {record.kind} model, not a background upscaler")
                self._upscalers[name] = SpandrelUpscaler(self.store.path(name), device=str(self.device))
        return self._upscalers[name]

    # -- faces ----------------------------------------------------------------------------
    def find_faces(
        self, rgb: np.ndarray, options: RestoreOptions, timings: dict[str, float] | None = None
    ) -> list[FaceResult]:
        """Detected faces in reading order, each with its 512² alignment (no restoration)."""
        from .faces.align import estimate_affine, warp_face
        from .runtime.face_restorer import ALIGNED_SIZE

        start = time.perf_counter()
        detected = self.detector(options.detector).detect(rgb, min_face=options.min_face)
        aligned_at = time.perf_counter()
        faces = []
        for i, face in enumerate(detected):
            affine = estimate_affine(face.landmarks, ALIGNED_SIZE)
            faces.append(FaceResult(i, face, affine, warp_face(rgb, affine, ALIGNED_SIZE)))
        if timings is not None:
            timings["detect"] = timings.get("detect", 0.0) + aligned_at - start
            timings["align"] = timings.get("align", 0.0) + time.perf_counter() - aligned_at
        return faces

    def restore_faces(self, aligned: list[np.ndarray], w: float, color_fix: bool = True) -> list[np.ndarray]:
        """Restores aligned 512² faces (uint8 RGB), falling back to the CPU on GPU out-of-memory."""
        try:
            restored = self.face_restorer.restore(aligned, w)
        except OutOfMemoryError:
            if self.device.type == "cpu":
                raise
            log.warning("out of GPU memory: continuing on the CPU")
            import torch

            self.device = torch.device("cpu")
            self._face_restorer = self.face_restorer.moved_to(self.device)
            restored = self._face_restorer.restore(aligned, w)
        return [finish_face(r, a, color_fix) for r, a in zip(restored, aligned)]

    # -- references -------------------------------------------------------------------------
    def analyse_reference(self, path: Path | str, detector: str = "auto"):
        """A reference photo's aligned face and identity (cached per file and modification time)."""
        from .references import analyse_reference

        key = self._reference_key(path)
        if key not in self._references:
            self._references[key] = analyse_reference(Path(path), detector=detector)
        return self._references[key]

    def remember_reference(self, face) -> None:
        """Adds a reference analysed elsewhere (the GUI analyses them in a helper process, since
        dlib's CNN detector holds the GIL) to the cache that ``analyse_reference`` reads."""
        self._references[self._reference_key(face.path)] = face

    @staticmethod
    def _reference_key(path: Path | str) -> tuple[str, int]:
        path = Path(path)
        return str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0

    def prepare_references(self, paths: Sequence[Path | str], warnings: list[str], detector: str = "auto") -> list:
        """Analysed references; unreadable or face-less files and odd ones out become warnings."""
        from .references import check_consistency

        refs = []
        for path in paths:
            try:
                refs.append(self.analyse_reference(path, detector))
            except LikenessError as exc:
                warnings.append(f"reference skipped: {exc}")
        if len(refs) >= 3:  # with three or more, a majority tells who the person is
            checks = check_consistency(refs)
            for ref, check in zip(refs, checks):
                if not check.matches:
                    warnings.append(f"reference {ref.path.name} not used: it does not match the other references ({check.text})")
            refs = [r for r, c in zip(refs, checks) if c.matches] or refs
        elif len(refs) == 2 and not check_consistency(refs)[0].matches:
            warnings.append(f"references {refs[0].path.name} and {refs[1].path.name} may show different people")
        return refs

    def detail_crop(self, rgb: np.ndarray, face: "FaceResult") -> np.ndarray:
        """``face.aligned``, or for a face larger in the photo than the 512 template, its aligned
        crop at a size that holds all its detail (``two_path.detail_side``): the fidelity path
        keeps that detail, where a 512 crop would have dropped it before any network ran."""
        from .faces.align import affine_scale, enlarge_affine, warp_face
        from .runtime.face_restorer import ALIGNED_SIZE
        from .runtime.two_path import detail_side

        side = detail_side(affine_scale(face.affine)) if self.fidelity_model is not None else ALIGNED_SIZE
        if side == face.aligned.shape[0]:
            return face.aligned
        return warp_face(rgb, enlarge_affine(face.affine, side / ALIGNED_SIZE), side)

    def restore_with_references(self, face: "FaceResult", references: list, opts: RestoreOptions,
                                warnings: list[str], detail: np.ndarray | None = None) -> np.ndarray:
        """One face restored toward the best-ranked references' identity (torch back end).

        ``detail``: the face's crop at its detail size (``detail_crop``); the result has its size.
        """
        from .guidance import IdentityGuidance, ReferencePrior
        from .identity import make_embedder
        from .references import UNSURE, check_against, estimate_yaw, rank_references, steered_by_references
        from .runtime.face_restorer import restore_with_references

        detail = face.aligned if detail is None else detail

        chosen = rank_references(references, estimate_yaw(face.detection.landmarks), opts.num_references)
        checks = check_against(face.aligned, chosen, face_size=face.detection.size)
        for ref, check in zip(chosen, checks):
            if check.mismatch:
                warnings.append(f"face {face.index}: reference {ref.path.name} {check.text}; a wrong reference "
                                "pulls the face toward another person")
        unsure = bool(chosen) and all(c.verdict == UNSURE for c in checks)
        if unsure:
            warnings.append(f"face {face.index}: too damaged to confirm that the references show this person; "
                            "make sure they do, a wrong reference pulls the face toward another person")
        strength = 1.0 if opts.identity_guidance is None else opts.identity_guidance
        restorer = self.torch_restorer
        embedder = make_embedder(device=restorer.device)
        # A network with a reference adapter reads the references itself, for every face.
        steered = steered_by_references(face.aligned, embedder, face.detection.size)
        if restorer.net.reference is None and (strength <= 0 or not steered):
            if strength > 0:
                warnings.append(f"face {face.index}: clear enough to be restored from the photo itself; the "
                                "references were checked, and guide only faces too damaged to show who they are")
            return self.restore_faces([detail], opts.fidelity, opts.color_fix)[0]
        guidance = IdentityGuidance(strength=strength, steps=opts.guidance_steps) if strength > 0 else None
        prior = ReferencePrior() if strength > 0 else None  # guidance strength 0: the references are only checked
        restored, _ = restore_with_references(restorer, [face.aligned], opts.fidelity, [r.aligned for r in chosen],
                                              embedder, guidance, np.stack([r.embedding for r in chosen]), prior,
                                              face_sizes=[face.detection.size])
        combined = self.mix_with_fidelity_path([detail], restored, opts.fidelity)
        return finish_face(combined[0], detail, opts.color_fix)

    def mix_with_fidelity_path(self, faces: list[np.ndarray], generative: list[np.ndarray], w: float) -> list[np.ndarray]:
        """Generative faces made elsewhere (a reference-guided decode) mixed with the fidelity path
        at ``w``, region by region, as every plain restoration is; unchanged without the path."""
        from .runtime.two_path import TwoPathRestorer

        restorer = self.face_restorer
        if not isinstance(restorer, TwoPathRestorer):
            return generative
        return restorer.finish(restorer.prepare(faces, None, generative), generative, w)

    @property
    def torch_restorer(self):
        """The network in torch (reference guidance needs gradients; ONNX graphs have none)."""
        from .runtime.face_restorer import FaceRestorer

        current = getattr(self.face_restorer, "generative", self.face_restorer)
        if isinstance(current, FaceRestorer):
            return current
        if self._torch_restorer is None:
            from .nets.codeformer import load_codeformer

            self._torch_restorer = FaceRestorer(load_codeformer(self.store.path(self.model_name)), self.device, self.model_name)
        return self._torch_restorer

    def encode_face(self, aligned: np.ndarray):
        """Encoder pass for one aligned face, kept by callers so a fidelity change is decode-only."""
        return self.face_restorer.encode([aligned])

    def decode_face(self, encoded, aligned: np.ndarray, w: float, color_fix: bool = True) -> np.ndarray:
        """The restored face at fidelity ``w`` from ``encode_face``'s result (the GUI's live preview)."""
        return finish_face(self.face_restorer.decode(encoded, w)[0], aligned, color_fix)

    def face_masks(self, restored: list[np.ndarray]) -> list[np.ndarray] | None:
        """Paste-back masks from the face parser when it is installed, else None (the feathered square)."""
        if not self.store.is_installed("parsenet"):
            return None
        from .faces.parsing import FaceParser
        from .faces.paste import face_mask

        if self._parser is None:
            self._parser = FaceParser(self.store.path("parsenet"), device=str(self.device))
        return [face_mask(face.shape[0], self._parser.face_region(face)) for face in restored]

    # -- photos ---------------------------------------------------------------------------
    def restore(
        self,
        request: RestoreRequest,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RestoreResult:
        """Restores one photo; writes ``request.output`` atomically when given.

        Raises LikenessError subclasses with one-line messages (bad file, no model, cancelled).
        """
        from .faces.align import rescale_affine
        from .faces.color import restore_grayness
        from .faces.detect import select_faces
        from .faces.paste import paste_faces
        from .imageio import read_image, write_image

        opts = request.options
        timings: dict[str, float] = {}
        warnings: list[str] = []
        report = progress or (lambda p: None)

        def check_cancel() -> None:
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"{request.input}: cancelled")

        def timed(stage: str, start: float) -> float:
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + now - start
            return now

        device_before = self.device
        t = time.perf_counter()
        report(Progress("read", 0.0, f"Reading {request.input.name}"))
        photo = read_image(request.input)
        t = timed("read", t)
        check_cancel()
        references = self.prepare_references(opts.references, warnings, opts.detector) if opts.references else []
        t = timed("references", t)

        if opts.aligned:
            image, faces = self._restore_aligned(photo.rgb, opts, timings, references, warnings)
        else:
            report(Progress("detect", 0.05, "Finding faces"))
            faces = self.find_faces(photo.rgb, opts, timings)
            t = time.perf_counter()
            chosen = select_faces(
                [f.detection for f in faces], photo.rgb.shape, indices=opts.faces,
                only_center=opts.only_center_face, min_size=opts.min_face,
            )  # fmt: skip
            if not faces:
                warnings.append(f"{request.input.name}: no face found; the photo was only upscaled")
            for n, (index, _) in enumerate(chosen):
                check_cancel()
                report(Progress("restore", 0.1 + 0.7 * n / max(1, len(chosen)), f"Restoring face {n + 1} of {len(chosen)}"))
                face = faces[index]
                detail = self.detail_crop(photo.rgb, face)
                face.restored_from = None if detail is face.aligned else detail
                if references:
                    face.restored = self.restore_with_references(face, references, opts, warnings, detail)
                else:
                    face.restored = self.restore_faces([detail], opts.fidelity, opts.color_fix)[0]
                t = timed("network", t)
            check_cancel()
            report(Progress("paste", 0.85, "Blending faces into the photo"))
            background = self.upscaler(opts.background).upscale(
                photo.rgb, opts.upscale, progress=lambda fraction: check_cancel()
            )
            t = timed("upscale", t)
            selected = [f for f in faces if f.selected]
            scale = (background.shape[1] / photo.rgb.shape[1], background.shape[0] / photo.rgb.shape[0])
            pasted = [(f.restored, rescale_affine(f.restored_affine, scale)) for f in selected]
            image = paste_faces(background, pasted, masks=self.face_masks([f.restored for f in selected]),
                                sources=[f.restored_from for f in selected]) if pasted else background
            t = timed("paste", t)
        image = restore_grayness(image, photo.is_gray)
        if self.device != device_before:
            warnings.append(f"{device_before} ran out of memory: restoration continues on the CPU")

        output = None
        if request.output is not None:
            check_cancel()
            report(Progress("write", 0.95, f"Writing {request.output.name}"))
            write_image(request.output, image, like=photo, quality=opts.jpeg_quality)
            output = request.output
            timed("write", t)
        report(Progress("done", 1.0, "Done"))
        return RestoreResult(
            request.input, output, image, faces, self.model_name, self.device_label(), timings, warnings
        )

    def _restore_aligned(self, rgb: np.ndarray, opts: RestoreOptions, timings: dict[str, float],
                         references: list | None = None, warnings: list[str] | None = None):
        """An already-aligned face (any square size): restore it whole at upscale × its size."""
        from .background import resize, scaled_size
        from .faces.align import aligned_affine, face_template, warp_face
        from .runtime.face_restorer import ALIGNED_SIZE

        t = time.perf_counter()
        affine = aligned_affine(rgb.shape, ALIGNED_SIZE)
        face = warp_face(rgb, affine, ALIGNED_SIZE)
        h, w = rgb.shape[:2]
        landmarks = (face_template(ALIGNED_SIZE) * np.float32(w / ALIGNED_SIZE)).astype(np.float32)
        result = FaceResult(0, DetectedFace((0.0, 0.0, float(w), float(h)), 1.0, landmarks), affine, face)
        detail = self.detail_crop(rgb, result)
        if references:
            result.restored = self.restore_with_references(result, references, opts,
                                                           warnings if warnings is not None else [], detail)
        else:
            result.restored = self.restore_faces([detail], opts.fidelity, opts.color_fix)[0]
        timings["network"] = time.perf_counter() - t
        return resize(result.restored, scaled_size(rgb.shape, opts.upscale)), [result]


def finish_face(restored: np.ndarray, aligned: np.ndarray, color_fix: bool = True) -> np.ndarray:
    """The network's face made ready to paste (one place for every restore path): the input's colours."""
    from .faces.color import match_color

    return match_color(restored, aligned) if color_fix else restored


def with_options(request: RestoreRequest, **changes) -> RestoreRequest:
    """A copy of ``request`` with some options changed (the GUI's controls use this)."""
    return replace(request, options=replace(request.options, **changes))
