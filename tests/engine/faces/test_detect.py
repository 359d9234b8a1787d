"""Face detection: the scale plan, the landmark convention, selection and the detectors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine.errors import CheckpointFormatError, ModelMissingError, NoFaceFoundError
from engine.faces.detect import (
    DEFAULT_MIN_FACE,
    MAX_UPSAMPLE,
    CascadeDetector,
    DetectedFace,
    DlibHogDetector,
    detection_scale,
    make_detector,
    reading_order,
    select_faces,
)
from engine.imageio import read_image
from tests.conftest import shared_path


def face_at(x: float, y: float, size: float = 40.0) -> DetectedFace:
    h = size / 2
    marks = np.array([[x - 8, y - 5], [x + 8, y - 5], [x, y + 2], [x - 6, y + 10], [x + 6, y + 10]], np.float32)
    return DetectedFace(box=(x - h, y - h, x + h, y + h), score=1.0, landmarks=marks)


def photo_00():
    return read_image(shared_path("data", "real_world", "whole_photos", "00.jpg"))


def check_landmarks(faces: list[DetectedFace]) -> None:
    for face in faces:
        x0, y0, x1, y1 = face.box
        lm = face.landmarks
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        margin = 0.25 * (x1 - x0)
        assert np.all(
            (lm[:, 0] > x0 - margin) & (lm[:, 0] < x1 + margin) & (lm[:, 1] > y0 - margin) & (lm[:, 1] < y1 + margin)
        )
        assert lm[0, 0] < lm[2, 0] < lm[1, 0], "eyes image-left first, nose between"
        assert lm[3, 0] < lm[4, 0], "mouth corners image-left first"
        assert lm[[0, 1], 1].max() < lm[2, 1] < lm[[3, 4], 1].min(), "eyes above nose above mouth"


def test_detection_scale_upsamples_small_photos_for_small_faces():
    assert detection_scale((310, 491), 32, target=80, max_pixels=2e6) == pytest.approx(2.5)
    assert detection_scale((100, 100), 5, target=80, max_pixels=2e6) == MAX_UPSAMPLE


def test_detection_scale_respects_the_pixel_budget_and_shrinks_big_photos():
    scale = detection_scale((4000, 6000), 32, target=80, max_pixels=2e6)
    assert (4000 * scale) * (6000 * scale) == pytest.approx(2e6)
    assert detection_scale((4000, 6000), 400, target=80, max_pixels=2e6) == pytest.approx(0.2)


def test_reading_order_is_left_to_right():
    faces = [face_at(300, 50), face_at(100, 200), face_at(200, 10)]
    assert [f.center[0] for f in reading_order(faces)] == [100, 200, 300]


def test_select_faces_by_index_size_and_centre():
    faces = [face_at(50, 100, 20), face_at(150, 100, 60), face_at(240, 100, 40)]
    shape = (200, 300)
    assert [i for i, _ in select_faces(faces, shape)] == [0, 1, 2]
    assert [i for i, _ in select_faces(faces, shape, min_size=30)] == [1, 2]
    assert [i for i, _ in select_faces(faces, shape, only_center=True)] == [1]
    assert [i for i, _ in select_faces(faces, shape, indices=[2, 0, 2])] == [0, 2]
    assert [i for i, _ in select_faces(faces, shape, indices=[0, 2], only_center=True)] == [2]
    assert select_faces(faces, shape, indices=[0], min_size=30) == []
    assert select_faces([], shape, only_center=True) == []
    with pytest.raises(NoFaceFoundError, match="face number 3"):
        select_faces(faces, shape, indices=[3])


def test_detected_face_size_is_the_box_side():
    assert face_at(10, 10, 40).size == pytest.approx(40)


def test_make_detector_names():
    assert isinstance(make_detector("hog"), DlibHogDetector)
    assert isinstance(make_detector("auto"), CascadeDetector), "no RetinaFace weights: HOG, then dlib's CNN"
    with pytest.raises(ModelMissingError):
        make_detector("retinaface")
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("mtcnn")  # type: ignore[arg-type]


def test_hog_finds_nothing_in_a_blank_image():
    assert make_detector("hog").detect(np.full((120, 160, 3), 128, np.uint8)) == []


@pytest.mark.shared
def test_hog_finds_the_four_faces_of_00():
    photo = photo_00()
    faces = make_detector("hog").detect(photo.rgb, min_face=DEFAULT_MIN_FACE)
    assert len(faces) == 4
    centres = [f.center[0] for f in faces]
    assert centres == sorted(centres)
    check_landmarks(faces)


@pytest.mark.slow
@pytest.mark.shared
def test_default_detector_finds_the_four_faces_of_00():
    """The pipeline's default ("auto" without RetinaFace weights = dlib CNN), ~4 s here."""
    photo = photo_00()
    faces = make_detector("auto").detect(photo.rgb)
    assert len(faces) == 4
    check_landmarks(faces)
    hog = make_detector("hog").detect(photo.rgb)
    for a, b in zip(faces, hog, strict=True):  # two detectors, same people, same order, close eye positions
        assert np.abs(a.landmarks[:2] - b.landmarks[:2]).max() < 0.15 * a.size


@pytest.mark.slow
def test_retinaface_builds_from_a_local_file_and_never_downloads(tmp_path, facexlib_offline):
    torch = pytest.importorskip("torch")

    from engine.faces.detect import RetinaFaceDetector

    with pytest.raises(ModelMissingError):
        RetinaFaceDetector(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"not": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointFormatError):
        RetinaFaceDetector(bad)

    from facexlib.detection.retinaface import RetinaFace

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net = RetinaFace(network_name="resnet50", half=False, device=torch.device("cpu"))
    weights = tmp_path / "retinaface.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, weights)  # as released
    detector = make_detector("auto", retinaface_weights=weights)
    assert isinstance(detector, RetinaFaceDetector)
    faces = detector.detect(np.full((64, 80, 3), 100, np.uint8), min_face=64)
    assert isinstance(faces, list)
    for face in faces:
        assert face.landmarks.shape == (5, 2)


def test_the_default_cascade_asks_the_cnn_only_when_hog_finds_nothing():
    calls = []

    class Stub:
        def __init__(self, name, faces):
            self.name, self.faces = name, faces

        def detect(self, rgb, *, min_face=DEFAULT_MIN_FACE):
            calls.append(self.name)
            return self.faces

    cascade = CascadeDetector()
    rgb = np.zeros((200, 200, 3), np.uint8)
    cascade.hog, cascade._cnn = Stub("hog", [face_at(10, 10, 60)]), Stub("cnn", [face_at(50, 50, 60)])
    assert cascade.detect(rgb)[0].box == face_at(10, 10, 60).box and calls == ["hog"]
    cascade.hog = Stub("hog", [])
    assert cascade.detect(rgb)[0].box == face_at(50, 50, 60).box and calls == ["hog", "hog", "cnn"]
