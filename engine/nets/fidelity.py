"""The fidelity path: a compact residual U-Net that cleans a face without inventing a new one,
and the region blend that decides, per part of the face, how much of the generative result to use.

CodeFormer's generative path rebuilds every face from its codebook: it rescues ruined faces and
harms clean ones (the bundled model rebuilds even a clean face at 24.7 dB). A residual network
does the opposite: its output is the input plus a learned correction, so a clean face passes
through nearly untouched while blur, noise and JPEG damage are cleaned up. ``RegionBlend``
estimates from (input, fidelity output, generative output) how damaged each region of the face
is, which is how much of the generative output that region needs (methods.md §5).

Both networks are the project's own, trained by ``training.fidelity`` and shipped together in
one ``.safetensors`` file whose header carries their configs (``likeness-fidelity``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointFormatError

CONFIG_METADATA_KEY = "likeness_fidelity_config"


@dataclass(frozen=True)
class FidelityConfig:
    """Sizes of the fidelity U-Net and of the region blend.

    Args:
        chs: channels at each scale of the U-Net (full, 1/2, 1/4 ...).
        blocks: residual blocks at each scale (encoder side; the decoder mirrors it).
        work_size: side at which the U-Net sees a face (of any size; its correction is added to
            the face at full size, so nothing above this resolution is lost).
        blend_size: side at which the region blend reads its three images.
        blend_chs: channels of the region blend.
        blend_grid: side of the blend's map of regions (each region is 512 / grid template px).
    """

    chs: tuple[int, ...] = (32, 64, 96)
    blocks: tuple[int, ...] = (1, 1, 2)
    work_size: int = 256
    blend_size: int = 128
    blend_chs: int = 32
    blend_grid: int = 32

    def __post_init__(self) -> None:
        if len(self.chs) != len(self.blocks) or len(self.chs) < 2:
            raise ValueError("chs and blocks need one entry per scale, at least two scales")

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this (one halving per scale)."""
        return 2 ** (len(self.chs) - 1)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FidelityConfig:
        data: dict[str, Any] = json.loads(text)
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


#: A tiny config for tests.
TINY_FIDELITY = FidelityConfig(chs=(8, 16), blocks=(1, 1), work_size=64, blend_size=32, blend_chs=8, blend_grid=8)


