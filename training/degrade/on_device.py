"""The first-order degradation on the training device, so that preparing batches cannot starve a GPU.

On a lent GPU the CPU pipeline (``operators.apply``: OpenCV, one image at a time) needs a dozen
worker processes to keep up with a small network, and a wider one at 256² would wait for its
data. Here the *draws* stay on the CPU, where they are cheap and reproducible
(``sampling.sample_params``, so a batch is still a pure function of (seed, step)), and the
*work* runs on the device the batch is on:

    blur (one grouped convolution for the batch) → ↓r bilinear → Gaussian or Poisson noise
    (a device generator seeded by the params) → JPEG (torchvision's encoder and decoder: nvJPEG
    on CUDA, libjpeg on the CPU) → ↑r bilinear → colour shift → uint8 levels → grayscale.

The same order, kernels, resize conventions (half-pixel centres, no antialiasing: OpenCV's
``INTER_LINEAR``) and rounding as ``operators.apply``. The two agree to within JPEG codec and
noise-sample differences (``tests/training/test_degrade_on_device.py``); a face drawn gray is
degraded from its gray target (the only HQ a batch carries), so its JPEG sees no chroma: within
a level or two of the CPU's colour-then-gray. The second-order (Real-ESRGAN) pipeline is not
ported: its configs train on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import DegradationParams, NoiseParams
from .operators import jpeg_round_trip, lq_size, make_kernel

#: ITU-R BT.601 luma, as OpenCV's RGB2GRAY.
_LUMA = (0.299, 0.587, 0.114)


def apply_batch(hq: torch.Tensor, params: Sequence[DegradationParams]) -> torch.Tensor:
    """LQ faces for a batch of HQ faces (B, 3, S, S) in [-1, 1], on ``hq``'s device and dtype.

    ``params[i]`` degrades ``hq[i]`` (first-order params only). Sizes follow ``operators.apply``.
    """
    if len(params) != hq.shape[0]:
        raise ValueError(f"{len(params)} degradation params for a batch of {hq.shape[0]}")
    if any(p.second_order is not None for p in params):
        raise ValueError("the on-device degradation covers the first-order model; second-order configs run on the CPU")
    img = (hq.detach().float() + 1) / 2  # 0..1, as operators.apply works
    img = _blur(img, params)
    side = img.shape[-1]
    out = [_resample_noise_jpeg(img[i : i + 1], p, side) for i, p in enumerate(params)]
    return torch.cat(out).to(hq.dtype) * 2 - 1


def _blur(img: torch.Tensor, params: Sequence[DegradationParams]) -> torch.Tensor:
    """Each image filtered with its own kernel, reflected borders (OpenCV's BORDER_REFLECT_101)."""
    kernels = [torch.from_numpy(make_kernel(p.kernel)) for p in params]
    k = max(t.shape[0] for t in kernels)
    stack = torch.stack([F.pad(t, [(k - t.shape[0]) // 2] * 4) for t in kernels])  # zero rim: same filter
    b, c, h, w = img.shape
    weight = stack.to(img.device, img.dtype).repeat_interleave(c, dim=0)[:, None]  # (B·C, 1, k, k)
    padded = F.pad(img.reshape(1, b * c, h, w), [k // 2] * 4, mode="reflect")
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def _resize(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if tuple(img.shape[-2:]) == (h, w):
        return img
    return F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False, antialias=False)


def _resample_noise_jpeg(img: torch.Tensor, p: DegradationParams, side: int) -> torch.Tensor:
    th, tw = lq_size(side, side, p.scale)
    img = _resize(img, th, tw)
    img = add_noise(img, p.noise, p.noise_seed)
    img = jpeg(img, p.jpeg_quality)
    img = _resize(img, side, side)
    if p.color_shift is not None:
        img = img + torch.tensor(p.color_shift, device=img.device, dtype=img.dtype).view(1, 3, 1, 1) / 255
    img = torch.round(img.clamp(0, 1) * 255)
    if p.grayscale:
        img = torch.round(_luma(img)).expand(-1, 3, -1, -1)
    return img / 255


def _luma(img: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) luma of an RGB batch."""
    weights = torch.tensor(_LUMA, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)
    return (img * weights).sum(1, keepdim=True)


def add_noise(img: torch.Tensor, n: NoiseParams, seed: int) -> torch.Tensor:
    """Noise on a (1, 3, h, w) 0..1 image, clipped to 0..1; samples from a device generator seeded by ``seed``."""
    gen = torch.Generator(device=img.device).manual_seed(int(seed) % (2**63))
    if n.kind == "gaussian":
        if n.sigma <= 0:
            return img
        shape = (1, 1 if n.gray else 3, *img.shape[-2:])
        noise = torch.randn(shape, generator=gen, device=img.device, dtype=img.dtype) * (n.sigma / 255.0)
    elif n.kind == "poisson":
        src = _luma(img) if n.gray else img
        levels = torch.unique(torch.round(src.clamp(0, 1) * 255)).numel()
        vals = 2.0 ** math.ceil(math.log2(max(2, levels)))
        noise = (torch.poisson(src.clamp(0, 1) * vals, generator=gen) / vals - src) * n.scale
    else:
        raise ValueError(f"unknown noise kind {n.kind!r}")
    return (img + noise).clamp(0, 1)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of a (1, 3, h, w) 0..1 image at ``quality``, encoded and decoded on its
    device by torchvision; OpenCV on the CPU where torchvision is missing (same libjpeg output)."""
    u8 = torch.round(img[0].clamp(0, 1) * 255).to(torch.uint8)
    try:
        from torchvision.io import decode_jpeg, encode_jpeg
    except ImportError:
        rgb = u8.permute(1, 2, 0).cpu().numpy()
        out = torch.from_numpy(jpeg_round_trip(rgb.astype(np.float32) / 255, int(quality))).permute(2, 0, 1)
        return out[None].to(img.device, img.dtype)
    data = encode_jpeg(u8, quality=int(quality))
    assert isinstance(data, torch.Tensor)  # one image in, one byte string out
    decoded = decode_jpeg(data.cpu(), device=img.device)
    assert isinstance(decoded, torch.Tensor)
    return decoded[None].to(img.dtype) / 255
