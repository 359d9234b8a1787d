"""Alignment to the FFHQ template and the affine bookkeeping paste-back relies on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.faces.align import (
    FFHQ_TEMPLATE_512,
    affine_scale,
    aligned_affine,
    estimate_affine,
    face_template,
    invert_affine,
    rescale_affine,
    warp_face,
)


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 16, 2), max(width // 16, 2), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def test_template_scales_with_size():
    assert np.allclose(face_template(512), FFHQ_TEMPLATE_512)
    assert np.allclose(face_template(256), FFHQ_TEMPLATE_512 / 2)


def test_estimate_affine_recovers_a_similarity_and_inverts():
    to_image = similarity(0.12, 17.0, 140.0, 60.0)  # a ~60 px face, tilted
    landmarks = apply(to_image, FFHQ_TEMPLATE_512.astype(np.float64))
    affine = estimate_affine(landmarks)
    assert affine.shape == (2, 3) and affine.dtype == np.float64
    assert np.abs(apply(affine, landmarks) - FFHQ_TEMPLATE_512).max() < 0.05
    assert np.abs(apply(invert_affine(affine), FFHQ_TEMPLATE_512) - landmarks).max() < 0.01
    assert affine_scale(affine) == pytest.approx(1 / 0.12, rel=1e-3)


def test_estimate_affine_ignores_one_bad_landmark():
    to_image = similarity(0.2, -8.0, 100.0, 90.0)
    landmarks = apply(to_image, FFHQ_TEMPLATE_512.astype(np.float64))
    landmarks[4] += (15.0, 12.0)  # a wildly wrong mouth corner
    affine = estimate_affine(landmarks)
    assert np.abs(apply(affine, landmarks[:4]) - FFHQ_TEMPLATE_512[:4]).max() < 1.0


def test_estimate_affine_rejects_degenerate_landmarks():
    with pytest.raises(ValueError, match="degenerate"):
        estimate_affine(np.zeros((5, 2), np.float32))


def test_warp_round_trip_puts_landmarks_on_the_template():
    """Dots drawn at the landmarks land on the template points in the aligned crop."""
    image = np.full((300, 400, 3), 40, np.uint8)
    landmarks = apply(similarity(0.15, 12.0, 150.0, 80.0), FFHQ_TEMPLATE_512.astype(np.float64))
    for x, y in landmarks:
        cv2.circle(image, (round(x * 16), round(y * 16)), 24, (255, 255, 255), -1, lineType=cv2.LINE_AA, shift=4)
    face = warp_face(image, estimate_affine(landmarks), 512)
    assert face.shape == (512, 512, 3)
    for tx, ty in FFHQ_TEMPLATE_512:
        window = face[int(ty) - 40 : int(ty) + 40, int(tx) - 40 : int(tx) + 40, 0].astype(np.float64) - 40
        ys, xs = np.mgrid[int(ty) - 40 : int(ty) + 40, int(tx) - 40 : int(tx) + 40]
        cx, cy = (window * xs).sum() / window.sum(), (window * ys).sum() / window.sum()
        assert np.hypot(cx - tx, cy - ty) < 2.0


def test_warp_face_reflects_outside_the_photo():
    """A face at the photo's edge gets mirrored content, not a flat block, beyond the edge."""
    image = smooth_image(120, 120)
    affine = similarity(4.0, 0.0, 256.0, 100.0)  # pixel (0, y) lands at x=256: left half is outside
    face = warp_face(image, affine, 512)
    left, right = face[:, 200:250].astype(int), face[:, 262:312][:, ::-1].astype(int)
    assert np.abs(left - right).mean() < 6


def test_rescale_affine_matches_a_resized_background():
    """Aligning on a x2 bicubic background with the rescaled affine gives the same crop."""
    image = smooth_image(160, 200)
    affine = estimate_affine(apply(similarity(0.25, 9.0, 60.0, 30.0), FFHQ_TEMPLATE_512.astype(np.float64)))
    big = cv2.resize(image, (400, 320), interpolation=cv2.INTER_CUBIC)
    a = warp_face(image, affine, 256).astype(int)
    b = warp_face(big, rescale_affine(affine, 2.0), 256).astype(int)
    assert np.abs(a - b)[16:-16, 16:-16].mean() < 1.5


def test_aligned_affine_is_a_plain_resize():
    face = smooth_image(256, 256)
    assert np.array_equal(warp_face(face, aligned_affine(face.shape, 256), 256), face)
    up = warp_face(face, aligned_affine(face.shape, 512), 512).astype(int)
    assert np.abs(up - cv2.resize(face, (512, 512), interpolation=cv2.INTER_LINEAR)).max() <= 1


@pytest.mark.parametrize("period", [2, 4, 5])
def test_large_faces_are_shrunk_without_moire(period):
    """A 2000 px face warped to 512: stripes finer than the crop can hold average out to gray."""
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    for k in range(max(1, period // 2)):
        stripes[:, k::period] = 255
    tilt = cv2.getRotationMatrix2D((1000, 1000), 7, 512 / 2000)
    tilt[:, 2] += 256 - 1000 * 512 / 2000
    for affine in (aligned_affine(stripes.shape, 512), tilt):
        face = warp_face(stripes, affine, 512).astype(float)[60:-60, 60:-60]
        assert face.std() < 8, "bilinear sampling alone leaves a std of 70-110 here"


def test_shrinking_keeps_texture_the_crop_can_hold():
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    stripes[:, np.arange(2000) % 12 < 6] = 255  # 3 px period at 512: well below Nyquist
    assert warp_face(stripes, aligned_affine(stripes.shape, 512), 512)[20:-20, 20:-20].std() > 50


@pytest.mark.shared
def test_real_faces_land_on_the_template():
    """Align the faces of 00.jpg, detect again in the crops: the landmarks sit on the template
    within 4 photo pixels. These faces are ~40 px wide (the crop zooms ~7x), so that is the
    landmark noise of dlib at this size (measured 1.0-3.5 px), not an alignment error."""
    from engine.faces.detect import make_detector
    from engine.imageio import read_image
    from tests.conftest import shared_path

    photo = read_image(shared_path("data", "real_world", "whole_photos", "00.jpg"))
    detector = make_detector("hog")
    faces = detector.detect(photo.rgb)
    assert len(faces) == 4
    for face in faces:
        affine = estimate_affine(face.landmarks)
        again = detector.detect(warp_face(photo.rgb, affine, 512), min_face=150)
        assert len(again) == 1
        error_crop = np.linalg.norm(again[0].landmarks - FFHQ_TEMPLATE_512, axis=1).max()
        assert error_crop / affine_scale(affine) < 4.0


def test_rescale_affine_per_axis_for_rounded_sizes():
    """x1.37 of 160x200 gives 274x219, i.e. slightly different scales per axis."""
    image = smooth_image(160, 200)
    affine = estimate_affine(apply(similarity(0.25, -6.0, 70.0, 40.0), FFHQ_TEMPLATE_512.astype(np.float64)))
    big = cv2.resize(image, (274, 219), interpolation=cv2.INTER_CUBIC)
    exact = rescale_affine(affine, (274 / 200, 219 / 160))
    a = warp_face(image, affine, 256).astype(int)
    b = warp_face(big, exact, 256).astype(int)
    assert np.abs(a - b)[16:-16, 16:-16].mean() < 1.5
    assert np.allclose(rescale_affine(affine, 2.0), rescale_affine(affine, (2.0, 2.0)))
