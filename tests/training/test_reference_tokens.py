"""The reference adapter on cached transformer inputs: exact shortcut, shards, references, training."""

from __future__ import annotations

import json

import numpy as np
import torch

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.checkpoint import load_codeformer, save_codeformer
from engine.nets.codeformer.config import TINY
from engine.nets.codeformer.reference import ReferenceAdapter
from training.reference_tokens import (
    CACHE_FILE,
    TokenBatches,
    frozen_prefix,
    load_cache,
    tail_logits,
    train_tokens,
)


def _net() -> CodeFormer:
    torch.manual_seed(0)
    return CodeFormer(TINY).eval()


def _cache(model: str, faces: int = 12, per_face: int = 2, identities: int = 6) -> dict:
    """A synthetic token cache: LQ latents are noise, and each person's HQ face is one code, which
    their identity vector names (dimension = code). Only a reference can tell the code."""
    g = torch.Generator().manual_seed(1)
    side, dim = TINY.latent_side, TINY.codebook_dim
    ident = [f"id{i % identities}" for i in range(faces)]
    code = [(i % identities) % 3 for i in range(faces)]
    embedding = torch.zeros(faces, 2, 128)
    embedding[torch.arange(faces), :, torch.tensor(code)] = 1.0
    return {
        "identities": ident,
        "names": [f"{n}/{i}" for i, n in enumerate(ident)],
        "levels": ["sweep3", "sweep4"],
        "gt_codes": torch.tensor(code).view(-1, 1).expand(-1, side * side).to(torch.int16),
        "ref_latent": torch.randn(faces, 2, dim, side, side, generator=g).half(),
        "ref_embedding": embedding,
        "lq_latent": torch.randn(faces * per_face, dim, side, side, generator=g).half(),
        "lq_face": torch.arange(faces).repeat_interleave(per_face),
        "lq_level": torch.randint(2, (faces * per_face,), generator=g),
        "model": model,
        "seed": 0,
    }


def test_the_cached_prefix_gives_the_adapters_logits_exactly():
    net = _net()
    adapter = ReferenceAdapter.for_network(net)
    net.attach_reference(adapter)
    torch.manual_seed(2)
    for p in adapter.cross_layers[1:].parameters():
        torch.nn.init.normal_(p, std=0.05)
    lq = torch.randn(3, TINY.codebook_dim, TINY.latent_side, TINY.latent_side)
    tokens = net.token_embeddings(lq)
    context = adapter.context(torch.randn(3, 128), torch.randn(3, TINY.codebook_dim, 4, 4))
    with torch.no_grad():
        full = adapter.logits(net, tokens, context)
        tail = tail_logits(net, adapter, frozen_prefix(net, tokens, 1).float(), context, 1)
    # The prefix is stored in float16: equal to its rounding.
    assert torch.allclose(full, tail, atol=2e-2 * full.abs().max().item())
    assert (full.argmax(-1) == tail.argmax(-1)).float().mean() > 0.95


def test_shards_join_with_faces_renumbered(tmp_path):
    a, b = _cache("m", faces=4), _cache("m", faces=6)
    torch.save(a, tmp_path / "tokens.0.pt")
    torch.save(b, tmp_path / "tokens.1.pt")
    joined = load_cache(tmp_path)
    assert joined["identities"] == a["identities"] + b["identities"]
    assert joined["lq_face"].tolist() == a["lq_face"].tolist() + (b["lq_face"] + 4).tolist()
    assert joined["lq_latent"].shape[0] == a["lq_latent"].shape[0] + b["lq_latent"].shape[0]


def test_references_are_another_photo_of_the_same_person_and_validation_is_set_apart():
    data = _cache("m", faces=30, identities=10)
    batches = TokenBatches(data, val_identities=2)
    val_people = {data["identities"][int(f)] for f in data["lq_face"][batches.val]}
    train_people = {data["identities"][int(f)] for f in data["lq_face"][batches.train]}
    assert len(val_people) == 2 and not val_people & train_people
    faces = data["lq_face"][batches.train]
    refs, flips = batches.references(faces, np.random.default_rng(0))
    for f, r in zip(faces.tolist(), refs.tolist(), strict=True):
        assert r != f and data["identities"][r] == data["identities"][f]
    assert set(flips.tolist()) <= {0, 1}


def test_training_learns_from_the_reference_keeps_the_frozen_layers_zero_and_exports(tmp_path):
    model = tmp_path / "tiny.safetensors"
    save_codeformer(_net(), model)
    torch.save(_cache(str(model), faces=30, per_face=2, identities=10), tmp_path / CACHE_FILE)
    res = train_tokens(
        tmp_path, steps=40, batch=16, lr=3e-3, frozen_layers=1, val_every=1000, export=tmp_path / "r.safetensors"
    )
    assert json.loads((tmp_path / "train.json").read_text())["steps"] == 40
    gained = [v["plain_ce"] - v["adapter_ce"] for v in res["final"].values()]
    assert min(gained) > 0.3, res["final"]  # on people it never saw, the reference names the code
    net = load_codeformer(tmp_path / "r.safetensors")
    assert net.reference is not None
    state = net.reference.state_dict()
    frozen = [state["cross_layers.0.attn.out_proj.weight"], state["cross_layers.0.attn.out_proj.bias"]]
    assert all(torch.count_nonzero(t) == 0 for t in frozen)
    assert torch.count_nonzero(state["cross_layers.1.attn.out_proj.weight"]) > 0
