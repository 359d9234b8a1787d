"""LoRA adapters (engine.nets.lora): identity at init, folding, files, targets, the official layout."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from engine.errors import LikenessError
from engine.nets import lora
from engine.nets.codeformer import OFFICIAL, TINY, CodeFormer
from engine.nets.codeformer.reference import ReferenceAdapter


def _tiny(seed: int = 0) -> CodeFormer:
    torch.manual_seed(seed)
    return CodeFormer(TINY).eval()


def _perturb(params: list[torch.nn.Parameter], seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def _x() -> torch.Tensor:
    return torch.rand(2, 3, TINY.img_size, TINY.img_size, generator=torch.Generator().manual_seed(3)) * 2 - 1


def test_a_fresh_adapter_changes_nothing_and_only_it_trains():
    net = _tiny()
    x = _x()
    with torch.no_grad():
        before = net(x)[0]
    params = lora.add_lora(net, rank=4)
    with torch.no_grad():
        after = net(x)[0]
    assert torch.equal(before, after)
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in params}
    assert all(p.shape[0] == 4 or p.shape[1] == 4 for p in params)


def test_targets_cover_encoder_transformer_cft_and_never_codebook_or_decoder():
    net = _tiny()
    net.attach_reference(ReferenceAdapter.for_network(net))
    targets = lora.default_targets(net)
    modules = {t.split(":")[0] for t in targets}
    assert any(m.startswith("encoder.") for m in modules)
    assert any(t.endswith("self_attn:in_proj_weight") for t in targets)
    assert any(m.endswith("self_attn.out_proj") for m in modules)
    assert any(m.endswith("linear1") for m in modules)
    assert any(m.startswith("fuse_convs_dict.") for m in modules)
    assert any(m.startswith("reference.") for m in modules)
    assert not any(m.startswith(("quantize", "generator")) for m in modules)


def test_merged_equals_the_wrapped_network_and_leaves_the_base_untouched(tmp_path):
    net = _tiny()
    base_state = {k: v.clone() for k, v in net.state_dict().items()}
    params = lora.add_lora(net, rank=4, alpha=8)
    _perturb(params)
    x = _x()
    with torch.no_grad():
        wrapped = net(x)[0]
    path = lora.save_adapter(
        tmp_path / "a.safetensors",
        lora.adapter_state(net),
        {"rank": 4, "alpha": 8, "model": "tiny", "model_sha256": "ab"},
    )
    adapter = lora.load_adapter(path)
    assert (adapter.rank, adapter.alpha, adapter.model, adapter.model_sha256) == (4, 8.0, "tiny", "ab")
    base = _tiny()
    folded = lora.merged(base, adapter)
    with torch.no_grad():
        out = folded(x)[0]
        plain = base(x)[0]
    assert (out - wrapped).abs().max() < 1e-5
    assert (out - plain).abs().max() > 1e-3  # the adapter does something
    assert all(torch.equal(v, base_state[k]) for k, v in base.state_dict().items())  # base untouched
    assert set(folded.state_dict()) == set(base.state_dict())  # plain weights, no parametrizations
    # the wrapped network's own base weights never moved either
    originals = {k.replace(".parametrizations.", ".").replace(".original", ""): v for k, v in net.state_dict().items()}
    assert all(torch.equal(originals[k], v) for k, v in base_state.items())
    # folding from the wrapped network gives the same result
    with torch.no_grad():
        assert (lora.merged(net, adapter)(x)[0] - wrapped).abs().max() < 1e-5


def test_save_load_round_trip_keeps_tensors_and_metadata(tmp_path):
    net = _tiny()
    _perturb(lora.add_lora(net, rank=2))
    state = lora.adapter_state(net)
    path = lora.save_adapter(tmp_path / "a.safetensors", state, {"rank": 2, "alpha": 2.0, "model": "tiny"})
    adapter = lora.load_adapter(path)
    assert set(adapter.state) == set(state)
    assert all(torch.equal(adapter.state[k], v) for k, v in state.items())
    assert set(adapter.targets) == set(lora.lora_modules(net))
    assert json.loads(adapter.meta["targets"]) == sorted(adapter.targets)


def test_a_bad_or_mismatched_adapter_file_is_a_likeness_error_naming_it(tmp_path):
    net = _tiny()
    _perturb(lora.add_lora(net, rank=4))
    path = lora.save_adapter(
        tmp_path / "a.safetensors", lora.adapter_state(net), {"rank": 4, "alpha": 4, "model_sha256": "aa" * 32}
    )
    other = CodeFormer(lora_free_config()).eval()
    with pytest.raises(LikenessError, match="a.safetensors"):
        lora.merged(other, lora.load_adapter(path))
    with pytest.raises(LikenessError, match="another file"):
        lora.load_adapter(path, model_sha256="bb" * 32)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(LikenessError, match="junk.safetensors"):
        lora.load_adapter(junk)
    with pytest.raises(LikenessError, match="missing"):
        lora.load_adapter(tmp_path / "none.safetensors")


def lora_free_config():
    """TINY with other widths: an adapter of TINY does not fit it."""
    import dataclasses

    return dataclasses.replace(TINY, nf=16, dim_embd=64)


def test_the_official_layout_takes_an_adapter():
    torch.manual_seed(0)
    net = CodeFormer(OFFICIAL)  # random weights: no download
    attn: Any = net.get_submodule("ft_layers.0.self_attn")
    base_in_proj = attn.in_proj_weight.detach().clone()
    params = lora.add_lora(net)
    assert len(lora.lora_modules(net)) > 100
    assert 0.5e6 < sum(p.numel() for p in params) < 2e6  # rank 4: under 1 % of 94 M
    _perturb(params)
    adapter = lora.Adapter(lora.adapter_state(net), 4, 4.0, tuple(sorted(lora.lora_modules(net))))
    folded = lora.merged(net, adapter)
    wrapped = attn.in_proj_weight.detach()
    folded_attn: Any = folded.get_submodule("ft_layers.0.self_attn")
    assert (folded_attn.in_proj_weight - wrapped).abs().max() < 1e-6
    assert not torch.equal(wrapped, base_in_proj)
    assert torch.equal(attn.parametrizations.in_proj_weight.original, base_in_proj)
