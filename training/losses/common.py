"""Loss primitives of the CodeFormer stages: perceptual, adversarial (VQGAN's adaptive weight), identity.

* **Perceptual.** CodeFormer uses VGG19 features (LPIPS-style). Pretrained VGG weights cannot be
  downloaded here, so :func:`make_perceptual` picks, in order: ``"vgg"`` when torchvision's
  ``vgg19-dcbe5e97.pth`` is in the torch hub cache; otherwise a substitute named in the stage
  config — ``"msssim"`` (1 − multi-scale SSIM, Wang, Simoncelli and Bovik 2003) or ``"dlib"``
  (L1 between channel-normalised multi-layer features of the dlib face-recognition ResNet on the
  face chip, the only pretrained image network installed). See ``training/configs/README.md``
  for the measurement that chose the lite model's substitute.
* **Adversarial.** A PatchGAN discriminator (``NLayerDiscriminator`` of pix2pix / taming-transformers)
  with the hinge loss; the generator's adversarial term is weighted by VQGAN's adaptive weight
  ``‖∇L_rec‖ / (‖∇L_adv‖ + 1e-4)`` at the last decoder layer (Esser, Rombach and Ommer, "Taming
  Transformers for High-Resolution Image Synthesis", CVPR 2021), times λ_adv.
* **Identity.** ``1 − cos`` of dlib embeddings (ID-CodeFormer's L_ids with dlib in ArcFace's place).
  dlib's cosines are compressed (different people ≈ 0.82), so the embeddings are centred on the
  training set's mean embedding before the cosine (:class:`IdentityLoss`): this spreads the
  cosines to an ArcFace-like range (see the measurement in ``training/configs/README.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

VGG19_FILE = "vgg19-dcbe5e97.pth"

_Loss = TypeVar("_Loss", bound=Callable[..., torch.Tensor])


# ----------------------------------------------------------------------------- perceptual


def full_precision(fn: _Loss) -> _Loss:
    """Run a loss in float32 with autocast off: SSIM's variances (E[x²] − E[x]²) and dlib's
    compressed cosines cancel catastrophically in bf16 (NaN on the CPU, useless gradients on CUDA)."""

    @functools.wraps(fn)
    def wrapper(self: nn.Module, *args: object) -> torch.Tensor:
        dev = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(dev, enabled=False):
            return fn(self, *(a.float() if isinstance(a, torch.Tensor) else a for a in args))

    return cast(_Loss, wrapper)


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


class MSSSIMLoss(nn.Module):
    """1 − MS-SSIM on images in [-1, 1] (Wang, Simoncelli, Bovik 2003; standard 5-scale weights).

    Scales whose side would fall below the 11-px window are dropped (3 scales at 64 px, 4 at 128)
    and the remaining weights renormalised. Contrast-structure terms are clamped to (0, 1] so the
    product stays differentiable.
    """

    WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    g: torch.Tensor

    def __init__(self, win: int = 11) -> None:
        super().__init__()
        self.win = win
        self.register_buffer("g", _gaussian(win), persistent=False)

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        gx = self.g.to(x.dtype).view(1, 1, 1, -1).expand(c, 1, 1, -1)
        gy = self.g.to(x.dtype).view(1, 1, -1, 1).expand(c, 1, -1, 1)
        return F.conv2d(F.conv2d(x, gx, groups=c), gy, groups=c)

    def _ssim_cs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c1, c2 = 0.01**2, 0.03**2
        mx, my = self._filter(x), self._filter(y)
        sxx = self._filter(x * x) - mx * mx
        syy = self._filter(y * y) - my * my
        sxy = self._filter(x * y) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        ssim = ((2 * mx * my + c1) / (mx * mx + my * my + c1)) * cs
        return ssim.mean((1, 2, 3)), cs.mean((1, 2, 3))

    @full_precision
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = (x.float() + 1) / 2, (y.float() + 1) / 2
        n = 1
        while n < len(self.WEIGHTS) and min(x.shape[-2:]) // 2**n >= self.win:
            n += 1
        w = torch.tensor(self.WEIGHTS[:n], device=x.device)
        w = w / w.sum()
        vals = []
        for i in range(n):
            ssim, cs = self._ssim_cs(x, y)
            vals.append(ssim if i == n - 1 else cs)
            if i < n - 1:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        stack = torch.stack(vals, dim=1).clamp(min=1e-6)
        return 1 - torch.prod(stack**w, dim=1).mean()


class DlibFeatureLoss(nn.Module):
    """L1 between channel-normalised activations of dlib ResNet blocks on the 150-px face chip.

    A face-specific stand-in for VGG features: the network is frozen (no parameters are trained).
    """

    def __init__(self, blocks: tuple[int, ...] = (0, 3, 6, 9), weights: tuple[float, ...] | None = None) -> None:
        super().__init__()
        from engine.identity.dlib_resnet import load_dlib_embedder

        self.net = load_dlib_embedder("cpu").eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        if max(blocks) >= len(self.net.blocks) or (weights is not None and len(weights) != len(blocks)):
            raise ValueError(f"blocks {blocks} (weights {weights}) do not fit dlib's {len(self.net.blocks)} blocks")
        self.blocks = blocks
        self.weights = weights or tuple(1.0 for _ in blocks)

    def features(self, faces: torch.Tensor) -> list[torch.Tensor]:
        from engine.identity.chip import chip_from_aligned

        net = self.net
        x = (chip_from_aligned((faces.float() + 1) * 127.5) - net.get_buffer("avg_rgb")) / 256.0
        x = F.max_pool2d(F.relu(net.aff(net.conv(x))), 3, 2)
        feats = []
        for i, block in enumerate(net.blocks):
            x = block(x)
            if i in self.blocks:
                feats.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-6))
            if i >= max(self.blocks):
                break
        return feats

    @full_precision
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fy = self.features(y)
        fx = self.features(x)
        total = torch.zeros((), device=x.device)
        for w, a, b in zip(self.weights, fx, fy, strict=True):
            total = total + w * (a - b).abs().mean() * a.shape[1] ** 0.5
        return total / sum(self.weights)


class VGGPerceptualLoss(nn.Module):
    """L1 of VGG19 features (conv1_2 … conv5_4, basicsr's CodeFormer weights) — only with the weights installed."""

    LAYERS = {2: 0.1, 7: 0.1, 16: 1.0, 25: 1.0, 34: 1.0}  # relu1_2, relu2_2, relu3_4, relu4_4, relu5_4
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, weights: Path) -> None:
        super().__init__()
        import torchvision

        vgg = torchvision.models.vgg19()
        vgg.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.features = cast(nn.Sequential, vgg.features)[: max(self.LAYERS) + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _feats(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x = ((x.float() + 1) / 2 - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.LAYERS:
                out[i] = x
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fy = self._feats(y)
        fx = self._feats(x)
        total = torch.zeros((), device=x.device)
        for i, w in self.LAYERS.items():
            total = total + w * F.l1_loss(fx[i], fy[i])
        return total


def vgg19_weights() -> Path | None:
    """torchvision's VGG19 file in the torch hub cache, if installed."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return path if path.is_file() else None


def make_perceptual(kind: str) -> tuple[nn.Module | None, str]:
    """(loss module, the kind actually used). ``kind``: "auto" (vgg, else msssim), "vgg", "msssim", "dlib", "none"."""
    if kind in ("auto", "vgg"):
        weights = vgg19_weights()
        if weights is not None:
            return VGGPerceptualLoss(weights), "vgg"
        if kind == "vgg":
            raise FileNotFoundError(
                f"VGG19 weights not found at {Path(torch.hub.get_dir()) / 'checkpoints' / VGG19_FILE}"
            )
        kind = "msssim"
    if kind == "msssim":
        return MSSSIMLoss(), "msssim"
    if kind == "dlib":
        return DlibFeatureLoss(), "dlib"
    if kind == "none":
        return None, "none"
    raise ValueError(f"unknown perceptual loss {kind!r}")


# ----------------------------------------------------------------------------- adversarial


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (pix2pix, as used by VQGAN); GroupNorm instead of BatchNorm so
    a batch of 4 on the CPU trains stably."""

    def __init__(self, in_chs: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_chs, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                nn.GroupNorm(min(32, ndf * mult // 4), ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def adaptive_weight(
    rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, max_w: float = 1e4
) -> torch.Tensor:
    """VQGAN's λ = ‖∇_last L_rec‖ / (‖∇_last L_adv‖ + 1e-4), clamped, detached."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, max_w).detach()


# ----------------------------------------------------------------------------- identity


class IdentityLoss(nn.Module):
    """1 − cos of centred dlib embeddings: ``cos(e(x) − μ, e(y) − μ)``, μ the training-set mean.

    ``center`` may be None (plain dlib cosine). ``forward`` returns the mean loss; ``cosine``
    the per-pair values (for logging the range).
    """

    center: torch.Tensor

    def __init__(self, center: torch.Tensor | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from engine.identity.dlib_resnet import load_dlib_embedder

        self.net = load_dlib_embedder(device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        c = torch.zeros(128) if center is None else center.detach().float().clone()
        self.register_buffer("center", c.to(next(self.net.parameters()).device))

    @full_precision
    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        e = self.net.embed_aligned(faces.float())
        return F.normalize(e - self.center, dim=-1)

    def cosine(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ey = self.embed(y)
        return (self.embed(x) * ey).sum(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (1 - self.cosine(x, y)).mean()


@torch.no_grad()
def mean_embedding(faces: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Mean unit dlib embedding of aligned faces (B,3,H,W) in [-1,1]: the centre for IdentityLoss."""
    from engine.identity.dlib_resnet import load_dlib_embedder

    net = load_dlib_embedder("cpu").eval()
    embs = [net.embed_aligned(faces[i : i + batch_size].float()) for i in range(0, len(faces), batch_size)]
    return torch.cat(embs).mean(0)
