"""The degradation model: ranges respected, reproducible, graded by preset, paired-set writer."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from training.degrade import (
    PRESETS,
    DegradationParams,
    KernelParams,
    apply,
    degrade,
    lq_size,
    make_kernel,
    sample_params,
    write_paired_set,
)
from training.metrics import psnr


def _synthetic(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A structured RGB test card (edges + texture), so blur and noise change it visibly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx // 8 + yy // 8) % 2) * 255], -1)
    return np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


def _faces(n: int) -> list[np.ndarray]:
    folder = shared_path("data", "real_world", "cropped_faces")
    paths = sorted(folder.glob("*.png"))[:n]
    return [cv2.cvtColor(_read(p), cv2.COLOR_BGR2RGB) for p in paths]


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, f"{path} did not decode"
    return img


def _within(value: float, rng: tuple[float, float]) -> bool:
    return rng[0] - 1e-12 <= value <= rng[1] + 1e-12


def test_presets_named_in_the_issue_exist_with_their_ranges():
    assert {"mild", "moderate", "severe", "codeformer"} <= set(PRESETS)
    sev, cf = PRESETS["severe"], PRESETS["codeformer"]
    assert (sev.blur_sigma, sev.downscale, sev.noise, sev.jpeg_quality) == ((8, 15), (16, 30), (10, 20), (30, 50))
    assert (cf.blur_sigma, cf.downscale, cf.noise, cf.jpeg_quality) == ((1, 15), (4, 30), (0, 20), (30, 80))
    for name, cfg in PRESETS.items():
        assert cfg.name == name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_drawn_params_stay_within_the_preset_ranges(name):
    """Degradation ranges respected over 500 draws, and the draws spread over each range."""
    cfg = PRESETS[name]
    rng = np.random.default_rng(1234)
    sigmas, scales, deltas, qualities = [], [], [], []
    for _ in range(500):
        p = sample_params(cfg, rng)
        k = p.kernel
        assert k.size % 2 == 1 and _within(k.size, cfg.kernel_size)
        if k.kind == "sinc":
            assert cfg.sinc_prob > 0 and math.pi / 5 <= k.omega_c <= math.pi
        else:
            assert k.kind in cfg.kernel_types
            assert _within(k.sigma_x, cfg.blur_sigma) and _within(k.sigma_y, cfg.blur_sigma)
            sigmas.append(k.sigma_x)
            if k.kind.startswith("generalized"):
                assert _within(k.beta, cfg.betag_range)
            if k.kind.startswith("plateau"):
                assert _within(k.beta, cfg.betap_range)
        assert _within(p.scale, cfg.downscale)
        scales.append(p.scale)
        if p.noise.kind == "gaussian":
            assert _within(p.noise.sigma, cfg.noise)
            deltas.append(p.noise.sigma)
        else:
            assert cfg.gaussian_noise_prob < 1 and _within(p.noise.scale, cfg.poisson_scale)
        assert isinstance(p.jpeg_quality, int) and _within(p.jpeg_quality, cfg.jpeg_quality)
        qualities.append(p.jpeg_quality)
        if p.color_shift is not None:
            assert cfg.color_jitter_prob > 0
            assert all(abs(s) <= cfg.color_jitter_shift for s in p.color_shift)
        assert not p.grayscale or cfg.gray_prob > 0
        so = p.second_order
        assert (so is not None) == cfg.second_order
        if so is not None:
            assert _within(so.resize1.factor, cfg.resize_range) and _within(so.resize2.factor, cfg.resize_range2)
            if so.kernel2 is not None and so.kernel2.kind != "sinc":
                assert _within(so.kernel2.sigma_x, cfg.blur_sigma2) and _within(so.kernel2.sigma_y, cfg.blur_sigma2)
                assert _within(so.kernel2.size, cfg.kernel_size2)
            if so.noise2.kind == "gaussian":
                assert _within(so.noise2.sigma, cfg.noise2)
            else:
                assert _within(so.noise2.scale, cfg.poisson_scale2)
            assert _within(so.jpeg_quality2, cfg.jpeg_quality2)
    for values, (lo, hi) in (
        (sigmas, cfg.blur_sigma),
        (scales, cfg.downscale),
        (deltas, cfg.noise),
        (qualities, cfg.jpeg_quality),
    ):
        if hi > lo:  # the draws cover the range, not just its middle
            assert min(values) < lo + 0.1 * (hi - lo) and max(values) > hi - 0.1 * (hi - lo)


def test_codeformer_preset_jitters_colour_about_30_percent_of_the_time():
    rng = np.random.default_rng(0)
    draws = [sample_params(PRESETS["codeformer"], rng) for _ in range(1000)]
    share = np.mean([p.color_shift is not None for p in draws])
    assert 0.25 < share < 0.35
    assert np.mean([p.grayscale for p in draws]) < 0.04


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_same_seed_gives_identical_bytes_and_other_seeds_differ(name):
    hq = _synthetic()
    a, pa = degrade(hq, name, np.random.default_rng(7))
    b, pb = degrade(hq, name, np.random.default_rng(7))
    c, _ = degrade(hq, name, np.random.default_rng(8))
    assert pa == pb and a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert apply(hq, pa).tobytes() == a.tobytes()  # apply is a pure function of (image, params)


@pytest.mark.parametrize("name", ["codeformer", "realesrgan"])
def test_params_survive_a_json_round_trip(name):
    hq = _synthetic()
    lq, params = degrade(hq, name, np.random.default_rng(3))
    back = DegradationParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert back == params
    assert apply(hq, back).tobytes() == lq.tobytes()


@pytest.mark.parametrize("shape", [(64, 64), (70, 131), (131, 70), (9, 17)])
@pytest.mark.parametrize("name", ["mild", "severe", "realesrgan"])
def test_output_keeps_shape_and_dtype(shape, name):
    hq = _synthetic(*shape)
    lq, _ = degrade(hq, name, np.random.default_rng(0))
    assert lq.shape == hq.shape and lq.dtype == np.uint8 and lq.flags.c_contiguous


def test_downscale_is_clamped_to_four_pixels():
    assert lq_size(512, 512, 30) == (17, 17)
    assert lq_size(40, 100, 30) == (4, 4)
    assert lq_size(3, 100, 2) == (3, 50)  # never larger than the input
    params = dataclasses.replace(sample_params(PRESETS["severe"], np.random.default_rng(0)), scale=1000.0)
    assert apply(_synthetic(32, 48), params).shape == (32, 48, 3)


def test_apply_rejects_non_rgb_uint8():
    params = sample_params(PRESETS["mild"], np.random.default_rng(0))
    with pytest.raises(ValueError):
        apply(_synthetic().astype(np.float32), params)
    with pytest.raises(ValueError):
        apply(_synthetic()[..., 0], params)


def test_grayscale_option_gives_equal_channels():
    cfg = dataclasses.replace(PRESETS["moderate"], gray_prob=1.0, color_jitter_prob=1.0)
    lq, params = degrade(_synthetic(), cfg, np.random.default_rng(0))
    assert params.grayscale
    assert np.array_equal(lq[..., 0], lq[..., 1]) and np.array_equal(lq[..., 1], lq[..., 2])


def test_second_order_switch_works_on_any_preset():
    cfg = dataclasses.replace(PRESETS["moderate"], second_order=True)
    hq = _synthetic()
    lq, params = degrade(hq, cfg, np.random.default_rng(0))
    assert params.second_order is not None and lq.shape == hq.shape
    assert not np.array_equal(lq, hq)


@pytest.mark.parametrize(
    "kernel",
    [
        KernelParams("iso", 41, 3.0, 3.0),
        KernelParams("aniso", 21, 1.0, 4.0, 0.7),
        KernelParams("generalized_aniso", 15, 2.0, 1.0, -1.0, beta=0.6),
        KernelParams("plateau_iso", 15, 2.0, 2.0, beta=1.5),
        KernelParams("sinc", 13, omega_c=1.0),
    ],
)
def test_kernels_are_normalised_and_centred(kernel):
    k = make_kernel(kernel)
    assert k.shape == (kernel.size, kernel.size) and k.dtype == np.float32
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    c = kernel.size // 2
    assert k[c, c] == k.max()
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)  # point-symmetric: conv == correlation


@pytest.mark.shared
def test_severe_degrades_more_than_moderate_more_than_mild():
    faces = _faces(4)
    mean = {}
    for name in ("mild", "moderate", "severe"):
        rng = np.random.default_rng(11)
        mean[name] = np.mean([psnr(f, degrade(f, name, rng)[0]) for f in faces])
    assert mean["mild"] > mean["moderate"] + 3 > mean["severe"] + 6


def _write_images(folder: Path, names: list[str], shape=(60, 80)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, n in enumerate(names):
        p = folder / n
        cv2.imwrite(str(p), cv2.cvtColor(_synthetic(*shape, seed=i), cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


def test_paired_set_writer_with_identities(tmp_path):
    items = []
    for ident, count in (("alice", 3), ("bob", 2), ("carol", 1)):
        items += [(p, ident) for p in _write_images(tmp_path / "src" / ident, [f"{i:02d}.jpg" for i in range(count)])]
    out = tmp_path / "set"
    records = write_paired_set(items, out, "moderate", seed=5, size=32)
    names = [r["name"] for r in records]
    assert len(set(names)) == 6  # "00.jpg" of alice and of bob do not collide
    for n in names:
        for sub in ("hq", "lq"):
            img = _read(out / sub / f"{n}.png")
            assert img.shape == (32, 32, 3)
    lines = (out / "params.jsonl").read_text().splitlines()
    assert len(lines) == 6
    rec = json.loads(lines[0])
    assert {"name", "identity", "seed", "kernel", "scale", "noise", "jpeg_quality", "lq_size"} <= set(rec)
    assert DegradationParams.from_dict({k: rec[k] for k in DegradationParams.__dataclass_fields__})
    refs = json.loads((out / "references.json").read_text())
    ident = {r["name"]: r["identity"] for r in records}
    assert set(refs) == set(names)
    for n, others in refs.items():
        assert n not in others
        assert all(ident[o] == ident[n] for o in others)
    assert len(refs["alice_00"]) == 2 and refs["carol_00"] == []
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    # Same seed → same bytes; refs_per_identity caps the list.
    again = write_paired_set(items, tmp_path / "again", "moderate", seed=5, size=32, refs_per_identity=1)
    assert (tmp_path / "again" / "lq" / "alice_01.png").read_bytes() == (out / "lq" / "alice_01.png").read_bytes()
    assert [r["name"] for r in again] == names
    refs1 = json.loads((tmp_path / "again" / "references.json").read_text())
    assert all(len(v) <= 1 for v in refs1.values()) and len(refs1["alice_00"]) == 1


def test_paired_set_writer_with_plain_paths(tmp_path):
    paths = _write_images(tmp_path / "src", ["a.png", "b.png"], shape=(50, 90))
    out = tmp_path / "set"
    write_paired_set(paths, out, PRESETS["mild"], seed=0, size=40)
    assert sorted(p.name for p in (out / "lq").iterdir()) == ["a.png", "b.png"]
    assert _read(out / "hq" / "a.png").shape == (40, 40, 3)  # centre-cropped, not stretched
    assert not (out / "references.json").exists()
    assert len((out / "params.jsonl").read_text().splitlines()) == 2
