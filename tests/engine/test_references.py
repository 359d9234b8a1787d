"""Reference photos: analysis, identity checks against the input and each other, ranking."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import NoFaceFoundError
from engine.faces.align import face_template
from engine.identity import make_embedder
from engine.imageio import write_image
from engine.references import (
    UNSURE,
    analyse_reference,
    check_against,
    check_consistency,
    estimate_yaw,
    face_sharpness,
    rank_references,
)
from tests.conftest import shared_path


def test_yaw_is_zero_on_the_template_and_signed_when_the_nose_moves():
    pts = face_template(512).copy()
    assert estimate_yaw(pts) == pytest.approx(0.0, abs=1.0)
    turned = pts.copy()
    turned[2, 0] += 30
    assert estimate_yaw(turned) > 10
    turned[2, 0] -= 60
    assert estimate_yaw(turned) < -10


def test_a_photo_without_a_face_is_refused_by_name(tmp_path):
    blank = tmp_path / "wall.png"
    write_image(blank, np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(NoFaceFoundError, match="wall.png"):
        analyse_reference(blank, detector="hog")


@pytest.fixture(scope="module")
def album():
    """Three photos of one person and one of another (held-out identities of the shared data)."""
    faces = shared_path("data", "faces")
    ids = (faces / "test_identities.txt").read_text().split()
    same = sorted((faces / "identities" / ids[0]).glob("*.jpg"))[:3]
    other = sorted((faces / "identities" / ids[1]).glob("*.jpg"))[:1]
    return [analyse_reference(p, detector="hog") for p in same + other]


def test_references_are_aligned_and_embedded(album):
    for ref in album:
        assert ref.aligned.shape == (512, 512, 3)
        assert np.linalg.norm(ref.embedding) == pytest.approx(1.0, abs=1e-4)
        assert np.linalg.norm(ref.verification) == pytest.approx(1.0, abs=1e-4)
        assert 0.95 < float(ref.embedding @ ref.verification) < 1.0  # the mirror view adds a little
        assert ref.sharpness > 0


def test_the_odd_one_out_fails_consistency_and_the_input_check(album):
    checks = check_consistency(album)
    assert [c.matches for c in checks] == [True, True, True, False]
    assert "different person" in checks[3].text
    vs_input = check_against(album[0].aligned, album[1:])
    assert [c.verdict for c in vs_input] == ["match", "match", "mismatch"]


def test_a_face_too_damaged_to_identify_gets_no_verdict(album):
    """A 20-pixel face carries too little identity for any check: neither a pass nor a false alarm."""
    floor = make_embedder().reference_min_sharpness
    assert floor is not None and 1.5 < floor < 5  # calibrated by training.reference_check
    tiny = cv2.resize(
        cv2.resize(album[0].aligned, (20, 20), interpolation=cv2.INTER_AREA), (512, 512), interpolation=cv2.INTER_CUBIC
    )
    assert face_sharpness(tiny) < floor <= face_sharpness(album[0].aligned)
    checks = check_against(tiny, album[1:])
    assert {c.verdict for c in checks} == {UNSURE}
    assert not any(c.matches or c.mismatch for c in checks)
    assert "too damaged" in checks[0].text
    # a face a few pixels across in its photo, however crisp its enlargement looks
    assert {c.verdict for c in check_against(album[0].aligned, album[1:], face_size=20)} == {UNSURE}
    assert check_against(album[0].aligned, album[1:2], face_size=150)[0].matches


def test_ranking_puts_the_wrong_person_last(album):
    ranked = rank_references(album, input_yaw=0.0, count=4)
    assert ranked[-1] is album[3]
    assert len(rank_references(album, count=2)) == 2
