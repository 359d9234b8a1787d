"""Drawing a degradation: every random choice of ``DegradationParams`` comes from one ``rng``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .config import (
    RESIZE_MODES,
    DegradationConfig,
    DegradationParams,
    KernelParams,
    NoiseParams,
    Range,
    ResizeParams,
    SecondOrderParams,
)


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
        red, green, blue = rng.uniform(-s, s, 3)
        shift = (float(red), float(green), float(blue))
    gray = bool(config.gray_prob > 0 and rng.uniform() < config.gray_prob)
    noise_seed = int(rng.integers(0, 2**63 - 1))
    return DegradationParams(config.name, kernel, scale, noise, quality, noise_seed, shift, gray, second)
