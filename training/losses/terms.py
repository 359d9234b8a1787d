"""Weighted loss terms more than one stage adds up: image reconstruction, adversarial, identity."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import TrainConfig
from .common import IdentityLoss, adaptive_weight, generator_adv_loss, hinge_d_loss


def conv_weight(layer: nn.Module) -> torch.Tensor:
    """The weight of a convolution the adaptive adversarial weight is measured at."""
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"expected a Conv2d, got {type(layer).__name__}")
    return layer.weight


class ImageLoss:
    """λ_l1·L1 + λ_perc·perceptual between an output and its HQ target."""

    def __init__(self, l1_weight: float, perceptual_weight: float, perceptual: nn.Module | None) -> None:
        self.l1_weight = l1_weight
        self.perceptual_weight = perceptual_weight
        self.perceptual = perceptual

    def __call__(self, out: torch.Tensor, hq: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l1 = F.l1_loss(out, hq)
        loss = self.l1_weight * l1
        logs = {"l1": l1.item()}
        if self.perceptual is not None:
            p = self.perceptual(out, hq)
            loss = loss + self.perceptual_weight * p
            logs["perc"] = p.item()
        return loss, logs


class Adversary:
    """The PatchGAN discriminator with its optimiser: the generator's hinge term, and the
    discriminator's own step on (real, fake) after each generator update.

    Both wait for ``config.disc_start`` steps and stay off while ``config.adv_weight`` is 0.
    """

    def __init__(
        self,
        disc: nn.Module,
        opt: torch.optim.Optimizer,
        config: TrainConfig,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> None:
        self.disc = disc
        self.opt = opt
        self.cfg = config
        self.autocast = autocast

    def active(self, step: int) -> bool:
        return self.cfg.adv_weight > 0 and step >= self.cfg.disc_start

    def generator_loss(
        self, rec_loss: torch.Tensor, out: torch.Tensor, last_layer: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """λ_adv·(adaptive weight)·L_G, the adaptive weight taken at ``last_layer`` against ``rec_loss``."""
        cfg = self.cfg
        if not self.active(step):
            return out.new_zeros(()), {}
        self.disc.requires_grad_(False)
        g = generator_adv_loss(self.disc(out))
        self.disc.requires_grad_(True)
        if cfg.adaptive_adv:
            w = adaptive_weight(rec_loss, g, last_layer, cfg.adv_max_weight) * cfg.adv_weight
        else:
            w = torch.tensor(cfg.adv_weight, device=out.device)
        return w * g, {"g_adv": g.item(), "adv_w": float(w)}

    def step(self, real: torch.Tensor, fake: torch.Tensor, step: int) -> dict[str, float]:
        """One hinge-loss step of the discriminator; a non-finite loss skips it."""
        if not self.active(step):
            return {}
        with self.autocast():
            d = hinge_d_loss(self.disc(real), self.disc(fake.detach()))
        if not torch.isfinite(d):
            return {"d_skip": 1.0}
        self.opt.zero_grad(set_to_none=True)
        d.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.disc.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return {"d": d.item()}


def adversarial_loss(
    adversary: Adversary | None, rec_loss: torch.Tensor, out: torch.Tensor, last_layer: torch.Tensor, step: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's adversarial term, zero without a discriminator."""
    if adversary is None:
        return out.new_zeros(()), {}
    return adversary.generator_loss(rec_loss, out, last_layer, step)


class IdentityTerm:
    """λ_ids·(1 − cos) of centred dlib embeddings output ↔ HQ, on the first ``faces`` of a batch
    (0: all): the dlib network is the costliest part of a step on the CPU."""

    def __init__(self, loss: IdentityLoss, weight: float, faces: int) -> None:
        self.loss = loss
        self.weight = weight
        self.faces = faces

    def batch_faces(self, batch_size: int) -> int:
        return self.faces or batch_size

    def __call__(self, out: torch.Tensor, hq: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        n = self.batch_faces(out.shape[0])
        cos = self.loss.cosine(out[:n], hq[:n])
        loss = (1 - cos).mean()
        return self.weight * loss, {"ids": loss.item()}


def identity_loss(
    identity: IdentityTerm | None, out: torch.Tensor, hq: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """The identity term, zero without an identity network."""
    if identity is None:
        return out.new_zeros(()), {}
    return identity(out, hq)
