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
from training.stages import Trainer, atomic_save, export_model, load_checkpoint, train_stage, trainable_names


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
    frozen_before = {
        n: p.detach().clone() for n, p in tr.net.named_parameters() if n.startswith(("quantize.", "generator."))
    }
    tr.run()
    allowed = ("encoder.", "position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer.") + (
        ("fuse_convs_dict.",) if stage == 3 else ()
    )
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
    resumed = Trainer(
        load_config(f"tiny_stage{stage}", **kw),
        tmp_path / "cut",
        items=items,
        val_items=items[:2],
        init=init,
        resume=True,
        progress=False,
    )
    assert resumed.step == 2
    rest = resumed.run()
    strip = lambda h: [{k: v for k, v in x.items() if k != "s"} for x in h]  # noqa: E731 (wall time differs)
    assert strip(full[2:]) == strip(rest)
    logged = [json.loads(ln) for ln in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logged] == [1, 2, 3, 4]


def test_a_stage_resumed_for_more_steps_records_where_it_ended(tmp_path, items):
    """final.json follows the run that trained last, not the first stop (a budget-stopped run
    resumed for longer kept saying the first stop's step)."""
    kw = dict(checkpoint_every=2, disc_start=10**6, ids_weight=0.0)
    train_stage(load_config("tiny_stage1", steps=2, **kw), tmp_path, items=items, val_items=items[:2], progress=False)
    assert json.loads((tmp_path / "final.json").read_text())["step"] == 2
    train_stage(
        load_config("tiny_stage1", steps=4, **kw),
        tmp_path,
        resume=True,
        items=items,
        val_items=items[:2],
        progress=False,
    )
    final = json.loads((tmp_path / "final.json").read_text())
    assert (final["step"], final["planned_steps"]) == (4, 4)


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


def test_a_model_file_starts_a_stage_with_its_weights(tmp_path, stage2_ckpt, items):
    """Shipped networks can be trained further: stage III from a .safetensors model starts from its
    exact (fp32-exported) weights, E_H is its encoder, and a step runs."""
    model = tmp_path / "m.safetensors"
    exported = export_model(stage2_ckpt, model, half=False)
    tr = _trainer(3, tmp_path / "s3", items, init=model, steps=1, checkpoint_every=0)
    state = exported.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in tr.net.state_dict().items())
    assert tr.hq_encoder is not None
    assert all(torch.equal(v, state[f"encoder.{k}"]) for k, v in tr.hq_encoder.state_dict().items())
    assert np.isfinite(tr.run()[-1]["loss"])


def test_cli_lists_configs(capsys):
    assert train_cli(["configs"]) == 0
    names = capsys.readouterr().out.split()
    assert {"tiny_stage1", "lite_stage1", "lite_stage3", "lite_finetune"} <= set(names) == set(config_names())
    assert train_cli(["2", "--config", "tiny_stage1"]) == 2
    assert train_cli(["train", "2", "--config", "tiny_stage1"]) == 2
    assert train_cli(["4", "--config", "tiny_stage3"]) == 2  # stage 4 is the reference adapter


def test_prefetched_batches_equal_the_synchronous_ones(items):
    """Worker processes build exactly the batches the loop would (resume stays exact), in any order."""
    sampler = D.PairSampler(items, 3, 11, D.make_degradation("codeformer", 64))
    pre = D.Prefetcher(sampler, 2, ahead=3)
    try:
        for step in (0, 1, 2, 7, 3):  # 7 then 3: a jump restarts the queue there
            got, want = pre.batch(step), sampler.batch(step)
            assert torch.equal(got.hq, want.hq) and torch.equal(got.lq, want.lq) and got.identity == want.identity
    finally:
        pre.close()


def test_a_worker_that_never_answers_does_not_hang_training(items, monkeypatch):
    """A dead worker leaves its task unanswered: after the timeout the batch is built in process."""
    import multiprocessing

    class Silent:
        def get(self, timeout=None):
            raise multiprocessing.TimeoutError

    sampler = D.PairSampler(items, 3, 11, D.make_degradation("codeformer", 64))
    pre = D.Prefetcher(sampler, 1, ahead=2)
    try:
        monkeypatch.setattr(pre._pool, "apply_async", lambda *a, **k: Silent())
        for step in (0, 1):
            got, want = pre.batch(step), sampler.batch(step)
            assert torch.equal(got.lq, want.lq) and got.identity == want.identity
    finally:
        pre.close()


