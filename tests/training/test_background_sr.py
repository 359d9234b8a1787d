"""The background upscaler's training: its data, a short run, the export the engine loads, resume."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.background import EsrganUpscaler
from engine.models.store import BUNDLED_DIR
from training import background_sr as B
from training.degrade import PRESETS, apply, sample_params


def faces_folder(tmp_path, identities: int = 3, photos: int = 2):
    """A faces/ folder in the shared layout: identities/<id>/<nn>.jpg and a held-out list."""
    rng = np.random.default_rng(0)
    for i in range(identities):
        folder = tmp_path / "faces" / "identities" / f"id{i}"
        folder.mkdir(parents=True)
        for j in range(photos):
            small = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{j:02d}.jpg"), cv2.resize(small, (300, 260), interpolation=cv2.INTER_CUBIC))
    (tmp_path / "faces" / "test_identities.txt").write_text("id0\n")
    return tmp_path / "faces"


def test_the_held_out_identities_never_reach_training(tmp_path):
    faces = faces_folder(tmp_path)
    photos = B.training_photos(faces, faces / "test_identities.txt")
    assert {identity for identity, _ in photos} == {"id1", "id2"} and len(photos) == 4


def test_pairs_are_half_size_with_and_without_damage():
    rng = np.random.default_rng(0)
    hq = np.random.default_rng(1).integers(0, 256, (B.PATCH, B.PATCH, 3), dtype=np.uint8)
    small = apply(hq, sample_params(PRESETS["background_x2"], rng), restore_size=False)
    assert small.shape == (B.PATCH // 2, B.PATCH // 2, 3)
    clean = sum(
        np.array_equal(B.degrade_pair(hq, 0.5, np.random.default_rng(s)), cv2.resize(hq, (64, 64), interpolation=m))
        for s in range(20)
        for m in (cv2.INTER_CUBIC, cv2.INTER_AREA)
    )
    assert 3 <= clean <= 17  # about half of 20 draws are a plain resize


def test_a_short_run_exports_a_network_the_engine_loads_and_resumes(tmp_path):
    faces = faces_folder(tmp_path, identities=12)
    out = tmp_path / "run"
    common = ["--out", str(out), "--faces", str(faces), "--test-list", str(faces / "test_identities.txt")]
    common += ["--batch", "2"]
    B.main([*common, "--steps", "2"])
    model = out / "background-x2.safetensors"
    image = np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    assert EsrganUpscaler({2: model}).upscale(image, 2).shape == (48, 60, 3)
    # Starts from the bundled slim network, so two small steps leave it close to it.
    slim = EsrganUpscaler({2: BUNDLED_DIR / "esrgan-slim-x2.safetensors"}).upscale(image, 2)
    assert np.abs(EsrganUpscaler({2: model}).upscale(image, 2).astype(int) - slim).mean() < 3
    B.main([*common, "--steps", "3"])  # the same command goes on from step 2
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 3]


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_clean_prob_extremes(prob):
    hq = np.zeros((B.PATCH, B.PATCH, 3), np.uint8)
    assert B.degrade_pair(hq, prob, np.random.default_rng(0)).shape == (64, 64, 3)


def test_the_sharpened_target_crisps_edges_and_leaves_flat_areas_alone():
    import torch

    rng = np.random.default_rng(0)
    step = np.where(np.arange(64) < 32, 0.3, 0.7).astype(np.float32)
    image = np.tile(step, (64, 1)) + rng.normal(0, 0.004, (64, 64)).astype(np.float32)  # 1-level noise
    hq = torch.from_numpy(image)[None, None].repeat(1, 3, 1, 1)
    out = B.sharpened(hq, 0.5)
    assert torch.equal(B.sharpened(hq, 0.0), hq)
    # Flat areas far from the edge keep their pixels (noise is below the threshold) ...
    assert (out[..., :, :8] - hq[..., :, :8]).abs().max() < 1e-3
    # ... and the edge gains contrast: darker just left of it, brighter just right.
    assert out[0, 0, 32, 29] < hq[0, 0, 32, 29] - 0.02 and out[0, 0, 32, 34] > hq[0, 0, 32, 34] + 0.02
