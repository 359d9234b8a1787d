"""The training loop every stage shares: optimiser steps, EMA, checkpoints, logs and validation.

A stage subclasses :class:`TrainingLoop`, builds its networks in :meth:`~TrainingLoop.build_networks`
and its objective (a :class:`StageLosses`) in :meth:`~TrainingLoop.build_losses`, and says how to
validate. The loop is then the same for all of them: seeded, EMA weights, gradient clipping, a
NaN guard (the step is skipped and counted), atomic checkpoints (``engine.files``)
holding model, optimiser, EMA, step and RNG states, a ``resume`` that continues exactly (the
data order is a pure function of (seed, step), see ``training.data``), a tqdm bar with losses
and it/s, periodic validation, and CUDA autocast (bf16) when a GPU is used.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import cv2
import numpy as np
import torch
from torch import nn

from engine.files import atomic_write

from . import data as D
from .configs import TrainConfig

log = logging.getLogger(__name__)

__all__ = [
    "EMA",
    "StageLosses",
    "StepLoss",
    "TrainingLoop",
    "atomic_save",
    "load_checkpoint",
    "load_items",
    "seed_everything",
    "trained_weights",
]

CHECKPOINT_FORMAT = "likeness-train/1"
#: Log entries the progress bar shows when a step has them.
PROGRESS_KEYS = ("loss", "l1", "perc", "ce", "acc", "ids", "d")


# ----------------------------------------------------------------------------- checkpoints


def atomic_save(obj: object, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through ``engine.files``: a crash or Ctrl-C leaves the old checkpoint."""
    with atomic_write(path) as f:
        torch.save(obj, f)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training checkpoint on the CPU; it holds configs and RNG states as well as tensors."""
    return torch.load(path, map_location="cpu", weights_only=False)


def trained_weights(ckpt: dict[str, Any], ema: bool = True) -> dict[str, torch.Tensor]:
    """The network weights a checkpoint holds: its EMA average (when kept and ``ema``), else the raw ones."""
    return ckpt["ema"]["shadow"] if ema and ckpt.get("ema") else ckpt["model"]


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {k: v.float().clone() for k, v in state["shadow"].items()}


# ----------------------------------------------------------------------------- data


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


# ----------------------------------------------------------------------------- objectives


class StepLoss(NamedTuple):
    """One step's objective: the loss to minimise, the values to log, and the output image (if any)."""

    loss: torch.Tensor
    logs: dict[str, float]
    out: torch.Tensor | None


class StageLosses:
    """A stage's objective: the loss of a batch, and the work that follows an update.

    ``after_update`` runs after each successful optimiser step (a discriminator's own step);
    ``after_step`` after every step, with the new step count (codebook maintenance).
    """

    def __call__(self, batch: D.Batch, step: int) -> StepLoss:
        raise NotImplementedError

    def after_update(self, batch: D.Batch, out: torch.Tensor | None, step: int) -> dict[str, float]:
        return {}

    def after_step(self, batch: D.Batch, step: int) -> dict[str, float]:
        return {}


# ----------------------------------------------------------------------------- the loop

NetT = TypeVar("NetT", bound=nn.Module)


