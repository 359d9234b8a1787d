"""JPEG's block grid: measured where it is, evened out only there, and real edges kept."""

from __future__ import annotations

import cv2
import numpy as np

from engine import jpeg_grid
from tests.conftest import shared_path


def smooth_photo(height: int = 96, width: int = 128) -> np.ndarray:
    """Smooth random colour (blurred noise): no period of its own for the grid measure to find."""
    noise = np.random.default_rng(0).normal(128, 60, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 4 - 384, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def test_the_grid_shows_in_a_compressed_photo_and_not_in_a_clean_one():
    clean = smooth_photo()
    assert abs(jpeg_grid.grid_strength(clean) - 1) < 0.05
    assert jpeg_grid.grid_strength(jpeg(clean, 20)) > 1.3
    # The sample photos are small compressed JPEGs: every one shows its grid.
    for name in ("00.jpg", "01.jpg", "03.jpg", "04.jpg"):
        photo = cv2.imread(str(shared_path("data", "real_world", "whole_photos", name)))
        assert jpeg_grid.grid_strength(photo) > jpeg_grid.SHOWS_GRID, name


def test_deblocking_evens_the_grid_and_keeps_the_photo():
    blocky = jpeg(smooth_photo(), 20)
    out = jpeg_grid.deblock(blocky)
    assert out.dtype == np.uint8 and out.shape == blocky.shape
    assert jpeg_grid.grid_strength(out) < jpeg_grid.grid_strength(blocky) - 0.2
    assert np.abs(out.astype(int) - blocky).mean() < 2.5  # a gentle filter (q 20 is heavy), not a blur


def test_a_real_edge_on_a_grid_line_stays_sharp():
    image = np.full((32, 32, 3), 60, np.uint8)
    image[:, 16:] = 200  # a strong step exactly on a grid line
    out = jpeg_grid.deblock(image)
    assert np.array_equal(out, image)
    tiny = np.zeros((5, 6, 3), np.uint8)
    assert jpeg_grid.grid_strength(tiny) == 1.0 and np.array_equal(jpeg_grid.deblock(tiny), tiny)
