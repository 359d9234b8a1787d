"""NIQE: the AGGD fit, and that the faces' pristine model ranks degradations sensibly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training import niqe


def test_aggd_recovers_a_gaussian_shape():
    x = np.random.default_rng(0).normal(0, 2.0, 200_000)
    alpha, left, right = niqe.aggd(x)
    assert alpha == pytest.approx(2.0, abs=0.05)
    assert left == pytest.approx(2.0, rel=0.02) and right == pytest.approx(2.0, rel=0.02)


def _face_like(seed: int = 0) -> np.ndarray:
    """Natural-ish texture: filtered noise with edges (the shipped model only needs plausible input)."""
    rng = np.random.default_rng(seed)
    img = rng.normal(128, 40, (256, 256, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    cv2.circle(img, (128, 128), 70, (200, 150, 120), -1)
    cv2.rectangle(img, (60, 180), (200, 230), (40, 40, 60), -1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def test_features_have_36_dimensions_per_patch():
    feats = niqe.image_features(_face_like())
    assert feats.shape == (64, 36) and np.isfinite(feats).all()


def test_shipped_model_scores_blur_and_blockiness_worse():
    model = niqe.load_model()
    assert len(model["mean"]) == 36 and model["n_patches"] > 500
    img = _face_like()
    sharp = niqe.niqe(img, model)
    blurred = niqe.niqe(cv2.GaussianBlur(img, (0, 0), 3), model)
    small = cv2.resize(
        cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA), (256, 256), interpolation=cv2.INTER_NEAREST
    )
    assert blurred > sharp
    assert niqe.niqe(small, model) > sharp


def test_too_small_image_is_refused():
    with pytest.raises(ValueError, match="smaller than one"):
        niqe.image_features(np.zeros((16, 16, 3), np.uint8))
