"""Synthetic degradations that turn high-quality faces into training / evaluation inputs.

Two pipelines, both seeded and byte-for-byte reproducible:

* **First order** — the CodeFormer model (Zhou et al., "Towards Robust Blind Face Restoration with
  Codebook Lookup Transformer", NeurIPS 2022), as in its ``FFHQBlindDataset``::

      I_l = {[(I_h ⊛ k_σ)↓_r + n_δ]_JPEG_q}↑_r

  k_σ: isotropic / anisotropic Gaussian kernel (41×41 in the official config), ↓_r / ↑_r: bilinear
  resize by r, n_δ: Gaussian noise of std δ on the 0..255 scale, JPEG_q: JPEG at quality q. Then
  optional colour jitter (a random per-channel shift) and optional grayscale.

* **Second order** (``DegradationConfig.second_order``) — the "high-order" model of Real-ESRGAN
  (Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
  Data", ICCV Workshops 2021): two rounds of blur → random resize (area / bilinear / bicubic,
  up / down / keep) → Gaussian or Poisson noise (colour or gray) → JPEG, with kernels drawn from
  iso/aniso Gaussian, generalized Gaussian and plateau shapes (or a 2-D sinc), and a final
  resize to the target size with an optional sinc filter, in random order with the last JPEG.
  Here the "target size" is the HQ size / r and the result is brought back up (↑_r) to the HQ
  size, so both pipelines return an image the size of their input (what CodeFormer trains on).

Design: ``sample_params(config, rng)`` draws every random choice into a JSON-able
``DegradationParams`` (including an integer seed for the noise), and ``apply(hq, params)`` is a
pure function of the image and those params. So a run can be logged (``params.jsonl``) and any
image re-made exactly. Only ``np.random.Generator`` objects are used (never the global RNG);
OpenCV's resize / filter / JPEG codec are deterministic.

Presets (``PRESETS``; first order unless noted; all use a 41×41 iso/aniso 50/50 Gaussian kernel):

=============  ===========  ===========  ===========  ===========  ==========================
preset         σ (blur)     r (down)     δ (noise)    q (JPEG)     extras
=============  ===========  ===========  ===========  ===========  ==========================
mild           [0.5, 3]     [1, 4]       [0, 5]       [70, 95]     —
moderate       [2, 8]       [4, 12]      [0, 10]      [50, 80]     —
severe         [8, 15]      [16, 30]     [10, 20]     [30, 50]     —
codeformer     [1, 15]      [4, 30]      [0, 20]      [30, 80]     colour jitter p=0.3 shift 20,
                                                                   grayscale p=0.01 (official
                                                                   stage II config)
realesrgan     [0.2, 3]     4 (fixed)    [1, 30]      [30, 95]     second order, Real-ESRGAN x4
                                                                   config (kernel 7..21, mixed
                                                                   kernel types, sinc, Poisson)
=============  ===========  ===========  ===========  ===========  ==========================

mild / moderate / severe are meant for graded evaluation sets, so they have no colour jitter or
grayscale (which would make PSNR against a colour HQ meaningless); ``dataclasses.replace`` any
preset to change that or to switch on ``second_order``. Note that CodeFormer's dataset, when it
grays the input, also grays the ground truth; ``apply`` only changes the LQ, so a trainer should
gray its HQ when ``params.grayscale`` is true.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.imageio import temp_file_beside

__all__ = [
    "KERNEL_TYPES",
    "RESIZE_MODES",
    "DegradationConfig",
    "DegradationParams",
    "KernelParams",
    "NoiseParams",
    "ResizeParams",
    "SecondOrderParams",
    "PRESETS",
    "sample_params",
    "apply",
    "degrade",
    "make_kernel",
    "lq_size",
    "write_paired_set",
]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
MIN_SIZE = 4  # the smallest downscaled side; larger r are clamped to it


Range = tuple[float, float]


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges and probabilities a degradation is drawn from (closed intervals, uniform draws).

    Fields named ``*2`` are used only by the second-order pipeline (its second round); the first
    round of the second-order pipeline uses the same fields as the first-order one.
    """

    name: str
    blur_sigma: Range  # σ of k_σ, in pixels (both σ_x and σ_y of anisotropic kernels)
    downscale: Range  # r (final downscale factor; clamped so the small side stays ≥ MIN_SIZE)
    noise: Range  # δ: Gaussian noise std on the 0..255 scale
    jpeg_quality: tuple[int, int]  # q
    kernel_size: tuple[int, int] = (41, 41)  # odd sizes drawn uniformly from this range
    kernel_types: tuple[str, ...] = ("iso", "aniso")
    kernel_probs: tuple[float, ...] = (0.5, 0.5)
    betag_range: Range = (0.5, 4.0)  # shape β of generalized Gaussian kernels
    betap_range: Range = (1.0, 2.0)  # shape β of plateau kernels
    sinc_prob: float = 0.0  # probability that k is a 2-D sinc (circular low-pass) instead
    gaussian_noise_prob: float = 1.0  # else Poisson noise
    poisson_scale: Range = (0.05, 3.0)
    gray_noise_prob: float = 0.0  # noise identical on the three channels
    color_jitter_prob: float = 0.0
    color_jitter_shift: float = 20.0  # per-channel shift drawn in [-shift, shift] (0..255 scale)
    gray_prob: float = 0.0
    second_order: bool = False
    # --- second order only (Real-ESRGAN x4 defaults) ---
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # round 1: up, down, keep
    resize_range: Range = (0.15, 1.5)  # round 1 factor, relative to the input
    second_blur_prob: float = 0.8
    blur_sigma2: Range = (0.2, 1.5)
    kernel_size2: tuple[int, int] = (7, 21)
    sinc_prob2: float = 0.0
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: Range = (0.3, 1.2)  # round 2 factor, relative to the target size HQ/r
    noise2: Range = (1.0, 25.0)
    poisson_scale2: Range = (0.05, 2.5)
    gaussian_noise_prob2: float = 0.5
    gray_noise_prob2: float = 0.4
    jpeg_quality2: tuple[int, int] = (30, 95)
    final_sinc_prob: float = 0.8

    def __post_init__(self) -> None:
        if len(self.kernel_types) != len(self.kernel_probs) or not self.kernel_types:
            raise ValueError("kernel_types and kernel_probs must have the same, non-zero length")
        unknown = set(self.kernel_types) - set(KERNEL_TYPES)
        if unknown:
            raise ValueError(f"unknown kernel types {sorted(unknown)}; known: {KERNEL_TYPES}")
        for lo, hi in (self.blur_sigma, self.downscale, self.noise, self.jpeg_quality, self.kernel_size):
            if lo > hi:
                raise ValueError(f"empty range [{lo}, {hi}] in preset {self.name!r}")
        if self.downscale[0] < 1:
            raise ValueError("downscale r must be ≥ 1")
        for lo, hi in (self.kernel_size, self.kernel_size2):
            if lo % 2 == 0 or hi % 2 == 0:
                raise ValueError("kernel sizes must be odd")


