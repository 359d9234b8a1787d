"""insightface's improved ResNet ("iresnet"), the ArcFace backbone, and its checkpoints.

Network: the iresnet of insightface's ``recognition/arcface_torch`` (Deng et al., "ArcFace:
Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019; code MIT), as facexlib ships
it too. Checkpoint: a plain ``state_dict`` (optionally under ``module.``/``state_dict``) with keys
``conv1``, ``bn1``, ``prelu``, ``layer1..4.<i>.{bn1,conv1,bn2,prelu,conv2,bn3,downsample}``,
``bn2``, ``fc``, ``features``. The depth is deduced from the number of blocks per stage
(r18 2-2-2-2, r34 3-4-6-3, r50 3-4-14-3, r100 3-13-30-3, r200 6-26-60-6), the embedding size
from ``fc.weight``. Input: 112x112 RGB scaled to [-1, 1]. The identity backend that uses it is
``engine.identity.arcface``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointFormatError
from .state_dict import read_checkpoint

Layers = tuple[int, int, int, int]

DEPTHS: dict[Layers, str] = {
    (2, 2, 2, 2): "r18",
    (3, 4, 6, 3): "r34",
    (3, 4, 14, 3): "r50",
    (3, 13, 30, 3): "r100",
    (6, 26, 60, 6): "r200",
}
REQUIRED_KEYS = ("conv1.weight", "prelu.weight", "layer1.0.bn1.weight", "bn2.weight", "fc.weight", "features.weight")
#: Side of the square face the network takes (its head flattens a 7x7 feature map).
INPUT_SIZE = 112


@dataclass(frozen=True)
class IResNetConfig:
    """Hyper-parameters of an iresnet, all recoverable from a state dict's keys and shapes.

    Args:
        layers: Blocks per stage, e.g. (3, 13, 30, 3) for r100.
        num_features: Embedding size.
    """

    layers: Layers = (3, 13, 30, 3)
    num_features: int = 512

    @property
    def depth(self) -> str:
        """insightface's name of the depth ("r100"), or the blocks per stage when it has none."""
        return DEPTHS.get(self.layers, str(self.layers))

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> IResNetConfig:
        layers, num_features = iresnet_config(state)
        return cls(layers, num_features)


class IBasicBlock(nn.Module):
    """Pre-activation residual block: BN, conv3x3, BN, PReLU, conv3x3 (stride), BN, plus shortcut.

    Args:
        in_chs: Input channels.
        out_chs: Output channels.
        stride: Stride of the second convolution (and of the shortcut).
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs, eps=1e-5)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs, eps=1e-5)
        self.prelu = nn.PReLU(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_chs, eps=1e-5)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), nn.BatchNorm2d(out_chs, eps=1e-5)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface's iresnet for 112x112 faces.

    Args:
        layers: Blocks per stage, e.g. (3, 13, 30, 3) for r100.
        num_features: Embedding size.
    """

    # Stages are set with setattr in __init__ (their names are the checkpoint's).
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, *, layers: Layers = (3, 13, 30, 3), num_features: int = 512) -> None:
        super().__init__()
        self.layers_cfg = tuple(layers)
        self.num_features = num_features
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        chs = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True), start=1):
            stage = [IBasicBlock(chs, planes, 2)] + [IBasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            chs = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    @classmethod
    def from_config(cls, config: IResNetConfig) -> IResNet:
        return cls(layers=config.layers, num_features=config.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.bn2(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(self.dropout(torch.flatten(x, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def is_iresnet(state: Mapping[str, object]) -> bool:
    """Whether a (canonical) state dict has the keys of an iresnet."""
    return all(k in state for k in REQUIRED_KEYS)


def iresnet_config(state: Mapping[str, Any]) -> tuple[Layers, int]:
    """(blocks per stage, embedding size) deduced from the keys and shapes."""
    blocks: list[int] = []
    for stage in range(1, 5):
        idx = {int(m.group(1)) for k in state if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        if not idx:
            raise CheckpointFormatError(f"iresnet checkpoint without layer{stage}")
        blocks.append(max(idx) + 1)
    layers: Layers = (blocks[0], blocks[1], blocks[2], blocks[3])
    return layers, int(state["fc.weight"].shape[0])


def iresnet_from_state(state: Mapping[str, torch.Tensor], config: IResNetConfig, source: str | Path) -> IResNet:
    """An eval-mode, frozen ``IResNet`` of ``config`` holding ``state``; CheckpointFormatError
    naming ``source`` when the weights do not fit."""
    net = IResNet.from_config(config)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointFormatError(f"{source}: iresnet {config.depth} weights do not fit: {err}") from err
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def load_iresnet(path: Path | str) -> IResNet:
    """Read an insightface iresnet ``backbone.pth`` into an eval-mode, frozen ``IResNet``."""
    state, _ = read_checkpoint(path, expected="an insightface iresnet checkpoint (backbone.pth)")
    if not is_iresnet(state):
        raise CheckpointFormatError(
            f"{path} is not an insightface iresnet checkpoint (keys {', '.join(REQUIRED_KEYS)} expected)"
        )
    return iresnet_from_state(state, IResNetConfig.from_state(state), path)
