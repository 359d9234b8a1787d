"""Runs a CodeFormer network on aligned faces, split in encode and decode.

The pipeline aligns faces at 512 px (the FFHQ template); a network trained at another size gets
the face resized to its own size and gives it back at 512, so compact models plug in unchanged.
``EncodedFaces`` keeps the encoder's outputs so a fidelity change costs only a decode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from ..errors import OutOfMemoryError
from ..faces.align import FFHQ_SIZE
from ..nets.codeformer import CodeFormer
from .device import is_out_of_memory


@dataclass
class EncodedFaces:
    """Encoder outputs for a batch of faces, on the device they were computed on."""

    codes: torch.Tensor
    lq_features: tuple[torch.Tensor, ...]

    def to(self, device: torch.device) -> EncodedFaces:
        return EncodedFaces(self.codes.to(device), tuple(f.to(device) for f in self.lq_features))


def faces_to_array(faces: list[np.ndarray], size: int) -> np.ndarray:
    """uint8 RGB faces → float32 (B,3,size,size) in [-1,1], resized to the network's size."""
    interp = cv2.INTER_AREA if size < FFHQ_SIZE else cv2.INTER_CUBIC
    batch = np.stack([f if f.shape[0] == size else cv2.resize(f, (size, size), interpolation=interp) for f in faces])
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1


def array_to_faces(out: np.ndarray) -> list[np.ndarray]:
    """float (B,3,S,S) in [-1,1] → uint8 RGB faces at FFHQ_SIZE."""
    arr = np.rint((np.clip(out, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    if arr.shape[1] == FFHQ_SIZE:
        return list(arr)
    return [cv2.resize(a, (FFHQ_SIZE, FFHQ_SIZE), interpolation=cv2.INTER_CUBIC) for a in arr]


class FaceNetwork(Protocol):
    """What every restorer here offers: uint8 RGB faces in, restored faces out, split at the encoder
    so that a change of w costs a decode only (each restorer reads back its own encodings)."""

    backend: str

    def encode(self, faces: list[np.ndarray], /) -> Any: ...

    def decode(self, encoded: Any, w: float, /) -> list[np.ndarray]: ...

    def restore(self, faces: list[np.ndarray], w: float, /) -> list[np.ndarray]: ...

    def moved_to(self, device: torch.device, /) -> FaceNetwork: ...


class FaceRestorer:
    """A network on a torch device; takes and returns uint8 RGB faces of FFHQ_SIZE."""

    backend = "torch"

    def __init__(self, net: CodeFormer, device: torch.device, name: str = "") -> None:
        self.net = net.float().to(device).eval()
        self.device = device
        self.name = name
        # Mixed precision on CUDA halves time and memory; autocast keeps the numerically
        # sensitive ops (normalisation, softmax, variance) in fp32. The CPU stays in fp32.
        self.autocast = device.type == "cuda"

    @property
    def size(self) -> int:
        return self.net.config.img_size

    @torch.inference_mode()
    def encode(self, faces: list[np.ndarray]) -> EncodedFaces:
        x = torch.from_numpy(faces_to_array(faces, self.size)).to(self.device)
        with self._named_oom(), torch.autocast(self.device.type, enabled=self.autocast):
            codes, feats = self.net.encode(x)
        return EncodedFaces(codes, feats)

    @torch.inference_mode()
    def decode(self, encoded: EncodedFaces, w: float) -> list[np.ndarray]:
        with self._named_oom(), torch.autocast(self.device.type, enabled=self.autocast):
            out = self.net.decode(encoded.codes, encoded.lq_features, float(w))
        return array_to_faces(out.float().cpu().numpy())

    def restore(self, faces: list[np.ndarray], w: float) -> list[np.ndarray]:
        return self.decode(self.encode(faces), w)

    @contextmanager
    def _named_oom(self) -> Iterator[None]:
        """Turns a device out-of-memory error into OutOfMemoryError, which callers retry on CPU."""
        try:
            yield
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise OutOfMemoryError(f"{self.device} ran out of memory running {self.name or 'the model'}") from exc

    def moved_to(self, device: torch.device) -> FaceRestorer:
        return FaceRestorer(self.net, device, self.name)
