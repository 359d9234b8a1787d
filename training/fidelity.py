"""Trains the fidelity path (``engine.nets.fidelity``): the residual U-Net, then the region blend.

    likeness train fidelity --data FACE_CACHE --out DIR [--net-minutes 36] [--blend-minutes 5]
                            [--generative likeness-lite] [--tiny]

Phase 1 (the U-Net): random 128² crops of the training identities' 256² faces, each degraded by
a preset drawn from ``MIXTURE`` — from none (so a clean face learns to pass through untouched) to
``severe`` — with an L1 loss. Phase 2 (the blend): whole faces; the frozen U-Net and the frozen
generative model (decoded at the default w = 0.5) give two candidates, and the blend learns to
tell, from those and the input alone, how damaged each region is (``damage_target``: how far the
fidelity face still is from the truth there). Both phases run under a wall-clock budget and need
no GPU: the defaults (36 + 5 minutes, then about a minute to fit the blend) fit in the hour on
2 CPU cores that anyone can spend to reproduce them. The held-out identities never enter (the
trainer refuses a cache that still holds one).

Batches are pure functions of (seed, step), as in ``training.data``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from engine.nets.fidelity import TINY_FIDELITY, FidelityConfig, FidelityModel, mix, save_fidelity

from . import data as D
from .degrade import DegradationConfig, apply, sample_params

if TYPE_CHECKING:
    from engine.runtime.face_restorer import FaceRestorer

log = logging.getLogger(__name__)

#: (preset, probability) pairs; None = the clean face itself.
Mixture = tuple[tuple[str | None, float], ...]
#: The degradations phase 1 trains on.
MIXTURE: Mixture = (
    (None, 0.15),
    ("mild", 0.30),
    ("moderate", 0.35),
    ("severe", 0.20),
)
#: The blend sees the faces the generative path is for as often as the ones it harms.
BLEND_MIXTURE: Mixture = (
    (None, 0.10),
    ("mild", 0.25),
    ("moderate", 0.35),
    ("severe", 0.30),
)
FACE_SIZE = 256
CROP = 128


def degraded_pair(
    item: D.FaceItem, rng: np.random.Generator, mixture: Mixture, configs: dict[str, DegradationConfig]
) -> tuple[np.ndarray, np.ndarray]:
    """(HQ, LQ) of one face: flipped at random, degraded by a preset drawn from ``mixture``."""
    hq = item.image[:, ::-1] if rng.uniform() < 0.5 else item.image
    hq = np.ascontiguousarray(hq)
    names = [m[0] for m in mixture]
    preset = names[rng.choice(len(names), p=[m[1] for m in mixture])]
    if preset is None:
        return hq, hq
    return hq, apply(hq, sample_params(configs[preset], rng))


def batch(
    items: list[D.FaceItem],
    step: int,
    seed: int,
    size: int,
    mixture: Mixture,
    configs: dict[str, DegradationConfig],
    crop: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (HQ, LQ) batch of ``step``: ``size`` faces (random crops of side ``crop`` when given)."""
    rng = np.random.default_rng((seed, step))
    picks = rng.choice(len(items), size=size, replace=len(items) < size)
    hqs, lqs = [], []
    for slot, idx in enumerate(picks):
        r = np.random.default_rng((seed, step, slot))
        hq, lq = degraded_pair(items[int(idx)], r, mixture, configs)
        if crop is not None and crop < hq.shape[0]:
            y, x = r.integers(0, hq.shape[0] - crop + 1, 2)
            hq, lq = hq[y : y + crop, x : x + crop], lq[y : y + crop, x : x + crop]
        hqs.append(hq)
        lqs.append(lq)
    return D.to_tensor(hqs), D.to_tensor(lqs)


def _configs(size: int) -> dict[str, DegradationConfig]:
    return {name: D.make_degradation(name, size) for name in ("mild", "moderate", "severe")}


def _lr(step: int, total: int, base: float) -> float:
    """Cosine decay to 5 % of ``base`` over the expected ``total`` steps (budgeted runs guess it)."""
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total)))))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss((a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2).item()
    return 10 * math.log10(1 / max(mse, 1e-10))


def train_net(
    model: FidelityModel,
    items: list[D.FaceItem],
    val: list[D.FaceItem],
    *,
    minutes: float,
    steps: int | None,
    batch_size: int = 8,
    lr: float = 4e-4,
    seed: int = 0,
    log_every: int = 50,
) -> list[dict]:
    """Phase 1: the U-Net, L1 on degraded crops, under a wall-clock budget (or a step count)."""
    configs = _configs(FACE_SIZE)
    net = model.net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.99))
    expected = steps or 10**9
    history, start, step = [], time.monotonic(), 0
    while (steps is None and time.monotonic() - start < minutes * 60) or (steps is not None and step < steps):
        if steps is None and step == 50:  # calibrate the cosine schedule to the budget
            expected = int(50 * minutes * 60 / (time.monotonic() - start))
        hq, lq = batch(items, step, seed, batch_size, MIXTURE, configs, CROP)
        for group in opt.param_groups:
            group["lr"] = _lr(step, expected, lr)
        loss = F.l1_loss(net(lq), hq)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % log_every == 0:
            history.append(
                {
                    "phase": "net",
                    "step": step,
                    "l1": round(loss.item(), 5),
                    "min": round((time.monotonic() - start) / 60, 2),
                }
            )
            log.info("fidelity net %s", history[-1])
    net.eval()
    history.append({"phase": "net", "steps": step, **validate_net(model, val, configs)})
    log.info("fidelity net validation %s", history[-1])
    return history


