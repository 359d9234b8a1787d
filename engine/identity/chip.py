"""dlib's 150x150 face chip, taken differentiably from an FFHQ-aligned face.

dlib (Davis E. King, Boost Software License) makes the chip for ``compute_face_descriptor``
with ``get_face_chip_details(shape, 150, 0.25)``: a similarity transform fitted from a mean-face
landmark template (``mean_face_shape_x/y`` in ``dlib/image_transforms/interpolation.h``, points
27-35, 36-47, 48-54 and 60-64 of the 68-point layout, padded by 0.25) onto the detected
landmarks, then bilinear sampling where the chip's corner pixels 0 and 149 land on the corners
of a ``150*scale`` wide box around the transformed centre (so the chip is stretched by 150/149).

An FFHQ-aligned face already sits on a fixed 5-point template, so the chip is one FIXED affine
of it: we fit the similarity taking the dlib template's eye centres, nose tip and mouth corners
to the FFHQ 512 template and sample with ``F.grid_sample``; gradients reach the input pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..faces.align import FFHQ_SIZE, FFHQ_TEMPLATE_512

CHIP_SIZE = 150
CHIP_PADDING = 0.25


def _floats(text: str) -> np.ndarray:
    """A float64 vector of whitespace-separated decimal numbers (a table kept readable)."""
    return np.array([float(v) for v in text.split()])


# dlib's mean face, points 17..67 of the 68-point layout, in a unit box.
_MEAN_FACE_X = _floats("""
    0.000213256 0.0752622 0.18113 0.29077 0.393397 0.586856 0.689483 0.799124
    0.904991 0.98004 0.490127 0.490127 0.490127 0.490127 0.36688 0.426036
    0.490127 0.554217 0.613373 0.121737 0.187122 0.265825 0.334606 0.260918
    0.182743 0.645647 0.714428 0.793132 0.858516 0.79751 0.719335 0.254149
    0.340985 0.428858 0.490127 0.551395 0.639268 0.726104 0.642159 0.556721
    0.490127 0.423532 0.338094 0.290379 0.428096 0.490127 0.552157 0.689874
    0.553364 0.490127 0.42689
""")
_MEAN_FACE_Y = _floats("""
    0.106454 0.038915 0.0187482 0.0344891 0.0773906 0.0773906 0.0344891
    0.0187482 0.038915 0.106454 0.203352 0.307009 0.409805 0.515625 0.587326
    0.609345 0.628106 0.609345 0.587326 0.216423 0.178758 0.179852 0.231733
    0.245099 0.244077 0.231733 0.179852 0.178758 0.216423 0.244077 0.245099
    0.780233 0.745405 0.727388 0.742578 0.727388 0.745405 0.780233 0.864805
    0.902192 0.909281 0.902192 0.864805 0.784792 0.778746 0.785343 0.778746
    0.784792 0.824182 0.831803 0.824182
""")


def dlib_template_points(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """dlib's mean face (68-point indices 17..67) in chip "from" coordinates, shape (68, 2), NaN below 17."""
    pts = np.full((68, 2), np.nan)
    pts[17:, 0] = (padding + _MEAN_FACE_X) / (2 * padding + 1) * size
    pts[17:, 1] = (padding + _MEAN_FACE_Y) / (2 * padding + 1) * size
    return pts


def dlib_template_5(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The FFHQ-style 5 points of dlib's template: eye centres (36-41, 42-47), nose tip 30, mouth corners 48, 54."""
    p = dlib_template_points(size, padding)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` onto ``dst``."""
    a = np.zeros((2 * len(src), 4))
    a[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))]
    a[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))]
    (c, s, tx, ty), *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    return np.array([[c, -s, tx], [s, c, ty]])


def chip_to_ffhq_affine(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """2x3 affine from chip pixel (x, y) to FFHQ-512 pixel coordinates (pixel centres at integers).

    dlib maps chip pixel u to template coordinate ``size/2 + (u - (size-1)/2) * size/(size-1)``
    (corner pixels onto the box corners), and the template onto the face by the similarity.
    """
    sim = similarity_lstsq(dlib_template_5(size, padding), FFHQ_TEMPLATE_512.astype(np.float64))
    k = size / (size - 1)
    stretch = np.array([[k, 0, size / 2 - (size - 1) / 2 * k], [0, k, size / 2 - (size - 1) / 2 * k], [0, 0, 1]])
    return sim @ stretch


def chip_grid(size: int = CHIP_SIZE, affine: np.ndarray | None = None) -> torch.Tensor:
    """(1, size, size, 2) sampling grid for ``F.grid_sample(align_corners=False)`` on any-size FFHQ face."""
    m = chip_to_ffhq_affine(size) if affine is None else affine
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    px = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    py = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    grid = np.stack([(px + 0.5) / FFHQ_SIZE * 2 - 1, (py + 0.5) / FFHQ_SIZE * 2 - 1], axis=-1)
    return torch.from_numpy(grid).float()[None]


_GRIDS: dict[tuple[str, torch.dtype], torch.Tensor] = {}


def chip_from_aligned(faces: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) FFHQ-aligned faces (any H; values kept, e.g. 0..255) -> (B,3,150,150) dlib chips.

    Bilinear like dlib; outside pixels are zero like dlib's. Faces larger than 512 are first
    area-downscaled to 512 (dlib would use its pyramid there; at 512 it samples directly).
    """
    if faces.ndim != 4 or faces.shape[1] != 3:
        raise ValueError(f"expected (B,3,H,W) faces, got {tuple(faces.shape)}")
    if faces.shape[-1] > FFHQ_SIZE or faces.shape[-2] > FFHQ_SIZE:
        faces = F.interpolate(faces, size=(FFHQ_SIZE, FFHQ_SIZE), mode="bilinear", antialias=True, align_corners=False)
    key = (str(faces.device), faces.dtype)
    grid = _GRIDS.get(key)
    if grid is None:
        grid = _GRIDS[key] = chip_grid().to(faces.device, faces.dtype)
    return F.grid_sample(
        faces, grid.expand(faces.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
    )
