"""Stage II: the lookup transformer learns to predict the HQ face's codes from its LQ version.

Codebook and generator are frozen and E_L starts from E_H; a frozen copy of E_H gives the
ground-truth codes of the HQ face:
``λ_token·CE(logits, codes_HQ) + λ_feat·‖Z_l − sg(Z_c)‖² + λ_ids·L_ids``. L_ids decodes the
predicted codes through the frozen generator with a straight-through softmax (forward: argmax
codes as at inference; backward: through softmax(logits) @ codebook), so it reaches T and E_L.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from engine.nets.codeformer import CodeFormer

from .. import data as D
from ..configs import TrainConfig
from ..loop import StageLosses, StepLoss
from .terms import IdentityTerm


class Lookup(NamedTuple):
    """The code-prediction part of stages II and III."""

    loss: torch.Tensor  # λ_token·CE + λ_feat·L2
    logs: dict[str, float]
    feats: tuple[torch.Tensor, ...]  # the LQ encoder's latent and skip features
    logits: torch.Tensor  # (B, tokens, codebook_size)


def straight_through_quant(net: CodeFormer, logits: torch.Tensor) -> torch.Tensor:
    """Forward: argmax codes' features (as at inference); backward: softmax(logits) @ codebook."""
    cb = net.quantize.embedding.weight
    side = net.config.latent_side
    soft = logits.float().softmax(-1) @ cb  # B, HW, d
    hard = F.embedding(logits.argmax(-1), cb)
    q = soft + (hard - soft).detach()
    return q.transpose(1, 2).reshape(logits.shape[0], cb.shape[1], side, side)


class LookupLosses(StageLosses):
    """Stage II objective.

    Args:
        net: the network; the codebook and generator are frozen.
        hq_encoder: frozen E_H, which gives the HQ face's codes.
        config: the stage config (``token_weight``, ``feat_weight``).
        identity: the identity term, or None when ``ids_weight`` is 0.
    """

    def __init__(
        self, net: CodeFormer, hq_encoder: nn.Module, config: TrainConfig, identity: IdentityTerm | None
    ) -> None:
        self.net = net
        self.hq_encoder = hq_encoder
        self.cfg = config
        self.identity = identity

    def lookup(self, hq: torch.Tensor, lq: torch.Tensor) -> Lookup:
        """CE on the HQ face's codes + L2 to its code features."""
        net, cfg = self.net, self.cfg
        with torch.no_grad():
            z_h = self.hq_encoder(hq)
            gt_codes = net.quantize.nearest_codes(z_h)
            z_c = net.quantize.lookup(gt_codes, cfg.model_config.latent_side)
        feats = net.encode_features(lq)
        logits = net.predict_logits(feats[0])
        ce = F.cross_entropy(logits.flatten(0, 1).float(), gt_codes.flatten())
        feat = F.mse_loss(feats[0], z_c)
        loss = cfg.token_weight * ce + cfg.feat_weight * feat
        acc = (logits.argmax(-1) == gt_codes).float().mean().item()
        return Lookup(loss, {"ce": ce.item(), "feat": feat.item(), "acc": acc}, feats, logits)

    def __call__(self, batch: D.Batch, step: int) -> StepLoss:
        hq = batch.hq
        loss, logs, feats, logits = self.lookup(hq, batch.lq)
        out = None
        if self.identity is not None:
            n = self.identity.batch_faces(hq.shape[0])
            quant = straight_through_quant(self.net, logits[:n])
            out = self.net.decode_features(quant, tuple(f[:n] for f in feats), w=0, adain_latent=True)
            ids, id_logs = self.identity(out, hq[:n])
            loss = loss + ids
            logs.update(id_logs)
        return StepLoss(loss, logs, out)
