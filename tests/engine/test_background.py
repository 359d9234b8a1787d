"""Background upscaling: bicubic, the bundled ESRGAN networks and spandrel models, in seamless tiles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from spandrel.architectures.Compact import Compact

from engine import jpeg_grid
from engine.background import BicubicUpscaler, EsrganUpscaler, SpandrelUpscaler, scaled_size
from engine.errors import CheckpointFormatError, ModelMissingError
from engine.models.store import BUNDLED_DIR


def photo(height: int = 150, width: int = 210) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 6, width // 6, 3), dtype=np.uint8)
    noise = rng.integers(-20, 21, (height, width, 3))
    base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(int)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def tiny_model(tmp_path, *, scale: int, num_conv: int, seed: int = 0):
    """A randomly initialised Real-ESRGAN-compact (SRVGGNet) file, as a user would install."""
    torch.manual_seed(seed)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=num_conv, upscale=scale)
    path = tmp_path / f"compact_x{scale}_{num_conv}.pth"
    torch.save({"params": net.state_dict()}, path)
    return path


@pytest.mark.parametrize("scale", [2.0, 1.5, 1.0, 0.5])
def test_bicubic_sizes(scale):
    image = photo()
    out = BicubicUpscaler().upscale(image, scale)
    assert (out.shape[1], out.shape[0]) == scaled_size(image.shape, scale)
    assert out.dtype == np.uint8


def test_tiled_equals_untiled_when_the_overlap_covers_the_receptive_field(tmp_path):
    model = tiny_model(tmp_path, scale=2, num_conv=2)  # receptive field 9 px: inside a 16 px overlap
    image = photo()
    whole = SpandrelUpscaler(model, tile=None).run_model(image)
    tiled = SpandrelUpscaler(model, tile=64, overlap=16).run_model(image)
    assert whole.shape == (300, 420, 3)
    assert np.abs(whole.astype(int) - tiled).max() <= 1


def test_tiles_cross_fade_when_the_receptive_field_is_larger(tmp_path):
    """A model that sees further than the overlap still leaves no visible tile seam."""
    model = tiny_model(tmp_path, scale=4, num_conv=16, seed=1)  # receptive field 37 px > 8
    image = photo()
    whole = SpandrelUpscaler(model, tile=None).run_model(image)
    tiled = SpandrelUpscaler(model, tile=48, overlap=8).run_model(image)
    diff = np.abs(whole.astype(int) - tiled)
    assert diff.max() <= 3 and diff.mean() < 0.2


def test_scale_mismatch_runs_the_model_then_resizes(tmp_path):
    upscaler = SpandrelUpscaler(tiny_model(tmp_path, scale=4, num_conv=2))
    assert upscaler.model_scale == 4 and "x4" in upscaler.name
    image = photo(90, 120)
    assert upscaler.upscale(image, 2).shape == (180, 240, 3)
    assert upscaler.upscale(image, 5).shape == (450, 600, 3)
    assert upscaler.upscale(image, 4).shape == (360, 480, 3)


def test_progress_reports_each_tile(tmp_path):
    seen: list[float] = []
    SpandrelUpscaler(tiny_model(tmp_path, scale=2, num_conv=2), tile=64, overlap=16).upscale(
        photo(), 2, progress=seen.append
    )
    assert len(seen) == 3 * 4 and seen == sorted(seen) and seen[-1] == 1.0


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelMissingError):
        SpandrelUpscaler(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointFormatError):
        SpandrelUpscaler(junk)
    unknown = tmp_path / "unknown.pth"
    torch.save({"some.weight": torch.zeros(3, 3)}, unknown)
    with pytest.raises(CheckpointFormatError):
        SpandrelUpscaler(unknown)
    with pytest.raises(ValueError, match="overlap"):
        SpandrelUpscaler(tiny_model(tmp_path, scale=2, num_conv=2), tile=60, overlap=16)


# The bundled ESRGAN (UpscalerJS slim, converted): equality with TF.js is in tests/engine/nets/test_tfjs_layers.py

SLIM = {2: BUNDLED_DIR / "esrgan-slim-x2.safetensors", 4: BUNDLED_DIR / "esrgan-slim-x4.safetensors"}


def test_esrgan_tiles_leave_no_seams():
    image = photo(100, 140)
    whole = EsrganUpscaler(SLIM, tile=None).run_model(image)
    tiled = EsrganUpscaler(SLIM, tile=48, overlap=12).run_model(image)
    assert whole.shape == (200, 280, 3)
    diff = np.abs(whole.astype(int) - tiled)
    assert diff.max() <= 3 and diff.mean() < 0.1
    # Sharper than bicubic where the photo has detail, and close to it on average.
    bicubic = BicubicUpscaler().upscale(image, 2).astype(int)
    assert np.abs(whole - bicubic).mean() < 8


def test_esrgan_picks_the_model_of_the_scale_then_resizes():
    upscaler = EsrganUpscaler(SLIM, name="esrgan-slim")
    image = photo(40, 60)
    assert upscaler.upscale(image, 2).shape == (80, 120, 3) and upscaler.name == "esrgan-slim x2"
    assert upscaler.upscale(image, 3).shape == (120, 180, 3) and upscaler.name == "esrgan-slim x4"
    assert upscaler.upscale(image, 8).shape == (320, 480, 3) and upscaler.model_scale == 4
    assert upscaler.upscale(image, 1.5).shape == (60, 90, 3) and upscaler.model_scale == 2
    only_x4 = EsrganUpscaler({4: SLIM[4]})
    assert only_x4.model_for(2) == 4 and only_x4.upscale(image, 2).shape == (80, 120, 3)


def test_esrgan_progress_per_tile_and_cancel_within_one_tile():
    seen: list[float] = []
    upscaler = EsrganUpscaler(SLIM, tile=48, overlap=12)
    upscaler.upscale(photo(100, 140), 2, progress=seen.append)
    assert len(seen) == 3 * 3 and seen == sorted(seen) and seen[-1] == 1.0

    calls = []

    class Cancelled(Exception):
        pass

    def cancel(fraction: float) -> None:
        calls.append(fraction)
        raise Cancelled

    with pytest.raises(Cancelled):
        upscaler.upscale(photo(100, 140), 2, progress=cancel)
    assert calls == [1 / 9]


def test_esrgan_bad_files(tmp_path):
    with pytest.raises(ModelMissingError):
        EsrganUpscaler({2: tmp_path / "missing.safetensors"})
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointFormatError):
        EsrganUpscaler({2: junk}).upscale(photo(20, 20), 2)
    with pytest.raises(CheckpointFormatError, match="x4 model"):
        EsrganUpscaler({2: SLIM[4]}).upscale(photo(20, 20), 2)


def test_a_photo_that_is_not_enlarged_keeps_its_own_pixels():
    """At upscale 1 the network never runs: the background is the photo itself, not a redrawing."""
    upscaler = EsrganUpscaler(SLIM)
    image = photo(40, 60)
    assert np.array_equal(upscaler.upscale(image, 1), image)
    assert upscaler.upscale(image, 0.5).shape == (20, 30, 3)
    assert not upscaler._nets  # not even loaded


# The default: ESRGAN slim fine-tuned on real-photo damage (training/background_sr.py)

BACKGROUND = BUNDLED_DIR / "likeness-background-x2.safetensors"


def test_the_default_background_network_is_bundled_and_the_engine_default():
    from engine.api import DEFAULT_BACKGROUND, ModelStore, RestoreOptions

    assert RestoreOptions().background == DEFAULT_BACKGROUND == "likeness-background-x2"
    record = ModelStore().get(DEFAULT_BACKGROUND)
    assert record.bundled and record.kind == "upscaler" and record.arch == "esrgan" and record.scale == 2
    assert ModelStore().path(DEFAULT_BACKGROUND) == BACKGROUND


def test_the_default_network_shows_jpeg_blocks_less_than_bicubic_and_the_original_slim():
    """What it was made for: a small JPEG's blocks are not sharpened into the enlarged photo."""
    image = cv2.GaussianBlur(photo(96, 128), (0, 0), 2)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 25])
    blocky = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert jpeg_grid.grid_strength(blocky) > 1.3  # the input's grid is there to amplify
    grid = {
        name: jpeg_grid.grid_strength(upscaler.upscale(blocky, 2), period=16)
        for name, upscaler in (
            ("slim", EsrganUpscaler({2: SLIM[2]})),
            ("ours", EsrganUpscaler({2: BACKGROUND}, deblock=True)),
            ("bicubic", BicubicUpscaler()),
        )
    }
    assert grid["ours"] < min(grid["bicubic"], grid["slim"]) - 0.1, grid
