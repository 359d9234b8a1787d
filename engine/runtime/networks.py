"""The networks a restoration runs, loaded at first use: which model, on which device and back end.

One ``Networks`` per worker thread holds the restoration network (generative, with the fidelity
path beside it when installed), the face detectors, the background upscalers and the face
parser. The choices it makes: ``model="auto"`` is the bundled model, then the official
CodeFormer; the CPU runs ONNX Runtime (about 40 % faster) and GPUs run torch; an ONNX problem
falls back to torch, and a GPU out of memory falls back to the CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..background import BicubicUpscaler, SpandrelUpscaler, Upscaler
from ..errors import LikenessError, ModelMissingError, OutOfMemoryError
from ..faces.align import FFHQ_SIZE
from ..faces.detect import FaceDetector, make_detector
from ..faces.parsing import FaceParser
from ..faces.paste import face_mask
from ..models import ModelStore
from ..nets.codeformer import load_codeformer
from ..nets.fidelity import load_fidelity
from ..nets.lora import load_adapter, merged
from ..types import DEFAULT_BACKGROUND
from .device import describe_device, resolve_device
from .face_restorer import FaceNetwork, FaceRestorer
from .onnx_restorer import OnnxFaceRestorer, export_cached
from .two_path import FidelityPath, TwoPathRestorer, export_correction

log = logging.getLogger(__name__)

#: Restoration models tried, in order, when the request says ``model="auto"``.
DEFAULT_MODELS = ("likeness-lite", "codeformer")
#: The fidelity path used beside any generative model when installed (it ships with Likeness).
FIDELITY_MODEL = "likeness-fidelity"
BACKENDS = ("auto", "torch", "onnx")
#: Detectors that hold Python's GIL for a whole detection (seconds): a GUI runs them in a helper process.
GIL_BOUND_DETECTORS = ("cnn",)
#: Memory one 512² face takes in the official network, fp32: 590 MB of peak resident memory for
#: one face and 394–403 MB for each further one (CPU, inference mode; the larger figure is used).
FACE_BYTES_512 = 600 * 2**20
#: Share of a GPU's free memory that a batch of faces may plan to use.
GPU_MEMORY_SHARE = 0.5
MAX_FACE_BATCH = 16
#: Faces per batch on the CPU: batches gain nothing there (whole_photos/00.jpg, four faces,
#: likeness-lite: 384–405 ms a photo with batches of 1 or 4) and each official-network face in a
#: batch holds 400 MB more, so the CPU takes one face at a time.
CPU_FACE_BATCH = 1


class Networks:
    """Loads networks lazily and keeps them. Not thread-safe: use one per worker thread.

    Args:
        model: restoration model name from the store, or "auto".
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        store: where models are looked up.
        backend: "torch", "onnx" (ONNX Runtime, CPU only) or "auto".
        fidelity: the fidelity path's model: "auto" = the bundled one when installed; None = the
            generative network alone (w is then CodeFormer's own CFT weight).
    """

    def __init__(self, model: str, device: str, store: ModelStore, backend: str, fidelity: str | None) -> None:
        if backend not in BACKENDS:
            raise LikenessError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.store = store
        self.device = resolve_device(device)
        self._requested_model = model
        self._requested_fidelity = fidelity
        self._model_name: str | None = None
        self._model_sha256: str | None = None
        self._face_restorer: FaceNetwork | None = None
        self._torch_restorer: FaceRestorer | None = None
        self._detectors: dict[str, FaceDetector] = {}
        self._upscalers: dict[str, Upscaler] = {}
        self._parser: FaceParser | None = None
        self._personal: dict[Path, FaceNetwork] = {}
        self._fitting_batch: int | None = None  # the batch that fitted after the GPU ran out of memory

    # -- the restoration network ------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """The restoration model in use; ModelMissingError (with the fix) when none is installed.

        Resolved at first use so that face detection works without any restoration model.
        """
        if self._model_name is None:
            self._model_name = self._resolve_model(self._requested_model)
        return self._model_name

    @property
    def model_sha256(self) -> str:
        """sha256 of the restoration model's file (``ModelStore.sha256``), looked up once."""
        if self._model_sha256 is None:
            self._model_sha256 = self.store.sha256(self.model_name)
        return self._model_sha256

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
    def fidelity_model(self) -> str | None:
        """The fidelity path's model name, or None when faces go through the generative network alone."""
        name = self._requested_fidelity
        if name == "auto":
            return FIDELITY_MODEL if self.store.is_installed(FIDELITY_MODEL) else None
        return name

    @property
    def face_restorer(self) -> FaceNetwork:
        """The restoration network on the device, loaded at first use."""
        if self._face_restorer is None:
            self._face_restorer = self._load_fidelity_path(self._load_generative())
        return self._face_restorer

    @face_restorer.setter
    def face_restorer(self, restorer: FaceNetwork) -> None:
        self._face_restorer = restorer

    def _load_generative(self) -> FaceNetwork:
        path = self.store.path(self.model_name)
        use_onnx = self.backend == "onnx" or (self.backend == "auto" and self.device.type == "cpu")
        if use_onnx and self.device.type != "cpu":
            raise LikenessError("the onnx backend runs on the CPU only; use --backend torch for the GPU")
        if use_onnx:
            try:
                encoder, decoder, size, names = export_cached(lambda: load_codeformer(path), path, self._onnx_cache)
                return OnnxFaceRestorer(encoder, decoder, size, names, self.model_name)
            except Exception as exc:  # export or runtime problem: torch always works
                if self.backend == "onnx":
                    raise LikenessError(f"{path}: ONNX Runtime could not run this model ({exc})") from exc
                log.warning("ONNX Runtime unavailable for %s (%s); using torch", self.model_name, exc)
        log.info("loading %s from %s on %s", self.model_name, path, self.device)
        return FaceRestorer(load_codeformer(path), self.device, self.model_name)

    def _load_fidelity_path(self, generative: FaceNetwork) -> FaceNetwork:
        """``generative`` and the fidelity path behind one restorer (``engine.runtime.two_path``)."""
        name = self.fidelity_model
        if name is None:
            return generative
        record = self.store.get(name)
        if record.kind != "fidelity":
            raise LikenessError(f"model {name!r} is a {record.kind} model, not a fidelity path")
        path = self.store.path(name)
        model = load_fidelity(path)
        onnx = None
        if generative.backend == "onnx":  # ONNX Runtime on the CPU for both paths
            try:
                onnx = export_correction(model, path, self._onnx_cache)
            except Exception as exc:  # export or runtime problem: torch always works
                log.warning("ONNX Runtime unavailable for %s (%s); using torch", name, exc)
        try:
            return TwoPathRestorer(generative, FidelityPath(model, self.device, onnx))
        except Exception as exc:
            if onnx is None:
                raise
            log.warning("ONNX Runtime could not load %s (%s); using torch", name, exc)
            return TwoPathRestorer(generative, FidelityPath(model, self.device))

    @property
    def _onnx_cache(self) -> Path:
        return self.store.root.parent / "cache" / "onnx"

    @property
    def torch_restorer(self) -> FaceRestorer:
        """The generative network in torch (reference guidance needs gradients; ONNX graphs have none)."""
        current = self.face_restorer
        generative = current.generative if isinstance(current, TwoPathRestorer) else current
        if isinstance(generative, FaceRestorer):
            return generative
        if self._torch_restorer is None:
            path = self.store.path(self.model_name)
            self._torch_restorer = FaceRestorer(load_codeformer(path), self.device, self.model_name)
        return self._torch_restorer

    def personalised(self, adapter_path: Path, person: str) -> FaceNetwork:
        """The restoration network with ``person``'s adapter folded into its weights (the fidelity
        path unchanged), in torch; kept per adapter file. LikenessError when the adapter was
        trained for another model than the one in use."""
        if adapter_path not in self._personal:
            adapter = load_adapter(adapter_path)
            if adapter.model != self.model_name:
                raise LikenessError(
                    f"{person}'s adapter was trained for {adapter.model}, not {self.model_name}; "
                    f"train it again with this model (likeness profile train {person!r})"
                )
            if adapter.model_sha256 and adapter.model_sha256 != self.model_sha256:
                raise LikenessError(
                    f"{person}'s adapter was trained for another version of {self.model_name} "
                    f"(the model file has changed since); train it again (likeness profile train {person!r})"
                )
            base = self.torch_restorer
            generative = FaceRestorer(merged(base.net, adapter), self.device, f"{self.model_name}+{person}")
            current = self.face_restorer
            self._personal[adapter_path] = (
                TwoPathRestorer(generative, current.fidelity) if isinstance(current, TwoPathRestorer) else generative
            )
        return self._personal[adapter_path]

    def restore(self, crops: list[np.ndarray], w: float) -> list[np.ndarray]:
        """Restored faces (uint8 RGB, each crop's size), in one batch. When a GPU runs out of memory
        the batch is halved and retried there; only a single face that does not fit moves to the CPU."""
        try:
            return self.face_restorer.restore(crops, w)
        except OutOfMemoryError:
            if self.device.type == "cpu":
                raise
            if len(crops) > 1:
                half = len(crops) // 2
                log.info("out of GPU memory with %d faces at once: halving the batch", len(crops))
                self._fitting_batch = half
                return self.restore(crops[:half], w) + self.restore(crops[half:], w)
            log.warning("out of GPU memory: continuing on the CPU")
            self.device = torch.device("cpu")
            self._face_restorer = self.face_restorer.moved_to(self.device)
            return self._face_restorer.restore(crops, w)

    def face_batch(self, side: int) -> int:
        """How many ``side``² faces go through the network at once.

        On a GPU: what a share of its free memory holds, at ``FACE_BYTES_512`` a 512² face (scaled
        by area; measured activations of the official network in fp32), capped at
        ``MAX_FACE_BATCH`` and at the batch that last fitted after an out-of-memory error. On the
        CPU: ``CPU_FACE_BATCH``.
        """
        if self.device.type != "cuda" or not torch.cuda.is_available():
            return CPU_FACE_BATCH
        free, _total = torch.cuda.mem_get_info(self.device)
        per_face = FACE_BYTES_512 * (side / FFHQ_SIZE) ** 2
        fits = int(free * GPU_MEMORY_SHARE // per_face)
        return max(1, min(MAX_FACE_BATCH, fits, self._fitting_batch or MAX_FACE_BATCH))

    def encode(self, aligned: np.ndarray) -> object:
        """Everything ``decode`` needs for one face, so that a change of w costs a decode only."""
        return self.face_restorer.encode([aligned])

    def decode(self, encoded: object, w: float) -> np.ndarray:
        return self.face_restorer.decode(encoded, w)[0]

    def mix_with_fidelity_path(
        self, faces: list[np.ndarray], generative: list[np.ndarray], w: float
    ) -> list[np.ndarray]:
        """Generative faces made elsewhere (a reference-guided decode) mixed with the fidelity path
        at ``w``, region by region, as every plain restoration is; unchanged without the path."""
        restorer = self.face_restorer
        if not isinstance(restorer, TwoPathRestorer):
            return generative
        return restorer.finish(restorer.prepare(faces, None, generative), generative, w)

    def describe_device(self) -> str:
        return describe_device(self.device)

    # -- the other networks ----------------------------------------------------------------------
    def detector(self, name: str) -> FaceDetector:
        if name not in self._detectors:
            weights = None
            if name in ("retinaface", "auto") and self.store.is_installed("retinaface-resnet50"):
                weights = self.store.path("retinaface-resnet50")
            self._detectors[name] = make_detector(name, retinaface_weights=weights, device=str(self.device))
        return self._detectors[name]

    def use_detector(self, name: str, detector: FaceDetector) -> None:
        """Serve detector ``name`` with ``detector`` (a GUI's helper-process detector)."""
        self._detectors[name] = detector

    def gil_bound_detectors(self) -> tuple[str, ...]:
        """The detector names that resolve to a detector holding the GIL (``auto`` without RetinaFace)."""
        names = GIL_BOUND_DETECTORS
        if not self.store.is_installed("retinaface-resnet50"):
            names = (*names, "auto")
        return names

    def upscaler(self, name: str) -> Upscaler:
        if name not in self._upscalers:
            if name == "bicubic":
                self._upscalers[name] = BicubicUpscaler()
            else:
                record = self.store.get(name)
                if record.kind != "upscaler":
                    raise LikenessError(f"model {name!r} is a {record.kind} model, not a background upscaler")
                if record.arch == "esrgan":
                    from ..background import EsrganUpscaler

                    # One family (esrgan-medium-x2, -x4, ...): each installed scale, the one named first.
                    family = name.rsplit("-x", 1)[0]
                    models = {record.scale or 2: self.store.path(name)}
                    for other in self.store.records():
                        same = other.arch == "esrgan" and other.id.rsplit("-x", 1)[0] == family
                        if same and other.scale and other.scale not in models and self.store.is_installed(other.id):
                            models[other.scale] = self.store.path(other.id)
                    # The bundled default evens out JPEG's block grid first (measured: docs/performance.md).
                    deblock = family == DEFAULT_BACKGROUND.rsplit("-x", 1)[0]
                    self._upscalers[name] = EsrganUpscaler(
                        models, name=family, device=str(self.device), deblock=deblock
                    )
                else:
                    self._upscalers[name] = SpandrelUpscaler(self.store.path(name), device=str(self.device))
        return self._upscalers[name]

    def face_masks(self, restored: list[np.ndarray]) -> list[np.ndarray] | None:
        """Paste-back masks from the face parser when it is installed, else None (the feathered square)."""
        if not self.store.is_installed("parsenet"):
            return None
        if self._parser is None:
            self._parser = FaceParser(self.store.path("parsenet"), device=str(self.device))
        return [face_mask(face.shape[0], self._parser.face_region(face)) for face in restored]
