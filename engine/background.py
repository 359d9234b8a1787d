"""Upscaling the whole photo before faces are pasted onto it.

``BicubicUpscaler`` needs nothing; ``EsrganUpscaler`` runs the bundled ESRGAN networks (UpscalerJS
slim/medium/thick, MIT, converted by ``engine.nets.tfjs_layers``); ``SpandrelUpscaler`` runs any RGB
image model that spandrel loads (Real-ESRGAN x2/x4, SwinIR, ...). The networks run tile by tile
(``TiledUpscaler``), so a large photo fits in memory, and ``progress`` is called after each tile. Tiles
overlap: each sees ``overlap`` px of context on every side and neighbours cross-fade linearly
over that band, so even models whose receptive field exceeds the overlap leave no seams. Output
is assembled one row of tiles at a time (only that strip is held in float).
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from . import jpeg_grid
from .errors import CheckpointFormatError, ModelMissingError

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


class Upscaler(Protocol):
    """Resizes a uint8 RGB image by ``scale``; ``progress(fraction)`` may raise to cancel."""

    name: str

    def upscale(self, rgb: np.ndarray, scale: float, progress: Progress | None = None) -> np.ndarray: ...


def scaled_size(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """(width, height) of an image of ``shape`` resized by ``scale`` (at least 1 px)."""
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic when enlarging, area averaging when shrinking (no aliasing)."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb.copy()
    shrinking = size[0] < rgb.shape[1]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


class BicubicUpscaler:
    """Plain bicubic resize: instant, and what the photo looked like, only larger."""

    name = "bicubic"

    def upscale(self, rgb: np.ndarray, scale: float, progress: Progress | None = None) -> np.ndarray:
        out = resize(rgb, scaled_size(rgb.shape, scale))
        if progress is not None:
            progress(1.0)
        return out


class TiledUpscaler:
    """Runs a network of a fixed scale in overlapping tiles; subclasses give ``_infer``.

    ``tile`` is the tile side in input pixels (None: the whole image at once); it must be at
    least four times ``overlap``. A request that differs from the model's scale runs the model,
    then resizes its output (x4 model, x2 asked: run x4, shrink by half); a request of 1 or less
    is a plain resize, so a photo that is not enlarged keeps its own background.
    """

    name: str
    model_scale: int
    tile: int | None
    overlap: int

    def _set_tiling(self, tile: int | None, overlap: int) -> None:
        if tile is not None and tile < 4 * overlap:
            raise ValueError(f"tile ({tile}) must be at least 4 x overlap ({overlap})")
        self.tile, self.overlap = tile, overlap

    def upscale(self, rgb: np.ndarray, scale: float, progress: Progress | None = None) -> np.ndarray:
        if scale <= 1:  # nothing to enlarge: the photo's own pixels (resized down), never the network's
            return BicubicUpscaler().upscale(rgb, scale, progress)
        out = self.run_model(rgb, progress)
        size = scaled_size(rgb.shape, scale)
        if (out.shape[1], out.shape[0]) != size:
            log.debug("%s: resizing its x%d output to x%g", self.name, self.model_scale, scale)
            out = resize(out, size)
        return out

    def run_model(self, rgb: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """The model's own output (scale ``model_scale``), tile by tile, uint8 RGB."""
        height, width = rgb.shape[:2]
        s, ov = self.model_scale, self.overlap
        rows = _spans(height, self.tile)
        cols = _spans(width, self.tile)
        out = np.empty((height * s, width * s, 3), np.uint8)
        carry: np.ndarray | None = None  # weighted rows of the previous strip that overlap this one
        done, total = 0, len(rows) * len(cols)
        for r, (y0, y1) in enumerate(rows):
            ey0, ey1 = max(y0 - ov, 0) if r else 0, min(y1 + ov, height) if r < len(rows) - 1 else height
            strip = np.zeros(((ey1 - ey0) * s, width * s, 3), np.float32)
            wy = _ramp(ey0, ey1, s, y0 if r else None, y1 if r < len(rows) - 1 else None, ov)
            for c, (x0, x1) in enumerate(cols):
                ex0, ex1 = max(x0 - ov, 0) if c else 0, min(x1 + ov, width) if c < len(cols) - 1 else width
                wx = _ramp(ex0, ex1, s, x0 if c else None, x1 if c < len(cols) - 1 else None, ov)
                tile = self._infer(rgb[ey0:ey1, ex0:ex1])
                strip[:, ex0 * s : ex1 * s] += tile * (wy[:, None, None] * wx[None, :, None])
                done += 1
                if progress is not None:
                    progress(done / total)
            if carry is not None:
                strip[: carry.shape[0]] += carry
            # Rows below the next strip's reach are final; the rest waits for the next strip.
            final_end = (y1 - ov if r < len(rows) - 1 else height) - ey0
            out[ey0 * s : (ey0 + final_end) * s] = np.clip(np.rint(strip[: final_end * s]), 0, 255).astype(np.uint8)
            carry = strip[final_end * s :]
        return out

    def _infer(self, patch: np.ndarray) -> np.ndarray:
        """The model's output for a uint8 RGB patch: float32 HWC in 0..255 (unclamped)."""
        raise NotImplementedError


