"""The fidelity U-Net, the region blend, the slider's mapping and the detail-keeping mix."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from engine.errors import CheckpointFormatError
from engine.nets.fidelity import (
    TINY_FIDELITY,
    FidelityConfig,
    FidelityModel,
    FidelityNet,
    RegionBlend,
    detail_band,
    detail_sigma,
    load_fidelity,
    mix,
    save_fidelity,
    slider_weight,
)


def test_an_untrained_network_is_exactly_the_identity():
    """The last convolution starts at zero: training only ever learns what to change."""
    net = FidelityNet(TINY_FIDELITY)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(net(x), x)


def test_forward_backward_at_small_size_reaches_every_parameter():
    torch.manual_seed(0)
    model = FidelityModel(TINY_FIDELITY)
    for p in model.net.tail.parameters():
        torch.nn.init.normal_(p, std=0.01)
    x = torch.rand(2, 3, 40, 40) * 2 - 1  # any multiple of config.multiple
    out = model.net(x)
    damage = model.blend(x, out, torch.rand_like(x))
    assert out.shape == x.shape and damage.shape == (2, 1, TINY_FIDELITY.blend_grid, TINY_FIDELITY.blend_grid)
    assert torch.isfinite(out).all() and ((damage >= 0) & (damage <= 1)).all()
    (out.mean() + damage.mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_the_default_config_stays_compact():
    """The fidelity path runs on every face: its size is part of the per-face time budget."""
    model = FidelityModel(FidelityConfig())
    assert sum(p.numel() for p in model.net.parameters()) < 800_000
    assert sum(p.numel() for p in model.blend.parameters()) < 60_000


@pytest.mark.parametrize("damage", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_slider_weight_runs_from_generative_through_the_learned_mix_to_fidelity(damage):
    d = torch.tensor([damage])
    ws = np.linspace(0, 1, 21)
    shares = [slider_weight(d, w).item() for w in ws]
    assert shares[0] == pytest.approx(1.0)  # w = 0: the purely generative face
    assert shares[10] == pytest.approx(damage)  # the default w = 0.5: the learned choice
    assert shares[-1] == pytest.approx(0.0)  # w = 1: the fidelity path alone
    assert all(b <= a + 1e-7 for a, b in pairwise(shares)), "never adds generated content as w rises"


def test_mix_is_each_path_at_its_ends_and_keeps_fine_detail_in_generated_regions():
    torch.manual_seed(0)
    fid = torch.rand(1, 3, 64, 64)
    gen = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16), size=64, mode="bilinear")
    assert torch.allclose(mix(fid, gen, torch.zeros(1, 1, 4, 4), 16), fid)
    full = mix(fid, gen, torch.ones(1, 1, 4, 4), 16)
    assert torch.allclose(full, gen + detail_band(fid, detail_sigma(64, 16)))
    # a generative network at the face's own size adds nothing: its face is used as it is
    assert torch.allclose(mix(fid, gen, torch.ones(1, 1, 4, 4), 64), gen)


def test_detail_band_removes_smooth_content_and_keeps_fine_texture():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth = torch.sin(xx / 20)[None, None]
    fine = torch.sin(xx * 2.5)[None, None]
    assert detail_band(smooth, 2.0)[..., 8:-8, 8:-8].abs().max() < 0.01
    assert detail_band(fine, 2.0)[..., 8:-8, 8:-8].abs().mean() > 0.5 * fine.abs().mean()
    assert detail_sigma(512, 512) == 0 and detail_sigma(512, 128) == pytest.approx(0.5 * np.sqrt(15))


def test_save_and_load_round_trip_with_config_in_the_header(tmp_path):
    torch.manual_seed(0)
    model = FidelityModel(TINY_FIDELITY)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    save_fidelity(model, tmp_path / "f.safetensors", half=False, metadata={"trained_with": "tiny"})
    loaded = load_fidelity(tmp_path / "f.safetensors")
    assert loaded.config == TINY_FIDELITY
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded.net(x), model.eval().net(x))


def test_a_file_that_is_not_a_fidelity_model_is_named_in_the_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    for name, words in (
        ("other", "not a Likeness fidelity model"),
        ("junk", "not a readable"),
        ("absent", "not found"),
    ):
        with pytest.raises(CheckpointFormatError, match=words) as err:
            load_fidelity(tmp_path / f"{name}.safetensors")
        assert name in str(err.value)


def test_region_blend_reads_its_three_images_at_its_own_size():
    blend = RegionBlend(TINY_FIDELITY)
    out = blend(*(torch.rand(1, 3, 96, 96) for _ in range(3)))
    assert out.shape[-1] == TINY_FIDELITY.blend_grid