@dataclass(frozen=True)
class KernelParams:
    """One blur kernel. ``kind`` is a KERNEL_TYPES entry or ``"sinc"``; unused fields are 0."""

    kind: str
    size: int
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    theta: float = 0.0  # rotation in radians (anisotropic kinds)
    beta: float = 0.0  # shape (generalized / plateau kinds)
    omega_c: float = 0.0  # cutoff in radians (sinc)


@dataclass(frozen=True)
class NoiseParams:
    """Additive noise: ``kind`` is ``"gaussian"`` (std ``sigma`` on 0..255) or ``"poisson"``."""

    kind: str
    sigma: float = 0.0
    scale: float = 0.0  # Poisson strength
    gray: bool = False


@dataclass(frozen=True)
class ResizeParams:
    mode: str  # a RESIZE_MODES key
    factor: float


@dataclass(frozen=True)
class SecondOrderParams:
    resize1: ResizeParams  # relative to the input
    kernel2: KernelParams | None  # None: no second blur
    resize2: ResizeParams  # relative to the target size HQ / r
    noise2: NoiseParams
    jpeg_quality2: int
    final_mode: str  # resize to the target size
    final_sinc: KernelParams | None
    sinc_before_jpeg: bool  # Real-ESRGAN's two orders of the last step


@dataclass(frozen=True)
class DegradationParams:
    """Every random choice of one degradation; ``apply`` is a pure function of these."""

    preset: str
    kernel: KernelParams  # k_σ
    scale: float  # r
    noise: NoiseParams  # n_δ
    jpeg_quality: int  # q
    noise_seed: int  # seeds the noise samples drawn inside ``apply``
    color_shift: tuple[float, float, float] | None = None  # RGB, 0..255 scale
    grayscale: bool = False
    second_order: SecondOrderParams | None = None

    @property
    def sigma(self) -> float:
        return max(self.kernel.sigma_x, self.kernel.sigma_y)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DegradationParams:
        d = dict(d)
        d["kernel"] = KernelParams(**d["kernel"])
        d["noise"] = NoiseParams(**d["noise"])
        if d.get("color_shift") is not None:
            d["color_shift"] = tuple(d["color_shift"])
        so = d.get("second_order")
        if so is not None:
            so = dict(so)
            so["resize1"] = ResizeParams(**so["resize1"])
            so["resize2"] = ResizeParams(**so["resize2"])
            so["noise2"] = NoiseParams(**so["noise2"])
            for key in ("kernel2", "final_sinc"):
                if so[key] is not None:
                    so[key] = KernelParams(**so[key])
            d["second_order"] = SecondOrderParams(**so)
        return cls(**d)