class SpandrelUpscaler(TiledUpscaler):
    """Any RGB image-to-image model spandrel can load, run in overlapping tiles."""

    def __init__(self, path: str | Path, device: str = "cpu", tile: int | None = 512, overlap: int = 32) -> None:
        import spandrel
        import torch

        path = Path(path)
        if not path.is_file():
            raise ModelMissingError(f"{path}: upscaler model not found")
        self._set_tiling(tile, overlap)
        try:
            descriptor = spandrel.ModelLoader(device).load_from_file(path)
        except (spandrel.UnsupportedModelError, ValueError, RuntimeError, OSError, pickle.UnpicklingError) as exc:
            raise CheckpointFormatError(f"{path}: not an upscaler model this program can load ({exc})") from None
        if not isinstance(descriptor, spandrel.ImageModelDescriptor) or (
            descriptor.input_channels,
            descriptor.output_channels,
        ) != (3, 3):
            raise CheckpointFormatError(f"{path}: not an RGB image-to-image model")
        self._torch = torch
        self._device = torch.device(device)
        self._dtype = torch.float16 if self._device.type == "cuda" and descriptor.supports_half else torch.float32
        self.model = descriptor.to(self._dtype).eval()
        self.model_scale: int = descriptor.scale
        self.name = f"{descriptor.architecture.name} x{descriptor.scale}"

    def _infer(self, patch: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(patch)).to(self._device).permute(2, 0, 1)[None]
        x = x.to(self._dtype) / 255.0
        with torch.inference_mode():
            y = self.model(x)[0].permute(1, 2, 0).float() * 255.0
        return y.cpu().numpy()


class EsrganUpscaler(TiledUpscaler):
    """The UpscalerJS ESRGAN networks (converted TF.js layers models), run in overlapping tiles.

    ``models`` maps each scale to its converted ``.safetensors`` file (one family: slim, medium or
    thick). ``upscale`` runs the model of the requested scale when there is one, else the nearest
    larger one (the nearest smaller when none is larger) and resizes its output. Networks load on
    first use. On CUDA it runs in float32 (the RDN models work in 0..255, beyond float16's comfort).
    ``deblock``: a photo that shows JPEG's 8×8 grid has it evened out first (``engine.jpeg_grid``),
    so the network does not sharpen the blocks with the detail (the bundled default does this).
    """

    def __init__(
        self,
        models: Mapping[int, str | Path],
        *,
        name: str = "esrgan",
        device: str = "cpu",
        tile: int | None = 384,
        overlap: int = 24,
        deblock: bool = False,
    ) -> None:
        import torch

        if not models:
            raise ValueError("EsrganUpscaler needs at least one model file")
        self._paths = {int(k): Path(v) for k, v in models.items()}
        for path in self._paths.values():
            if not path.is_file():
                raise ModelMissingError(f"{path}: upscaler model not found")
        self._set_tiling(tile, overlap)
        self._torch = torch
        self._device = torch.device(device)
        self._nets: dict[int, torch.nn.Module] = {}
        self.family = name
        self.deblock = deblock
        self.model_scale = min(self._paths)
        self.name = f"{name} x{self.model_scale}"

    def model_for(self, scale: float) -> int:
        """The model scale that serves a request of ``scale``."""
        larger = [s for s in self._paths if s >= scale - 1e-6]
        return min(larger) if larger else max(self._paths)

    def upscale(self, rgb: np.ndarray, scale: float, progress: Progress | None = None) -> np.ndarray:
        if scale > 1:
            self._use(self.model_for(scale))
        return super().upscale(rgb, scale, progress)

    def run_model(self, rgb: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        self._use(self.model_scale)
        if self.deblock and jpeg_grid.grid_strength(rgb) > jpeg_grid.SHOWS_GRID:
            rgb = jpeg_grid.deblock(rgb)  # the whole photo: the grid starts at its corner, not a tile's
        return super().run_model(rgb, progress)

    def _use(self, scale: int) -> None:
        if scale not in self._nets:
            from .nets import tfjs_layers

            net = tfjs_layers.load(self._paths[scale])
            if net.scale != scale:
                raise CheckpointFormatError(f"{self._paths[scale]}: a x{net.scale} model, listed as x{scale}")
            self._nets[scale] = net.to(self._device).to(memory_format=self._torch.channels_last).eval()
        self.model_scale = scale
        self.name = f"{self.family} x{scale}"

    def _infer(self, patch: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(patch)).to(self._device).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            y = self._nets[self.model_scale](x.contiguous(memory_format=torch.channels_last))
            y = y[0].permute(1, 2, 0) * 255.0
        return y.cpu().numpy()


def _spans(length: int, tile: int | None) -> list[tuple[int, int]]:
    """Tile cores: ``length`` split into equal parts no longer than ``tile``."""
    count = 1 if tile is None else max(1, math.ceil(length / tile))
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _ramp(start: int, end: int, scale: int, core_start: int | None, core_end: int | None, overlap: int) -> np.ndarray:
    """Per-output-pixel weights of a tile spanning input [start, end): 1 in its core, falling
    linearly to 0 across the 2*overlap band around each core edge that has a neighbour, so two
    neighbours' weights sum to 1 everywhere they overlap."""
    centres = (np.arange((end - start) * scale, dtype=np.float32) + 0.5) / scale + start
    weight = np.ones_like(centres)
    if core_start is not None:
        weight = np.minimum(weight, np.clip((centres - (core_start - overlap)) / (2 * overlap), 0, 1))
    if core_end is not None:
        weight = np.minimum(weight, np.clip((core_end + overlap - centres) / (2 * overlap), 0, 1))
    return weight
