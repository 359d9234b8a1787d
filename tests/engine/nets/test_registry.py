"""The network registry: detection by keys, configs from shapes, build and load, clear errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from engine.errors import CheckpointFormatError, LikenessError
from engine.nets import identify_checkpoint, registry
from engine.nets.codeformer import TINY, CodeFormer, save_codeformer
from engine.nets.iresnet import IResNet, IResNetConfig
from tests.conftest import REPO

TINY_IRESNET = IResNetConfig(layers=(1, 1, 1, 1), num_features=8)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def tiny_codeformer() -> CodeFormer:
    torch.manual_seed(0)
    return CodeFormer(TINY).eval()


@pytest.fixture
def tiny_iresnet() -> IResNet:
    torch.manual_seed(0)
    net = IResNet.from_config(TINY_IRESNET)
    for m in net.modules():  # non-trivial statistics, as in trained weights
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_architectures_in_detection_order():
    assert [a.id for a in registry.ARCHITECTURES] == ["codeformer", "iresnet"]
    assert registry.architecture("iresnet") is registry.IRESNET
    assert registry.architecture("realesrgan") is None


@pytest.mark.parametrize("container", ["params_ema", "params", None])
def test_official_codeformer_round_trips(tiny_codeformer, tmp_path, container):
    path = tmp_path / "codeformer.pth"
    state = tiny_codeformer.state_dict()
    torch.save({container: state} if container else state, path)
    descriptor = registry.describe_file(path)
    assert (descriptor.arch, descriptor.purpose, descriptor.input_size) == ("codeformer", "restoration", 64)
    assert descriptor.config == TINY  # deduced from shapes alone
    assert descriptor.source == str(path)
    assert _same_weights(descriptor.load(), tiny_codeformer)
    fresh = descriptor.build()
    assert isinstance(fresh, CodeFormer) and fresh.config == TINY
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in state.items()}
    assert identify_checkpoint(path) == "codeformer"


def test_own_safetensors_take_the_config_from_the_header(tmp_path):
    config = dataclasses.replace(TINY, n_head=8)  # not deducible from shapes
    torch.manual_seed(1)
    net = CodeFormer(config).eval()
    path = tmp_path / "mine.safetensors"
    save_codeformer(net, path)
    descriptor = registry.describe_file(path)
    assert descriptor.arch == "codeformer" and descriptor.config == config
    loaded = descriptor.load()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], net(x)[0])


def test_iresnet_round_trips_through_a_dataparallel_checkpoint(tiny_iresnet, tmp_path):
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in tiny_iresnet.state_dict().items()}, path)
    descriptor = registry.describe_file(path)
    assert (descriptor.arch, descriptor.purpose, descriptor.input_size) == ("iresnet", "identity", 112)
    assert descriptor.config == TINY_IRESNET
    loaded = descriptor.load()
    assert _same_weights(loaded, tiny_iresnet)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), tiny_iresnet(x))
    assert isinstance(descriptor.build(), IResNet)


def test_detect_works_on_state_dicts_in_memory(tiny_iresnet, tiny_codeformer):
    assert registry.detect(tiny_iresnet.state_dict()).config == TINY_IRESNET
    assert registry.detect(tiny_codeformer.state_dict()).config == TINY


def test_unknown_state_dict_is_a_likeness_error_naming_the_file(tmp_path):
    path = tmp_path / "mystery.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3)}, path)
    with pytest.raises(LikenessError, match="not a network Likeness knows") as err:
        registry.describe_file(path)
    assert isinstance(err.value, CheckpointFormatError)
    assert str(path) in str(err.value) and "codeformer, iresnet" in str(err.value) and "conv.weight" in str(err.value)
    assert registry.identify_file(path) is None
    with pytest.raises(CheckpointFormatError, match="shown-name"):
        registry.describe_file(path, name="shown-name")


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_unreadable_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError, match="not a readable PyTorch checkpoint") as err:
        registry.describe_file(path)
    assert str(path) in str(err.value)
    assert registry.identify_file(path) is None
    assert registry.identify_file(tmp_path / "missing.pth") is None


def test_weights_that_do_not_fit_fail_on_load_naming_the_file(tiny_iresnet, tmp_path):
    state = tiny_iresnet.state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    descriptor = registry.describe_file(path)  # the keys and the config shapes are fine
    with pytest.raises(CheckpointFormatError, match="do not fit") as err:
        descriptor.load()
    assert str(path) in str(err.value)


def test_store_and_registry_do_not_import_the_identity_backends():
    """The store checks imports through the registry: no import of engine.identity (no cycle)."""
    code = (
        "import sys, engine.models.store, engine.nets.registry\n"
        "bad = sorted(m for m in sys.modules if m.startswith('engine.identity'))\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
