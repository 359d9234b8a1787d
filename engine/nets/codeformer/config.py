"""One config describes every CodeFormer-family network Likeness builds.

The official 512 model and the compact bundled models come from the same code: only this
record differs. It is stored in the JSON header of the project's own safetensors files.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CodeFormerConfig:
    """Hyper-parameters of VQGAN backbone + lookup transformer + CFT.

    Args:
        img_size: side of the aligned face the network takes (512 for the official model).
        nf: base channel width; level ``i`` has ``nf * ch_mult[i]`` channels.
        ch_mult: channel multipliers per resolution level; ``len(ch_mult) - 1`` halvings.
        res_blocks: residual blocks per level in encoder and generator.
        attn_resolutions: resolutions (in pixels of the feature map) with self-attention.
        codebook_size: number of codes N.
        codebook_dim: code dimension d (the encoder's output channels).
        dim_embd: transformer width.
        n_head: attention heads.
        n_layers: transformer layers.
        dim_mlp: transformer MLP width (official: 2 * dim_embd).
        connect_list: feature-map sizes where CFT fuses encoder into generator features.
        norm_groups: GroupNorm groups (32 in the official model; fewer for tiny test configs).
    """

    img_size: int = 512
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    codebook_size: int = 1024
    codebook_dim: int = 256
    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    dim_mlp: int = 1024
    connect_list: tuple[int, ...] = (32, 64, 128, 256)
    norm_groups: int = 32

    def __post_init__(self) -> None:
        levels = len(self.ch_mult)
        if self.img_size % (2 ** (levels - 1)):
            raise ValueError(f"img_size {self.img_size} is not divisible by 2**{levels - 1}")
        for c in {self.nf * m for m in self.ch_mult} | {self.nf}:
            if c % self.norm_groups:
                raise ValueError(f"{c} channels are not divisible by norm_groups={self.norm_groups}")
        for size in self.connect_list:
            if size not in self.level_sizes or size == self.latent_side:
                raise ValueError(f"connect size {size} is not a decoder level of {self.level_sizes}")

    @property
    def latent_side(self) -> int:
        """Side of the token grid (16 for the official model: 512 / 2**5)."""
        return self.img_size // 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_size(self) -> int:
        """Number of tokens the transformer sees."""
        return self.latent_side**2

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """Feature-map side at each level, from the input resolution down."""
        return tuple(self.img_size // 2**i for i in range(len(self.ch_mult)))

    def channels_at(self, size: int) -> int:
        """Channels of encoder/generator features whose side is ``size``."""
        return self.nf * self.ch_mult[self.level_sizes.index(size)]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> CodeFormerConfig:
        data: dict[str, Any] = json.loads(text) if isinstance(text, str) else dict(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CodeFormer config fields: {sorted(unknown)}")
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


#: The released CodeFormer (v0.1.0): 94.1 M parameters, 515 state-dict keys.
OFFICIAL = CodeFormerConfig()

#: A few-channel 64 px network for unit tests: same code paths, milliseconds per step.
TINY = CodeFormerConfig(
    img_size=64,
    nf=8,
    ch_mult=(1, 2, 2, 4),
    res_blocks=1,
    attn_resolutions=(8,),
    codebook_size=32,
    codebook_dim=16,
    dim_embd=128,
    n_head=2,
    n_layers=2,
    dim_mlp=256,
    connect_list=(16, 32),
    norm_groups=8,
)
