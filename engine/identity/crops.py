"""Fixed crops of FFHQ-aligned faces for identity networks trained on other templates.

An FFHQ-aligned face sits on a known five-point template (``FFHQ_TEMPLATE_512``), so any other
network's input crop is one fixed affine of it: a similarity onto the ArcFace 112 template for
insightface-style networks, or a square box for networks that take a face box. Cropping is
``F.grid_sample`` (bilinear, differentiable) on a grid built once per size, device and dtype;
when the crop shrinks the face by more than ``MAX_WARP_SHRINK`` the face is first downscaled
with an antialiased resize so fine texture does not alias (dlib's chip does the same at 512).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..faces.align import FFHQ_SIZE, FFHQ_TEMPLATE_512, MAX_WARP_SHRINK
from .chip import chip_grid, similarity_lstsq

# insightface's 112x112 five points (eyes, nose tip, mouth corners), pixel coordinates.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def arcface_to_ffhq_affine(size: int = 112) -> np.ndarray:
    """2x3 affine from crop pixel (x, y) to FFHQ-512 pixel coordinates (least-squares similarity)."""
    dst = ARCFACE_TEMPLATE_112 * (size / 112.0)
    return similarity_lstsq(dst, FFHQ_TEMPLATE_512.astype(np.float64))


def box_to_ffhq_affine(size: int, cx: float, cy: float, side: float) -> np.ndarray:
    """2x3 affine from crop pixel to FFHQ-512 pixel for a square box (centre, side in FFHQ-512 px)."""
    k = side / size
    return np.array([[k, 0.0, cx - side / 2 + k / 2 - 0.5], [0.0, k, cy - side / 2 + k / 2 - 0.5]])


class AlignedCrop:
    """A fixed crop of FFHQ-aligned faces (any square size) to ``size`` px.

    Args:
        size: Output side in pixels.
        affine: 2x3 map from output pixel to FFHQ-512 pixel coordinates.
    """

    def __init__(self, size: int, affine: np.ndarray) -> None:
        self.size = size
        self.affine = np.asarray(affine, np.float64)
        # FFHQ-512 pixels per output pixel; faces are shrunk to about one output pixel per pixel first.
        self.scale = float(np.sqrt(abs(np.linalg.det(self.affine[:, :2]))))
        self._grids: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def __call__(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) FFHQ-aligned faces (values kept) → (B,3,size,size); outside pixels are zero."""
        if faces.ndim != 4 or faces.shape[1] != 3 or faces.shape[2] != faces.shape[3]:
            raise ValueError(f"expected (B,3,S,S) aligned faces, got {tuple(faces.shape)}")
        target = int(round(FFHQ_SIZE / self.scale))
        if faces.shape[-1] > target * MAX_WARP_SHRINK:
            faces = F.interpolate(faces, size=(target, target), mode="bilinear", antialias=True, align_corners=False)
        key = (str(faces.device), faces.dtype)
        grid = self._grids.get(key)
        if grid is None:
            grid = self._grids[key] = chip_grid(self.size, self.affine).to(faces.device, faces.dtype)
        return F.grid_sample(
            faces, grid.expand(faces.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
        )


def arcface_crop(size: int = 112) -> AlignedCrop:
    """The insightface/ArcFace 112 crop (scaled to ``size``) of FFHQ-aligned faces."""
    return AlignedCrop(size, arcface_to_ffhq_affine(size))
