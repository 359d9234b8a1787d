"""Fine-tunes the bundled ×2 ESRGAN (slim) for real photos: JPEG blocks, noise and blur in, clean out.

Why: UpscalerJS's ESRGAN networks were trained on clean bicubic downscaling, so on small JPEG
photos they sharpen the 8×8 blocks with the detail, and their NIQE is worse than plain bicubic's
(issue 21). Real-ESRGAN's answer is to train on synthetic "real" damage; this does the same at a
budget these 2 CPU cores manage, starting from the slim weights (0.22 M parameters, which also keeps
the whole-photo time low).

Data: the in-the-wild photos of the *training* identities of ``../shared/data/faces`` (faces with
their backgrounds: hair, clothes, rooms, text), never the held-out ones. Each photo is shrunk by a
random factor in [0.5, 1] (area; this also hides the source's own JPEG), cut into 128² patches,
and each patch is degraded afresh at every use: with ``clean_prob`` a plain ×½ resize (bicubic or
area), else the ``background_x2`` preset (Real-ESRGAN's second-order model at r = 2, milder; the
last JPEG at the small size). Random flips and 90° turns.

Target: the patch unsharp-masked where it has edges (``sharpened``, Real-ESRGAN's "USM GT").
Loss: L1 on pixels, ``edge_weight`` × L1 on neighbour differences, ``spectrum_weight`` × L1 on
amplitude spectra and ``gan_weight`` × a small patch critic's hinge loss (pixel losses alone paint
smooth, plastic areas; the last two ask for texture). Adam, cosine decay to 0 over ``steps``; an
EMA of the weights is what is exported. Validation: PSNR on fixed pairs from validation
identities (held out of the training ones), beside bicubic's. The defaults are the shipped
``likeness-background-x2`` (25 min on one of these CPU cores; ``docs/performance.md``):

    python -m training.background_sr --out ../cache/train/background_x2

writes ``checkpoint.pt`` (resumable: run the same command again), ``log.jsonl`` and
``background-x2.safetensors`` (the EMA weights in the converted TF.js layers format that
``engine.nets.tfjs_layers`` loads; ``--export-only`` rewrites it from the checkpoint).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.files import atomic_path
from engine.nets import tfjs_layers

from .data import read_identity_list
from .degrade import PRESETS
from .degrade.operators import apply
from .degrade.sampling import sample_params
from .face_import import photos_in
from .loop import atomic_save, load_checkpoint

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PATCH = 128  # high-resolution patch side; the network sees PATCH / 2


@dataclass(frozen=True)
class Settings:
    steps: int = 1800
    batch: int = 16
    lr: float = 1e-4
    edge_weight: float = 0.5
    spectrum_weight: float = 1.0
    gan_weight: float = 0.01
    sharpen: float = 0.5
    clean_prob: float = 0.2
    ema: float = 0.995
    patches_per_photo: int = 4
    val_identities: int = 8
    seed: int = 0


def training_photos(faces: Path, test_list: Path) -> list[tuple[str, Path]]:
    """(identity, photo) of every identity not in ``test_list``."""
    held_out = read_identity_list(test_list)
    return [(p.parent.name, p) for p in photos_in(faces / "identities") if p.parent.name not in held_out]


def patch_bank(photos: list[Path], per_photo: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, PATCH, PATCH, 3) RGB patches: each photo shrunk by a random factor in [0.5, 1]."""
    patches = []
    for path in photos:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        factor = rng.uniform(0.5, 1.0)
        h, w = bgr.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb = cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        if min(rgb.shape[:2]) < PATCH:
            continue
        for _ in range(per_photo):
            y = int(rng.integers(0, rgb.shape[0] - PATCH + 1))
            x = int(rng.integers(0, rgb.shape[1] - PATCH + 1))
            patches.append(rgb[y : y + PATCH, x : x + PATCH])
    return np.stack(patches)


