"""Applying a degradation: blur kernels, resizes, noise and JPEG, as a pure function of the params."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .config import MIN_SIZE, PRESETS, RESIZE_MODES, DegradationConfig, DegradationParams, KernelParams, NoiseParams
from .sampling import sample_params

# ----------------------------------------------------------------------------- kernels


def make_kernel(k: KernelParams) -> np.ndarray:
    """The normalised float32 kernel (basicsr ``degradations.py`` formulas)."""
    if k.kind == "sinc":
        return _circular_lowpass(k.omega_c, k.size)
    half = k.size // 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    c, s = math.cos(k.theta), math.sin(k.theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([k.sigma_x**2, k.sigma_y**2]) @ rot.T
    inv = np.linalg.inv(cov)
    grid = np.stack([xx, yy], axis=-1)
    d2 = np.sum((grid @ inv) * grid, axis=-1)  # squared Mahalanobis distance
    if k.kind.startswith("generalized"):
        kern = np.exp(-0.5 * np.power(d2, k.beta))
    elif k.kind.startswith("plateau"):
        kern = 1.0 / (np.power(d2, k.beta) + 1.0)
    else:
        kern = np.exp(-0.5 * d2)
    return (kern / kern.sum()).astype(np.float32)


def _circular_lowpass(omega_c: float, size: int) -> np.ndarray:
    """2-D sinc (ideal circular low-pass) of cutoff ``omega_c``, as Real-ESRGAN's, ringing included."""
    from scipy.special import j1

    half = (size - 1) / 2
    ax = np.arange(size, dtype=np.float64) - half
    xx, yy = np.meshgrid(ax, ax)
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        kern = omega_c * j1(omega_c * r) / (2 * np.pi * r)
    kern[r == 0] = omega_c**2 / (4 * np.pi)
    return (kern / kern.sum()).astype(np.float32)


# ----------------------------------------------------------------------------- apply


def lq_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) of the image downscaled by r, clamped so each side is ≥ MIN_SIZE (and ≤ its input)."""
    return (min(height, max(MIN_SIZE, int(height / scale))), min(width, max(MIN_SIZE, int(width / scale))))


def _blur(img: np.ndarray, k: KernelParams) -> np.ndarray:
    return cv2.filter2D(img, -1, make_kernel(k), borderType=cv2.BORDER_REFLECT_101)


def _resize(img: np.ndarray, h: int, w: int, mode: str) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=RESIZE_MODES[mode])


def _add_noise(img: np.ndarray, n: NoiseParams, rng: np.random.Generator) -> np.ndarray:
    """Add noise to a float32 0..1 RGB image and clip to 0..1 (basicsr / Real-ESRGAN)."""
    if n.kind == "gaussian":
        if n.sigma <= 0:
            return img
        shape = img.shape[:2] + ((1,) if n.gray else (3,))
        noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(n.sigma / 255.0)
    elif n.kind == "poisson":
        src = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None] if n.gray else img
        q = np.clip(np.round(src * 255.0), 0, 255)
        vals = 2.0 ** math.ceil(math.log2(max(2, len(np.unique(q)))))
        out = rng.poisson(np.clip(src, 0, 1).astype(np.float64) * vals) / vals
        noise = ((out - src) * n.scale).astype(np.float32)
    else:
        raise ValueError(f"unknown noise kind {n.kind!r}")
    return np.clip(img + noise, 0.0, 1.0)


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a float32 0..1 RGB image (encoded as BGR, as OpenCV expects)."""
    u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def apply(hq: np.ndarray, params: DegradationParams, *, restore_size: bool = True) -> np.ndarray:
    """Degrade an HxWx3 uint8 RGB image with ``params``; returns uint8 RGB of the same size.

    ``restore_size=False`` skips the final ↑r and returns the small image (HxW / r), which is
    what a super-resolution network is given (``training.background_sr``).
    """
    if hq.dtype != np.uint8 or hq.ndim != 3 or hq.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {hq.dtype} {hq.shape}")
    h, w = hq.shape[:2]
    rng = np.random.default_rng(params.noise_seed)
    img = hq.astype(np.float32) / 255.0
    th, tw = lq_size(h, w, params.scale)
    so = params.second_order
    img = _blur(img, params.kernel)
    if so is None:  # CodeFormer: blur, ↓r, noise, JPEG, ↑r (bilinear both ways)
        img = _resize(img, th, tw, "bilinear")
        img = _add_noise(img, params.noise, rng)
        img = jpeg_round_trip(img, params.jpeg_quality)
    else:  # Real-ESRGAN: two rounds, then the final resize to the target (+ sinc) and JPEG
        f1 = so.resize1.factor
        img = _resize(img, max(MIN_SIZE, int(h * f1)), max(MIN_SIZE, int(w * f1)), so.resize1.mode)
        img = _add_noise(img, params.noise, rng)
        img = jpeg_round_trip(img, params.jpeg_quality)
        if so.kernel2 is not None:
            img = _blur(img, so.kernel2)
        f2 = so.resize2.factor
        img = _resize(img, max(MIN_SIZE, int(th * f2)), max(MIN_SIZE, int(tw * f2)), so.resize2.mode)
        img = _add_noise(img, so.noise2, rng)
        if so.sinc_before_jpeg:
            img = _resize(img, th, tw, so.final_mode)
            if so.final_sinc is not None:
                img = _blur(img, so.final_sinc)
            img = jpeg_round_trip(np.clip(img, 0, 1), so.jpeg_quality2)
        else:
            img = jpeg_round_trip(img, so.jpeg_quality2)
            img = _resize(img, th, tw, so.final_mode)
            if so.final_sinc is not None:
                img = _blur(img, so.final_sinc)
    if restore_size:
        img = _resize(img, h, w, "bilinear")  # ↑r back to the HQ size
    if params.color_shift is not None:
        img = img + np.asarray(params.color_shift, dtype=np.float32) / 255.0
    out = np.clip(np.round(np.clip(img, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    if params.grayscale:
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


def degrade(
    hq: np.ndarray, config: DegradationConfig | str, rng: np.random.Generator
) -> tuple[np.ndarray, DegradationParams]:
    """Draw params from ``config`` (or a preset name) and apply them; returns (lq, params)."""
    if isinstance(config, str):
        config = PRESETS[config]
    params = sample_params(config, rng)
    return apply(hq, params), params
