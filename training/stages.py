"""The three CodeFormer training stages.

Zhou et al., "Towards Robust Blind Face Restoration with Codebook Lookup Transformer" (NeurIPS
2022), with ID-CodeFormer's identity loss in stages II and III:

* **Stage I** (``stage=1``) — VQGAN on HQ faces (``training.losses.stage1``).
* **Stage II** (``stage=2``) — lookup transformer: codebook and generator frozen, E_L initialised
  from E_H (``training.losses.stage2``).
* **Stage III** (``stage=3``) — CFT at w = 1: stage II losses + image losses on the restored
  face (``training.losses.stage3``). Codebook and generator stay frozen.

:class:`Trainer` builds the network, the frozen parts and the loss networks of a stage; the
loop itself (optimiser, EMA, checkpoints, resume, logs) is ``training.loop``. Validation scores
the EMA model on a fixed held-out batch (PSNR/SSIM, ``training.metrics``) and writes a sample
grid ``input | output | HQ``.

Python API (reused by personalisation)::

    cfg = load_config("lite_stage1")
    train_stage(cfg, out_dir="../cache/train/stage1")
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.checkpoint import REFERENCE_PREFIX, load_codeformer, save_codeformer

from . import data as D
from .configs import TrainConfig, load_config
from .loop import StageLosses, TrainingLoop, atomic_save, load_checkpoint, load_items, trained_weights
from .losses.common import IdentityLoss, NLayerDiscriminator, make_perceptual, mean_embedding
from .losses.stage1 import VQGANLosses
from .losses.stage2 import LookupLosses
from .losses.stage3 import CFTLosses
from .losses.terms import Adversary, IdentityTerm, ImageLoss

__all__ = [
    "TRAINABLE",
    "Trainer",
    "atomic_save",
    "export_model",
    "load_checkpoint",
    "load_init",
    "load_items",
    "slim_checkpoint",
    "train_stage",
    "trainable_names",
    "trained_weights",
]

#: Module-name prefixes each stage trains. Everything else is frozen.
TRAINABLE = {
    1: ("encoder.", "quantize.", "generator."),
    2: ("encoder.", "position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer."),
    3: ("encoder.", "position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer.", "fuse_convs_dict."),
}


def trainable_names(net: nn.Module, stage: int) -> list[str]:
    return [n for n, _ in net.named_parameters() if n.startswith(TRAINABLE[stage])]


def _freeze_for_stage(net: CodeFormer, stage: int) -> list[nn.Parameter]:
    names = set(trainable_names(net, stage))
    params = []
    for n, p in net.named_parameters():
        p.requires_grad_(n in names)
        if n in names:
            params.append(p)
    return params


class Trainer(TrainingLoop[CodeFormer]):
    """One CodeFormer stage of one config (arguments: ``TrainingLoop``).

    ``init`` is the checkpoint of the previous stage (stages II, III); stage I starts from
    scratch. Stage I and any stage with ``adv_weight`` > 0 train a discriminator; stages II and
    III with ``ids_weight`` > 0 load the dlib identity network.
    """

    # Built by build_networks after the network itself, so the network's random init does not
    # depend on which losses a config uses.
    hq_encoder: nn.Module | None
    disc: nn.Module | None
    opt_d: torch.optim.Optimizer | None
    perceptual: nn.Module | None
    perceptual_kind: str
    id_loss: IdentityLoss | None
    id_center: torch.Tensor | None
    code_counts: torch.Tensor

    # -- networks ------------------------------------------------------------------------------
    def build_networks(
        self, items: Sequence[D.FaceItem], init: str | os.PathLike[str] | None
    ) -> tuple[CodeFormer, list[nn.Parameter]]:
        cfg = self.cfg
        self.net = CodeFormer(cfg.model_config).to(self.device)
        self.hq_encoder = None
        self.disc = None
        self.opt_d = None
        self._init_disc_state: dict[str, torch.Tensor] | None = None
        init_ckpt = None
        if self.stage > 1:
            if not init:
                raise ValueError(
                    f"stage {self.stage} needs the checkpoint of stage {self.stage - 1} (config 'init' or init=)"
                )
            init_ckpt = load_init(init)
            self._init_from(init_ckpt)
        params = _freeze_for_stage(self.net, self.stage)
        if self.stage == 1 or cfg.adv_weight > 0:
            self.disc = NLayerDiscriminator(3, cfg.disc_ndf, cfg.disc_layers).to(self.device)
            if init_ckpt is not None and init_ckpt.get("disc") is not None and cfg.disc_from_init:
                self.disc.load_state_dict(init_ckpt["disc"])
        self.perceptual, self.perceptual_kind = (
            make_perceptual(cfg.perceptual) if cfg.perceptual_weight > 0 else (None, "none")
        )
        if self.perceptual is not None:
            self.perceptual.to(self.device)
        self.id_loss = None
        if self.stage > 1 and cfg.ids_weight > 0:
            self.id_loss = IdentityLoss(self._identity_center(items, init_ckpt), self.device)
        self.id_center = self.id_loss.center.cpu() if self.id_loss is not None else None
        self.code_counts = torch.zeros(cfg.model_config.codebook_size, dtype=torch.long)
        return self.net, params

    def _init_from(self, ckpt: dict[str, Any]) -> None:
        """Stage II/III start: the previous stage's EMA weights; E_H is stage I's encoder."""
        state = trained_weights(ckpt)
        model_state = self.net.state_dict()
        missing = [k for k in model_state if k not in state]
        if missing:
            raise ValueError(f"init checkpoint lacks {missing[:3]}")
        self.net.load_state_dict({k: state[k].to(model_state[k].dtype) for k in model_state})
        self.hq_encoder = copy.deepcopy(self.net.encoder)
        if ckpt.get("hq_encoder") is not None:  # from stage II on: E_H is carried over unchanged
            self.hq_encoder.load_state_dict(ckpt["hq_encoder"])
        self.hq_encoder.eval().requires_grad_(False)
        self._init_disc_state = ckpt.get("disc")

    def _identity_center(self, items: Sequence[D.FaceItem], init_ckpt: dict[str, Any] | None) -> torch.Tensor | None:
        """The mean dlib embedding the identity loss centres on: the previous stage's, or measured now."""
        if self.cfg.ids_center == "none":
            return None
        if init_ckpt is not None and init_ckpt.get("id_center") is not None:
            return init_ckpt["id_center"]
        picks = np.linspace(0, len(items) - 1, min(len(items), self.cfg.ids_center_faces)).round().astype(int)
        faces = D.to_tensor([items[int(i)].image for i in picks])
        return mean_embedding(faces)

    # -- losses --------------------------------------------------------------------------------
    def _build_adversary(self) -> Adversary | None:
        """The discriminator with its optimiser (created here, after the generator's)."""
        if self.disc is None:
            return None
        cfg = self.cfg
        betas = (cfg.betas[0], cfg.betas[1])
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr or cfg.lr, betas=betas)
        return Adversary(self.disc, self.opt_d, cfg, self.autocast)

    def _identity_term(self) -> IdentityTerm | None:
        if self.id_loss is None:
            return None
        return IdentityTerm(self.id_loss, self.cfg.ids_weight, self.cfg.ids_batch)

    def build_losses(self) -> StageLosses:
        cfg = self.cfg
        image_loss = ImageLoss(cfg.l1_weight, cfg.perceptual_weight, self.perceptual)
        adversary = self._build_adversary()
        if self.stage == 1:
            return VQGANLosses(self.net, cfg, image_loss, adversary, self.opt, self.code_counts)
        if self.hq_encoder is None:
            raise ValueError(f"stage {self.stage} needs E_H from its init checkpoint")
        if self.stage == 2:
            return LookupLosses(self.net, self.hq_encoder, cfg, self._identity_term())
        return CFTLosses(self.net, self.hq_encoder, cfg, self._identity_term(), image_loss, adversary)

    # -- checkpoint ----------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {
            "hq_encoder": self.hq_encoder.state_dict() if self.hq_encoder is not None else None,
            # Stage II trains no discriminator: it carries stage I's on to stage III.
            "disc": self.disc.state_dict() if self.disc is not None else self._init_disc_state,
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "code_counts": self.code_counts,
            "id_center": self.id_center,
            "perceptual": self.perceptual_kind,
        }

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        if self.hq_encoder is not None and ckpt.get("hq_encoder") is not None:
            self.hq_encoder.load_state_dict(ckpt["hq_encoder"])
        if self.disc is not None and ckpt.get("disc") is not None:
            self.disc.load_state_dict(ckpt["disc"])
        if self.opt_d is not None and ckpt.get("opt_d") is not None:
            self.opt_d.load_state_dict(ckpt["opt_d"])
        if ckpt.get("code_counts") is not None:
            self.code_counts.copy_(ckpt["code_counts"])

    # -- validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, write_grid: bool = True) -> dict[str, Any]:
        from .metrics import psnr, ssim

        net = copy.deepcopy(self.net).eval()
        self.ema.copy_to(net)
        hq, lq = self.val_batch.hq.to(self.device), self.val_batch.lq.to(self.device)
        codes_used = None
        if self.stage == 1:
            zq, _, codes = net.quantize(net.encoder(hq))
            out = net.generator(zq)
            inp = hq
            codes_used = int(codes.unique().numel())
        else:
            w = 0.0 if self.stage == 2 else self.cfg.val_w
            out = net(lq, w=w)[0]
            inp = lq
        outs, hqs, inps = D.to_images(out), D.to_images(hq), D.to_images(inp)
        res: dict[str, Any] = {
            "step": self.step,
            "psnr": float(np.mean([psnr(a, b) for a, b in zip(outs, hqs, strict=True)])),
            "ssim": float(np.mean([ssim(a, b) for a, b in zip(outs, hqs, strict=True)])),
        }
        if self.stage > 1:
            res["psnr_lq"] = float(np.mean([psnr(a, b) for a, b in zip(inps, hqs, strict=True)]))
        if codes_used is not None:
            res["codes_in_val"] = codes_used
        if self.id_loss is not None:
            res["ids_cos"] = float(self.id_loss.cosine(out, hq).mean())
        self.log_validation(res)
        if write_grid:
            self.write_sample_grid([inps, outs, hqs])
        return res