class ResBlock(nn.Module):
    """conv-LeakyReLU-conv with an identity skip; no normalisation (it would shift colours)."""

    def __init__(self, chs: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(chs, chs, 3, padding=1)
        self.conv2 = nn.Conv2d(chs, chs, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class FidelityNet(nn.Module):
    """Residual U-Net: output = input + correction, images in [-1, 1], any side that is a
    multiple of ``config.multiple``. The last convolution starts at zero, so an untrained
    network is the identity and training only ever learns what to change."""

    def __init__(self, config: FidelityConfig = FidelityConfig()) -> None:
        super().__init__()
        self.config = config
        chs, blocks = config.chs, config.blocks
        self.head = nn.Conv2d(3, chs[0], 3, padding=1)
        # chs and blocks have one entry per scale (FidelityConfig checks it).
        self.down_blocks = nn.ModuleList(
            nn.Sequential(*[ResBlock(c) for _ in range(n)]) for c, n in zip(chs, blocks, strict=True)
        )
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in pairwise(chs))
        self.ups = nn.ModuleList(nn.Conv2d(b, a, 3, padding=1) for a, b in pairwise(chs))
        self.up_blocks = nn.ModuleList(
            nn.Sequential(*[ResBlock(c) for _ in range(n)]) for c, n in zip(chs[:-1], blocks[:-1], strict=True)
        )
        self.tail = nn.Conv2d(chs[0], 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        if self.tail.bias is not None:  # always: the convolution has a bias
            nn.init.zeros_(self.tail.bias)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        """What the network adds to ``x`` (B,3,H,W) in [-1, 1]."""
        h = self.head(x)
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h)
            if i < len(self.downs):
                skips.append(h)
                h = F.leaky_relu(self.downs[i](h), 0.2)
        for i in reversed(range(len(self.ups))):
            # Convolve at the coarse scale, then upsample: a quarter of the cost at the fine one.
            h = F.interpolate(F.leaky_relu(self.ups[i](h), 0.2), scale_factor=2.0, mode="nearest")
            h = self.up_blocks[i](h + skips[i])
        return self.tail(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.correction(x)


class RegionBlend(nn.Module):
    """How much of the generative output each region of the face needs, in [0, 1].

    Reads the input, the fidelity output and the generative output at ``blend_size`` and measures,
    region by region, six energies that tell damage apart from content (``features``): the
    fine and the mid-frequency detail the input and the fidelity face hold (blur takes the fine
    band first, so their ratio says how blurred a region is whatever it shows), how much the
    fidelity network had to change, and how far the two paths disagree. A small convolutional
    head maps them to a (B,1,grid,grid) map; the engine upsamples it smoothly to the face.
    """

    n_features = 6

    def __init__(self, config: FidelityConfig = FidelityConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.blend_chs
        self.head = nn.Sequential(
            nn.Conv2d(self.n_features, c, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, c, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 1, 1),
        )

    def features(self, lq: torch.Tensor, fidelity: torch.Tensor, generative: torch.Tensor) -> torch.Tensor:
        """(B, 6, grid, grid) log-energies of the three images (B,3,H,W) in [-1, 1]."""
        size = (self.config.blend_size, self.config.blend_size)
        lq, fid, gen = (
            F.interpolate(t, size=size, mode="area").mean(1, keepdim=True) for t in (lq, fidelity, generative)
        )
        maps = []
        for image in (lq, fid):
            fine = detail_band(image, 1.0)
            maps += [fine, detail_band(image, 3.0) - fine]
        maps += [fid - lq, gen - fid]
        cell = self.config.blend_size // self.config.blend_grid
        energy = F.avg_pool2d(torch.cat(maps, 1) ** 2, cell)
        energy = F.avg_pool2d(energy, 3, stride=1, padding=1, count_include_pad=False)
        return torch.log10(energy + 1e-5)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(features))

    def forward(self, lq: torch.Tensor, fidelity: torch.Tensor, generative: torch.Tensor) -> torch.Tensor:
        return self.predict(self.features(lq, fidelity, generative))


def slider_weight(damage: torch.Tensor, w: float) -> torch.Tensor:
    """The share of the generative output at slider ``w``: 1 at w = 0 (purely generative), the
    learned ``damage`` map at the default w = 0.5, 0 at w = 1 (the fidelity path alone).

    Piecewise linear in w and, for any damage, never increasing: moving the slider toward
    "closer to the original" never adds generated content anywhere.
    """
    w = min(max(float(w), 0.0), 1.0)
    if w <= 0.5:
        return damage + (1.0 - damage) * (1.0 - 2.0 * w)
    return damage * (2.0 - 2.0 * w)


def detail_sigma(side: int, generative_size: int) -> float:
    """Gaussian σ (pixels at ``side``) below which a face made at ``generative_size`` holds nothing:
    the band its upsampling left empty."""
    factor = side / generative_size
    return 0.5 * math.sqrt(factor**2 - 1) if factor > 1 else 0.0


def detail_band(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``image`` minus its Gaussian blur of ``sigma``: the fine detail (B,C,H,W), 0 when σ = 0."""
    if sigma <= 0:
        return torch.zeros_like(image)
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(image.shape[1], 1, 1, 1)
    blurred = F.pad(image, (radius, radius, 0, 0), mode="reflect")
    blurred = F.conv2d(blurred, k, groups=image.shape[1])
    blurred = F.pad(blurred, (0, 0, radius, radius), mode="reflect")
    blurred = F.conv2d(blurred, k.transpose(2, 3), groups=image.shape[1])
    return image - blurred


def mix(
    fidelity: torch.Tensor, generative: torch.Tensor, share: torch.Tensor, generative_size: int, detail: float = 1.0
) -> torch.Tensor:
    """``share`` (B,1,h,w, any h,w) of the generative face, the rest fidelity, per pixel.

    A generative network that works below the face's size (likeness-lite: 128² for a 512 face)
    gives a face without fine detail; ``detail`` × the fidelity face's detail above that
    network's resolution is added to it, so generated regions keep the texture the photo has
    instead of turning waxy. Images in any range, (B,3,H,W) of one size.
    """
    side = fidelity.shape[-1]
    share = F.interpolate(share, size=fidelity.shape[-2:], mode="bilinear", align_corners=False)
    detailed = generative
    if detail > 0:
        detailed = generative + detail * detail_band(fidelity, detail_sigma(side, generative_size))
    return share * detailed + (1 - share) * fidelity


def slider_detail(w: float) -> float:
    """How much fine detail of the fidelity face generated regions get at slider ``w``: none at
    w = 0, so the purely generative face stays reachable; all of it from the default w = 0.5."""
    return min(1.0, max(0.0, 2.0 * float(w)))


class FidelityModel(nn.Module):
    """The fidelity U-Net and the region blend, saved and loaded together."""

    def __init__(self, config: FidelityConfig = FidelityConfig()) -> None:
        super().__init__()
        self.config = config
        self.net = FidelityNet(config)
        self.blend = RegionBlend(config)


def save_fidelity(model: FidelityModel, path: str | Path, *, half: bool = True, metadata: dict | None = None) -> None:
    """Writes ``model`` as safetensors with its config in the header (fp16 by default)."""
    from safetensors.torch import save_file

    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    meta = {CONFIG_METADATA_KEY: model.config.to_json(), **{k: str(v) for k, v in (metadata or {}).items()}}
    save_file(state, str(path), metadata=meta)


def load_fidelity(path: str | Path) -> FidelityModel:
    """A :class:`FidelityModel` in float32 from a file written by ``save_fidelity``.

    Raises CheckpointFormatError naming the file when it is not one.
    """
    from .safetensors_file import read_safetensors

    path = Path(path)
    if not path.is_file():
        raise CheckpointFormatError(f"{path}: file not found")
    state, meta = read_safetensors(path)
    if CONFIG_METADATA_KEY not in meta:
        raise CheckpointFormatError(f"{path}: not a Likeness fidelity model (no {CONFIG_METADATA_KEY} in its header)")
    try:
        model = FidelityModel(FidelityConfig.from_json(meta[CONFIG_METADATA_KEY]))
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointFormatError(f"{path}: fidelity weights do not match their config ({exc})") from None
    return model.eval()
