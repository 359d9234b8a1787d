"""Stage III: the controllable feature transformation (CFT) at fidelity w = 1.

The stage II losses, plus L1 + perceptual + adversarial + identity on the restored image,
decoded from the predicted codes by the straight-through softmax. Codebook and generator stay
frozen; the CFT blocks learn how much of the LQ encoder's features to let through.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.network import FuseSFTBlock

from .. import data as D
from ..configs import TrainConfig
from ..loop import StepLoss
from .stage2 import LookupLosses, straight_through_quant
from .terms import Adversary, IdentityTerm, ImageLoss, adversarial_loss, conv_weight, identity_loss


class CFTLosses(LookupLosses):
    """Stage III objective (``LookupLosses`` plus the image terms on the decoded face)."""

    def __init__(
        self,
        net: CodeFormer,
        hq_encoder: nn.Module,
        config: TrainConfig,
        identity: IdentityTerm | None,
        image_loss: ImageLoss,
        adversary: Adversary | None,
    ) -> None:
        super().__init__(net, hq_encoder, config, identity)
        self.image_loss = image_loss
        self.adversary = adversary

    def last_cft_layer(self) -> torch.Tensor:
        """The weight the adaptive adversarial weight is measured at: the last CFT shift conv."""
        fuse = cast(FuseSFTBlock, self.net.fuse_convs_dict[str(max(self.cfg.model_config.connect_list))])
        return conv_weight(fuse.shift[-1])

    def __call__(self, batch: D.Batch, step: int) -> StepLoss:
        cfg = self.cfg
        hq = batch.hq
        loss, logs, feats, logits = self.lookup(hq, batch.lq)
        quant = straight_through_quant(self.net, logits)
        out = self.net.decode_features(quant, feats, w=cfg.fidelity_w, adain_latent=True)
        img_loss, img_logs = self.image_loss(out, hq)
        adv, adv_logs = adversarial_loss(self.adversary, img_loss, out, self.last_cft_layer(), step)
        ids, id_logs = identity_loss(self.identity, out, hq)
        logs.update(img_logs, **adv_logs, **id_logs)
        return StepLoss(loss + img_loss + adv + ids, logs, out)

    def after_update(self, batch: D.Batch, out: torch.Tensor | None, step: int) -> dict[str, float]:
        if self.adversary is None or out is None:
            return {}
        return self.adversary.step(batch.hq, out, step)
