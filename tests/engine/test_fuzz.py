"""Property-based fuzzing (hypothesis) of what meets untrusted input first: the image reader, and
the alignment and paste-back geometry with degenerate boxes and landmarks at or past the borders.

Bounded: a fixed number of examples each, no per-example deadline (the CPU is shared).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.errors import InvalidImageError
from engine.faces.align import FFHQ_SIZE, DegenerateLandmarksError, estimate_affine, rescale_affine, warp_face
from engine.faces.detect import DetectedFace, select_faces
from engine.faces.find import find_faces
from engine.faces.paste import paste_faces
from engine.imageio import read_image

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

HEADERS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP", b""]


@FUZZ
@given(header=st.sampled_from(HEADERS), tail=st.binary(max_size=600))
def test_the_reader_gives_a_photo_or_one_clear_error_on_any_bytes(tmp_path_factory, header, tail):
    path = tmp_path_factory.mktemp("fuzz") / "x.img"
    path.write_bytes(header + tail)
    try:
        photo = read_image(path)
    except InvalidImageError as err:
        assert str(err).startswith(str(path))
        return
    assert photo.rgb.dtype == np.uint8 and photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3


@FUZZ
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    mode=st.sampled_from(["RGB", "L", "LA", "RGBA", "P", "1", "I;16", "CMYK"]),
    fmt=st.sampled_from(["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP"]),
    seed=st.integers(0, 2**16),
    cut=st.floats(0.0, 1.0),
)
def test_any_small_image_in_any_mode_reads_upright_or_fails_cleanly(
    tmp_path_factory, height, width, mode, fmt, seed, cut
):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # a mode this format cannot hold: nothing to read
    data = buf.getvalue()
    path = tmp_path_factory.mktemp("fuzz") / f"x.{fmt.lower()}"
    path.write_bytes(data[: max(1, int(len(data) * cut))] if cut < 0.999 else data)
    try:
        photo = read_image(path)
    except InvalidImageError:
        return
    assert photo.rgb.shape[:2] == (height, width)


coordinate = st.floats(-200.0, 400.0, allow_nan=False)
landmarks = st.lists(st.tuples(coordinate, coordinate), min_size=5, max_size=5).map(
    lambda pts: np.asarray(pts, np.float32)
)


@FUZZ
@given(
    pts=landmarks | st.tuples(coordinate, coordinate).map(lambda p: np.tile(np.float32(p), (5, 1))),
    height=st.integers(1, 300),
    width=st.integers(1, 300),
)
def test_alignment_and_paste_back_stay_finite_in_bounds_and_shaped(pts, height, width):
    """Any five landmarks (degenerate ones included: all at one point, on a line, far outside the
    photo) give a 512 crop and a paste-back of the photo's own shape, or the one named error."""
    rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    try:
        affine = estimate_affine(pts)
    except DegenerateLandmarksError:  # find_faces drops such detections (test below)
        return
    assert np.all(np.isfinite(affine))
    crop = warp_face(rgb, affine)
    assert crop.shape == (FFHQ_SIZE, FFHQ_SIZE, 3) and crop.dtype == np.uint8
    big = np.ascontiguousarray(np.repeat(np.repeat(rgb, 2, 0), 2, 1))  # the photo upscaled ×2
    out = paste_faces(big, [(crop, rescale_affine(affine, 2.0))])
    assert out.shape == big.shape and out.dtype == np.uint8


@FUZZ
@given(
    boxes=st.lists(st.tuples(coordinate, coordinate, coordinate, coordinate), max_size=6),
    only_center=st.booleans(),
    min_size=st.floats(0, 100),
)
def test_face_selection_takes_degenerate_boxes(boxes, only_center, min_size):
    faces = [DetectedFace(b, 1.0, np.zeros((5, 2), np.float32)) for b in boxes]
    chosen = select_faces(faces, (240, 320, 3), only_center=only_center, min_size=min_size)
    assert all(0 <= i < len(faces) for i, _ in chosen)
    assert len(chosen) <= (1 if only_center else len(faces))


@pytest.mark.parametrize("side", [1, 2, 3])
def test_a_tiny_photo_warps_to_a_full_crop(side):
    rgb = np.full((side, side, 3), 200, np.uint8)
    crop = warp_face(
        rgb, estimate_affine(np.float32([[0, 0], [side, 0], [side / 2, side / 2], [0, side], [side, side]]))
    )
    assert crop.shape == (FFHQ_SIZE, FFHQ_SIZE, 3)


def test_detections_with_degenerate_landmarks_are_dropped():
    class Detector:
        name = "stub"

        def detect(self, rgb, *, min_face=32):
            good = np.float32([[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]])
            return [
                DetectedFace((0, 0, 10, 10), 1.0, np.zeros((5, 2), np.float32)),
                DetectedFace((30, 40, 70, 80), 1.0, good),
            ]

    faces = find_faces(np.zeros((100, 100, 3), np.uint8), Detector())
    assert len(faces) == 1 and faces[0].detection.box == (30, 40, 70, 80)
