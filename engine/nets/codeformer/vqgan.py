"""VQGAN backbone of CodeFormer: encoder, nearest-code quantizer, generator.

Follows the layout of the official CodeFormer ``vqgan_arch.py`` (S-Lab, Zhou et al. 2022) so
that its released ``params_ema`` state dict loads without any key remapping: the module order,
the attribute names and the block indices inside ``blocks`` lists are part of that format.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """Pre-activation residual block; a 1x1 ``conv_out`` matches channels when they change."""

    def __init__(self, in_chs: int, out_chs: int, groups: int = 32) -> None:
        super().__init__()
        self.in_chs, self.out_chs = in_chs, out_chs
        self.norm1 = group_norm(in_chs, groups)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, padding=1)
        self.norm2 = group_norm(out_chs, groups)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1)
        if in_chs != out_chs:
            self.conv_out = nn.Conv2d(in_chs, out_chs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.in_chs != self.out_chs:
            x = self.conv_out(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 q/k/v projections."""

    def __init__(self, chs: int, groups: int = 32) -> None:
        super().__init__()
        self.norm = group_norm(chs, groups)
        self.q = nn.Conv2d(chs, chs, 1)
        self.k = nn.Conv2d(chs, chs, 1)
        self.v = nn.Conv2d(chs, chs, 1)
        self.proj_out = nn.Conv2d(chs, chs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, height, width = h.shape
        q, k, v = (proj(h).flatten(2).transpose(1, 2) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        out = out.transpose(1, 2).reshape(b, c, height, width)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 conv with the official asymmetric (right/bottom) zero padding."""

    def __init__(self, chs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(chs, chs, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 followed by a 3x3 conv."""

    def __init__(self, chs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(chs, chs, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    """Image → latent grid of ``emb_dim`` channels, ``2**(levels-1)`` times smaller.

    ``level_ends[size]`` is the index in ``blocks`` of the last residual block at that feature
    size: where CFT taps the encoder's skip features.
    """

    def __init__(
        self,
        in_chs: int,
        nf: int,
        emb_dim: int,
        ch_mult: tuple[int, ...],
        res_blocks: int,
        img_size: int,
        attn_resolutions: tuple[int, ...],
        groups: int = 32,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(in_chs, nf, 3, padding=1)]
        self.level_ends: dict[int, int] = {}
        size, chs = img_size, nf
        for level, mult in enumerate(ch_mult):
            for _ in range(res_blocks):
                blocks.append(ResBlock(chs, nf * mult, groups))
                chs = nf * mult
                self.level_ends[size] = len(blocks) - 1
                if size in attn_resolutions:
                    blocks.append(AttnBlock(chs, groups))
            if level != len(ch_mult) - 1:
                blocks.append(Downsample(chs))
                size //= 2
        blocks += [
            ResBlock(chs, chs, groups),
            AttnBlock(chs, groups),
            ResBlock(chs, chs, groups),
            group_norm(chs, groups),
            nn.Conv2d(chs, emb_dim, 3, padding=1),
        ]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Generator(nn.Module):
    """Latent grid → image; the mirror of :class:`Encoder`.

    ``fuse_points[size]`` is the index in ``blocks`` after which CFT modulates features of that
    size: the first residual block of a level, or its last one where the level has attention
    (the official placement).
    """

    def __init__(
        self,
        nf: int,
        emb_dim: int,
        ch_mult: tuple[int, ...],
        res_blocks: int,
        img_size: int,
        attn_resolutions: tuple[int, ...],
        groups: int = 32,
        out_chs: int = 3,
    ) -> None:
        super().__init__()
        chs = nf * ch_mult[-1]
        size = img_size // 2 ** (len(ch_mult) - 1)
        blocks: list[nn.Module] = [
            nn.Conv2d(emb_dim, chs, 3, padding=1),
            ResBlock(chs, chs, groups),
            AttnBlock(chs, groups),
            ResBlock(chs, chs, groups),
        ]
        self.fuse_points: dict[int, int] = {}
        for level in reversed(range(len(ch_mult))):
            level_res: list[int] = []
            for _ in range(res_blocks):
                blocks.append(ResBlock(chs, nf * ch_mult[level], groups))
                chs = nf * ch_mult[level]
                level_res.append(len(blocks) - 1)
                if size in attn_resolutions:
                    blocks.append(AttnBlock(chs, groups))
            self.fuse_points[size] = level_res[-1] if size in attn_resolutions else level_res[0]
            if level != 0:
                blocks.append(Upsample(chs))
                size *= 2
        blocks += [group_norm(chs, groups), nn.Conv2d(chs, out_chs, 3, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class VectorQuantizer(nn.Module):
    """Nearest-code (L2) quantizer with the VQ-VAE code loss and straight-through gradients."""

    def __init__(self, codebook_size: int, dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.codebook_size, self.dim, self.beta = codebook_size, dim, beta
        self.embedding = nn.Embedding(codebook_size, dim)
        self.embedding.weight.data.uniform_(-1.0 / codebook_size, 1.0 / codebook_size)

    def nearest_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Indices (B, H*W) of the nearest code to each feature vector of ``z`` (B, C, H, W)."""
        # float32 without autocast: |z|² + |c|² − 2 z·c cancels badly in bf16/fp16 and picks wrong codes
        with torch.autocast(z.device.type, enabled=False):
            flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim).float()
            codebook = self.embedding.weight.float()
            dist = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        return dist.argmin(1).view(z.shape[0], -1)

    def lookup(self, codes: torch.Tensor, side: int) -> torch.Tensor:
        """Code features (B, C, side, side) for indices (B, side*side)."""
        feat = F.embedding(codes, self.embedding.weight)  # B, HW, C
        return feat.transpose(1, 2).reshape(codes.shape[0], self.dim, side, side)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (straight-through quantized z, code loss, code indices)."""
        codes = self.nearest_codes(z)
        z_q = self.lookup(codes, z.shape[-1])
        loss = F.mse_loss(z_q.detach(), z) * self.beta + F.mse_loss(z_q, z.detach())
        return z + (z_q - z).detach(), loss, codes
