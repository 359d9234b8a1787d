"""Training the reference adapter (``engine.nets.codeformer.reference``) on a trained backbone.

One reference per sample — a *different* photo of the same identity from the training faces —
and only the adapter is trained (composite-context projections, cross-attention layers, null
tokens); the backbone (the official weights, or ``likeness-lite``) stays frozen, so without
references the network is exactly what it was.

Losses (methods.md §3 on the CodeFormer backbone):

* λ_token · CE(logits(LQ, c), codes of the HQ face) — the lookup transformer's own loss;
* the **hard-example identity loss** on the straight-through decode at ``fidelity_w``:
  L_HID = (1 − λ)·L_ID(HQ, out) + λ·L_ID(REF, out), λ = 0.6, weight ``ids_weight`` (0.1);
* L1 to the HQ face.

For guidance at inference the LQ condition (replaced by the learned null tokens) and each
context part (identity tokens, appearance tokens) are dropped independently with p = 0.1.

Config: a stage-3-style ``TrainConfig`` with ``stage = 4`` and ``init`` pointing at a training
checkpoint or a model file (``.safetensors`` / ``.pth``) of the backbone.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.checkpoint import save_codeformer
from engine.nets.codeformer.reference import ReferenceAdapter, ReferenceConfig

from . import data as D
from .configs import TrainConfig, load_config
from .loop import StageLosses, StepLoss, load_checkpoint, trained_weights
from .losses.common import IdentityLoss
from .losses.stage2 import straight_through_quant
from .losses.terms import Adversary
from .stages import TRAINABLE, Trainer

REFERENCE_STAGE = 4
HARD_EXAMPLE_LAMBDA = 0.6
DROP_P = 0.1
# The stage trains the adapter only (registered here so stages.py needs no reference knowledge).
TRAINABLE.setdefault(REFERENCE_STAGE, ("reference.",))


def reference_adapter(net: CodeFormer) -> ReferenceAdapter:
    """The adapter attached to ``net``; the reference stage cannot run without one."""
    adapter = net.reference
    if not isinstance(adapter, ReferenceAdapter):
        raise ValueError("the network has no reference adapter attached")
    return adapter


class ReferenceLosses(StageLosses):
    """The reference stage's objective: CE on the HQ codes, L1 and the hard-example identity loss.

    Args:
        net: the frozen backbone with its adapter.
        hq_encoder: frozen E_H, which gives the HQ face's codes.
        config: the stage config.
        sampler: the training batches; references are other faces of the same identity in it.
        id_loss: the dlib identity network, or None when ``ids_weight`` is 0.
        adversary: the discriminator, or None when ``adv_weight`` is 0.
    """

    def __init__(
        self,
        net: CodeFormer,
        hq_encoder: nn.Module,
        config: TrainConfig,
        sampler: D.PairSampler,
        id_loss: IdentityLoss | None,
        adversary: Adversary | None,
    ) -> None:
        self.net = net
        self.hq_encoder = hq_encoder
        self.cfg = config
        self.sampler = sampler
        self.id_loss = id_loss
        self.adversary = adversary
        by_id: dict[str, list[int]] = {}
        for i, item in enumerate(sampler.items):
            by_id.setdefault(item.identity, []).append(i)
        self._same_identity = by_id

    def references(self, step: int) -> torch.Tensor:
        """For each face of the step's batch, another photo of the same person (HQ, random flip)."""
        refs = []
        for slot, idx in enumerate(self.sampler.indices(step)):
            rng = np.random.default_rng((self.cfg.seed, step, slot, 0x8EF))
            others = [j for j in self._same_identity[self.sampler.items[idx].identity] if j != idx] or [idx]
            img = self.sampler.items[int(rng.choice(others))].image
            refs.append(np.ascontiguousarray(img[:, ::-1] if rng.uniform() < 0.5 else img))
        return D.to_tensor(refs)

    def __call__(self, batch: D.Batch, step: int) -> StepLoss:
        net, cfg = self.net, self.cfg
        adapter = reference_adapter(net)
        hq, lq = batch.hq, batch.lq
        ref = self.references(step).to(hq.device)
        b = hq.shape[0]
        g = torch.Generator().manual_seed(cfg.seed * 7919 + step)
        keep_lq, keep_id, keep_ref = (torch.rand(3, b, generator=g) >= DROP_P).to(hq.device)
        with torch.no_grad():
            gt_codes = net.quantize.nearest_codes(self.hq_encoder(hq))
            feats = net.encode_features(lq)
            ref_latent = net.encode_features(ref)[0]
            if self.id_loss is not None:
                id_emb = self.id_loss.net.embed_aligned(ref)
            else:
                id_emb = torch.zeros(b, adapter.config.id_dim, device=hq.device)
        tokens = net.token_embeddings(feats[0])
        null = adapter.null_tokens.unsqueeze(1).expand(-1, b, -1)
        tokens = torch.where(keep_lq.view(1, b, 1), tokens, null)
        context = adapter.context(id_emb, ref_latent, keep_id=keep_id, keep_ref=keep_ref)
        logits = adapter.logits(net, tokens, context)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), gt_codes.flatten())
        loss = cfg.token_weight * ce
        logs = {"ce": ce.item(), "acc": (logits.argmax(-1) == gt_codes).float().mean().item()}
        quant = straight_through_quant(net, logits)
        out = net.decode_features(quant, feats, w=cfg.fidelity_w, adain_latent=True)
        l1 = F.l1_loss(out, hq)
        loss = loss + cfg.l1_weight * l1
        logs["l1"] = l1.item()
        if self.id_loss is not None:
            n = cfg.ids_batch or b
            cos_hq = self.id_loss.cosine(out[:n], hq[:n])
            cos_ref = self.id_loss.cosine(out[:n], ref[:n])
            hid = ((1 - HARD_EXAMPLE_LAMBDA) * (1 - cos_hq) + HARD_EXAMPLE_LAMBDA * (1 - cos_ref)).mean()
            loss = loss + cfg.ids_weight * hid
            logs.update(hid=hid.item(), cos_hq=cos_hq.mean().item(), cos_ref=cos_ref.mean().item())
        return StepLoss(loss, logs, out)

    def after_update(self, batch: D.Batch, out: torch.Tensor | None, step: int) -> dict[str, float]:
        if self.adversary is None or out is None:
            return {}
        return self.adversary.step(batch.hq, out, step)