def degrade_pair(hq: np.ndarray, clean_prob: float, rng: np.random.Generator) -> np.ndarray:
    """The network's input for a high-resolution patch: ×½, with real-photo damage or without."""
    if rng.uniform() < clean_prob:
        mode = cv2.INTER_CUBIC if rng.uniform() < 0.5 else cv2.INTER_AREA
        return cv2.resize(hq, (PATCH // 2, PATCH // 2), interpolation=mode)
    lq = apply(hq, sample_params(PRESETS["background_x2"], rng), restore_size=False)
    if lq.shape[:2] != (PATCH // 2, PATCH // 2):  # the clamp of tiny sizes; never at r = 2 and 128²
        lq = cv2.resize(lq, (PATCH // 2, PATCH // 2), interpolation=cv2.INTER_AREA)
    return lq


def augment(hq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hq = np.rot90(hq, int(rng.integers(0, 4)))
    return np.ascontiguousarray(hq[:, ::-1] if rng.uniform() < 0.5 else hq)


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def batch(
    bank: np.ndarray, size: int, clean_prob: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    hqs = [augment(bank[int(i)], rng) for i in rng.integers(0, len(bank), size)]
    return to_tensor([degrade_pair(h, clean_prob, rng) for h in hqs]), to_tensor(hqs)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of an NCHW batch, reflected at the borders."""
    radius = round(3 * sigma)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype) / sigma) ** 2)
    taps = (taps / taps.sum()).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps.view(x.shape[1], 1, 1, -1), groups=x.shape[1])
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="reflect"), taps.view(x.shape[1], 1, -1, 1), groups=x.shape[1]
    )


def sharpened(hq: torch.Tensor, weight: float, sigma: float = 4.0, threshold: float = 10 / 255) -> torch.Tensor:
    """Real-ESRGAN's unsharp-masked ground truth ("USM GT"): the target is a little crisper than
    the source photo, only where it has edges (|detail| above ``threshold``, softened), so the
    network learns to give real photos back their snap without boosting flat areas' noise."""
    if weight <= 0:
        return hq
    blur = gaussian_blur(hq, sigma)
    detail = hq - blur
    mask = gaussian_blur((detail.abs() > threshold).float(), sigma)
    return mask * (hq + weight * detail).clamp(0, 1) + (1 - mask) * hq


def edge_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical neighbour differences: edges, not flat areas."""
    dx = (out[..., :, 1:] - out[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (out[..., 1:, :] - out[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def spectrum_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the amplitude spectra (orthonormal FFT): asks for as much fine texture as the
    target has, wherever it sits, which pixel L1 alone averages away into a painted look."""
    return (torch.fft.rfft2(out, norm="ortho").abs() - torch.fft.rfft2(target, norm="ortho").abs()).abs().mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * math.log10(1 / max(mse, 1e-12))


def export(net: tfjs_layers.SuperResolutionNet, path: Path) -> None:
    state = {k: v.detach().float().cpu() for k, v in net.body.ops.state_dict().items()}
    with atomic_path(path) as tmp:
        tfjs_layers.save(tmp, net.body.specs, state, scale=net.scale, value_range=net.value_range)


class PatchCritic(nn.Module):
    """A small spectrally normalised patch discriminator: real high-resolution patches or the
    network's? Its hinge loss (weight ``gan_weight``) asks for texture a pixel loss cannot."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out, stride in ((width, 1), (width, 2), (2 * width, 2), (2 * width, 2), (4 * width, 2)):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 3, stride, 1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        layers.append(spectral_norm(nn.Conv2d(c_in, 1, 3, 1, 1)))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)


class Run:
    """Everything a run changes (network, EMA, optimisers, critic), saved and restored together."""

    def __init__(self, init: Path, settings: Settings) -> None:
        self.net = tfjs_layers.load(init)
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=settings.lr)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, settings.steps) / settings.steps))
        )
        self.critic = PatchCritic() if settings.gan_weight else None
        self.critic_optimiser = (
            torch.optim.Adam(self.critic.parameters(), lr=2 * settings.lr, betas=(0.5, 0.99)) if self.critic else None
        )
        self.step, self.rng_state = 0, None

    def parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {
            "net": self.net,
            "ema": self.ema,
            "optimiser": self.optimiser,
            "schedule": self.schedule,
        }
        if self.critic is not None:
            parts |= {"critic": self.critic, "critic_optimiser": self.critic_optimiser}
        return parts

    def load(self, path: Path) -> None:
        saved = load_checkpoint(path)
        for key, part in self.parts().items():
            part.load_state_dict(saved[key])
        self.step, self.rng_state = saved["step"], saved["rng"]

    def save(self, path: Path, rng: np.random.Generator) -> None:
        state = {key: part.state_dict() for key, part in self.parts().items()}
        atomic_save(state | {"step": self.step, "rng": rng.bit_generator.state}, path)


def train(args: argparse.Namespace) -> None:
    settings = Settings(
        steps=args.steps,
        batch=args.batch,
        edge_weight=args.edge_weight,
        spectrum_weight=args.spectrum_weight,
        gan_weight=args.gan_weight,
        sharpen=args.sharpen,
        clean_prob=args.clean_prob,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    run, checkpoint, model_file = Run(args.init, settings), out / "checkpoint.pt", out / "background-x2.safetensors"
    if checkpoint.exists():
        run.load(checkpoint)
    if args.export_only:
        export(run.ema, model_file)
        return

    rng = np.random.default_rng(settings.seed)
    photos = training_photos(args.faces, args.test_list)
    identities = sorted({i for i, _ in photos})
    val_ids = set(identities[-settings.val_identities :])
    train_bank = patch_bank([p for i, p in photos if i not in val_ids], settings.patches_per_photo, rng)
    val_bank = patch_bank([p for i, p in photos if i in val_ids], 1, rng)[:64]
    val_lq, val_hq = batch(val_bank, len(val_bank), settings.clean_prob, np.random.default_rng(1))
    val_bicubic = F.interpolate(val_lq, scale_factor=2, mode="bicubic", align_corners=False)
    log.info(
        "%d training patches, %d validation; bicubic %.2f dB", len(train_bank), len(val_bank), psnr(val_bicubic, val_hq)
    )
    if run.rng_state is not None:
        rng.bit_generator.state = run.rng_state

    net, critic = run.net, run.critic
    history = (out / "log.jsonl").open("a", encoding="utf-8")
    deadline = time.monotonic() + 60 * args.minutes
    last_save, started = time.monotonic(), time.monotonic()
    net.train()
    while run.step < settings.steps and time.monotonic() < deadline:
        lq, hq = batch(train_bank, settings.batch, settings.clean_prob, rng)
        hq = sharpened(hq, settings.sharpen)
        sr = net(lq)
        loss = F.l1_loss(sr, hq) + settings.edge_weight * edge_l1(sr, hq)
        if settings.spectrum_weight:
            loss = loss + settings.spectrum_weight * spectrum_l1(sr, hq)
        if critic is not None and run.critic_optimiser is not None:
            critic.requires_grad_(False)
            loss = loss - settings.gan_weight * critic(sr).mean()
            critic.requires_grad_(True)
        run.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        run.optimiser.step()
        run.schedule.step()
        if critic is not None and run.critic_optimiser is not None:
            critic_loss = F.relu(1 - critic(hq)).mean() + F.relu(1 + critic(sr.detach())).mean()
            run.critic_optimiser.zero_grad(set_to_none=True)
            critic_loss.backward()
            run.critic_optimiser.step()
        run.step += 1
        with torch.no_grad():
            for e, p in zip(run.ema.parameters(), net.parameters(), strict=True):
                e.lerp_(p, 1 - settings.ema)
        if run.step % 100 == 0 or run.step == settings.steps:
            with torch.no_grad():
                val = psnr(run.ema(val_lq), val_hq)
            entry = {"step": run.step, "loss": round(loss.item(), 5), "val_psnr": round(val, 3)}
            entry |= {"lr": run.schedule.get_last_lr()[0], "s_per_step": round((time.monotonic() - started) / 100, 3)}
            started = time.monotonic()
            log.info("%s", json.dumps(entry))
            history.write(json.dumps(entry) + "\n")
            history.flush()
        if time.monotonic() - last_save > 300 or run.step == settings.steps:
            run.save(checkpoint, rng)
            export(run.ema, model_file)
            last_save = time.monotonic()
    run.save(checkpoint, rng)
    export(run.ema, model_file)
    history.close()
    log.info("stopped at step %d; %s", run.step, model_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--init", type=Path, default=ROOT / "resources/models/esrgan-slim-x2.safetensors")
    parser.add_argument("--faces", type=Path, default=SHARED / "data/faces")
    parser.add_argument("--test-list", type=Path, default=SHARED / "data/faces/test_identities.txt")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of this run")
    parser.add_argument("--steps", type=int, default=Settings.steps, help="the schedule's length")
    parser.add_argument("--batch", type=int, default=Settings.batch)
    parser.add_argument("--edge-weight", type=float, default=Settings.edge_weight)
    parser.add_argument("--spectrum-weight", type=float, default=Settings.spectrum_weight)
    parser.add_argument("--gan-weight", type=float, default=Settings.gan_weight)
    parser.add_argument("--sharpen", type=float, default=Settings.sharpen, help="USM weight on the target (0: off)")
    parser.add_argument("--clean-prob", type=float, default=Settings.clean_prob)
    parser.add_argument("--export-only", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(Settings.seed)
    train(args)


if __name__ == "__main__":
    main()
