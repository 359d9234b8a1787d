"""Identity guidance at inference: multi-reference logits, reference priors and test-time identity optimisation.

**Training-free multi-reference inference** (methods.md §3, eq. 6, applied to code logits):
with one reference per sample in training and the LQ condition / context dropped at random,
N references combine at inference as

    ℓ = (1 − s_i)·ℓ(∅,∅) + (s_i − s_c)·ℓ(LQ,∅) + (s_c / N)·Σ_i ℓ(LQ, c_i),   s_i = s_c = 1.2.

**Test-time identity guidance** works on any backbone, the official weights included, with no
training: the decoder is run on a *soft* code assignment softmax(ℓ + δ)·C, and a few gradient
steps on δ — and on small offsets ε of the LQ features that CFT fuses in — raise the cosine
between the output's identity embedding and the references' mean embedding (both centred on the
mean training face), with a fidelity term ‖x − x₀‖² keeping the result near the unguided
restoration. Each step costs one decoder forward and backward: one step costs 2.5–3.3× an
unguided restoration of likeness-lite, two (the default) 3.6–4.4× (docs/references.md).

The identity the steps raise is read through several views of the decoded face (itself, its
mirror, two slightly moved, turned and scaled copies: ``identity_views``), as robust adversarial
attacks average over transformations: a step that raises dlib's cosine in one exact framing can
exploit that one network's quirks, while a change that holds in every view is a change of the
face, and the independent networks see it too (docs/references.md has the measurements).

**Reference priors** (training-free, any backbone): a face too damaged to carry its own
identity borrows the references'. Its code logits get β·log p_ref, the references' own code
distribution at each token (faces are aligned to one template, so token i is the same part of
the face), and the LQ features CFT fuses in are blended by α toward the references' encoder
features. A face that still shows its person would lose more from another photo's pose and
light than it gains, so the prior is applied only below a sharpness of the input face
(``ReferencePrior.max_sharpness``; docs/references.md has the measurements).

The identity network here is the engine's default (dlib); evaluation judges with an
independent one, so a gain is not the optimiser fooling its own judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from ..faces.align import FFHQ_SIZE
from ..identity.embedders import IdentityEmbedder
from ..nets.codeformer import CodeFormer
from ..nets.codeformer.reference import reference_inputs
from ..runtime.face_restorer import FaceRestorer, array_to_faces, faces_to_array
from .analyse import face_sharpness
from .check import steered_by_references

#: A function of a batch of tensors (images to identity vectors, or vectors to vectors).
TensorMap = Callable[[torch.Tensor], torch.Tensor]

S_I = 1.2
S_C = 1.2


def multi_reference_logits(
    net: CodeFormer, tokens: torch.Tensor, contexts: list[torch.Tensor], s_i: float = S_I, s_c: float = S_C
) -> torch.Tensor:
    """Eq. 6 on code logits. ``tokens``: the LQ token embeddings; ``contexts``: one per reference."""
    adapter = net.reference
    if adapter is None:
        raise ValueError("this network has no reference adapter")
    batch = tokens.shape[1]
    lq_only = adapter.logits(net, tokens, None)
    if not contexts:
        return lq_only
    with_refs = sum(adapter.logits(net, tokens, c) for c in contexts) / len(contexts)
    logits = (s_i - s_c) * lq_only + s_c * with_refs
    if s_i != 1.0:
        logits = logits + (1 - s_i) * adapter.logits(net, None, None, batch=batch)
    return logits


@dataclass(frozen=True)
class ReferencePrior:
    """How much a badly damaged face borrows from its references (see the module docstring).

    Args:
        codes: β, weight of the references' code log-probabilities added to the logits.
        features: α, blend of the LQ skip features toward the references' encoder features.
        max_sharpness: the prior applies to faces whose ``face_sharpness`` is below this
            (the severe evaluation faces measure 1.7–2.2, moderate ones 2.1–4.8).
    """

    codes: float = 0.5
    features: float = 0.4
    max_sharpness: float = 2.0

    def weights(self, faces) -> torch.Tensor:
        """Per face 1.0 where the prior applies (uint8 aligned faces), else 0.0."""
        return torch.tensor([1.0 if face_sharpness(f) < self.max_sharpness else 0.0 for f in faces])


def apply_reference_prior(
    net: CodeFormer,
    logits: torch.Tensor,
    lq_features: tuple[torch.Tensor, ...],
    ref_features: tuple[torch.Tensor, ...],
    weights: torch.Tensor,
    prior: ReferencePrior,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Logits and LQ features with the references' codes and features mixed in, per face by ``weights``.

    ``ref_features``: the references' (latent, *skips) from ``encode_features``; several
    references are averaged (log-probabilities and features).
    """
    if not bool(weights.any()):
        return logits, lq_features
    ref_logp = F.log_softmax(net.predict_logits(ref_features[0]).float(), dim=-1).mean(0, keepdim=True)
    wl = weights.to(logits.dtype).view(-1, 1, 1)
    logits = logits + wl * prior.codes * ref_logp.to(logits.dtype)
    mixed = [lq_features[0]]
    for f, r in zip(lq_features[1:], ref_features[1:], strict=True):
        wf = (weights.to(f.dtype) * prior.features).view(-1, 1, 1, 1)
        mixed.append(f + wf * (r.mean(0, keepdim=True).to(f.dtype) - f))
    return logits, tuple(mixed)


