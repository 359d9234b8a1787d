"""Reference conditioning: a fresh adapter changes nothing; it trains; it survives a save/load."""

from __future__ import annotations

import torch

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.checkpoint import load_codeformer, save_codeformer
from engine.nets.codeformer.config import TINY
from engine.nets.codeformer.reference import ReferenceAdapter, ReferenceConfig
from engine.references.guide import multi_reference_logits

CFG = ReferenceConfig(id_dim=128, id_tokens=2, ref_side=4, n_head=2)


def _net(seed: int = 0) -> CodeFormer:
    torch.manual_seed(seed)
    net = CodeFormer(TINY).eval()
    net.attach_reference(ReferenceAdapter.for_network(net, CFG))
    return net


def _context(net, batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(batch, 128, generator=g), dim=-1)
    latent = torch.randn(batch, TINY.codebook_dim, 8, 8, generator=g)
    return net.reference.context(emb, latent)


def test_fresh_adapter_leaves_the_logits_exactly_unchanged():
    net = _net()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        tokens = net.token_embeddings(net.encode_features(x)[0])
        plain = net.transform(tokens)
        guided = net.reference.logits(net, tokens, _context(net))
    assert torch.equal(plain, guided)
    assert _context(net).shape == (CFG.context_len, 2, TINY.dim_embd)


def test_only_the_adapter_needs_gradients_and_it_gets_them():
    net = _net()
    net.requires_grad_(False)
    net.reference.requires_grad_(True)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    tokens = net.token_embeddings(net.encode_features(x)[0])
    logits = net.reference.logits(net, tokens, _context(net))
    logits.logsumexp(-1).mean().backward()
    grads = {n: p.grad for n, p in net.reference.named_parameters()}
    assert grads["cross_layers.0.attn.out_proj.weight"].abs().sum() > 0
    assert all(p.grad is None for n, p in net.named_parameters() if not n.startswith("reference."))


def test_eq6_reduces_to_the_mean_over_references_when_s_is_one():
    net = _net()
    for p in net.reference.parameters():  # make the adapter do something
        torch.nn.init.normal_(p, std=0.05)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        tokens = net.token_embeddings(net.encode_features(x)[0])
        contexts = [_context(net, seed=s) for s in (1, 2, 3)]
        combined = multi_reference_logits(net, tokens, contexts, s_i=1.0, s_c=1.0)
        mean = sum(net.reference.logits(net, tokens, c) for c in contexts) / 3
        assert torch.allclose(combined, mean, atol=1e-5)
        default = multi_reference_logits(net, tokens, contexts)
        null = net.reference.logits(net, None, None, batch=2)
        assert torch.allclose(default, -0.2 * null + 1.2 * mean, atol=1e-4)


def test_reference_weights_round_trip_through_safetensors(tmp_path):
    net = _net()
    for p in net.reference.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "ref.safetensors"
    save_codeformer(net, path)
    loaded = load_codeformer(path)
    assert loaded.reference is not None and loaded.reference.config == CFG
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
