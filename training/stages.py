"""The three CodeFormer training stages and the loop that runs them.

Zhou et al., "Towards Robust Blind Face Restoration with Codebook Lookup Transformer" (NeurIPS
2022), with ID-CodeFormer's identity loss in stages II and III:

* **Stage I** (``stage=1``) — VQGAN on HQ faces: L1 + perceptual + λ_adv·adaptive-weighted hinge
  GAN loss + code loss (β = 0.25, inside ``VectorQuantizer``). Code usage is counted; codes unused
  for ``reseed_every`` steps are re-seeded from encoder outputs of the current batch (and the
  codebook is seeded from encoder outputs at step 0 instead of its tiny uniform init).
* **Stage II** (``stage=2``) — lookup transformer: codebook and generator frozen, E_L initialised
  from E_H (a frozen copy of E_H gives the ground-truth codes of the HQ face);
  ``λ_token·CE(logits, codes_HQ) + λ_feat·‖Z_l − sg(Z_c)‖² + λ_ids·L_ids``. L_ids decodes the
  predicted codes through the frozen generator with a straight-through softmax (forward: argmax
  codes as at inference; backward: through softmax(logits) @ codebook), so it reaches T and E_L.
* **Stage III** (``stage=3``) — CFT at w = 1: stage II losses + L1 + perceptual + adversarial on
  the restored image + identity. Codebook and generator stay frozen.

The loop (:class:`Trainer`): seeded, EMA weights, gradient clipping, a NaN guard (the step is
skipped and counted), atomic checkpoints (temp file + ``os.replace``) holding model, optimiser,
EMA, step, RNG states, a ``--resume`` that continues exactly (the data order is a pure function
of (seed, step), see ``training.data``), a tqdm bar with losses and it/s, periodic validation
(PSNR/SSIM of the EMA model on a fixed held-out batch, ``training.metrics``) with a sample grid
``LQ | output | HQ``, and CUDA autocast (bf16) when a GPU is used.

Python API (reused by personalisation)::

    cfg = load_config("lite_stage1")
    train_stage(cfg, out_dir="/work/cache/train/stage1")
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.checkpoint import save_codeformer

from . import data as D
from .configs import TrainConfig, load_config
from .losses import (
    IdentityLoss,
    NLayerDiscriminator,
    adaptive_weight,
    generator_adv_loss,
    hinge_d_loss,
    make_perceptual,
    mean_embedding,
)

log = logging.getLogger(__name__)

__all__ = ["Trainer", "train_stage", "export_model", "atomic_save", "load_checkpoint", "trainable_names"]


# ----------------------------------------------------------------------------- checkpoints


def atomic_save(obj, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then ``os.replace``: a crash leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def trained_weights(ckpt: dict, ema: bool = True) -> dict:
    """The network weights a checkpoint holds: its EMA average (when kept and ``ema``), else the raw ones."""
    return ckpt["ema"]["shadow"] if ema and ckpt.get("ema") else ckpt["model"]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- parts per stage

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


class EMA:
    """Exponential moving average of a module's float parameters and buffers.

    The decay warms up as min(decay, (1 + n) / (10 + n)) so short runs are not dominated by the
    random initialisation.
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in net.state_dict().items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in net.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)

    def copy_to(self, net: nn.Module) -> None:
        state = net.state_dict()
        net.load_state_dict({k: self.shadow.get(k, v).to(v.dtype) for k, v in state.items()})

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {k: v.float().clone() for k, v in state["shadow"].items()}


# ----------------------------------------------------------------------------- the trainer