@dataclass(frozen=True)
class IdentityGuidance:
    """Test-time identity guidance settings (user options: strength and steps).

    Args:
        strength: step size on the logit offsets δ (0 disables guidance).
        steps: gradient steps (each ≈ one decoder forward + backward).
        fidelity: weight of ‖x(δ) − x(0)‖² (mean over pixels, images in [-1, 1]).
        temperature: softmax temperature of the soft code assignment.
        features: step size on offsets of the LQ features that feed CFT (0: codes only).
        views: read the identity through ``identity_views`` (False: the face as decoded only).
    """

    strength: float = 1.0
    steps: int = 2
    fidelity: float = 5.0
    temperature: float = 1.0
    features: float = 0.05
    views: bool = True


#: The moved copies ``identity_views`` adds: (scale, rotation in degrees, shift x, shift y), the
#: shifts in units of half the image side (``F.affine_grid``'s coordinates).
VIEW_MOVES = ((1.05, 3.0, 0.02, -0.015), (0.95, -3.0, -0.02, 0.015))


def identity_views(x: torch.Tensor) -> torch.Tensor:
    """(V·B, 3, H, W): the faces, their mirrors and ``VIEW_MOVES`` copies, stacked view by view."""
    views = [x, torch.flip(x, dims=[3])]
    for scale, degrees, dx, dy in VIEW_MOVES:
        a = np.radians(degrees)
        theta = torch.tensor(
            [[np.cos(a) / scale, -np.sin(a) / scale, dx], [np.sin(a) / scale, np.cos(a) / scale, dy]],
            dtype=x.dtype,
            device=x.device,
        )
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        views.append(F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False))
    return torch.cat(views)


def embed_views(embed: TensorMap, x: torch.Tensor) -> torch.Tensor:
    """Unit identity vectors of ``x`` (B, ...), each the normalised mean over its ``identity_views``."""
    vectors = embed(identity_views(x))
    return F.normalize(vectors.view(-1, x.shape[0], vectors.shape[-1]).mean(0), dim=-1)