_FIRST_ORDER = dict(kernel_size=(41, 41), kernel_types=("iso", "aniso"), kernel_probs=(0.5, 0.5))

PRESETS: dict[str, DegradationConfig] = {
    "mild": DegradationConfig("mild", (0.5, 3.0), (1.0, 4.0), (0.0, 5.0), (70, 95), **_FIRST_ORDER),
    "moderate": DegradationConfig("moderate", (2.0, 8.0), (4.0, 12.0), (0.0, 10.0), (50, 80), **_FIRST_ORDER),
    "severe": DegradationConfig("severe", (8.0, 15.0), (16.0, 30.0), (10.0, 20.0), (30, 50), **_FIRST_ORDER),
    "codeformer": DegradationConfig(
        "codeformer", (1.0, 15.0), (4.0, 30.0), (0.0, 20.0), (30, 80), **_FIRST_ORDER,
        color_jitter_prob=0.3, color_jitter_shift=20.0, gray_prob=0.01,
    ),
    "realesrgan": DegradationConfig(
        "realesrgan", (0.2, 3.0), (4.0, 4.0), (1.0, 30.0), (30, 95),
        kernel_size=(7, 21),
        kernel_types=KERNEL_TYPES,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        sinc_prob=0.1, gaussian_noise_prob=0.5, poisson_scale=(0.05, 3.0), gray_noise_prob=0.4,
        second_order=True, sinc_prob2=0.1,
    ),
}


# ----------------------------------------------------------------------------- sampling


