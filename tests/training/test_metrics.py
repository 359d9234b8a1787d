"""PSNR / SSIM: known values, symmetry, and agreement with a plain float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import correlate2d

from training.metrics import psnr, rgb_to_y, ssim


def _images(seed: int = 0, shape: tuple[int, int] = (48, 64)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 127 + 100 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * np.array([1.0, 0.7, 0.4])
    a = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    b = np.clip(a.astype(float) + rng.normal(0, 15, a.shape), 0, 255).astype(np.uint8)
    return a, b


# --- straightforward reference implementations (float64, no OpenCV) -------------------------


def _ref_window() -> np.ndarray:
    ax = np.arange(11) - 5.0
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    g /= g.sum()
    return np.outer(g, g)


def _ref_ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    w = _ref_window()
    f = lambda img: correlate2d(img, w, mode="valid")  # noqa: E731
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def _ref_y(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _ref_psnr(x: np.ndarray, y: np.ndarray) -> float:
    d = x.astype(np.float64) - y.astype(np.float64)
    return 10 * math.log10(255.0**2 / (d * d).mean())


# --- tests ----------------------------------------------------------------------------------


def test_identical_images_give_inf_psnr_and_unit_ssim():
    a, _ = _images()
    assert psnr(a, a) == math.inf and psnr(a, a, y_channel=True) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, a, y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_constant_offset_of_ten_levels():
    a = np.full((32, 32, 3), 100, np.uint8)
    b = a + 10
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert psnr(a, b) == pytest.approx(28.1308, abs=1e-4)
    # On Y the offset becomes 10·(65.481+128.553+24.966)/255 = 10·219/255 levels.
    assert psnr(a, b, y_channel=True) == pytest.approx(20 * math.log10(255 / (10 * 219 / 255)), abs=1e-9)
    # Flat images: σ terms vanish, SSIM = luminance term (2ab + C1) / (a² + b² + C1).
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)


def test_y_channel_is_bt601_studio_swing():
    white, black = np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(black)[0, 0] == pytest.approx(16.0)
    a, _ = _images(3)
    np.testing.assert_allclose(rgb_to_y(a), _ref_y(a), rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_reference(seed):
    a, b = _images(seed, (40, 57))
    assert psnr(a, b) == pytest.approx(_ref_psnr(a, b), abs=1e-10)
    assert psnr(a, b, y_channel=True) == pytest.approx(_ref_psnr(_ref_y(a), _ref_y(b)), abs=1e-10)
    ref_rgb = np.mean([_ref_ssim_channel(a[..., c].astype(float), b[..., c].astype(float)) for c in range(3)])
    assert ssim(a, b) == pytest.approx(ref_rgb, abs=1e-9)
    assert ssim(a, b, y_channel=True) == pytest.approx(_ref_ssim_channel(_ref_y(a), _ref_y(b)), abs=1e-9)
    assert 0 < ssim(a, b) < 1


def test_matches_skimage_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _images(5)
    assert psnr(a, b) == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    ref = metrics.structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=2
    )
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)


def test_symmetric():
    a, b = _images(2)
    for y in (False, True):
        assert psnr(a, b, y_channel=y) == psnr(b, a, y_channel=y)
        assert ssim(a, b, y_channel=y) == pytest.approx(ssim(b, a, y_channel=y), abs=1e-12)


def test_crop_border_ignores_the_border():
    a, _ = _images(4)
    b = a.copy()
    b[:3] = 0
    b[:, -3:] = 255
    assert psnr(a, b) < 30
    assert psnr(a, b, crop_border=3) == math.inf
    assert ssim(a, b, crop_border=3) == pytest.approx(1.0)
    assert ssim(a, b, crop_border=2) < 1


def test_more_noise_scores_lower():
    a, _ = _images(6)
    rng = np.random.default_rng(0)
    noisy = [np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8) for s in (2, 8, 30)]
    p = [psnr(a, n) for n in noisy]
    s = [ssim(a, n) for n in noisy]
    assert p[0] > p[1] > p[2] and s[0] > s[1] > s[2]


def test_rejects_mismatched_shapes():
    a, _ = _images()
    with pytest.raises(ValueError):
        psnr(a, a[:-1])
    with pytest.raises(ValueError):
        ssim(a, a[..., 0])
