"""Full-reference image metrics: PSNR and SSIM, computed as basicsr does.

Used to score restorations against ground truth the way the CodeFormer paper (Zhou et al.,
NeurIPS 2022) reports CelebA-Test numbers, via basicsr's ``calculate_psnr`` / ``calculate_ssim``
(the same code as Real-ESRGAN, ICCV-W 2021). SSIM is Wang, Bovik, Sheikh and Simoncelli, "Image
Quality Assessment: From Error Visibility to Structural Similarity", IEEE TIP 2004.

Exactly what is computed (inputs: two uint8 HxWx3 RGB images of the same shape):

* ``crop_border=c`` first removes c pixels from each edge of both images.
* ``y_channel=False`` works on the three RGB channels as float64 in 0..255.
  ``y_channel=True`` works on ITU-R BT.601 luma (studio swing, 16..235), as basicsr's
  ``to_y_channel``: with R, G, B scaled to 0..1,
  ``Y = 16 + 65.481·R + 128.553·G + 24.966·B`` (equivalently, on 0..255 inputs,
  ``16 + (65.481·R + 128.553·G + 24.966·B) / 255``). Y is not rounded; basicsr computes it in
  float32, here it is float64 (differences ~1e-5 dB).
* PSNR = ``10·log10(255² / MSE)`` with MSE the mean over all pixels *and channels* (one MSE, not
  a per-channel average); ``inf`` for identical images.
* SSIM: 11×11 Gaussian window, σ = 1.5 (normalised to sum 1), C1 = (0.01·255)², C2 = (0.03·255)²;
  local means / variances / covariance by filtering and keeping only the "valid" part (windows
  entirely inside the image: 5 pixels dropped at each edge); SSIM map
  ``((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2))`` averaged over the valid
  area, and for RGB the mean of the three per-channel SSIMs. No downsampling (unlike Wang's
  MATLAB script's automatic scale factor), as in basicsr.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["psnr", "ssim", "rgb_to_y"]

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image, float64 on the 16..235 scale (basicsr's ``to_y_channel``)."""
    x = np.asarray(img, dtype=np.float64) / 255.0
    return 16.0 + x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected HxWx3 RGB images, got {a.shape}")
    if crop_border < 0:
        raise ValueError("crop_border must be ≥ 0")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        return rgb_to_y(a)[..., None], rgb_to_y(b)[..., None]
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB (peak 255); ``inf`` when the images are identical."""
    x, y = _prepare(a, b, crop_border, y_channel)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window() -> np.ndarray:
    k = cv2.getGaussianKernel(11, 1.5)
    return k @ k.T


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two float64 single-channel images (basicsr ``_ssim``)."""
    if min(x.shape) < 11:
        raise ValueError(f"SSIM needs images of at least 11×11 after cropping, got {x.shape}")
    w = _gaussian_window()

    def f(img: np.ndarray) -> np.ndarray:
        return cv2.filter2D(img, -1, w)[5:-5, 5:-5]  # "valid" part only: border mode is irrelevant

    mu_x, mu_y = f(x), f(y)
    mu_x2, mu_y2, mu_xy = mu_x**2, mu_y**2, mu_x * mu_y
    var_x = f(x * x) - mu_x2
    var_y = f(y * y) - mu_y2
    cov = f(x * y) - mu_xy
    ssim_map = ((2 * mu_xy + _C1) * (2 * cov + _C2)) / ((mu_x2 + mu_y2 + _C1) * (var_x + var_y + _C2))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004, basicsr settings); mean over channels for RGB."""
    x, y = _prepare(a, b, crop_border, y_channel)
    return float(np.mean([_ssim_channel(x[..., c], y[..., c]) for c in range(x.shape[2])]))