class Trainer:
    """Runs one stage of one config. ``run()`` trains to ``config.steps`` (or ``until``).

    Args:
        config: the stage config (``training.configs``).
        out_dir: where ``last.pt`` (checkpoint), ``log.jsonl`` (losses per step), ``val.jsonl``
            and ``samples/`` go.
        items: training faces; None loads them as ``config.data`` says.
        val_items: held-out faces for validation; None takes them as ``config.data`` says.
        resume: continue from ``out_dir/last.pt`` when it exists.
        init: checkpoint of the previous stage (stages II, III); default ``config.init``.
        device: "cpu", "cuda", or None for CUDA when available.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | os.PathLike[str],
        *,
        items: Sequence[D.FaceItem] | None = None,
        val_items: Sequence[D.FaceItem] | None = None,
        resume: bool = False,
        init: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg = config
        self.stage = cfg.stage
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.amp = self.device.type == "cuda" and cfg.amp
        seed_everything(cfg.seed)

        # --- data
        if items is None or val_items is None:
            loaded_train, loaded_val = load_items(cfg)
            items = loaded_train if items is None else items
            val_items = loaded_val if val_items is None else val_items
        self._check_held_out(items)
        size = cfg.model_config.img_size
        degradation = D.make_degradation(cfg.degradation, size) if cfg.degradation else None
        self.degradation = degradation
        aug = D.Augment(**cfg.augment)
        self.sampler = D.PairSampler(items, cfg.batch_size, cfg.seed, degradation, aug)
        self._prefetch: D.Prefetcher | None = None  # worker processes during run() when cfg.workers
        val_src = val_items if val_items else items
        self.val_batch = D.PairSampler(val_src, 1, cfg.seed, degradation, D.Augment(hflip=0)).fixed_batch(cfg.val_size, cfg.seed)

        # --- networks
        self.net = CodeFormer(cfg.model_config).to(self.device)
        self.hq_encoder: nn.Module | None = None
        self.disc: nn.Module | None = None
        self._init_disc_state: dict | None = None
        init_ckpt = None
        init = init if init is not None else cfg.init
        if self.stage > 1:
            if not init:
                raise ValueError(f"stage {self.stage} needs the checkpoint of stage {self.stage - 1} (config 'init' or init=)")
            init_ckpt = load_checkpoint(init)
            self._init_from(init_ckpt)
        self.params = _freeze_for_stage(self.net, self.stage)
        if self.stage == 1 or cfg.adv_weight > 0:
            self.disc = NLayerDiscriminator(3, cfg.disc_ndf, cfg.disc_layers).to(self.device)
            if init_ckpt is not None and init_ckpt.get("disc") is not None and cfg.disc_from_init:
                self.disc.load_state_dict(init_ckpt["disc"])
        self.perceptual, self.perceptual_kind = make_perceptual(cfg.perceptual) if cfg.perceptual_weight > 0 else (None, "none")
        if self.perceptual is not None:
            self.perceptual.to(self.device)
        self.id_loss: IdentityLoss | None = None
        if self.stage > 1 and cfg.ids_weight > 0:
            center = self._identity_center(items, init_ckpt)
            self.id_loss = IdentityLoss(center, self.device)
        del init_ckpt

        # --- optimisers, EMA, bookkeeping
        betas = tuple(cfg.betas)
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr or cfg.lr, betas=betas) if self.disc else None
        self.ema = EMA(self.net, cfg.ema_decay)
        self.step = 0
        self.nan_skips = 0
        self.code_counts = torch.zeros(cfg.model_config.codebook_size, dtype=torch.long)
        self.id_center: torch.Tensor | None = self.id_loss.center.cpu() if self.id_loss is not None else None
        self.wall = 0.0
        self.stopped_early = False
        if resume and (self.out / "last.pt").is_file():
            self._load(load_checkpoint(self.out / "last.pt"))
        elif not resume:
            for name in ("log.jsonl", "val.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        (self.out / "config.json").write_text(cfg.to_json() + "\n", encoding="utf-8")

    # -- setup helpers -------------------------------------------------------------------------
    def _check_held_out(self, items: Sequence[D.FaceItem]) -> None:
        test_list = self.cfg.data.get("test_identities")
        if test_list and Path(test_list).is_file():
            bad = D.read_identity_list(test_list) & {it.identity for it in items}
            if bad:
                raise ValueError(f"training faces include held-out test identities: {sorted(bad)[:5]}")

    def _init_from(self, ckpt: dict) -> None:
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

    def _identity_center(self, items: Sequence[D.FaceItem], init_ckpt: dict | None) -> torch.Tensor | None:
        if self.cfg.ids_center == "none":
            return None
        if init_ckpt is not None and init_ckpt.get("id_center") is not None:
            return init_ckpt["id_center"]
        picks = np.linspace(0, len(items) - 1, min(len(items), self.cfg.ids_center_faces)).round().astype(int)
        faces = D.to_tensor([items[int(i)].image for i in picks])
        return mean_embedding(faces)

    # -- checkpoint ----------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": "likeness-train/1",
            "config": json.loads(self.cfg.to_json()),
            "stage": self.stage,
            "step": self.step,
            "model": self.net.state_dict(),
            "hq_encoder": self.hq_encoder.state_dict() if self.hq_encoder is not None else None,
            # Stage II trains no discriminator: it carries stage I's on to stage III.
            "disc": self.disc.state_dict() if self.disc is not None else self._init_disc_state,
            "opt": self.opt.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "ema": self.ema.state_dict(),
            "rng": _rng_state(),
            "data": {"seed": self.sampler.seed, "batch_size": self.sampler.batch_size, "n_items": len(self.sampler.items)},
            "nan_skips": self.nan_skips,
            "code_counts": self.code_counts,
            "id_center": self.id_center,
            "perceptual": self.perceptual_kind,
            "wall_s": self.wall,
        }

    def save(self, path: Path | None = None) -> Path:
        path = path or self.out / "last.pt"
        atomic_save(self.state(), path)
        return path

    def _load(self, ckpt: dict) -> None:
        if ckpt["stage"] != self.stage:
            raise ValueError(f"checkpoint is stage {ckpt['stage']}, config is stage {self.stage}")
        self.net.load_state_dict(ckpt["model"])
        if self.hq_encoder is not None and ckpt.get("hq_encoder") is not None:
            self.hq_encoder.load_state_dict(ckpt["hq_encoder"])
        if self.disc is not None and ckpt.get("disc") is not None:
            self.disc.load_state_dict(ckpt["disc"])
        self.opt.load_state_dict(ckpt["opt"])
        if self.opt_d is not None and ckpt.get("opt_d") is not None:
            self.opt_d.load_state_dict(ckpt["opt_d"])
        self.ema.load_state_dict(ckpt["ema"])
        self.step = ckpt["step"]
        self.nan_skips = ckpt.get("nan_skips", 0)
        self.code_counts = ckpt.get("code_counts", self.code_counts)
        self.wall = ckpt.get("wall_s", 0.0)
        _set_rng_state(ckpt["rng"])
        # Drop log lines written after this checkpoint (a run killed between checkpoints).
        for name in ("log.jsonl", "val.jsonl"):
            p = self.out / name
            if p.is_file():
                keep = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln and json.loads(ln)["step"] <= self.step]
                p.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")

    # -- losses per stage ----------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else torch.autocast("cpu", enabled=False)

    def _image_losses(self, out: torch.Tensor, hq: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        l1 = F.l1_loss(out, hq)
        loss = cfg.l1_weight * l1
        logs = {"l1": l1.item()}
        if self.perceptual is not None:
            p = self.perceptual(out, hq)
            loss = loss + cfg.perceptual_weight * p
            logs["perc"] = p.item()
        return loss, logs

    def _adversarial(self, rec_loss: torch.Tensor, out: torch.Tensor, last_layer: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        if self.disc is None or cfg.adv_weight <= 0 or self.step < cfg.disc_start:
            return out.new_zeros(()), {}
        self.disc.requires_grad_(False)
        g = generator_adv_loss(self.disc(out))
        self.disc.requires_grad_(True)
        if cfg.adaptive_adv:
            w = adaptive_weight(rec_loss, g, last_layer, cfg.adv_max_weight) * cfg.adv_weight
        else:
            w = torch.tensor(cfg.adv_weight, device=out.device)
        return w * g, {"g_adv": g.item(), "adv_w": float(w)}

    def _disc_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict:
        if self.disc is None or self.cfg.adv_weight <= 0 or self.step < self.cfg.disc_start:
            return {}
        with self._autocast():
            d = hinge_d_loss(self.disc(real), self.disc(fake.detach()))
        if not torch.isfinite(d):
            return {"d_skip": 1.0}
        self.opt_d.zero_grad(set_to_none=True)
        d.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.disc.parameters(), self.cfg.grad_clip)
        self.opt_d.step()
        return {"d": d.item()}

    def _stage1_loss(self, batch: D.Batch) -> tuple[torch.Tensor, dict, torch.Tensor]:
        net, cfg = self.net, self.cfg
        hq = batch.hq.to(self.device)
        z = net.encoder(hq)
        if self.step == 0 and cfg.seed_codebook:
            self._seed_codebook(z.detach())
        zq, code_loss, codes = net.quantize(z)
        self.code_counts += torch.bincount(codes.flatten().cpu(), minlength=self.code_counts.numel())
        rec = net.generator(zq)
        rec_loss, logs = self._image_losses(rec, hq)
        adv, adv_logs = self._adversarial(rec_loss, rec, net.generator.blocks[-1].weight)
        loss = rec_loss + adv + cfg.code_weight * code_loss
        logs.update(adv_logs, code=code_loss.item())
        return loss, logs, rec

    def _lookup_losses(self, batch: D.Batch) -> tuple[torch.Tensor, dict, tuple, torch.Tensor, torch.Tensor]:
        """Stage II/III common part: CE on codes + feature L2. Returns (loss, logs, feats, logits, hq)."""
        net, cfg = self.net, self.cfg
        hq, lq = batch.hq.to(self.device), batch.lq.to(self.device)
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
        return loss, {"ce": ce.item(), "feat": feat.item(), "acc": acc}, feats, logits, hq

    def _straight_through_quant(self, logits: torch.Tensor) -> torch.Tensor:
        """Forward: argmax codes' features (as at inference); backward: softmax(logits) @ codebook."""
        cb = self.net.quantize.embedding.weight
        side = self.cfg.model_config.latent_side
        soft = logits.float().softmax(-1) @ cb  # B, HW, d
        hard = F.embedding(logits.argmax(-1), cb)
        q = soft + (hard - soft).detach()
        return q.transpose(1, 2).reshape(logits.shape[0], cb.shape[1], side, side)

    def _identity(self, out: torch.Tensor, hq: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.id_loss is None:
            return out.new_zeros(()), {}
        n = self.cfg.ids_batch or out.shape[0]
        cos = self.id_loss.cosine(out[:n], hq[:n])
        loss = (1 - cos).mean()
        return self.cfg.ids_weight * loss, {"ids": loss.item()}

    def _stage2_loss(self, batch: D.Batch) -> tuple[torch.Tensor, dict, torch.Tensor | None]:
        loss, logs, feats, logits, hq = self._lookup_losses(batch)
        out = None
        if self.id_loss is not None:
            n = self.cfg.ids_batch or hq.shape[0]
            quant = self._straight_through_quant(logits[:n])
            out = self.net.decode_features(quant, tuple(f[:n] for f in feats), w=0, adain_latent=True)
            ids, id_logs = self._identity(out, hq[:n])
            loss = loss + ids
            logs.update(id_logs)
        return loss, logs, out

    def _stage3_loss(self, batch: D.Batch) -> tuple[torch.Tensor, dict, torch.Tensor]:
        cfg = self.cfg
        loss, logs, feats, logits, hq = self._lookup_losses(batch)
        quant = self._straight_through_quant(logits)
        out = self.net.decode_features(quant, feats, w=cfg.fidelity_w, adain_latent=True)
        img_loss, img_logs = self._image_losses(out, hq)
        last = self.net.fuse_convs_dict[str(max(cfg.model_config.connect_list))].shift[-1].weight
        adv, adv_logs = self._adversarial(img_loss, out, last)
        ids, id_logs = self._identity(out, hq)
        logs.update(img_logs, **adv_logs, **id_logs)
        return loss + img_loss + adv + ids, logs, out

    # -- codebook maintenance ------------------------------------------------------------------
    @torch.no_grad()
    def _seed_codebook(self, z: torch.Tensor) -> None:
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float().cpu()  # the seeded draws are CPU-side
        n = self.net.quantize.embedding.weight.shape[0]
        g = torch.Generator().manual_seed(self.cfg.seed)
        idx = torch.randint(0, flat.shape[0], (n,), generator=g)
        noise = torch.randn(n, flat.shape[1], generator=g) * flat.std() * 0.01
        w = self.net.quantize.embedding.weight
        w.copy_(flat[idx].add(noise).to(w.device, w.dtype))

    @torch.no_grad()
    def _reseed_dead_codes(self, batch: D.Batch) -> int:
        dead = (self.code_counts == 0).nonzero().flatten()
        self.code_counts.zero_()
        if dead.numel() == 0:
            return 0
        z = self.net.encoder(batch.hq.to(self.device))
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float().cpu()
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + self.step)
        idx = torch.randint(0, flat.shape[0], (dead.numel(),), generator=g)
        noise = torch.randn(dead.numel(), flat.shape[1], generator=g) * flat.std() * 0.01
        w = self.net.quantize.embedding.weight
        w[dead.to(w.device)] = (flat[idx] + noise).to(w.device, w.dtype)
        # Adam's moments of re-seeded rows belong to the old codes.
        st = self.opt.state.get(w)
        if st:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    st[key][dead.to(w.device)] = 0
        return int(dead.numel())

    # -- one step ------------------------------------------------------------------------------
    def train_step(self) -> dict:
        cfg = self.cfg
        self.net.train()
        batch = (self._prefetch or self.sampler).batch(self.step)
        with self._autocast():
            if self.stage == 1:
                loss, logs, out = self._stage1_loss(batch)
            elif self.stage == 2:
                loss, logs, out = self._stage2_loss(batch)
            else:
                loss, logs, out = self._stage3_loss(batch)
        logs = {"loss": loss.item(), **logs}
        ok = bool(torch.isfinite(loss))
        if ok:
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = nn.utils.clip_grad_norm_(self.params, cfg.grad_clip if cfg.grad_clip else float("inf"))
            ok = bool(torch.isfinite(gn))
            logs["gnorm"] = float(gn)
        if ok:
            self.opt.step()
            self.ema.update(self.net)
            if out is not None and self.stage != 2:
                logs.update(self._disc_step(batch.hq.to(self.device), out))
        else:
            self.opt.zero_grad(set_to_none=True)
            self.nan_skips += 1
            logs["nan_skip"] = 1
            log.warning("step %d: non-finite loss or gradient, step skipped (%d so far)", self.step, self.nan_skips)
        self.step += 1
        if self.stage == 1 and cfg.reseed_every and self.step % cfg.reseed_every == 0:
            used = int((self.code_counts > 0).sum())
            logs["codes_used"] = used
            logs["reseeded"] = self._reseed_dead_codes(batch)
        return logs

    # -- validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, write_grid: bool = True) -> dict:
        from .metrics import psnr, ssim

        net = copy.deepcopy(self.net).eval()
        self.ema.copy_to(net)
        hq, lq = self.val_batch.hq.to(self.device), self.val_batch.lq.to(self.device)
        if self.stage == 1:
            z = net.encoder(hq)
            zq, _, codes = net.quantize(z)
            out = net.generator(zq)
            inp = hq
        else:
            w = 0.0 if self.stage == 2 else self.cfg.val_w
            out = net(lq, w=w)[0]
            inp = lq
        outs, hqs, inps = D.to_images(out), D.to_images(hq), D.to_images(inp)
        res = {
            "step": self.step,
            "psnr": float(np.mean([psnr(a, b) for a, b in zip(outs, hqs)])),
            "ssim": float(np.mean([ssim(a, b) for a, b in zip(outs, hqs)])),
        }
        if self.stage > 1:
            res["psnr_lq"] = float(np.mean([psnr(a, b) for a, b in zip(inps, hqs)]))
        if self.stage == 1:
            res["codes_in_val"] = int(codes.unique().numel())
        if self.id_loss is not None:
            res["ids_cos"] = float(self.id_loss.cosine(out, hq).mean())
        with open(self.out / "val.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(res) + "\n")
        if write_grid:
            rows = [np.concatenate([i, o, h], axis=1) for i, o, h in zip(inps, outs, hqs)]
            grid = np.concatenate(rows[:8], axis=0)
            (self.out / "samples").mkdir(exist_ok=True)
            cv2.imwrite(str(self.out / "samples" / f"step_{self.step:06d}.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        return res

    # -- the loop ------------------------------------------------------------------------------
    def run(
        self,
        until: int | None = None,
        on_step: Callable[[int, dict], None] | None = None,
        deadline: float | None = None,
    ) -> list[dict]:
        """Train to ``until`` (default ``config.steps``); returns the logs of the steps run now.

        ``deadline`` (a ``time.time()`` value) stops the run early after the step that passes
        it, with a checkpoint: CPU time on a shared machine is not predictable, so a stage can
        be given a wall-clock budget and report the steps it reached (``self.stopped_early``).
        """
        from tqdm import tqdm

        cfg = self.cfg
        end = min(until if until is not None else cfg.steps, cfg.steps)
        history = []
        bar = tqdm(total=end, initial=self.step, disable=not self.progress, desc=f"stage {self.stage}", unit="it", dynamic_ncols=True, mininterval=5)
        logf = open(self.out / "log.jsonl", "a", encoding="utf-8")
        if cfg.workers and self.step < end:
            self._prefetch = D.Prefetcher(self.sampler, cfg.workers)
        try:
            while self.step < end:
                t0 = time.perf_counter()
                logs = self.train_step()
                dt = time.perf_counter() - t0
                self.wall += dt
                logs = {"step": self.step, **logs, "s": round(dt, 3)}
                history.append(logs)
                logf.write(json.dumps(logs) + "\n")
                if self.step % cfg.log_every == 0:
                    logf.flush()
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in ("loss", "l1", "perc", "ce", "acc", "ids", "d")}, refresh=False)
                if on_step is not None:
                    on_step(self.step, logs)
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == cfg.steps):
                    self.validate()
                late = deadline is not None and time.time() >= deadline
                if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or self.step == end or late:
                    logf.flush()
                    self.save()
                if late and self.step < end:
                    self.stopped_early = True
                    log.info("stage %d: wall-clock budget reached at step %d", self.stage, self.step)
                    break
        finally:
            logf.close()
            bar.close()
            if self._prefetch is not None:
                self._prefetch.close()
                self._prefetch = None
        return history


