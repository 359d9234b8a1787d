"""CodeFormer: codebook lookup transformer + controllable feature transformation.

Zhou, Chan, Li, Loy, "Towards Robust Blind Face Restoration with Codebook Lookup Transformer",
NeurIPS 2022. The released weights (S-Lab License 1.0, non-commercial) load into
``CodeFormer(OFFICIAL)`` unchanged: attribute names and order reproduce its state dict.

The forward pass is split so a fidelity change re-runs only the decoder:
``encode(x) -> (codes, lq_features)`` then ``decode(codes, lq_features, w)``.
``lq_features`` is a tuple of tensors (the encoder's latent, then the CFT skip features in
``connect_list`` order) so both halves export to ONNX with plain tensor inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .config import CodeFormerConfig
from .vqgan import Encoder, Generator, ResBlock, VectorQuantizer

if TYPE_CHECKING:
    from .reference import ReferenceAdapter

LQFeatures = tuple[torch.Tensor, ...]


class TransformerSALayer(nn.Module):
    """Pre-norm self-attention layer; the position embedding is added to queries and keys."""

    def __init__(self, dim: int, n_head: int, dim_mlp: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, n_head, dropout=0.0)
        self.linear1 = nn.Linear(dim, dim_mlp)
        self.linear2 = nn.Linear(dim_mlp, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x, pos: (tokens, batch, dim) — the sequence-first layout of the official code."""
        h = self.norm1(x)
        qk = h + pos
        x = x + self.self_attn(qk, qk, value=h, need_weights=False)[0]
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class FuseSFTBlock(nn.Module):
    """CFT: predicts α, β from (encoder, decoder) features; F̂ = F + w·(α⊙F + β)."""

    def __init__(self, chs: int, groups: int = 32) -> None:
        super().__init__()
        self.encode_enc = ResBlock(2 * chs, chs, groups)
        self.scale = nn.Sequential(
            nn.Conv2d(chs, chs, 3, padding=1), nn.LeakyReLU(0.2, True), nn.Conv2d(chs, chs, 3, padding=1)
        )
        self.shift = nn.Sequential(
            nn.Conv2d(chs, chs, 3, padding=1), nn.LeakyReLU(0.2, True), nn.Conv2d(chs, chs, 3, padding=1)
        )

    def forward(self, enc_feat: torch.Tensor, dec_feat: torch.Tensor, w: torch.Tensor | float) -> torch.Tensor:
        h = self.encode_enc(torch.cat([enc_feat, dec_feat], dim=1))
        return dec_feat + w * (dec_feat * self.scale(h) + self.shift(h))


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Gives ``content`` the per-channel mean/std of ``style`` (official inference option)."""
    c_mean, c_std = content.mean((2, 3), keepdim=True), (content.var((2, 3), keepdim=True) + eps).sqrt()
    s_mean, s_std = style.mean((2, 3), keepdim=True), (style.var((2, 3), keepdim=True) + eps).sqrt()
    return (content - c_mean) / c_std * s_std + s_mean


class CodeFormer(nn.Module):
    """VQGAN (encoder, quantize, generator) + lookup transformer + CFT fuse blocks."""

    def __init__(self, config: CodeFormerConfig) -> None:
        super().__init__()
        cfg = self.config = config
        # Registration order below is the official state-dict order.
        self.position_emb = nn.Parameter(torch.zeros(cfg.latent_size, cfg.dim_embd))
        layout = (cfg.ch_mult, cfg.res_blocks, cfg.img_size, cfg.attn_resolutions, cfg.norm_groups)
        self.encoder = Encoder(3, cfg.nf, cfg.codebook_dim, *layout)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_dim)
        self.generator = Generator(cfg.nf, cfg.codebook_dim, *layout)
        self.feat_emb = nn.Linear(cfg.codebook_dim, cfg.dim_embd)
        self.ft_layers = nn.Sequential(
            *[TransformerSALayer(cfg.dim_embd, cfg.n_head, cfg.dim_mlp) for _ in range(cfg.n_layers)]
        )
        self.idx_pred_layer = nn.Sequential(
            nn.LayerNorm(cfg.dim_embd), nn.Linear(cfg.dim_embd, cfg.codebook_size, bias=False)
        )
        self.fuse_convs_dict = nn.ModuleDict(
            {str(s): FuseSFTBlock(cfg.channels_at(s), cfg.norm_groups) for s in cfg.connect_list}
        )
        self._skip_taps = {self.encoder.level_ends[s]: i for i, s in enumerate(cfg.connect_list)}
        self._fuse_taps = {self.generator.fuse_points[s]: i for i, s in enumerate(cfg.connect_list)}
        # Optional reference conditioning (reference.py); registered only when attached, so the
        # state dict of a plain network stays the official one.
        self.reference: ReferenceAdapter | None = None

    def attach_reference(self, adapter: ReferenceAdapter) -> ReferenceAdapter:
        """Adds a ReferenceAdapter as ``self.reference`` (its weights are saved with the network)."""
        self.reference = adapter
        return adapter

    # -- encoder half ------------------------------------------------------------------------
    def encode_features(self, x: torch.Tensor) -> LQFeatures:
        """Encoder pass: (latent, *skip features in connect_list order). x in [-1, 1]."""
        skips: list[torch.Tensor] = [x] * len(self._skip_taps)
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in self._skip_taps:
                skips[self._skip_taps[i]] = x
        return (x, *skips)

    def token_embeddings(self, lq_latent: torch.Tensor) -> torch.Tensor:
        """Transformer input (tokens, batch, dim_embd) from the encoder latent."""
        return self.feat_emb(lq_latent.flatten(2).permute(2, 0, 1))

    def transform(self, tokens: torch.Tensor) -> torch.Tensor:
        """Runs the lookup transformer; returns code logits (batch, tokens, codebook_size)."""
        pos = self.position_emb.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        for layer in self.ft_layers:
            tokens = layer(tokens, pos)
        return self.idx_pred_layer(tokens).permute(1, 0, 2)

    def predict_logits(self, lq_latent: torch.Tensor) -> torch.Tensor:
        return self.transform(self.token_embeddings(lq_latent))

    @staticmethod
    def codes_from_logits(logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=-1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, LQFeatures]:
        """Face (B,3,H,W) in [-1,1] → (codes (B, tokens) int64, lq_features)."""
        feats = self.encode_features(x)
        return self.codes_from_logits(self.predict_logits(feats[0])), feats

    # -- decoder half ------------------------------------------------------------------------
    def decode(
        self,
        codes: torch.Tensor,
        lq_features: LQFeatures,
        w: torch.Tensor | float = 0.5,
        adain_latent: bool = True,
    ) -> torch.Tensor:
        """Codebook lookup → generator with CFT at fidelity ``w`` → image in [-1, 1].

        ``w`` may be a float or a tensor broadcastable to (B,1,1,1) (ONNX input). With a Python
        ``w == 0`` the CFT blocks are skipped (their contribution is exactly zero).
        """
        quant = self.quantize.lookup(codes, self.config.latent_side)
        return self.decode_features(quant, lq_features, w, adain_latent)

    def decode_features(
        self,
        quant: torch.Tensor,
        lq_features: LQFeatures,
        w: torch.Tensor | float = 0.5,
        adain_latent: bool = True,
        detach_skips: bool = True,
    ) -> torch.Tensor:
        """Generator pass from code features (B, d, side, side); training feeds soft features.

        The encoder features reach CFT detached, as in the official training (CFT does not train
        the encoder); identity guidance differentiates through them with ``detach_skips=False``.
        """
        lq_latent, *skips = lq_features
        x = adain(quant, lq_latent) if adain_latent else quant
        skip_cft = isinstance(w, (int, float)) and w == 0
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if not skip_cft and i in self._fuse_taps:
                j = self._fuse_taps[i]
                skip = skips[j].detach() if detach_skips else skips[j]
                x = self.fuse_convs_dict[str(self.config.connect_list[j])](skip, x, w)
        return x

    def forward(
        self, x: torch.Tensor, w: torch.Tensor | float = 0.5, adain_latent: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Full restoration: returns (image in [-1,1], code logits)."""
        feats = self.encode_features(x)
        logits = self.predict_logits(feats[0])
        return self.decode(self.codes_from_logits(logits), feats, w, adain_latent), logits