# ----------------------------------------------------------------------------- API


MODEL_FILE_SUFFIXES = (".safetensors", ".pth")


def load_init(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint a stage starts from: a training checkpoint, or a model file (likeness-lite, the
    official CodeFormer), so a shipped network can be trained further.

    A model file holds neither E_H nor a discriminator: E_H becomes a copy of its encoder (whose
    quantised output on clean faces stands in for stage I's codes) and the discriminator starts
    fresh, as stage III's does anyway (``disc_from_init``).
    """
    if Path(path).suffix not in MODEL_FILE_SUFFIXES:
        return load_checkpoint(path)
    net = load_codeformer(Path(path))
    weights = {k: v for k, v in net.state_dict().items() if not k.startswith(REFERENCE_PREFIX)}  # _init_from casts
    return {"model": weights, "ema": None, "hq_encoder": None, "disc": None}


def train_stage(
    config: TrainConfig | str,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    init: str | os.PathLike[str] | None = None,
    items: Sequence[D.FaceItem] | None = None,
    val_items: Sequence[D.FaceItem] | None = None,
    device: str | None = None,
    progress: bool = True,
    until: int | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Trains one stage; returns the path of its final checkpoint (``out_dir/last.pt``).

    ``max_minutes`` bounds this call's wall time; a stage stopped by it counts as finished
    (``final.json`` records ``stopped_early`` and the steps reached).
    """
    cfg = load_config(config) if isinstance(config, str) else config
    deadline = time.time() + 60 * max_minutes if max_minutes else None
    trainer = Trainer(
        cfg, out_dir, items=items, val_items=val_items, resume=resume, init=init, device=device, progress=progress
    )
    start = trainer.step
    trainer.run(until=until, deadline=deadline)
    done = trainer.step >= cfg.steps or trainer.stopped_early
    # A resumed run that trained further rewrites what an earlier budget stop recorded.
    if done and (trainer.step > start or not (Path(out_dir) / "final.json").exists()):
        res = trainer.validate()
        info = {
            "step": trainer.step,
            "planned_steps": cfg.steps,
            "stopped_early": trainer.stopped_early,
            "wall_s": trainer.wall,
            "nan_skips": trainer.nan_skips,
            "val": res,
            "perceptual": trainer.perceptual_kind,
        }
        (Path(out_dir) / "final.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
    return Path(out_dir) / "last.pt"


def slim_checkpoint(checkpoint: str | os.PathLike[str], path: str | os.PathLike[str], *, half: bool = True) -> Path:
    """What the next stage starts from, without optimiser, RNG and bookkeeping (a GPU's results
    come back through a small pipe: a full likeness-lite checkpoint is 45 MB, this 8.7 MB).

    Holds the EMA weights as ``model``, E_H, the discriminator, the identity centre and the
    config; ``Trainer(init=...)`` accepts it like a full checkpoint. It cannot ``--resume``.
    """
    ckpt = load_checkpoint(checkpoint)

    def cast(state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
        if state is None:
            return None
        return {k: (v.half() if half and v.is_floating_point() else v).clone() for k, v in state.items()}

    slim = {
        "format": "likeness-train-init/1",
        "config": ckpt["config"],
        "stage": ckpt["stage"],
        "step": ckpt["step"],
        "model": cast(trained_weights(ckpt)),
        "ema": None,
        "hq_encoder": cast(ckpt.get("hq_encoder")),
        "disc": cast(ckpt.get("disc")),
        "id_center": ckpt.get("id_center"),
    }
    atomic_save(slim, path)
    return Path(path)


def export_model(
    checkpoint: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    half: bool = True,
    ema: bool = True,
    metadata: dict[str, str] | None = None,
) -> CodeFormer:
    """Writes the (EMA) weights of a training checkpoint as a Likeness safetensors model."""
    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = CodeFormer(cfg.model_config)
    state = trained_weights(ckpt, ema)
    ref: dict[str, torch.Tensor] = net.state_dict()
    net.load_state_dict({k: state.get(k, v).to(v.dtype) for k, v in ref.items()})
    meta = {"training_stage": str(ckpt["stage"]), "training_steps": str(ckpt["step"]), **(metadata or {})}
    save_codeformer(net.eval(), Path(path), half=half, metadata=meta)
    return net
