"""Seeded test images made with integer arithmetic only, so Python and JavaScript make them bit-identical.

``scripts/tfjs_reference.mjs`` holds the same generator; the fixture records a checksum of each
image so a drift between the two is caught. Images are float32 NHWC arrays with integer values
0..255 (what the human-models graphs take).

Kinds: ``noise`` (every value random), ``smooth`` (an 8x8 random grid, bilinearly interpolated
in integers), ``face`` (a drawn face: skin ellipse with side lighting, hair, brows, eyes with
irises, nose shadow, mouth, over a smooth background, plus ±4 noise; its eyes, nose and mouth
sit near the ArcFace template points at 112 px).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

M32 = 0xFFFFFFFF
GRID = 7


def mulberry32(seed: int) -> Iterator[int]:
    """The mulberry32 generator (as usually written in JavaScript), unsigned 32-bit outputs."""
    a = seed & M32
    while True:
        a = (a + 0x6D2B79F5) & M32
        t = ((a ^ (a >> 15)) * (1 | a)) & M32
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & M32)) & M32) ^ t
        yield (t ^ (t >> 14)) & M32


def _smooth(size: int, rng: Iterator[int]) -> np.ndarray:
    grid = np.array([next(rng) % 256 for _ in range((GRID + 1) * (GRID + 1) * 3)], np.int64).reshape(
        GRID + 1, GRID + 1, 3
    )
    d = size - 1
    pos = np.arange(size, dtype=np.int64) * GRID
    i = np.minimum(pos // d, GRID - 1)
    r = pos - i * d
    iy, ix = i[:, None], i[None, :]
    ry, rx = r[:, None, None], r[None, :, None]
    v = (
        grid[iy, ix] * (d - rx) * (d - ry)
        + grid[iy, ix + 1] * rx * (d - ry)
        + grid[iy + 1, ix] * (d - rx) * ry
        + grid[iy + 1, ix + 1] * rx * ry
    )
    return v // (d * d)


def _ellipse(size: int, cx: int, cy: int, rx: int, ry: int) -> np.ndarray:
    """Pixels inside an ellipse given in hundredths of ``size`` (pixel centres at +0.5)."""
    c = np.arange(size, dtype=np.int64) * 200 + 100  # 2*100*(p + 0.5)
    dx = c[None, :] - 2 * cx * size
    dy = c[:, None] - 2 * cy * size
    return dx * dx * ry * ry + dy * dy * rx * rx <= 4 * (rx * ry * size) ** 2


# (cx, cy, rx, ry) in hundredths of the image, colour RGB
_FACE_PARTS = [
    ((50, 30, 40, 32), (60, 40, 30)),  # hair
    ((50, 56, 33, 44), None),  # skin (lit from the left)
    ((34, 38, 10, 3), (70, 50, 40)),  # brows
    ((66, 38, 10, 3), (70, 50, 40)),
    ((34, 46, 8, 4), (235, 235, 230)),  # eye whites
    ((66, 46, 8, 4), (235, 235, 230)),
    ((34, 46, 3, 4), (60, 40, 30)),  # irises
    ((66, 46, 3, 4), (60, 40, 30)),
    ((50, 63, 5, 3), (150, 100, 80)),  # nose shadow
    ((50, 82, 13, 4), (170, 70, 70)),  # mouth
]


def _face(size: int, rng: Iterator[int]) -> np.ndarray:
    img = _smooth(size, rng)
    xs = np.arange(size, dtype=np.int64)[None, :]
    for (cx, cy, rx, ry), colour in _FACE_PARTS:
        inside = _ellipse(size, cx, cy, rx, ry)
        if colour is None:
            shade = 40 * xs // size
            skin = np.stack(np.broadcast_arrays(215 - shade, 170 - shade, 140 - shade), -1)
            skin = np.broadcast_to(skin, img.shape)
            img = np.where(inside[..., None], skin, img)
        else:
            img = np.where(inside[..., None], np.array(colour, np.int64), img)
    noise = np.array([next(rng) % 9 for _ in range(size * size * 3)], np.int64).reshape(size, size, 3) - 4
    return np.clip(img + noise, 0, 255)


def synthetic_image(kind: str, seed: int, size: int) -> np.ndarray:
    """(size, size, 3) float32 image with integer values 0..255."""
    rng = mulberry32(seed)
    if kind == "noise":
        img = np.array([next(rng) % 256 for _ in range(size * size * 3)], np.int64).reshape(size, size, 3)
    elif kind == "smooth":
        img = _smooth(size, rng)
    elif kind == "face":
        img = _face(size, rng)
    else:
        raise ValueError(kind)
    return img.astype(np.float32)


def checksum(img: np.ndarray) -> int:
    """Order-sensitive integer checksum of an integer-valued image (same formula in the JS script)."""
    v = img.astype(np.int64).reshape(-1)
    return int((v * (np.arange(v.size, dtype=np.int64) % 1009 + 1)).sum() % 2147483647)