class TrainingLoop(Generic[NetT]):
    """Runs one stage of one config. ``run()`` trains to ``config.steps`` (or ``until``).

    Args:
        config: the stage config (``training.configs``).
        out_dir: where ``last.pt`` (checkpoint), ``log.jsonl`` (losses per step), ``val.jsonl``
            and ``samples/`` go.
        items: training faces; None loads them as ``config.data`` says.
        val_items: held-out faces for validation; None takes them as ``config.data`` says.
        resume: continue from ``out_dir/last.pt`` when it exists.
        init: checkpoint the networks start from (see ``build_networks``); default ``config.init``.
        device: "cpu", "cuda", or None for CUDA when available.
        progress: show a progress bar.
    """

    net: NetT
    losses: StageLosses

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

        if items is None or val_items is None:
            loaded_train, loaded_val = load_items(cfg)
            items = loaded_train if items is None else items
            val_items = loaded_val if val_items is None else val_items
        self._check_held_out(items)
        size = cfg.model_config.img_size
        self.degradation = D.make_degradation(cfg.degradation, size) if cfg.degradation else None
        self.sampler = D.PairSampler(
            items, cfg.batch_size, cfg.seed, self.degradation, D.Augment(**cfg.augment), on_device=cfg.degrade_on_device
        )
        self._prefetch: D.Prefetcher | None = None  # worker processes during run() when cfg.workers
        val_sampler = D.PairSampler(val_items or items, 1, cfg.seed, self.degradation, D.Augment(hflip=0))
        self.val_batch = val_sampler.fixed_batch(cfg.val_size, cfg.seed)

        self.net, self.params = self.build_networks(items, init if init is not None else cfg.init)
        betas = (cfg.betas[0], cfg.betas[1])
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, betas=betas)
        self.ema = EMA(self.net, cfg.ema_decay)
        self.losses = self.build_losses()
        self.step = 0
        self.nan_skips = 0
        self.wall = 0.0
        self.stopped_early = False
        if resume and (self.out / "last.pt").is_file():
            self._load(load_checkpoint(self.out / "last.pt"))
        elif not resume:
            for name in ("log.jsonl", "val.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        (self.out / "config.json").write_text(cfg.to_json() + "\n", encoding="utf-8")

    # -- what a stage provides -----------------------------------------------------------------
    def build_networks(
        self, items: Sequence[D.FaceItem], init: str | os.PathLike[str] | None
    ) -> tuple[NetT, list[nn.Parameter]]:
        """The network and the parameters the optimiser trains (called once, after seeding)."""
        raise NotImplementedError

    def build_losses(self) -> StageLosses:
        """The stage's objective (called after the optimiser and the EMA exist)."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """What the stage adds to a checkpoint."""
        return {}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        """Restores what ``extra_state`` saved."""

    def validate(self, write_grid: bool = True) -> dict[str, Any]:
        """Scores the EMA model on ``val_batch``; logged with ``log_validation``."""
        raise NotImplementedError

    # -- helpers for stages --------------------------------------------------------------------
    def _check_held_out(self, items: Sequence[D.FaceItem]) -> None:
        test_list = self.cfg.data.get("test_identities")
        if test_list and Path(test_list).is_file():
            bad = D.read_identity_list(test_list) & {it.identity for it in items}
            if bad:
                raise ValueError(f"training faces include held-out test identities: {sorted(bad)[:5]}")

    def autocast(self) -> AbstractContextManager[Any]:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else torch.autocast("cpu", enabled=False)

    def log_validation(self, result: dict[str, Any]) -> None:
        with open(self.out / "val.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")

    def write_sample_grid(self, columns: Sequence[Sequence[np.ndarray]], rows: int = 8) -> Path:
        """One row per face (at most ``rows``), one column per image list, as ``samples/step_N.png``."""
        lines = [np.concatenate(faces, axis=1) for faces in zip(*columns, strict=True)]
        grid = np.concatenate(lines[:rows], axis=0)
        (self.out / "samples").mkdir(exist_ok=True)
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        return path

    # -- checkpoint ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything ``resume`` needs to continue exactly."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": json.loads(self.cfg.to_json()),
            "stage": self.stage,
            "step": self.step,
            "model": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": rng_state(),
            "data": {
                "seed": self.sampler.seed,
                "batch_size": self.sampler.batch_size,
                "n_items": len(self.sampler.items),
            },
            "nan_skips": self.nan_skips,
            "wall_s": self.wall,
            **self.extra_state(),
        }

    def save(self, path: Path | None = None) -> Path:
        path = path or self.out / "last.pt"
        atomic_save(self.state(), path)
        return path

    def _load(self, ckpt: dict[str, Any]) -> None:
        if ckpt["stage"] != self.stage:
            raise ValueError(f"checkpoint is stage {ckpt['stage']}, config is stage {self.stage}")
        self.net.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["opt"])
        self.ema.load_state_dict(ckpt["ema"])
        self.load_extra_state(ckpt)
        self.step = ckpt["step"]
        self.nan_skips = ckpt.get("nan_skips", 0)
        self.wall = ckpt.get("wall_s", 0.0)
        set_rng_state(ckpt["rng"])
        # Drop log lines written after this checkpoint (a run killed between checkpoints).
        for name in ("log.jsonl", "val.jsonl"):
            p = self.out / name
            if p.is_file():
                lines = p.read_text(encoding="utf-8").splitlines()
                keep = [ln for ln in lines if ln and json.loads(ln)["step"] <= self.step]
                p.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")

    # -- one step ------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        self.net.train()
        batch = (self._prefetch or self.sampler).batch(self.step).to(self.device).degraded()
        with self.autocast():
            loss, logs, out = self.losses(batch, self.step)
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
            logs.update(self.losses.after_update(batch, out, self.step))
        else:
            self.opt.zero_grad(set_to_none=True)
            self.nan_skips += 1
            logs["nan_skip"] = 1
            log.warning("step %d: non-finite loss or gradient, step skipped (%d so far)", self.step, self.nan_skips)
        self.step += 1
        logs.update(self.losses.after_step(batch, self.step))
        return logs

    # -- the loop ------------------------------------------------------------------------------
    def run(
        self,
        until: int | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        deadline: float | None = None,
    ) -> list[dict[str, float]]:
        """Train to ``until`` (default ``config.steps``); returns the logs of the steps run now.

        ``deadline`` (a ``time.time()`` value) stops the run early after the step that passes
        it, with a checkpoint: CPU time on a shared machine is not predictable, so a stage can
        be given a wall-clock budget and report the steps it reached (``self.stopped_early``).
        """
        from tqdm import tqdm

        cfg = self.cfg
        end = min(until if until is not None else cfg.steps, cfg.steps)
        history: list[dict[str, float]] = []
        bar = tqdm(
            total=end,
            initial=self.step,
            disable=not self.progress,
            desc=f"stage {self.stage}",
            unit="it",
            dynamic_ncols=True,
            mininterval=5,
        )
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
                bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in PROGRESS_KEYS}, refresh=False)
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
