"""Paste-back leaves no seam, no halo and no shift."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.faces.align import FFHQ_TEMPLATE_512, estimate_affine, invert_affine, rescale_affine, warp, warp_face
from engine.faces.paste import face_mask, paste_faces


def texture(height: int, width: int, cell: int, amplitude: float, seed: int) -> np.ndarray:
    """Smooth random float texture (zero mean) whose detail size is about ``cell`` px."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return amplitude * smooth[cell : cell + height, cell : cell + width]


def face_affine(center: tuple[float, float], face_px: float, angle: float = 10.0) -> np.ndarray:
    """Face <- image affine of a face ``face_px`` wide (the whole 512 crop) centred at ``center``."""
    a = np.deg2rad(angle)
    s = face_px / 512
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s
    landmarks = (FFHQ_TEMPLATE_512 - 256) @ rot.T + center
    return estimate_affine(landmarks)


def gradient(image: np.ndarray) -> np.ndarray:
    gray = image.astype(np.float32).mean(axis=2)
    gy, gx = np.gradient(gray)
    return np.hypot(gx, gy)


def warped_mask(affine: np.ndarray, shape: tuple[int, ...], mask: np.ndarray) -> np.ndarray:
    return warp(mask, invert_affine(affine), (shape[1], shape[0]), border=cv2.BORDER_CONSTANT, flags=cv2.INTER_LINEAR)


def test_face_mask_is_feathered_and_zero_on_the_border():
    mask = face_mask(512)
    assert mask.dtype == np.float32 and mask.shape == (512, 512)
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.max() == 0.0
    assert mask[64:-64, 64:-64].min() > 0.99
    row = mask[256]
    assert np.all(np.diff(row[:256]) >= -1e-6), "rises monotonically toward the centre"
    assert 0.05 < row[32] < 0.95, "the ramp is wide, not a step"
    assert np.allclose(face_mask(128), cv2.resize(mask, (128, 128), interpolation=cv2.INTER_AREA), atol=0.05)


def test_face_mask_with_parsing_keeps_only_the_face():
    parsing = np.zeros((512, 512), np.float32)
    cv2.ellipse(parsing, (256, 290), (150, 190), 0, 0, 360, 1.0, -1)
    mask = face_mask(512, parsing)
    assert mask[290, 256] > 0.99 and mask[20, 20] == 0.0 and mask[100, 60] < 0.02
    assert mask.max() <= 1.0 and mask[0].max() == 0.0


@pytest.mark.parametrize(
    "face_px,upscale,tolerance", [(60.0, 1.0, 1), (220.0, 1.0, 1), (90.0, 2.0, 1), (900.0, 1.0, 6)]
)
def test_pasting_the_backgrounds_own_content_changes_nothing(face_px, upscale, tolerance):
    """A face equal to the background's aligned content must paste back invisibly (no shift,
    no seam), including on an upscaled background with the rescaled affine. A 900 px face holds
    more detail than its 512 crop, so there the round trip softens the finest texture a little."""
    image = np.clip(128 + texture(600, 800, 24, 40.0, seed=1), 0, 255).astype(np.uint8)
    affine = face_affine((420.0, 300.0), face_px)
    face = warp_face(image, affine, 512)
    background = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    out = paste_faces(background, [(face, rescale_affine(affine, upscale))])
    diff = np.abs(out.astype(int) - background)
    assert diff.max() <= tolerance, diff.max()
    assert diff.mean() < 0.3


def test_feathered_transition_is_no_steeper_than_the_content():
    """A restored face that is sharper and 25 levels brighter than the photo: the transition
    band has no gradient steeper than inside the face or the background; a hard mask does."""
    shape = (500, 600)
    base = texture(*shape, 16, 30.0, seed=2)
    background = np.clip(110 + base, 0, 255).astype(np.uint8)
    affine = face_affine((300.0, 250.0), 240.0)
    detail = texture(512, 512, 6, 10.0, seed=3)  # what restoration adds
    face = np.clip(warp_face(background, affine, 512).astype(np.float32) + detail + 25, 0, 255).astype(np.uint8)

    soft = face_mask(512)
    hard = np.zeros((512, 512), np.float32)
    hard[2:-2, 2:-2] = 1.0
    for mask, should_pass in ((soft, True), (hard, False)):
        out = paste_faces(background, [(face, affine)], masks=[mask])
        alpha = warped_mask(affine, shape, mask)
        grad = gradient(out)
        # Central differences reach one pixel: keep a 2 px gap between the regions compared.
        ring = np.ones((5, 5), np.uint8)
        transition = ((alpha > 0.001) & (alpha < 0.999)).astype(np.uint8)
        band = cv2.dilate(transition, ring) > 0
        inside = (cv2.erode((alpha >= 0.999).astype(np.uint8), ring) > 0) & ~band
        outside = (cv2.erode((alpha <= 0.001).astype(np.uint8), ring) > 0) & ~band
        limit = max(grad[inside].max(), grad[outside].max())
        assert (grad[band].max() <= limit) == should_pass, (grad[band].max(), limit)


def test_no_halo_blend_stays_between_face_and_background():
    background = np.full((300, 300, 3), 60, np.uint8)
    face = np.full((512, 512, 3), 200, np.uint8)
    out = paste_faces(background, [(face, face_affine((150.0, 150.0), 200.0))])
    assert out.min() >= 60 and out.max() <= 200
    assert out[150, 150].tolist() == [200, 200, 200] and out[5, 5].tolist() == [60, 60, 60]


def test_faces_over_the_edge_and_outside_are_handled():
    background = np.full((200, 300, 3), 50, np.uint8)
    face = np.full((512, 512, 3), 220, np.uint8)
    out = paste_faces(
        background, [(face, face_affine((10.0, 190.0), 150.0)), (face, face_affine((1000.0, 1000.0), 150.0))]
    )
    assert out.shape == background.shape
    assert out[185, 15, 0] == 220 and out[20, 280, 0] == 50
    assert np.array_equal(paste_faces(background, []), background)


def test_mask_count_must_match():
    background = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="masks"):
        paste_faces(background, [(np.zeros((512, 512, 3), np.uint8), face_affine((32.0, 32.0), 40.0))], masks=[])


def test_a_face_pasted_as_a_change_leaves_what_it_did_not_change_bit_identical():
    """Large faces are pasted as (restored − crop): where the restoration kept the photo, the
    photo's own pixels stay, with none of the detail two resamplings would take."""
    rng = np.random.default_rng(4)
    background = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)  # detail at the pixel level
    affine = face_affine((150.0, 150.0), 260.0)
    crop = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    assert np.array_equal(paste_faces(background, [(crop, affine)], sources=[crop]), background)
    brighter = np.clip(crop.astype(int) + 20, 0, 255).astype(np.uint8)
    out = paste_faces(background, [(brighter, affine)], sources=[crop]).astype(int)
    centre = (slice(140, 160), slice(140, 160))
    assert 15 < (out[centre] - background[centre]).mean() <= 20  # the change arrives, the texture stays
    with pytest.raises(ValueError, match="sources"):
        paste_faces(background, [(crop, affine)], sources=[])