@torch.no_grad()
def validate_net(model: FidelityModel, val: list[D.FaceItem], configs: dict, n: int = 16) -> dict:
    """PSNR of input and output per preset on whole validation faces (fixed seed)."""
    out = {}
    for preset in ("clean", "mild", "moderate", "severe"):
        mixture = ((None if preset == "clean" else preset, 1.0),)
        hq, lq = batch(val, 0, 1234, min(n, len(val)), mixture, configs, None)
        out[preset] = {"input": round(psnr(lq, hq), 2), "output": round(psnr(model.net(lq), hq), 2)}
    return out


def generative_outputs(restorer: FaceRestorer, lq: torch.Tensor) -> torch.Tensor:
    """The generative model's faces (decoded at w = 0.5) for LQ faces in [-1, 1], at their size."""
    from engine.runtime.face_restorer import faces_to_array

    faces = D.to_images(lq)
    x = torch.from_numpy(faces_to_array(faces, restorer.size))
    with torch.no_grad():
        codes, feats = restorer.net.encode(x)
        out = restorer.net.decode(codes, feats, 0.5)
    return F.interpolate(out.float(), size=lq.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)


#: The damage a region is taught: 0 where the fidelity path's error (RMS, [0, 1] units, smoothed
#: over a tenth of the face) is at most DAMAGE_FROM, 1 from DAMAGE_FROM + DAMAGE_SPAN. Measured on
#: the validation faces with the phase-1 network: regional RMS 0.013–0.032 at ``mild`` (10th–90th
#: percentile), 0.027–0.070 at ``moderate``, 0.059–0.126 at ``severe``.
DAMAGE_FROM = 0.05
DAMAGE_SPAN = 0.03


def damage_target(fid: torch.Tensor, hq: torch.Tensor, grid: int) -> torch.Tensor:
    """(B,1,grid,grid) in [0, 1]: how far the fidelity face still is from the truth, region by
    region — where it is far, the photo has lost what the fidelity path could recover, and only
    the generative path can rebuild the region."""
    from engine.nets.fidelity import detail_band

    err = (((fid - hq) / 2) ** 2).mean(1, keepdim=True)
    smooth = err - detail_band(err, fid.shape[-1] / 10)
    rms = F.adaptive_avg_pool2d(smooth, grid).clamp_min(0).sqrt()
    return ((rms - DAMAGE_FROM) / DAMAGE_SPAN).clamp(0, 1)