class ReferenceTrainer(Trainer):
    """Trainer whose trainable part is a ReferenceAdapter attached to a frozen backbone.

    ``init`` may be a training checkpoint or a model file of the backbone.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | os.PathLike[str],
        *,
        reference_config: ReferenceConfig | None = None,
        resume: bool = False,
        init: str | os.PathLike[str] | None = None,
        **kw: Any,
    ) -> None:
        if config.stage != REFERENCE_STAGE:
            raise ValueError(f"the reference stage is stage {REFERENCE_STAGE}, config says {config.stage}")
        self._ref_config = reference_config or ReferenceConfig()
        super().__init__(config, out_dir, resume=resume, init=init, **kw)

    def _init_from(self, ckpt: dict[str, Any]) -> None:
        """The backbone's weights, then a fresh adapter (before freezing, optimiser and EMA)."""
        super()._init_from(ckpt)
        self.net.attach_reference(ReferenceAdapter.for_network(self.net, self._ref_config).to(self.device))

    def build_losses(self) -> StageLosses:
        if self.hq_encoder is None:
            raise ValueError("the reference stage needs E_H from its init checkpoint")
        return ReferenceLosses(self.net, self.hq_encoder, self.cfg, self.sampler, self.id_loss, self._build_adversary())

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "reference_config": self._ref_config.to_json()}

    @torch.no_grad()
    def validate(self, write_grid: bool = True) -> dict[str, Any]:
        """IDS (dlib, centred) of the EMA model with and without each face's reference."""
        net = copy.deepcopy(self.net).eval()
        self.ema.copy_to(net)
        adapter = reference_adapter(net)
        hq, lq = self.val_batch.hq.to(self.device), self.val_batch.lq.to(self.device)
        ref = torch.flip(hq, dims=[3])  # validation has no album: the face's own HQ, mirrored, stands in
        feats = net.encode_features(lq)
        tokens = net.token_embeddings(feats[0])
        plain = net.decode(net.codes_from_logits(net.transform(tokens)), feats, self.cfg.val_w)
        id_emb = self.id_loss.net.embed_aligned(ref) if self.id_loss else None
        ctx = adapter.context(id_emb, net.encode_features(ref)[0])
        guided = net.decode(net.codes_from_logits(adapter.logits(net, tokens, ctx)), feats, self.cfg.val_w)
        res: dict[str, Any] = {"step": self.step}
        if self.id_loss is not None:
            res["ids_plain"] = float(self.id_loss.cosine(plain, hq).mean())
            res["ids_ref"] = float(self.id_loss.cosine(guided, hq).mean())
        self.log_validation(res)
        return res


def train_reference(
    config: TrainConfig | str,
    out_dir: str | os.PathLike[str],
    *,
    items: Sequence[D.FaceItem] | None = None,
    val_items: Sequence[D.FaceItem] | None = None,
    resume: bool = False,
    init: str | os.PathLike[str] | None = None,
    device: str | None = None,
    progress: bool = True,
    until: int | None = None,
    reference_config: ReferenceConfig | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Trains the adapter; returns ``out_dir/last.pt`` (export with ``export_reference_model``)."""
    cfg = load_config(config) if isinstance(config, str) else config
    deadline = time.time() + 60 * max_minutes if max_minutes else None
    trainer = ReferenceTrainer(
        cfg,
        out_dir,
        items=items,
        val_items=val_items,
        resume=resume,
        init=init,
        device=device,
        progress=progress,
        reference_config=reference_config,
    )
    trainer.run(until=until, deadline=deadline)
    return Path(out_dir) / "last.pt"


def export_reference_model(
    checkpoint: str | os.PathLike[str], path: str | os.PathLike[str], *, half: bool = False
) -> CodeFormer:
    """Backbone + trained adapter (EMA) as one Likeness safetensors model."""
    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = CodeFormer(cfg.model_config)
    ref_cfg = ReferenceConfig.from_json(ckpt["reference_config"]) if ckpt.get("reference_config") else ReferenceConfig()
    net.attach_reference(ReferenceAdapter.for_network(net, ref_cfg))
    state = trained_weights(ckpt)
    ref: dict[str, torch.Tensor] = net.state_dict()
    net.load_state_dict({k: state.get(k, v).to(v.dtype) for k, v in ref.items()})
    meta = {"training_stage": "reference", "training_steps": str(ckpt["step"])}
    save_codeformer(net.eval(), Path(path), half=half, metadata=meta)
    return net
