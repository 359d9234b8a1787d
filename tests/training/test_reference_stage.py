"""The reference stage: only the adapter learns, its loss drops, condition dropout, export round trip."""

from __future__ import annotations

import pytest
import torch

from engine.nets.codeformer.checkpoint import load_codeformer
from tests.training.test_stages import _face
from training import data as D
from training.configs import load_config
from training.reference_stage import ReferenceLosses, ReferenceTrainer, export_reference_model, reference_adapter
from training.stages import Trainer


def _items():
    return [D.FaceItem(_face(i), f"id{i % 3}", f"f{i}") for i in range(6)]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """A one-step stage-I checkpoint of the TINY network (the frozen backbone)."""
    out = tmp_path_factory.mktemp("s1")
    items = _items()
    Trainer(
        load_config("tiny_stage1", steps=1, disc_start=10**6), out, items=items, val_items=items[:2], progress=False
    ).run()
    return out / "last.pt"


def test_adapter_alone_learns_and_its_loss_drops(tmp_path, backbone):
    items, init = _items(), backbone
    cfg = load_config("tiny_reference", steps=6, checkpoint_every=0, val_every=0)
    tr = ReferenceTrainer(cfg, tmp_path / "ref", items=items, val_items=items[:2], init=init, progress=False)
    batch = tr.sampler.batch(0)
    tr.sampler.batch = lambda step: batch
    losses = tr.losses
    assert isinstance(losses, ReferenceLosses)
    refs = losses.references(0)
    losses.references = lambda step: refs
    before = {k: v.clone() for k, v in tr.net.state_dict().items() if not k.startswith("reference.")}
    hist = tr.run()
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert {"ce", "hid", "cos_ref", "cos_hq"} <= hist[0].keys()
    after = tr.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the backbone must stay frozen"
    assert all(p.requires_grad for p in reference_adapter(tr.net).parameters())


def test_references_come_from_the_same_identity_but_another_photo(tmp_path, backbone):
    items, init = _items(), backbone
    tr = ReferenceTrainer(
        load_config("tiny_reference", steps=1),
        tmp_path / "ref",
        items=items,
        val_items=items[:2],
        init=init,
        progress=False,
    )
    assert isinstance(tr.losses, ReferenceLosses)
    for step in range(4):
        refs = tr.losses.references(step)
        for slot, idx in enumerate(tr.sampler.indices(step)):
            same = [items[j].image for j in range(6) if items[j].identity == items[idx].identity and j != idx]
            got = ((refs[slot].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
            assert any((got == im).all() or (got == im[:, ::-1]).all() for im in same)


def test_export_gives_a_model_with_its_adapter(tmp_path, backbone):
    items, init = _items(), backbone
    tr = ReferenceTrainer(
        load_config("tiny_reference", steps=1, val_every=1),
        tmp_path / "ref",
        items=items,
        val_items=items[:2],
        init=init,
        progress=False,
    )
    tr.run()
    net = export_reference_model(tmp_path / "ref" / "last.pt", tmp_path / "m.safetensors")
    loaded = load_codeformer(tmp_path / "m.safetensors")
    assert loaded.reference is not None
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    val = (tmp_path / "ref" / "val.jsonl").read_text()
    assert "ids_ref" in val
