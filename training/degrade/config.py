"""What a degradation is drawn from (``DegradationConfig``, the presets) and what was drawn
(``DegradationParams``): plain data, so a run can log every choice and re-make any image."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2

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


#: The presets of the module docstring's table. First-order presets keep the default kernel:
#: 41×41, isotropic or anisotropic Gaussian, 50/50.
PRESETS: dict[str, DegradationConfig] = {
    "mild": DegradationConfig("mild", (0.5, 3.0), (1.0, 4.0), (0.0, 5.0), (70, 95)),
    "moderate": DegradationConfig("moderate", (2.0, 8.0), (4.0, 12.0), (0.0, 10.0), (50, 80)),
    "severe": DegradationConfig("severe", (8.0, 15.0), (16.0, 30.0), (10.0, 20.0), (30, 50)),
    # The reference sweep (SWEEP): moderate's ranges, two steps between, severe's, and beyond severe.
    "sweep1": DegradationConfig("sweep1", (2.0, 8.0), (4.0, 12.0), (0.0, 10.0), (50, 80)),
    "sweep2": DegradationConfig("sweep2", (4.0, 10.0), (8.0, 18.0), (4.0, 13.0), (44, 70)),
    "sweep3": DegradationConfig("sweep3", (6.0, 12.0), (12.0, 24.0), (7.0, 16.0), (37, 60)),
    "sweep4": DegradationConfig("sweep4", (8.0, 15.0), (16.0, 30.0), (10.0, 20.0), (30, 50)),
    "sweep5": DegradationConfig("sweep5", (12.0, 20.0), (24.0, 40.0), (15.0, 25.0), (20, 40)),
    "codeformer": DegradationConfig(
        "codeformer",
        blur_sigma=(1.0, 15.0),
        downscale=(4.0, 30.0),
        noise=(0.0, 20.0),
        jpeg_quality=(30, 80),
        color_jitter_prob=0.3,
        color_jitter_shift=20.0,
        gray_prob=0.01,
    ),
    "realesrgan": DegradationConfig(
        "realesrgan",
        blur_sigma=(0.2, 3.0),
        downscale=(4.0, 4.0),
        noise=(1.0, 30.0),
        jpeg_quality=(30, 95),
        kernel_size=(7, 21),
        kernel_types=KERNEL_TYPES,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        sinc_prob=0.1,
        gaussian_noise_prob=0.5,
        poisson_scale=(0.05, 3.0),
        gray_noise_prob=0.4,
        second_order=True,
        sinc_prob2=0.1,
    ),
    # Whole photos for the background upscaler (``training.background_sr``): Real-ESRGAN's
    # second-order model at r = 2, milder, as old small JPEG photos are: light blur and noise, the
    # last JPEG at the small size (its 8×8 blocks are what a plain network would sharpen).
    "background_x2": DegradationConfig(
        "background_x2",
        blur_sigma=(0.2, 1.0),
        downscale=(2.0, 2.0),
        noise=(0.0, 3.0),
        jpeg_quality=(60, 95),
        kernel_size=(7, 15),
        kernel_types=KERNEL_TYPES,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        sinc_prob=0.1,
        gaussian_noise_prob=0.7,
        poisson_scale=(0.05, 0.5),
        gray_noise_prob=0.4,
        second_order=True,
        resize_prob=(0.2, 0.5, 0.3),
        resize_range=(0.6, 1.4),
        second_blur_prob=0.3,
        blur_sigma2=(0.2, 0.8),
        kernel_size2=(7, 15),
        resize_range2=(0.8, 1.2),
        noise2=(0.0, 3.0),
        poisson_scale2=(0.05, 0.5),
        jpeg_quality2=(30, 95),
        final_sinc_prob=0.3,
    ),
}

#: Five levels from ``moderate`` (sweep1) through ``severe`` (sweep4) to beyond it (sweep5), for
#: measuring references across damage rather than at one preset (``training.reference_sweep``).
SWEEP: tuple[str, ...] = ("sweep1", "sweep2", "sweep3", "sweep4", "sweep5")