def train_blend(
    model: FidelityModel,
    generative: FaceRestorer,
    items: list[D.FaceItem],
    val: list[D.FaceItem],
    *,
    minutes: float,
    steps: int | None,
    batch_size: int = 12,
    lr: float = 3e-3,
    seed: int = 1,
    fit_steps: int = 3000,
    log_every: int = 500,
) -> list[dict]:
    """Phase 2: the region blend, with the U-Net and the generative model frozen.

    The blend learns to predict ``damage_target`` (which needs the HQ face) from the input and the
    two outputs alone. The networks' passes dominate the cost, so the blend's features and targets
    are collected first (``minutes`` or ``steps`` batches), then its small head is fitted on them
    (``fit_steps`` Adam steps, cross-entropy).
    """
    configs = _configs(FACE_SIZE)
    blend = model.blend
    feats, targets = [], []
    start, step = time.monotonic(), 0
    while (steps is None and time.monotonic() - start < minutes * 60) or (steps is not None and step < steps):
        hq, lq = batch(items, step, seed, batch_size, BLEND_MIXTURE, configs, None)
        with torch.no_grad():
            fid = model.net(lq).clamp(-1, 1)
            feats.append(blend.features(lq, fid, generative_outputs(generative, lq)))
            targets.append(damage_target(fid, hq, model.config.blend_grid))
        step += 1
    x, y = torch.cat(feats), torch.cat(targets)
    history = [
        {"phase": "blend", "batches": step, "faces": len(x), "collect_min": round((time.monotonic() - start) / 60, 2)}
    ]
    log.info("region blend %s", history[-1])
    blend.train()
    opt = torch.optim.Adam(blend.head.parameters(), lr=lr)
    rng = torch.Generator().manual_seed(seed)
    for i in range(fit_steps):
        pick = torch.randint(0, len(x), (min(64, len(x)),), generator=rng)
        for group in opt.param_groups:
            group["lr"] = _lr(i, fit_steps, lr)
        predicted = blend.predict(x[pick])
        loss = F.binary_cross_entropy(predicted.clamp(1e-6, 1 - 1e-6), y[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (i + 1) % log_every == 0:
            with torch.no_grad():
                error = (blend.predict(x) - y).abs().mean().item()
            history.append(
                {"phase": "blend", "fit_step": i + 1, "bce": round(loss.item(), 5), "error": round(error, 4)}
            )
            log.info("region blend %s", history[-1])
    blend.eval()
    history.append({"phase": "blend", **validate_blend(model, generative, val, configs)})
    log.info("region blend validation %s", history[-1])
    return history


@torch.no_grad()
def validate_blend(
    model: FidelityModel,
    generative: FaceRestorer,
    val: list[D.FaceItem],
    configs: dict[str, DegradationConfig],
    n: int = 16,
) -> dict:
    out = {}
    for preset in ("clean", "mild", "moderate", "severe"):
        mixture = ((None if preset == "clean" else preset, 1.0),)
        hq, lq = batch(val, 0, 4321, min(n, len(val)), mixture, configs, None)
        fid, gen = model.net(lq).clamp(-1, 1), generative_outputs(generative, lq)
        damage = model.blend(lq, fid, gen)
        out[preset] = {
            "input": round(psnr(lq, hq), 2),
            "fidelity": round(psnr(fid, hq), 2),
            "generative": round(psnr(gen, hq), 2),
            "blend": round(psnr(mix(fid, gen, damage, generative.size), hq), 2),
            "mean_damage": round(damage.mean().item(), 3),
            "target_damage": round(damage_target(fid, hq, model.config.blend_grid).mean().item(), 3),
        }
    return out


def load_training_faces(cache: Path, size: int, test_list: Path | None) -> tuple[list[D.FaceItem], list[D.FaceItem]]:
    """(train, validation) faces of the training identities; the last 5 identities validate."""
    held = D.read_identity_list(test_list) if test_list and Path(test_list).is_file() else set()
    items = D.faces_from_cache(cache, size, exclude=held)
    leaked = {it.identity for it in items} & held
    if leaked:
        raise ValueError(f"held-out identities in the training faces: {sorted(leaked)[:3]}")
    return D.split_validation(items, 5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="likeness train fidelity", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument("--data", type=Path, required=True, help="face cache from training.face_import (256² crops)")
    p.add_argument("--out", type=Path, default=Path("../cache/train/fidelity"))
    p.add_argument(
        "--test-list", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/faces/test_identities.txt"
    )
    p.add_argument("--generative", default="likeness-lite", help="the generative model the blend is trained with")
    p.add_argument("--net-minutes", type=float, default=36.0)
    p.add_argument("--blend-minutes", type=float, default=5.0)
    p.add_argument("--net-steps", type=int, help="a step count instead of the budget")
    p.add_argument("--blend-steps", type=int)
    p.add_argument("--init", type=Path, help="start from this fidelity model (e.g. to train only the blend)")
    p.add_argument("--skip-net", action="store_true", help="keep --init's U-Net; train only the blend")
    p.add_argument("--tiny", action="store_true", help="the tiny config (tests)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from engine.nets.fidelity import load_fidelity

    model = load_fidelity(args.init) if args.init else FidelityModel(TINY_FIDELITY if args.tiny else FidelityConfig())
    train, val = load_training_faces(args.data, FACE_SIZE, args.test_list)
    log.info(
        "%d training faces (%d identities), %d validation faces", len(train), len({i.identity for i in train}), len(val)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    history = []
    if not args.skip_net:
        history += train_net(model, train, val, minutes=args.net_minutes, steps=args.net_steps)
        save_fidelity(model, args.out / "fidelity-net.safetensors", half=False)
    from engine.models import ModelStore
    from engine.nets.codeformer import load_codeformer
    from engine.runtime.face_restorer import FaceRestorer

    generative = FaceRestorer(load_codeformer(ModelStore().path(args.generative)), torch.device("cpu"), args.generative)
    history += train_blend(model, generative, train, val, minutes=args.blend_minutes, steps=args.blend_steps)
    meta = {"trained_with": args.generative, "training_faces": len(train), "history": json.dumps(history[-1])}
    save_fidelity(model, args.out / "likeness-fidelity.safetensors", metadata=meta)
    (args.out / "history.json").write_text(json.dumps(history, indent=1))
    print(f"wrote {args.out / 'likeness-fidelity.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
