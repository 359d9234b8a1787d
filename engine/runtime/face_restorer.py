"""Runs a CodeFormer network on aligned faces, split in encode and decode.

The pipeline aligns faces at 512 px (the FFHQ template); a network trained at another size gets
the face resized to its own size and gives it back at 512, so compact models plug in unchanged.
``EncodedFaces`` keeps the encoder's outputs so a fidelity change costs only a decode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..errors import OutOfMemoryError
from ..nets.codeformer import CodeFormer
from .device import is_out_of_memory

ALIGNED_SIZE = 512


@dataclass
class EncodedFaces:
    """Encoder outputs for a batch of faces, on the device they were computed on."""

    codes: torch.Tensor
    lq_features: tuple[torch.Tensor, ...]

    def to(self, device: torch.device) -> "EncodedFaces":
        return EncodedFaces(self.codes.to(device), tuple(f.to(device) for f in self.lq_features))


class FaceRestorer:
    """A network on a device; takes and returns uint8 RGB faces of ALIGNED_SIZE."""

    def __init__(self, net: CodeFormer, device: torch.device, name: str = "") -> None:
        self.net = net.to(device).eval()
        self.device = device
        self.name = name
        # fp16 halves GPU time and memory; the CPU stays in fp32 (fp16 is slower there).
        self.dtype = torch.float16 if device.type == "cuda" else torch.float32
        if self.dtype != torch.float32:
            self.net = self.net.to(self.dtype)

    @property
    def size(self) -> int:
        return self.net.config.img_size

    def to_tensor(self, faces: list[np.ndarray]) -> torch.Tensor:
        """uint8 RGB faces → (B,3,S,S) in [-1,1] at the network's size."""
        interp = cv2.INTER_AREA if self.size < ALIGNED_SIZE else cv2.INTER_CUBIC
        batch = np.stack([f if f.shape[0] == self.size else cv2.resize(f, (self.size, self.size), interpolation=interp) for f in faces])
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).to(self.dtype)
        return x / 127.5 - 1

    def to_images(self, out: torch.Tensor) -> list[np.ndarray]:
        """(B,3,S,S) in [-1,1] → uint8 RGB faces at ALIGNED_SIZE."""
        arr = ((out.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        if self.size == ALIGNED_SIZE:
            return list(arr)
        return [cv2.resize(a, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_CUBIC) for a in arr]

    @torch.inference_mode()
    def encode(self, faces: list[np.ndarray]) -> EncodedFaces:
        with self._named_oom():
            codes, feats = self.net.encode(self.to_tensor(faces))
        return EncodedFaces(codes, feats)

    @torch.inference_mode()
    def decode(self, encoded: EncodedFaces, w: float) -> list[np.ndarray]:
        with self._named_oom():
            out = self.net.decode(encoded.codes, encoded.lq_features, float(w))
        return self.to_images(out)

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

    def moved_to(self, device: torch.device) -> "FaceRestorer":
        return FaceRestorer(self.net.float(), device, self.name)
