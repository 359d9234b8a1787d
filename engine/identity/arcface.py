"""ArcFace (insightface iresnet) identity backend, from a checkpoint installed through the model store.

Network: the improved ResNet ("iresnet") of insightface's ``recognition/arcface_torch``
(Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019;
code MIT), built and loaded by ``engine.nets.iresnet`` (the network registry knows it as
``iresnet``). Its trained weights (e.g. ``ms1mv3_arcface_r100_fp16/backbone.pth``) are published
by insightface for non-commercial research only, so they are never bundled: the catalogue record
``arcface-r100`` says where they come from and the user installs them into the store.

Input: 112x112 RGB on the ArcFace five-point template scaled to [-1,1] (``(x/255 - 0.5)/0.5``,
the same as our faces), output 512-D, normalised here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ModelMissingError
from ..models.store import ModelStore
from ..nets.iresnet import DEPTHS, REQUIRED_KEYS, IBasicBlock, IResNet, iresnet_config, is_iresnet, load_iresnet
from .crops import arcface_crop
from .embedders import IdentityEmbedder, register_embedder

MODEL_ID = "arcface-r100"
DOWNLOAD_PAGE = "https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch#model-zoo"

# The network lives in engine.nets.iresnet; these names stay importable from here.
__all__ = [
    "DEPTHS",
    "DOWNLOAD_PAGE",
    "MODEL_ID",
    "REQUIRED_KEYS",
    "ArcFaceEmbedder",
    "IBasicBlock",
    "IResNet",
    "iresnet_config",
    "is_iresnet",
    "load_iresnet",
]


class ArcFaceEmbedder(IdentityEmbedder):
    """ArcFace iresnet on the 112 template (512-D).

    Args:
        device: Torch device.
        store: The model store to read ``arcface-r100`` from; the user's store when None.
        model_id: Catalogue id (or imported name) of the checkpoint.
    """

    name = "arcface"

    def __init__(
        self, device: str | torch.device = "cpu", store: ModelStore | None = None, model_id: str = MODEL_ID
    ) -> None:
        super().__init__(device)
        if store is None:
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

    def to(self, device: str | torch.device) -> ArcFaceEmbedder:
        self.device = torch.device(device)
        self.net.to(self.device)
        return self


register_embedder("arcface", lambda device, store: ArcFaceEmbedder(device, store))
