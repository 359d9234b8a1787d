"""Reference conditioning of the lookup transformer: composite context + zero-initialised cross-attention.

Transposes the composite context of reference-guided face restoration (methods.md §3) from a
diffusion U-Net to CodeFormer's lookup transformer. From each aligned reference face:

* a **high-level part**: its identity embedding (the engine's identity interface; dlib, 128-D)
  projected to ``id_tokens`` tokens;
* a **general part**: the reference's own encoder latent (the network's encoder on the HQ
  reference: semantic layout and low-level appearance), average-pooled to a ``ref_side``² grid
  and projected to tokens;

concatenated, plus a learned positional encoding (which also tells the two parts apart). After
every self-attention layer the tokens attend to this context through a cross-attention layer
whose output projection starts at zero, so an adapter fresh from ``ReferenceAdapter(...)``
leaves the network's logits exactly unchanged: the backbone (the official weights included)
keeps its behaviour until the new layers are trained.

For training-free guidance (``engine.references.guide``) the adapter also learns ``null_tokens``: the
transformer input used when the LQ condition is dropped (p = 0.1 in training), giving
ℓ(∅, ∅) and ℓ(∅, c) alongside ℓ(LQ, ∅) and ℓ(LQ, c).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ReferenceConfig:
    """Sizes of the reference adapter.

    Args:
        id_dim: identity embedding size (128 for the dlib network).
        id_tokens: tokens the identity embedding is projected to.
        ref_side: the reference latent is pooled to ref_side × ref_side tokens.
        n_head: cross-attention heads.
    """

    id_dim: int = 128
    id_tokens: int = 4
    ref_side: int = 8
    n_head: int = 4

    @property
    def context_len(self) -> int:
        return self.id_tokens + self.ref_side**2

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict) -> ReferenceConfig:
        return cls(**(json.loads(text) if isinstance(text, str) else dict(text)))


class CrossAttentionLayer(nn.Module):
    """Pre-norm cross-attention from the face tokens to the context; zero output at init."""

    def __init__(self, dim: int, n_head: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, n_head, dropout=0.0)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x: (tokens, B, dim); context: (ctx, B, dim) → x + attention(x, context)."""
        return x + self.attn(self.norm(x), context, context, need_weights=False)[0]


class ReferenceAdapter(nn.Module):
    """Composite-context builder + one cross-attention layer per transformer layer."""

    def __init__(
        self, config: ReferenceConfig, dim_embd: int, codebook_dim: int, n_layers: int, latent_size: int
    ) -> None:
        super().__init__()
        self.config = config
        self.id_proj = nn.Linear(config.id_dim, config.id_tokens * dim_embd)
        self.ref_proj = nn.Linear(codebook_dim, dim_embd)
        self.context_pos = nn.Parameter(torch.randn(config.context_len, dim_embd) * 0.02)
        self.context_norm = nn.LayerNorm(dim_embd)
        self.cross_layers = nn.ModuleList([CrossAttentionLayer(dim_embd, config.n_head) for _ in range(n_layers)])
        # Transformer input when the LQ condition is dropped (learned; zero = "no information").
        self.null_tokens = nn.Parameter(torch.zeros(latent_size, dim_embd))

    @classmethod
    def for_network(cls, net, config: ReferenceConfig | None = None) -> ReferenceAdapter:
        cfg = net.config
        return cls(config or ReferenceConfig(), cfg.dim_embd, cfg.codebook_dim, cfg.n_layers, cfg.latent_size)

    def context(
        self,
        id_embedding: torch.Tensor | None,
        ref_latent: torch.Tensor | None,
        batch: int | None = None,
        keep_id: torch.Tensor | None = None,
        keep_ref: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(ctx, B, dim) composite context; a missing part (None) is replaced by zeros (dropped).

        ``keep_id`` / ``keep_ref``: per-sample booleans (B,) that drop a part for some samples
        only (training's condition dropout); dropped parts are zeros, as at inference.
        """
        parts = []
        dim = self.ref_proj.out_features
        b = batch or _batch_size(id_embedding, ref_latent)
        device = self.context_pos.device
        if id_embedding is not None:
            parts.append(self.id_proj(id_embedding).view(b, self.config.id_tokens, dim))
        else:
            parts.append(torch.zeros(b, self.config.id_tokens, dim, device=device))
        if ref_latent is not None:
            pooled = F.adaptive_avg_pool2d(ref_latent, self.config.ref_side).flatten(2).transpose(1, 2)
            parts.append(self.ref_proj(pooled))
        else:
            parts.append(torch.zeros(b, self.config.ref_side**2, dim, device=device))
        if keep_id is not None:
            parts[0] = parts[0] * keep_id.view(-1, 1, 1).to(parts[0].dtype)
        if keep_ref is not None:
            parts[1] = parts[1] * keep_ref.view(-1, 1, 1).to(parts[1].dtype)
        ctx = torch.cat(parts, dim=1) + self.context_pos
        return self.context_norm(ctx).transpose(0, 1)

    def logits(
        self, net, tokens: torch.Tensor | None, context: torch.Tensor | None, batch: int | None = None
    ) -> torch.Tensor:
        """Code logits of ``net``'s transformer on ``tokens`` (None: the null LQ) with ``context``."""
        if tokens is None:
            if not batch:
                if context is None:
                    raise ValueError("without tokens or a context, the batch size is needed")
                batch = context.shape[1]
            tokens = self.null_tokens.unsqueeze(1).expand(-1, batch, -1)
        pos = net.position_emb.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        # for_network gives the adapter one cross-attention layer per transformer layer.
        for layer, cross in zip(net.ft_layers, self.cross_layers, strict=True):
            tokens = layer(tokens, pos)
            if context is not None:
                tokens = cross(tokens, context)
        return net.idx_pred_layer(tokens).permute(1, 0, 2)


def _batch_size(*parts: torch.Tensor | None) -> int:
    """Batch size of the first part given (batch-first); ValueError when every part is missing."""
    for part in parts:
        if part is not None:
            return part.shape[0]
    raise ValueError("without a batch size, at least one input is needed")


def reference_inputs(
    net, embedder, references: torch.Tensor, embeddings: torch.Tensor | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """(identity embeddings, encoder features) of aligned reference faces (B,3,H,W) in [-1,1].

    The features are the encoder's (latent, *skip features), as ``encode_features`` gives them.
    References are resized to the network's size for its encoder; the identity network crops
    from the aligned face itself. ``embeddings`` already computed (by the same identity network)
    are used as they are.
    """
    size = net.config.img_size
    x = (
        references
        if references.shape[-1] == size
        else F.interpolate(references, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    )
    feats = net.encode_features(x)
    return (embedder.embed(references) if embeddings is None else embeddings.to(feats[0].device)), feats
