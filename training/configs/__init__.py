"""Stage configs: one JSON file per stage and model size (``<size>_stage<N>.json``).

``load_config("lite_stage1")`` reads ``training/configs/lite_stage1.json``; a path to any JSON
file works too. A file may name a ``base`` config whose values it overrides, and its ``model``
is either a preset name (``"tiny"``, ``"lite"``, ``"official"``) or a full
:class:`~engine.nets.codeformer.config.CodeFormerConfig` as a dict.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.nets.codeformer.config import OFFICIAL, TINY, CodeFormerConfig

CONFIG_DIR = Path(__file__).resolve().parent

#: The bundled default model ``likeness-lite``: 128² input, 16×16 tokens (compression 8), narrow
#: channels. Chosen by CPU forward time on 2 threads (see README.md in this folder).
LITE = CodeFormerConfig(
    img_size=128,
    nf=16,
    ch_mult=(1, 2, 4, 4),
    res_blocks=1,
    attn_resolutions=(16,),
    codebook_size=512,
    codebook_dim=64,
    dim_embd=256,
    n_head=4,
    n_layers=4,
    dim_mlp=512,
    connect_list=(32, 64, 128),
    norm_groups=8,
)

#: A stronger generative backbone for a lent GPU (issue 13, part 5): 256² faces, twice lite's
#: width at every resolution lite has plus a 256² level, a 1,024-code book and 6 transformer
#: layers; 8.5 M parameters and 23 GFLOP a face (lite: 3.6 M, 4.9 GFLOP), sized for ≤ 0.3 s a
#: face on a 2-core CPU (untrained, through ONNX Runtime: 0.10–0.17 s).
WIDE = dataclasses.replace(LITE, img_size=256, nf=32, ch_mult=(1, 1, 2, 4, 4), codebook_size=1024, n_layers=6)

MODEL_PRESETS = {"tiny": TINY, "lite": LITE, "wide": WIDE, "official": OFFICIAL}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one stage's run depends on (the loss weights follow methods.md)."""

    name: str = "unnamed"
    stage: int = 1
    model: Any = "tiny"  # preset name or CodeFormerConfig dict
    data: dict = field(default_factory=dict)  # source, path, test_identities, val_identities, filter
    degradation: Any = None  # None (stage I: HQ only), preset name or {"preset": ..., overrides}
    augment: dict = field(default_factory=lambda: {"hflip": 0.5})
    init: str | None = None  # previous stage's checkpoint
    # optimisation
    steps: int = 100
    batch_size: int = 4
    lr: float = 8e-5
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    threads: int = 0  # torch threads; 0 keeps torch's default
    workers: int = 0  # processes preparing the next batches (0: in the training loop; a GPU needs many)
    degrade_on_device: bool = False  # draw degradations in the workers, apply them on the device (a GPU)
    amp: bool = True  # bf16 autocast on CUDA
    # image losses
    l1_weight: float = 1.0
    perceptual: str = "auto"  # auto (vgg if installed, else msssim) | vgg | msssim | dlib | none
    perceptual_weight: float = 1.0
    adv_weight: float = 0.8  # λ_adv
    adaptive_adv: bool = True
    adv_max_weight: float = 1e4  # clamp of the adaptive weight (taming's); small nets need less
    disc_start: int = 0
    disc_ndf: int = 64
    disc_layers: int = 3
    disc_lr: float | None = None
    disc_from_init: bool = True
    # stage I
    code_weight: float = 1.0  # the quantizer's loss already holds β = 0.25 on the commitment term
    seed_codebook: bool = True
    reseed_every: int = 100
    # stages II-III
    token_weight: float = 0.5  # λ_token
    feat_weight: float = 1.0
    ids_weight: float = 0.1  # λ_ids
    ids_batch: int = 0  # faces per batch the identity loss sees (0: all)
    ids_center: str = "mean"  # "mean": centre dlib embeddings on the training mean; "none"
    ids_center_faces: int = 512
    fidelity_w: float = 1.0  # CFT weight in stage III training
    # loop
    checkpoint_every: int = 100
    val_every: int = 100
    val_size: int = 8
    val_w: float = 0.5
    log_every: int = 10

    @property
    def model_config(self) -> CodeFormerConfig:
        if isinstance(self.model, CodeFormerConfig):
            return self.model
        if isinstance(self.model, str):
            return MODEL_PRESETS[self.model]
        return CodeFormerConfig.from_json(self.model)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        if isinstance(self.model, CodeFormerConfig):
            d["model"] = json.loads(self.model.to_json())
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known - {"base", "_about"}
        if unknown:
            raise ValueError(f"unknown training config fields: {sorted(unknown)}")
        kw = {k: v for k, v in d.items() if k in known}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        return p
    cand = CONFIG_DIR / f"{name_or_path}.json"
    if cand.is_file():
        return cand
    raise FileNotFoundError(f"no training config {name_or_path!r} (known: {', '.join(config_names())})")


def _read(path: Path) -> dict:
    d = json.loads(path.read_text(encoding="utf-8"))
    if "base" in d:
        base = _read(_resolve(d["base"]) if not (path.parent / d["base"]).is_file() else path.parent / d["base"])
        base.update({k: v for k, v in d.items() if k != "base"})
        d = base
    return d


def load_config(name_or_path: str | Path, **overrides: Any) -> TrainConfig:
    """A stage config by name (``lite_stage1``) or JSON path, with keyword overrides."""
    d = _read(_resolve(name_or_path))
    d.update(overrides)
    return TrainConfig.from_dict(d)


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