def soft_codes(net: CodeFormer, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Code features (B, d, side, side) as the probability-weighted mean of the codebook."""
    probs = F.softmax(logits / temperature, dim=-1)
    feats = probs @ net.quantize.embedding.weight
    side = net.config.latent_side
    return feats.transpose(1, 2).reshape(logits.shape[0], -1, side, side)


def identity_guided_decode(
    net: CodeFormer,
    logits: torch.Tensor,
    lq_features: tuple[torch.Tensor, ...],
    w: float,
    target: torch.Tensor,
    embedder: IdentityEmbedder,
    guidance: IdentityGuidance = IdentityGuidance(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """Decode with δ optimised toward ``target`` (B, D) unit identity vectors.

    Returns (image in [-1,1], {"cos_before", "cos_after"}); the unguided decode is the hard
    argmax lookup, and the guided one is the argmax of the corrected logits ℓ + δ, so the output
    stays a codebook face.
    """
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)  # gradients go to δ only; restored below
    try:
        return _guided_decode(net, logits, lq_features, w, target, embedder, guidance)
    finally:
        for p, flag in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def centred_identity(embedder: IdentityEmbedder) -> tuple[TensorMap, TensorMap]:
    """(embed, to_target): identity vectors minus the embedder's calibrated centre, when it has one.

    The raw cosine's gradient mostly pushes along what all faces share; with the centre removed
    the steps go toward what makes the references' person distinct (on 40 severe faces of
    training identities, one step: evaluator IDS 0.483 raw → 0.490 centred; two: 0.492 → 0.504).
    """
    center = embedder.center
    if center is None:
        return embedder.embed, lambda t: t
    c = torch.from_numpy(center)

    def embed(x: torch.Tensor) -> torch.Tensor:
        return F.normalize(embedder.embed(x) - c.to(x.device), dim=-1)

    return embed, lambda t: F.normalize(t - c.to(t.device, t.dtype), dim=-1)


def _unit(grad: torch.Tensor) -> torch.Tensor:
    """Per-sample direction of ``grad`` with RMS 1."""
    norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.ndim - 1)))
    return grad / norm * grad[0].numel() ** 0.5


def _guided_decode(
    net: CodeFormer,
    logits: torch.Tensor,
    lq_features: tuple[torch.Tensor, ...],
    w: float,
    target: torch.Tensor,
    embedder: IdentityEmbedder,
    guidance: IdentityGuidance,
) -> tuple[torch.Tensor, dict[str, float]]:
    logits = logits.detach()
    lq_features = tuple(f.detach() for f in lq_features)
    plain, to_target = centred_identity(embedder)
    embed = partial(embed_views, plain) if guidance.views else plain
    target = to_target(target)
    with torch.no_grad():
        base = net.decode(net.codes_from_logits(logits), lq_features, w)
        cos_base = F.cosine_similarity(embed(base), target)
        cos_before = cos_base.mean().item()
    delta = torch.zeros_like(logits, requires_grad=True)
    skips = lq_features[1:]
    eps = [torch.zeros_like(f, requires_grad=True) for f in skips] if guidance.features > 0 else []
    if guidance.strength <= 0 or guidance.steps <= 0:
        return base, {"cos_before": cos_before, "cos_after": cos_before}
    scale = logits.std().detach().clamp_min(1e-3)
    feat_scales = [f.std().detach().clamp_min(1e-3) for f in skips] if eps else []

    def features() -> tuple[torch.Tensor, ...]:
        return (lq_features[0], *(f + e for f, e in zip(skips, eps, strict=True))) if eps else lq_features

    with torch.enable_grad():
        for _ in range(guidance.steps):
            quant = soft_codes(net, logits + delta, guidance.temperature)
            image = net.decode_features(quant, features(), w, detach_skips=False)
            cos = F.cosine_similarity(embed(image), target)
            loss = (1 - cos).sum() + guidance.fidelity * ((image - base) ** 2).mean(dim=(1, 2, 3)).sum()
            grads = torch.autograd.grad(loss, [delta, *eps], allow_unused=True)  # a skip CFT may not read
            # Normalised steps: the same strength means the same change for any logit/feature scale.
            delta = (delta - guidance.strength * scale * _unit(grads[0])).detach().requires_grad_(True)
            eps = [
                (e if g is None else e - guidance.features * fs * _unit(g)).detach().requires_grad_(True)
                for e, g, fs in zip(eps, grads[1:], feat_scales, strict=True)
            ]
    with torch.no_grad():
        out = net.decode(net.codes_from_logits(logits + delta), features(), w)
        cos_out = F.cosine_similarity(embed(out), target)
        # Per face, keep the guided result only where it moved toward the references.
        keep = (cos_out > cos_base).view(-1, 1, 1, 1)
        out = torch.where(keep, out, base)
        cos_after = torch.maximum(cos_out, cos_base).mean().item()
    return out, {"cos_before": cos_before, "cos_after": cos_after}


def restore_with_references(
    restorer: FaceRestorer,
    faces: list[np.ndarray],
    w: float,
    references: list[np.ndarray],
    embedder: IdentityEmbedder,
    guidance: IdentityGuidance | None = None,
    embeddings: np.ndarray | None = None,
    prior: ReferencePrior | None = None,
    guide_identifiable: bool = False,
    face_sizes: list[float] | None = None,
    guided: list[bool] | None = None,
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Restore ``faces`` guided by aligned ``references`` (uint8 RGB, same person).

    ``embeddings``: the references' identity vectors when already known (``ReferenceFace``).

    A network with a reference adapter combines the references by eq. 6 on its code logits;
    faces too damaged to carry their own identity borrow the references' codes and features
    (``prior``, a ``ReferencePrior``); test-time identity guidance
    (``guidance``, an ``IdentityGuidance``) then pulls the decode toward the
    references' mean identity. Needs the torch back end.

    Guidance goes only to faces too damaged for the identity check to verify
    (``check.steered_by_references``): a face that still shows its person is restored from the
    photo, since a reference adds its own pose, light and expression (held-out identities, one
    step, one reference: IDS −0.032 ± 0.008 at ``mild``, −0.010 ± 0.009 at ``moderate``, +0.06
    at ``severe``). ``face_sizes``: the faces' detection boxes in their photos, when known;
    ``guide_identifiable`` guides every face (measurements). ``guided``: which faces to guide,
    when the caller has already decided (it then replaces the check).
    """
    net, device = restorer.net, restorer.device
    x = torch.from_numpy(faces_to_array(faces, restorer.size)).to(device)
    refs = torch.from_numpy(faces_to_array(references, FFHQ_SIZE)).to(device)
    stats: dict[str, float] = {}
    with torch.no_grad():
        feats = net.encode_features(x)
        tokens = net.token_embeddings(feats[0])
        known = None if embeddings is None else torch.from_numpy(np.asarray(embeddings, np.float32))
        id_emb, ref_feats = reference_inputs(net, embedder, refs, known)
        if net.reference is not None:
            contexts = [
                net.reference.context(id_emb[i : i + 1], ref_feats[0][i : i + 1]).expand(-1, len(faces), -1)
                for i in range(len(references))
            ]
            logits = multi_reference_logits(net, tokens, contexts)
        else:
            logits = net.transform(tokens)
        if prior is not None:
            logits, feats = apply_reference_prior(net, logits, feats, ref_feats, prior.weights(faces).to(device), prior)
        target = torch.nn.functional.normalize(id_emb.mean(0, keepdim=True), dim=-1).expand(len(faces), -1)
    if guided is None:
        sizes = face_sizes or [None] * len(faces)
        guided = [
            guide_identifiable or steered_by_references(f, embedder, s) for f, s in zip(faces, sizes, strict=True)
        ]
    if guidance is not None and guidance.strength > 0 and guidance.steps > 0 and any(guided):
        out, stats = identity_guided_decode(net, logits, feats, w, target, embedder, guidance)
        if not all(guided):
            with torch.no_grad():
                plain = net.decode(net.codes_from_logits(logits), feats, w)
            out = torch.where(torch.tensor(guided, device=out.device).view(-1, 1, 1, 1), out, plain)
    else:
        with torch.no_grad():
            out = net.decode(net.codes_from_logits(logits), feats, w)
    return array_to_faces(out.float().cpu().numpy()), stats
