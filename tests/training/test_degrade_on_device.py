"""The degradation on the training device (``training.degrade.on_device``) makes what the CPU
pipeline makes from the same draws, and the trainer can leave the work to the device."""

from __future__ import annotations

import builtins
import dataclasses

import numpy as np
import pytest
import torch

from training import data as D
from training.configs import load_config
from training.degrade import apply, sample_params
from training.degrade.config import NoiseParams
from training.degrade.on_device import add_noise, apply_batch, jpeg
from training.degrade.operators import _add_noise
from training.stages import Trainer

from .test_stages import _face, items, stage1_ckpt  # noqa: F401  (fixtures)


def _faces(n: int, size: int = 128) -> np.ndarray:
    return np.stack([_face(i, size) for i in range(n)])


def _noiseless(params):
    return [dataclasses.replace(p, noise=dataclasses.replace(p.noise, sigma=0.0)) for p in params]


def test_same_draws_give_the_cpu_pipelines_faces_to_a_level():
    """Blur, resizes, JPEG, colour shift and grayscale agree with ``operators.apply`` (noise aside:
    its samples come from another generator)."""
    faces = _faces(8)
    config = dataclasses.replace(D.make_degradation("codeformer", 128), gray_prob=0.3, color_jitter_prob=0.5)
    rng = np.random.default_rng(3)
    params = _noiseless([sample_params(config, rng) for _ in faces])
    assert any(p.grayscale for p in params) and any(p.color_shift for p in params)
    device = apply_batch(D.to_tensor(faces), params)
    cpu = D.to_tensor(np.stack([apply(f, p) for f, p in zip(faces, params, strict=True)]))
    diff = ((device - cpu) * 127.5).abs()
    assert diff.max() <= 1.0 + 1e-4 and diff.mean() < 0.01
    assert device.shape == (8, 3, 128, 128) and device.dtype == torch.float32


def test_noise_has_the_drawn_strength_and_follows_its_seed():
    grey = torch.full((1, 3, 64, 64), 0.5)
    noisy = add_noise(grey, NoiseParams(kind="gaussian", sigma=12.0), seed=5)
    assert (noisy - grey).std().item() * 255 == pytest.approx(12.0, rel=0.05)
    assert torch.equal(noisy, add_noise(grey, NoiseParams(kind="gaussian", sigma=12.0), seed=5))
    assert not torch.equal(noisy, add_noise(grey, NoiseParams(kind="gaussian", sigma=12.0), seed=6))
    gray = add_noise(grey, NoiseParams(kind="gaussian", sigma=12.0, gray=True), seed=5)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    face = D.to_tensor(_faces(1, 64)) * 0.5 + 0.5  # shot noise needs many levels (Real-ESRGAN's count)
    shot = add_noise(face, NoiseParams(kind="poisson", scale=1.0), seed=5)
    rgb = face[0].permute(1, 2, 0).numpy().copy()
    cpu = _add_noise(rgb, NoiseParams(kind="poisson", scale=1.0), np.random.default_rng(5)) - rgb
    assert abs((shot - face).mean().item()) < 0.01
    assert (shot - face).std().item() == pytest.approx(float(cpu.std()), rel=0.05)


def test_jpeg_without_torchvision_falls_back_to_opencv_with_the_same_result(monkeypatch):
    img = D.to_tensor(_faces(1, 64))[:1] * 0.5 + 0.5
    with_torchvision = jpeg(img, 40)
    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    without = jpeg(img, 40)
    assert ((with_torchvision - without) * 255).abs().max() <= 1.0 + 1e-4
    assert ((with_torchvision - img) * 255).abs().mean() > 0.5  # it did compress


def test_second_order_draws_are_refused_with_a_clear_error():
    rng = np.random.default_rng(0)
    params = [sample_params(D.make_degradation("realesrgan", 128), rng)]
    with pytest.raises(ValueError, match="first-order"):
        apply_batch(D.to_tensor(_faces(1)), params)


def test_a_sampler_that_leaves_the_work_to_the_device_draws_the_same_batches():
    faces = [D.FaceItem(f, f"id{i % 2}", f"f{i}") for i, f in enumerate(_faces(6, 64))]
    config = dataclasses.replace(D.make_degradation("codeformer", 64), noise=(0.0, 0.0), gray_prob=0.5)
    here = D.PairSampler(faces, 4, 7, config)
    there = D.PairSampler(faces, 4, 7, config, on_device=True)
    for step in (0, 3):
        a, b = here.batch(step), there.batch(step)
        assert b.params is not None and len(b.params) == 4 and torch.equal(b.lq, b.hq)  # not yet degraded
        assert torch.equal(a.hq, b.hq) and a.identity == b.identity  # gray targets included
        made = b.degraded()
        assert made.params is None
        for lq_here, lq_there, params in zip(a.lq, made.lq, b.params, strict=True):
            diff = ((lq_there - lq_here) * 127.5).abs()
            if params.grayscale:  # degraded from the gray target, not grayed after: JPEG's chroma differs
                assert diff.mean() < 1.0
            else:
                assert diff.max() <= 1.0 + 1e-4


def test_a_stage_trains_with_the_degradation_on_the_device(tmp_path, items, stage1_ckpt):  # noqa: F811
    cfg = load_config("tiny_stage2", steps=2, ids_weight=0.0, degrade_on_device=True, checkpoint_every=0, val_every=0)
    trainer = Trainer(cfg, tmp_path, items=items, val_items=items[:2], init=stage1_ckpt, progress=False)
    assert trainer.sampler.on_device
    history = trainer.run()
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)


def test_worker_processes_hand_the_draws_over_unapplied():
    faces = [D.FaceItem(f, f"id{i % 2}", f"f{i}") for i, f in enumerate(_faces(4, 64))]
    sampler = D.PairSampler(faces, 2, 3, D.make_degradation("codeformer", 64), on_device=True)
    pre = D.Prefetcher(sampler, 1, ahead=2)
    try:
        got, want = pre.batch(1), sampler.batch(1)
    finally:
        pre.close()
    assert got.params == want.params and torch.equal(got.hq, want.hq)
    assert torch.equal(got.degraded().lq, want.degraded().lq)
