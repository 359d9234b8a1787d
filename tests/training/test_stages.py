"""CodeFormer training stages on the TINY network: losses go down, resume is exact, checkpoints are
atomic, degradations stay in the stage's ranges, and stages II-III train only E_L, T and CFT."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from engine.nets.codeformer.checkpoint import load_codeformer
from training import data as D
from training.cli import main as train_cli
from training.configs import config_names, load_config
from training.degrade import sample_params
from training.stages import Trainer, atomic_save, export_model, load_checkpoint, trainable_names


def _face(seed: int, size: int = 64) -> np.ndarray:
    """A cartoon face with texture: enough structure for the losses to have something to learn."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8) + rng.integers(40, 160, 3).astype(np.uint8)
    c = size // 2
    cv2.circle(img, (c, c + 2), size // 3, tuple(int(v) for v in rng.integers(120, 230, 3)), -1)
    for dx in (-7, 7):
        cv2.circle(img, (c + dx, c - 4), 3, (20, 20, 20), -1)
    cv2.ellipse(img, (c, c + 11), (8, 3), 0, 0, 180, (140, 40, 40), 2)
    return np.clip(img.astype(int) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def items() -> list[D.FaceItem]:
    return [D.FaceItem(_face(i), f"id{i % 3}", f"f{i}") for i in range(6)]


def _trainer(stage: int, out, items, init=None, **overrides) -> Trainer:
    cfg = load_config(f"tiny_stage{stage}", **overrides)
    return Trainer(cfg, out, items=items, val_items=items[:2], init=init, progress=False)


@pytest.fixture(scope="module")
def stage1_ckpt(tmp_path_factory, items):
    """A stage-I checkpoint (a few steps) that stages II and III start from."""
    out = tmp_path_factory.mktemp("s1")
    tr = _trainer(1, out, items, steps=2, disc_start=10**6)
    tr.run()
    return out / "last.pt"


@pytest.fixture(scope="module")
def stage2_ckpt(tmp_path_factory, items, stage1_ckpt):
    out = tmp_path_factory.mktemp("s2")
    tr = _trainer(2, out, items, init=stage1_ckpt, steps=1, ids_weight=0.0)
    tr.run()
    return out / "last.pt"


def _fixed(tr: Trainer) -> None:
    batch = tr.sampler.batch(0)
    tr.sampler.batch = lambda step: batch


def test_stage1_steps_lower_reconstruction_loss(tmp_path, items):
    tr = _trainer(1, tmp_path, items, steps=5, disc_start=10**6, reseed_every=0, checkpoint_every=0)
    _fixed(tr)
    hist = tr.run()
    assert hist[-1]["l1"] < hist[0]["l1"]
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_stage2_steps_lower_token_loss(tmp_path, items, stage1_ckpt):
    tr = _trainer(2, tmp_path, items, init=stage1_ckpt, steps=4, checkpoint_every=0)
    _fixed(tr)
    hist = tr.run()
    assert hist[-1]["ce"] < hist[0]["ce"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert "ids" in hist[0]


def test_stage3_steps_lower_loss(tmp_path, items, stage2_ckpt):
    tr = _trainer(3, tmp_path, items, init=stage2_ckpt, steps=4, adv_weight=0.0, checkpoint_every=0)
    _fixed(tr)
    hist = tr.run()
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert {"ce", "l1", "perc", "ids"} <= set(hist[0])


@pytest.mark.parametrize("stage", [2, 3])
def test_later_stages_train_only_encoder_transformer_cft(tmp_path, items, stage, stage1_ckpt, stage2_ckpt):
    init = stage1_ckpt if stage == 2 else stage2_ckpt
    tr = _trainer(stage, tmp_path, items, init=init, steps=1, checkpoint_every=0)
    frozen_before = {n: p.detach().clone() for n, p in tr.net.named_parameters() if n.startswith(("quantize.", "generator."))}
    tr.run()
    allowed = ("encoder.", "position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer.") + (("fuse_convs_dict.",) if stage == 3 else ())
    for name, p in tr.net.named_parameters():
        if name.startswith(("quantize.", "generator.")):
            assert p.grad is None and not p.requires_grad, name
            assert torch.equal(p, frozen_before[name]), f"{name} changed"
        elif p.grad is not None and p.grad.abs().sum() > 0:
            assert name.startswith(allowed), name
    got = {n.split(".")[0] for n, p in tr.net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {"encoder", "ft_layers", "idx_pred_layer"} <= got
    if stage == 3:
        assert "fuse_convs_dict" in got
    assert set(trainable_names(tr.net, stage)) == {n for n, p in tr.net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("stage", [1, 2])
def test_resume_gives_the_same_losses(tmp_path, items, stage, stage1_ckpt):
    init = stage1_ckpt if stage == 2 else None
    kw = dict(steps=4, checkpoint_every=2, disc_start=1, reseed_every=2, ids_weight=0.0)
    full = _trainer(stage, tmp_path / "full", items, init=init, **kw).run()
    _trainer(stage, tmp_path / "cut", items, init=init, **kw).run(until=2)
    resumed = Trainer(load_config(f"tiny_stage{stage}", **kw), tmp_path / "cut", items=items, val_items=items[:2], init=init, resume=True, progress=False)
    assert resumed.step == 2
    rest = resumed.run()
    strip = lambda h: [{k: v for k, v in x.items() if k != "s"} for x in h]  # noqa: E731 (wall time differs)
    assert strip(full[2:]) == strip(rest)
    logged = [json.loads(ln) for ln in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logged] == [1, 2, 3, 4]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"step": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_checkpoint_holds_everything_resume_needs(tmp_path, items):
    tr = _trainer(1, tmp_path, items, steps=1)
    tr.run()
    ck = load_checkpoint(tmp_path / "last.pt")
    assert {"model", "opt", "opt_d", "ema", "step", "rng", "data", "config", "disc", "nan_skips"} <= set(ck)
    assert {"torch", "numpy", "python"} <= set(ck["rng"])
    assert ck["step"] == 1


def test_degradation_ranges_follow_the_stage_config(items):
    cfg = load_config("tiny_stage2")
    deg = D.make_degradation(cfg.degradation, 64)
    f = 64 / 512
    assert deg.blur_sigma == pytest.approx((1.0 * f, 15.0 * f))
    assert deg.downscale == pytest.approx((max(1.0, 4 * f), 30 * f))
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = sample_params(deg, rng)
        assert deg.blur_sigma[0] - 1e-9 <= p.kernel.sigma_x <= deg.blur_sigma[1] + 1e-9
        assert deg.downscale[0] - 1e-9 <= p.scale <= deg.downscale[1] + 1e-9
        assert deg.jpeg_quality[0] <= p.jpeg_quality <= deg.jpeg_quality[1]
    narrow = D.make_degradation({"preset": "codeformer", "blur_sigma": [4, 4], "downscale": [8, 8]}, 64)
    assert narrow.blur_sigma == (0.5, 0.5) and narrow.downscale == (1.0, 1.0)
    # Stage I trains on HQ only; a grayed input has a grayed target.
    s1 = D.PairSampler(items, 2, 0, None).batch(0)
    assert torch.equal(s1.hq, s1.lq)
    gray = D.PairSampler(items, 6, 0, D.make_degradation({"preset": "codeformer", "gray_prob": 1.0}, 64)).batch(0)
    assert torch.allclose(gray.hq[:, 0], gray.hq[:, 1]) and torch.allclose(gray.lq[:, 0], gray.lq[:, 2], atol=2 / 127.5)


def test_batches_are_a_function_of_seed_and_step(items):
    deg = D.make_degradation("codeformer", 64)
    a, b = D.PairSampler(items, 4, 7, deg), D.PairSampler(items, 4, 7, deg)
    assert torch.equal(a.batch(5).lq, b.batch(5).lq)
    assert not torch.equal(a.batch(5).lq, a.batch(6).lq)
    # one epoch visits every face once
    seen = sum((a.indices(s) for s in range(3)), [])[:6]
    assert sorted(seen) == list(range(6))


def test_test_identities_are_refused(tmp_path, items):
    held = tmp_path / "test_identities.txt"
    held.write_text("id1\n")
    assert {it.identity for it in D.exclude_identities(items, D.read_identity_list(held))} == {"id0", "id2"}
    cfg = load_config("tiny_stage1", data={"test_identities": str(held)})
    with pytest.raises(ValueError, match="held-out"):
        Trainer(cfg, tmp_path / "o", items=items, val_items=items[:1], progress=False)


def test_export_round_trip(tmp_path, stage2_ckpt, items):
    out = tmp_path / "m.safetensors"
    net = export_model(stage2_ckpt, out, half=False)
    loaded = load_codeformer(out)
    x = D.to_tensor([items[0].image])
    with torch.no_grad():
        assert torch.allclose(net.eval()(x)[0], loaded(x)[0], atol=1e-5)


def test_cli_lists_configs(capsys):
    assert train_cli(["configs"]) == 0
    names = capsys.readouterr().out.split()
    assert {"tiny_stage1", "lite_stage1", "lite_stage3"} <= set(names) == set(config_names())
    assert train_cli(["2", "--config", "tiny_stage1"]) == 2
    assert train_cli(["train", "2", "--config", "tiny_stage1"]) == 2
    assert train_cli(["4", "--config", "tiny_stage3"]) == 2  # stage 4 is the reference adapter