def _uniform(rng: np.random.Generator, r: Sequence[float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _odd_size(rng: np.random.Generator, r: tuple[int, int]) -> int:
    return int(2 * rng.integers(r[0] // 2, r[1] // 2 + 1) + 1)


def _sample_kernel(
    rng: np.random.Generator, config: DegradationConfig, sigma: Range, size_range: tuple[int, int], sinc_prob: float
) -> KernelParams:
    """A kernel drawn as basicsr's ``random_mixed_kernels`` / Real-ESRGAN's dataset do."""
    size = _odd_size(rng, size_range)
    if sinc_prob > 0 and rng.uniform() < sinc_prob:
        lo = math.pi / 3 if size < 13 else math.pi / 5
        return KernelParams("sinc", size, omega_c=_uniform(rng, (lo, math.pi)))
    probs = np.asarray(config.kernel_probs, dtype=np.float64)
    kind = config.kernel_types[int(rng.choice(len(probs), p=probs / probs.sum()))]
    sx = _uniform(rng, sigma)
    if kind.endswith("aniso"):
        sy = _uniform(rng, sigma)
        theta = _uniform(rng, (-math.pi, math.pi))
    else:
        sy, theta = sx, 0.0
    beta = 0.0
    if kind.startswith("generalized"):  # half the draws below 1 (heavy tails), half above
        lo, hi = config.betag_range
        beta = _uniform(rng, (lo, min(1.0, hi))) if rng.uniform() < 0.5 else _uniform(rng, (max(1.0, lo), hi))
    elif kind.startswith("plateau"):
        beta = _uniform(rng, config.betap_range)
    return KernelParams(kind, size, sx, sy, theta, beta)


def _sample_noise(
    rng: np.random.Generator, sigma: Range, poisson: Range, gaussian_prob: float, gray_prob: float
) -> NoiseParams:
    gray = bool(gray_prob > 0 and rng.uniform() < gray_prob)
    if gaussian_prob >= 1 or rng.uniform() < gaussian_prob:
        return NoiseParams("gaussian", sigma=_uniform(rng, sigma), gray=gray)
    return NoiseParams("poisson", scale=_uniform(rng, poisson), gray=gray)


def _sample_resize(rng: np.random.Generator, probs: Sequence[float], factor: Range) -> ResizeParams:
    p = np.asarray(probs, dtype=np.float64)
    updown = ("up", "down", "keep")[int(rng.choice(3, p=p / p.sum()))]
    if updown == "up":
        f = _uniform(rng, (1.0, max(1.0, factor[1])))
    elif updown == "down":
        f = _uniform(rng, (factor[0], min(1.0, factor[1])))
    else:
        f = 1.0
    return ResizeParams(str(rng.choice(list(RESIZE_MODES))), f)


def _quality(rng: np.random.Generator, q: tuple[int, int]) -> int:
    return int(rng.integers(q[0], q[1] + 1))


def sample_params(config: DegradationConfig, rng: np.random.Generator) -> DegradationParams:
    """Draw one degradation from ``config``; the draws depend only on ``rng``."""
    kernel = _sample_kernel(rng, config, config.blur_sigma, config.kernel_size, config.sinc_prob)
    scale = _uniform(rng, config.downscale)
    noise = _sample_noise(rng, config.noise, config.poisson_scale, config.gaussian_noise_prob, config.gray_noise_prob)
    quality = _quality(rng, config.jpeg_quality)
    second = None
    if config.second_order:
        resize1 = _sample_resize(rng, config.resize_prob, config.resize_range)
        kernel2 = None
        if rng.uniform() < config.second_blur_prob:
            kernel2 = _sample_kernel(rng, config, config.blur_sigma2, config.kernel_size2, config.sinc_prob2)
        resize2 = _sample_resize(rng, config.resize_prob2, config.resize_range2)
        noise2 = _sample_noise(
            rng, config.noise2, config.poisson_scale2, config.gaussian_noise_prob2, config.gray_noise_prob2
        )
        quality2 = _quality(rng, config.jpeg_quality2)
        final_mode = str(rng.choice(list(RESIZE_MODES)))
        final_sinc = None
        if rng.uniform() < config.final_sinc_prob:
            size = _odd_size(rng, (7, 21))
            lo = math.pi / 3 if size < 13 else math.pi / 5
            final_sinc = KernelParams("sinc", size, omega_c=_uniform(rng, (lo, math.pi)))
        second = SecondOrderParams(
            resize1, kernel2, resize2, noise2, quality2, final_mode, final_sinc, bool(rng.uniform() < 0.5)
        )
    shift = None
    if config.color_jitter_prob > 0 and rng.uniform() < config.color_jitter_prob:
        s = config.color_jitter_shift
        shift = tuple(float(v) for v in rng.uniform(-s, s, 3))
    gray = bool(config.gray_prob > 0 and rng.uniform() < config.gray_prob)
    noise_seed = int(rng.integers(0, 2**63 - 1))
    return DegradationParams(config.name, kernel, scale, noise, quality, noise_seed, shift, gray, second)


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


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a float32 0..1 RGB image (encoded as BGR, as OpenCV expects)."""
    u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def apply(hq: np.ndarray, params: DegradationParams) -> np.ndarray:
    """Degrade an HxWx3 uint8 RGB image with ``params``; returns uint8 RGB of the same size."""
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
        img = _jpeg(img, params.jpeg_quality)
    else:  # Real-ESRGAN: two rounds, then the final resize to the target (+ sinc) and JPEG
        f1 = so.resize1.factor
        img = _resize(img, max(MIN_SIZE, int(h * f1)), max(MIN_SIZE, int(w * f1)), so.resize1.mode)
        img = _add_noise(img, params.noise, rng)
        img = _jpeg(img, params.jpeg_quality)
        if so.kernel2 is not None:
            img = _blur(img, so.kernel2)
        f2 = so.resize2.factor
        img = _resize(img, max(MIN_SIZE, int(th * f2)), max(MIN_SIZE, int(tw * f2)), so.resize2.mode)
        img = _add_noise(img, so.noise2, rng)
        if so.sinc_before_jpeg:
            img = _resize(img, th, tw, so.final_mode)
            if so.final_sinc is not None:
                img = _blur(img, so.final_sinc)
            img = _jpeg(np.clip(img, 0, 1), so.jpeg_quality2)
        else:
            img = _jpeg(img, so.jpeg_quality2)
            img = _resize(img, th, tw, so.final_mode)
            if so.final_sinc is not None:
                img = _blur(img, so.final_sinc)
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


# ----------------------------------------------------------------------------- paired sets


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace`` (no half-written files)."""
    fd, tmp = temp_file_beside(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    atomic_write(path, buf.tobytes())


def _load_square(path: Path, size: int | None) -> np.ndarray:
    """Read as RGB (EXIF orientation applied); centre-crop to a square and resize to ``size``."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    if size is None:
        return np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    rgb = rgb[top : top + side, left : left + side]
    if side != size:
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
    return np.ascontiguousarray(rgb)


def write_paired_set(
    items: Iterable[str | os.PathLike[str] | tuple[str | os.PathLike[str], str]],
    out_dir: str | os.PathLike[str],
    preset: str | DegradationConfig,
    seed: int,
    *,
    size: int | None = 512,
    refs_per_identity: int | None = None,
) -> list[dict[str, Any]]:
    """Write an HQ/LQ pair set: ``hq/NAME.png``, ``lq/NAME.png``, ``params.jsonl``, ``references.json``.

    ``items`` are image paths, or ``(path, identity)`` pairs. Each image is read as RGB,
    centre-cropped to a square and resized to ``size`` × ``size`` (``size=None`` keeps it as is);
    aligning faces is the caller's job. NAME is ``<identity>_<stem>`` (or ``<stem>``), made unique
    with a ``_<n>`` suffix. Each image's degradation is seeded by (``seed``, NAME), so it does not
    change when other images are added or reordered.

    ``params.jsonl``: one JSON object per image (name, source, identity, the per-image seed, the
    effective downscaled size ``lq_size`` and every drawn parameter). ``references.json`` (only when
    identities are given): NAME → other NAMEs of the same identity, never itself; at most
    ``refs_per_identity`` of them (a seeded random choice), all when None. Every file is written
    atomically. Returns the params records.
    """
    config = PRESETS[preset] if isinstance(preset, str) else preset
    out = Path(out_dir)
    (out / "hq").mkdir(parents=True, exist_ok=True)
    (out / "lq").mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    used: set[str] = set()
    any_identity = False
    for item in items:
        if isinstance(item, tuple):
            path, identity = Path(item[0]), str(item[1])
            any_identity = True
        else:
            path, identity = Path(item), None
        base = f"{identity}_{path.stem}" if identity is not None else path.stem
        name, n = base, 1
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        image_seed = [int(seed), zlib.crc32(name.encode("utf-8"))]
        hq = _load_square(path, size)
        lq, params = degrade(hq, config, np.random.default_rng(image_seed))
        _write_png(out / "hq" / f"{name}.png", hq)
        _write_png(out / "lq" / f"{name}.png", lq)
        records.append(
            {
                "name": name,
                "source": str(path),
                "identity": identity,
                "seed": image_seed,
                "hq_size": list(hq.shape[:2]),
                "lq_size": list(lq_size(hq.shape[0], hq.shape[1], params.scale)),
                **params.to_dict(),
            }
        )
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write(out / "params.jsonl", lines.encode("utf-8"))
    if any_identity:
        by_id: dict[str, list[str]] = {}
        for r in records:
            if r["identity"] is not None:
                by_id.setdefault(r["identity"], []).append(r["name"])
        refs: dict[str, list[str]] = {}
        rng = np.random.default_rng([int(seed), 0x5EF])
        for r in records:
            others = [m for m in by_id.get(r["identity"], []) if m != r["name"]] if r["identity"] is not None else []
            if refs_per_identity is not None and len(others) > refs_per_identity:
                pick = rng.choice(len(others), size=refs_per_identity, replace=False)
                others = [others[i] for i in sorted(pick)]
            refs[r["name"]] = others
        atomic_write(out / "references.json", (json.dumps(refs, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return records
