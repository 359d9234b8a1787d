"""Stage I: the VQGAN on HQ faces, and the upkeep that keeps its codebook in use.

L1 + perceptual + λ_adv·adaptive-weighted hinge GAN loss + code loss (β = 0.25, inside
``VectorQuantizer``). Code usage is counted; codes unused for ``reseed_every`` steps are
re-seeded from encoder outputs of the current batch, and the codebook is seeded from encoder
outputs at step 0 instead of its tiny uniform init: without both, most codes never win a
lookup and the codebook collapses to a handful of entries.
"""

from __future__ import annotations

import torch

from engine.nets.codeformer import CodeFormer

from .. import data as D
from ..configs import TrainConfig
from ..loop import StageLosses, StepLoss
from .terms import Adversary, ImageLoss, adversarial_loss, conv_weight


def _flat_latents(z: torch.Tensor) -> torch.Tensor:
    """Encoder outputs (B, d, h, w) as CPU rows (B·h·w, d): the seeded draws are CPU-side."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float().cpu()


class VQGANLosses(StageLosses):
    """Stage I objective.

    Args:
        net: the network; stage I trains its encoder, quantizer and generator.
        config: the stage config (weights, seed, ``seed_codebook``, ``reseed_every``).
        image_loss: L1 + perceptual of the reconstruction.
        adversary: the discriminator, or None when ``adv_weight`` is 0.
        opt: the generator's optimiser (re-seeded codes lose their Adam moments).
        code_counts: lookups per code since the last re-seed, updated in place (checkpointed).
    """

    def __init__(
        self,
        net: CodeFormer,
        config: TrainConfig,
        image_loss: ImageLoss,
        adversary: Adversary | None,
        opt: torch.optim.Optimizer,
        code_counts: torch.Tensor,
    ) -> None:
        self.net = net
        self.cfg = config
        self.image_loss = image_loss
        self.adversary = adversary
        self.opt = opt
        self.code_counts = code_counts

    def __call__(self, batch: D.Batch, step: int) -> StepLoss:
        net, cfg = self.net, self.cfg
        hq = batch.hq
        z = net.encoder(hq)
        if step == 0 and cfg.seed_codebook:
            self.seed_codebook(z.detach())
        zq, code_loss, codes = net.quantize(z)
        self.code_counts += torch.bincount(codes.flatten().cpu(), minlength=self.code_counts.numel())
        rec = net.generator(zq)
        rec_loss, logs = self.image_loss(rec, hq)
        adv, adv_logs = adversarial_loss(self.adversary, rec_loss, rec, conv_weight(net.generator.blocks[-1]), step)
        loss = rec_loss + adv + cfg.code_weight * code_loss
        logs.update(adv_logs, code=code_loss.item())
        return StepLoss(loss, logs, rec)

    def after_update(self, batch: D.Batch, out: torch.Tensor | None, step: int) -> dict[str, float]:
        if self.adversary is None or out is None:
            return {}
        return self.adversary.step(batch.hq, out, step)

    def after_step(self, batch: D.Batch, step: int) -> dict[str, float]:
        if not (self.cfg.reseed_every and step % self.cfg.reseed_every == 0):
            return {}
        used = int((self.code_counts > 0).sum())
        return {"codes_used": used, "reseeded": self.reseed_dead_codes(batch, step)}

    @torch.no_grad()
    def seed_codebook(self, z: torch.Tensor) -> None:
        """Every code becomes a random encoder output of the first batch (plus 1 % noise)."""
        flat = _flat_latents(z)
        n = self.net.quantize.embedding.weight.shape[0]
        g = torch.Generator().manual_seed(self.cfg.seed)
        idx = torch.randint(0, flat.shape[0], (n,), generator=g)
        noise = torch.randn(n, flat.shape[1], generator=g) * flat.std() * 0.01
        w = self.net.quantize.embedding.weight
        w.copy_(flat[idx].add(noise).to(w.device, w.dtype))

    @torch.no_grad()
    def reseed_dead_codes(self, batch: D.Batch, step: int) -> int:
        """Codes no lookup chose since the last call become encoder outputs of ``batch``; returns how many."""
        dead = (self.code_counts == 0).nonzero().flatten()
        self.code_counts.zero_()
        if dead.numel() == 0:
            return 0
        flat = _flat_latents(self.net.encoder(batch.hq))
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + step)
        idx = torch.randint(0, flat.shape[0], (dead.numel(),), generator=g)
        noise = torch.randn(dead.numel(), flat.shape[1], generator=g) * flat.std() * 0.01
        w = self.net.quantize.embedding.weight
        w[dead.to(w.device)] = (flat[idx] + noise).to(w.device, w.dtype)
        # Adam's moments of re-seeded rows belong to the old codes.
        moments = self.opt.state.get(w)
        if moments:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in moments:
                    moments[key][dead.to(w.device)] = 0
        return int(dead.numel())