# ----------------------------------------------------------------------------- API


def load_items(cfg: TrainConfig) -> tuple[list[D.FaceItem], list[D.FaceItem]]:
    """(train, val) faces as ``cfg.data`` says; test identities are always removed."""
    spec = cfg.data
    size = cfg.model_config.img_size
    held_out = D.read_identity_list(spec["test_identities"]) if spec.get("test_identities") else set()
    if spec.get("source", "cache") == "cache":
        flt = D.CacheFilter(**spec.get("filter", {})) if spec.get("filter", {}) is not None else None
        items = D.faces_from_cache(spec["path"], size, exclude=held_out, flt=flt)
    else:
        items = D.exclude_identities(D.faces_from_folder(spec["path"], size), held_out)
    return D.split_validation(items, spec.get("val_identities", 0))


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
    trainer = Trainer(cfg, out_dir, items=items, val_items=val_items, resume=resume, init=init, device=device, progress=progress)
    trainer.run(until=until, deadline=deadline)
    done = trainer.step >= cfg.steps or trainer.stopped_early
    if done and not (Path(out_dir) / "final.json").exists():
        res = trainer.validate()
        info = {
            "step": trainer.step, "planned_steps": cfg.steps, "stopped_early": trainer.stopped_early,
            "wall_s": trainer.wall, "nan_skips": trainer.nan_skips, "val": res, "perceptual": trainer.perceptual_kind,
        }  # fmt: skip
        (Path(out_dir) / "final.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
    return Path(out_dir) / "last.pt"


def slim_checkpoint(checkpoint: str | os.PathLike[str], path: str | os.PathLike[str], *, half: bool = True) -> Path:
    """What the next stage starts from, without optimiser, RNG and bookkeeping (a GPU's results
    come back through a small pipe: a full likeness-lite checkpoint is 45 MB, this 8.7 MB).

    Holds the EMA weights as ``model``, E_H, the discriminator, the identity centre and the
    config; ``Trainer(init=...)`` accepts it like a full checkpoint. It cannot ``--resume``.
    """
    ckpt = load_checkpoint(checkpoint)

    def cast(state: dict | None) -> dict | None:
        if state is None:
            return None
        return {k: (v.half() if half and v.is_floating_point() else v).clone() for k, v in state.items()}

    slim = {
        "format": "likeness-train-init/1", "config": ckpt["config"], "stage": ckpt["stage"], "step": ckpt["step"],
        "model": cast(trained_weights(ckpt)), "ema": None,
        "hq_encoder": cast(ckpt.get("hq_encoder")), "disc": cast(ckpt.get("disc")), "id_center": ckpt.get("id_center"),
    }  # fmt: skip
    atomic_save(slim, path)
    return Path(path)


def export_model(checkpoint: str | os.PathLike[str], path: str | os.PathLike[str], *, half: bool = True, ema: bool = True, metadata: dict | None = None) -> CodeFormer:
    """Writes the (EMA) weights of a training checkpoint as a Likeness safetensors model."""
    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = CodeFormer(cfg.model_config)
    state = trained_weights(ckpt, ema)
    ref = net.state_dict()
    net.load_state_dict({k: state.get(k, v).to(v.dtype) for k, v in ref.items()})
    meta = {"training_stage": str(ckpt["stage"]), "training_steps": str(ckpt["step"]), **(metadata or {})}
    save_codeformer(net.eval(), path, half=half, metadata=meta)
    return net
