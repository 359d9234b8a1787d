"""ArcFace (insightface iresnet) identity backend, from a checkpoint installed through the model store.

Network: the improved ResNet ("iresnet") of insightface's ``recognition/arcface_torch``
(Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019;
code MIT). Its trained weights (e.g. ``ms1mv3_arcface_r100_fp16/backbone.pth``) are published by
insightface for non-commercial research only, so they are never bundled: the catalogue record
``arcface-r100`` says where they come from and the user installs them into the store.

Checkpoint: a plain ``state_dict`` (optionally under ``module.``/``state_dict``) with keys
``conv1``, ``bn1``, ``prelu``, ``layer1..4.<i>.{bn1,conv1,bn2,prelu,conv2,bn3,downsample}``,
``bn2``, ``fc``, ``features``. The depth is deduced from the number of blocks per stage
(r18 2-2-2-2, r34 3-4-6-3, r50 3-4-14-3, r100 3-13-30-3, r200 6-26-60-6), the embedding size
from ``fc.weight``. Input: 112x112 RGB on the ArcFace five-point template scaled to [-1,1]
(``(x/255 - 0.5)/0.5``, the same as our faces), output 512-D, normalised here.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointFormatError, ModelMissingError
from .crops import arcface_crop
from .embedders import IdentityEmbedder, register_embedder

MODEL_ID = "arcface-r100"
DOWNLOAD_PAGE = "https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch#model-zoo"
DEPTHS = {(2, 2, 2, 2): "r18", (3, 4, 6, 3): "r34", (3, 4, 14, 3): "r50", (3, 13, 30, 3): "r100", (6, 26, 60, 6): "r200"}
REQUIRED_KEYS = ("conv1.weight", "prelu.weight", "layer1.0.bn1.weight", "bn2.weight", "fc.weight", "features.weight")


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
        self.downsample = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), nn.BatchNorm2d(out_chs, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface's iresnet for 112x112 faces.

    Args:
        layers: Blocks per stage, e.g. (3, 13, 30, 3) for r100.
        num_features: Embedding size.
    """

    def __init__(self, *, layers: tuple[int, int, int, int] = (3, 13, 30, 3), num_features: int = 512) -> None:
        super().__init__()
        self.layers_cfg = tuple(layers)
        self.num_features = num_features
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        chs = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            stage = [IBasicBlock(chs, planes, 2)] + [IBasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            chs = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.bn2(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(self.dropout(torch.flatten(x, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state: dict) -> dict[str, torch.Tensor]:
    """Unwrap ``state_dict``/``model`` containers and strip DataParallel's ``module.`` prefix."""
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointFormatError("an iresnet checkpoint is a state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def is_iresnet(state: dict) -> bool:
    return all(k in state for k in REQUIRED_KEYS)


def iresnet_config(state: dict) -> tuple[tuple[int, int, int, int], int]:
    """(blocks per stage, embedding size) deduced from the keys and shapes."""
    blocks = []
    for stage in range(1, 5):
        idx = {int(m.group(1)) for k in state if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        if not idx:
            raise CheckpointFormatError(f"iresnet checkpoint without layer{stage}")
        blocks.append(max(idx) + 1)
    return tuple(blocks), int(state["fc.weight"].shape[0])  # type: ignore[return-value]


def load_iresnet(path: Path | str) -> IResNet:
    """Read an insightface iresnet ``backbone.pth`` into an eval-mode, frozen ``IResNet``."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not a checkpoint we can read"
        raise CheckpointFormatError(f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err})") from err
    state = checkpoint_filter_fn(state)
    if not is_iresnet(state):
        raise CheckpointFormatError(f"{path} is not an insightface iresnet checkpoint (keys {', '.join(REQUIRED_KEYS)} expected)")
    layers, dim = iresnet_config(state)
    net = IResNet(layers=layers, num_features=dim)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointFormatError(f"{path}: iresnet {DEPTHS.get(layers, layers)} weights do not fit: {err}") from err
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class ArcFaceEmbedder(IdentityEmbedder):
    """ArcFace iresnet on the 112 template (512-D).

    Args:
        device: Torch device.
        store: The model store to read ``arcface-r100`` from; the user's store when None.
        model_id: Catalogue id (or imported name) of the checkpoint.
    """

    name = "arcface"

    def __init__(self, device: str | torch.device = "cpu", store=None, model_id: str = MODEL_ID) -> None:
        super().__init__(device)
        if store is None:
            from ..models.store import ModelStore

            store = ModelStore()
        try:
            path = store.path(model_id)
        except ModelMissingError as err:
            record = store.catalogue.get(model_id)
            file = store.root / record.file if record is not None else None
            raise ModelMissingError(
                f"{err} The ArcFace weights (insightface iresnet backbone.pth; non-commercial research use "
                f"only) have no direct download: get one from {DOWNLOAD_PAGE}"
                + (f" and save it as {file}" if file is not None else "")
                + f", or run `likeness models import backbone.pth --name {model_id}`."
            ) from None
        self.net = load_iresnet(path).to(self.device)
        self.dim = self.net.num_features
        self.crop = arcface_crop(112)

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        x = faces.to(self.device, torch.float32)
        return F.normalize(self.net(self.crop(x)), dim=-1)

    def to(self, device: str | torch.device) -> "ArcFaceEmbedder":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self


register_embedder("arcface", lambda device, store: ArcFaceEmbedder(device, store))
