"""mobileface / faceres / evaluator judges: registration, embed() contract, calibration, missing files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.errors import ModelMissingError
from engine.identity import backends, embedders
from tests.conftest import REPO
from tests.engine.identity.synthetic import synthetic_image
from training.judges import tfjs_models

BACKENDS = ["mobileface", "faceres", "faceres-pool", "evaluator"]


def test_missing_models_say_how_to_fetch_them(tmp_path, monkeypatch):
    monkeypatch.setenv(tfjs_models.HUMAN_MODELS_ENV, str(tmp_path))
    with pytest.raises(ModelMissingError, match=r"scripts/setup\.sh --test"):
        tfjs_models.TfjsEmbedder("mobileface")
    with pytest.raises(ModelMissingError, match="human-models"):
        embedders.make_embedder("faceres", store=object())  # store given: not cached


def test_backends_are_registered():
    names = embedders.embedder_names()
    for name in ["dlib", "arcface", *BACKENDS]:
        assert name in names


@pytest.mark.parametrize("name", BACKENDS)
def test_judges_unregistered_say_they_live_in_training(monkeypatch, name):
    """As in a process that never imported training: a clear error, not a KeyError."""
    monkeypatch.delitem(backends._FACTORIES, name)
    with pytest.raises(ModelMissingError, match=r"evaluation judges.*training"):
        embedders.make_embedder(name, store=object())


def test_importing_training_registers_the_judges_without_torch():
    code = (
        "import sys, training\n"
        "from engine.identity.backends import _FACTORIES\n"
        "assert 'torch' not in sys.modules, 'import training loaded torch'\n"
        "assert {'mobileface', 'faceres', 'faceres-pool', 'evaluator'} <= set(_FACTORIES), sorted(_FACTORIES)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("size", [256, 512])
def test_embed_is_unit_and_differentiable(human_models_dir, name, size):
    emb = embedders.make_embedder(name)
    face = torch.from_numpy(synthetic_image("face", 3, size)).permute(2, 0, 1) / 127.5 - 1
    faces = torch.stack([face, face.flip(-1)]).requires_grad_(True)
    out = emb.embed(faces)
    assert out.shape == (2, emb.dim)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    direction = torch.randn(emb.dim, generator=torch.Generator().manual_seed(0))
    (out @ direction).sum().backward()
    assert faces.grad is not None and torch.isfinite(faces.grad).all() and faces.grad.abs().sum() > 0


def test_embed_images_matches_embed(human_models_dir):
    emb = embedders.make_embedder("mobileface")
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(3)]
    batch = emb.embed_images(faces, batch_size=2)
    one = emb.embed(torch.from_numpy(faces[2]).permute(2, 0, 1)[None].float() / 127.5 - 1).detach().numpy()
    assert np.allclose(batch[2], one[0], atol=1e-5)


def test_combination_cosine_is_the_weighted_mean(human_models_dir):
    ev = tfjs_models.make_evaluator(parts=(("mobileface", 1.0), ("faceres", 3.0)))
    a, b = torch.rand(1, 3, 256, 256) * 2 - 1, torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        got = embedders.similarity(ev.embed(a), ev.embed(b))
        parts = [embedders.similarity(e.embed(a), e.embed(b)) for e, _ in ev.parts]
    assert torch.allclose(got, 0.25 * parts[0] + 0.75 * parts[1], atol=1e-5)


def test_calibration_has_thresholds_for_every_judge():
    cal = embedders.calibration()
    for name in ["dlib", "mobileface", "faceres", "evaluator"]:
        assert name in cal, f"{name} missing from calibration.json: run python -m training.identity_report"
        assert -1 < cal[name]["threshold_far1"] < 1
        assert 0.5 < cal[name]["auc"] <= 1
    assert cal["evaluator"]["auc"] >= 0.92
    assert cal["evaluator"]["parts"]
