"""ArcFace iresnet backend: depth from keys, install through the store, embed() contract, missing weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from engine.errors import CheckpointFormatError, ModelMissingError
from engine.identity import embedders
from engine.identity.arcface import IResNet, iresnet_config, load_iresnet
from engine.models.catalogue import ModelRecord, load_catalogue
from engine.models.store import ModelStore

TINY = (1, 1, 1, 1)
TINY_DIM = 8


@pytest.mark.parametrize("layers", [(3, 4, 14, 3), (3, 13, 30, 3)])
def test_depth_and_width_are_deduced_from_keys(layers):
    with torch.device("meta"):
        state = IResNet(layers=layers, num_features=512).state_dict()
    assert iresnet_config(state) == (layers, 512)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised iresnet (one block per stage, 8-D) saved like insightface's backbone.pth."""
    torch.manual_seed(0)
    net = IResNet(layers=TINY, num_features=TINY_DIM)
    for m in net.modules():  # non-trivial statistics, as in trained weights
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    return path


def _store(tmp_path: Path, sha256: str | None) -> ModelStore:
    record = load_catalogue()["arcface-r100"]
    fields = {k: getattr(record, k) for k in record.__dataclass_fields__}
    fields["sha256"] = sha256
    return ModelStore(tmp_path / "store", catalogue={"arcface-r100": ModelRecord(**fields)}, bundled_dir=tmp_path / "b")


def test_catalogue_record_is_non_commercial_identity():
    record = load_catalogue()["arcface-r100"]
    assert record.kind == "identity" and record.arch == "iresnet"
    assert record.non_commercial and not record.bundled and "non-commercial" in record.licence


def test_missing_weights_name_the_download_page(tmp_path):
    with pytest.raises(ModelMissingError, match="insightface") as info:
        embedders.make_embedder("arcface", store=_store(tmp_path, None))
    assert "arcface_r100_backbone.pth" in str(info.value)


def test_imported_checkpoint_loads_and_embeds(tmp_path, checkpoint):
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    store = _store(tmp_path, digest)
    assert store.import_file(checkpoint).id == "arcface-r100"  # byte-identical to the record: installed
    emb = embedders.make_embedder("arcface", store=store)
    assert emb.dim == TINY_DIM and emb.net.layers_cfg == TINY
    faces = (torch.rand(2, 3, 256, 256) * 2 - 1).requires_grad_(True)
    out = emb.embed(faces)
    assert out.shape == (2, TINY_DIM)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    out.sum().backward()
    assert faces.grad is not None and torch.isfinite(faces.grad).all() and faces.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in emb.net.parameters())


def test_foreign_checkpoint_is_a_format_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointFormatError, match="iresnet"):
        load_iresnet(path)


def test_import_by_name_installs_a_record_without_checksum_and_checks_the_architecture(tmp_path, checkpoint):
    store = _store(tmp_path, None)  # like the real catalogue: insightface publishes no sha256
    assert store.import_file(checkpoint, name="arcface-r100").id == "arcface-r100"
    assert store.is_installed("arcface-r100")
    assert embedders.make_embedder("arcface", store=store).dim == TINY_DIM
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointFormatError, match="iresnet"):
        _store(tmp_path / "second", None).import_file(other, name="arcface-r100")