def test_training_with_workers_matches_training_without(tmp_path, items):
    logs = []
    for workers in (0, 2):
        tr = _trainer(
            1,
            tmp_path / f"w{workers}",
            items,
            steps=3,
            disc_start=10**6,
            workers=workers,
            checkpoint_every=0,
            val_every=0,
        )
        logs.append([h["loss"] for h in tr.run()])
        assert tr._prefetch is None  # the workers are gone after run()
    assert logs[0] == pytest.approx(logs[1], rel=1e-5)


def test_losses_and_code_lookup_stay_float32_under_bf16_autocast():
    """MS-SSIM's variances and the codebook distances cancel catastrophically in bf16 (this made a
    first GPU run diverge): both must give their float32 results inside an autocast region."""
    from engine.nets.codeformer.vqgan import VectorQuantizer
    from training.losses import MSSSIMLoss

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = (x + 0.05 * torch.randn(2, 3, 64, 64, generator=g)).clamp(-1, 1)
    loss = MSSSIMLoss()
    vq = VectorQuantizer(64, 16)
    vq.embedding.weight.data = torch.randn(64, 16, generator=g) * 3
    z = torch.randn(2, 16, 8, 8, generator=g) * 3
    ref_loss, ref_codes = loss(x, y), vq.nearest_codes(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp_loss, amp_codes = loss(x, y), vq.nearest_codes(z)
    assert amp_loss.dtype == torch.float32 and torch.isfinite(amp_loss)
    assert float(amp_loss) == pytest.approx(float(ref_loss), abs=1e-6)
    assert torch.equal(amp_codes, ref_codes)


def test_packed_cache_reads_like_the_original(tmp_path, items):
    """``pack_cache``: JPEG crops at the model size, held-out identities left behind, same index."""
    from dataclasses import asdict

    from training.face_import import INDEX_NAME, FaceRecord, pack_cache

    src, dst = tmp_path / "cache", tmp_path / "packed"
    lines = []
    for i, it in enumerate(items):
        big = cv2.resize(it.image, (128, 128), interpolation=cv2.INTER_CUBIC)
        rec = FaceRecord(
            name=f"{it.identity}/{i:02d}",
            identity=it.identity,
            source=f"/x/{i}.jpg",
            size=128,
            scale=1.0,
            face_px=100.0,
            sharpness=100.0,
            faces_found=1,
            landmarks=[[0.0, 0.0]] * 5,
        )
        (src / "faces" / it.identity).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / rec.path_suffix), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        lines.append(json.dumps(asdict(rec)))
    (src / INDEX_NAME).write_text("\n".join(lines) + "\n")
    assert pack_cache(src, dst, size=64, exclude=["id2"]) == 4
    original = {f.name: f for f in D.faces_from_cache(src, 64, exclude=["id2"])}
    packed = D.faces_from_cache(dst, 64)
    assert sorted(f.name for f in packed) == sorted(original)
    assert all(p.image.shape == (64, 64, 3) and p.identity != "id2" for p in packed)
    for p in packed:
        err = np.abs(p.image.astype(int) - original[p.name].image.astype(int)).mean()
        assert err < 6.0  # JPEG quality 95 on noise-textured cartoons (CelebA crops: see pack_cache)
    assert next(dst.glob("faces/*/*")).suffix == ".jpg"


def test_slim_checkpoint_starts_the_next_stage_like_the_full_one(tmp_path, items, stage1_ckpt):
    from training.stages import slim_checkpoint

    slim = slim_checkpoint(stage1_ckpt, tmp_path / "s1-init.pt", half=False)
    assert slim.stat().st_size < stage1_ckpt.stat().st_size / 2
    full_tr = _trainer(2, tmp_path / "a", items, init=stage1_ckpt, steps=1, ids_weight=0.0)
    slim_tr = _trainer(2, tmp_path / "b", items, init=slim, steps=1, ids_weight=0.0)
    for (k, a), b in zip(full_tr.net.state_dict().items(), slim_tr.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert full_tr.hq_encoder is not None and slim_tr.hq_encoder is not None
    hq_encoders = (full_tr.hq_encoder.state_dict().values(), slim_tr.hq_encoder.state_dict().values())
    for a, b in zip(*hq_encoders, strict=True):
        assert torch.equal(a, b)
    assert full_tr.run()[0]["loss"] == pytest.approx(slim_tr.run()[0]["loss"], rel=1e-6)
    half = load_checkpoint(slim_checkpoint(stage1_ckpt, tmp_path / "s1-half.pt"))
    assert all(v.dtype == torch.float16 for v in half["model"].values() if v.is_floating_point())
