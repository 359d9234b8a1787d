"""Two paths per face: the slider's ends, the cache a slider move uses, and detail for large faces.

The first tests use tiny random networks; the last ones the bundled likeness-lite and
likeness-fidelity on real faces, since "a clean face comes out as clean" is a property of the
trained weights, not of the code.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.api import RestoreOptions, Restorer, RestoreRequest
from engine.faces.align import enlarge_affine, estimate_affine, face_template, warp_face
from engine.imageio import read_image
from engine.models import ModelStore
from engine.nets.codeformer import TINY, CodeFormer
from engine.nets.fidelity import TINY_FIDELITY, FidelityModel
from engine.runtime.face_restorer import FaceRestorer
from engine.runtime.two_path import FidelityPath, TwoPathRestorer, detail_side
from tests.conftest import shared_path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def tiny_two_path() -> TwoPathRestorer:
    torch.manual_seed(0)
    model = FidelityModel(TINY_FIDELITY)
    torch.nn.init.normal_(model.net.tail.weight, std=0.02)  # a network that changes the face
    return TwoPathRestorer(
        FaceRestorer(CodeFormer(TINY), torch.device("cpu"), "tiny"), FidelityPath(model, torch.device("cpu"))
    )


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), (0, 0), 3)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def test_w0_is_the_generative_face_and_w1_the_fidelity_face(tiny_two_path, face):
    prepared = tiny_two_path.encode([face])
    generative = tiny_two_path.generative.decode(prepared.encoded, 0.0)[0]
    assert np.array_equal(tiny_two_path.decode(prepared, 0.0)[0], generative)
    fidelity = np.clip(np.rint(prepared.fidelity[0]), 0, 255).astype(np.uint8)
    assert np.array_equal(tiny_two_path.decode(prepared, 1.0)[0], fidelity)
    assert not np.array_equal(fidelity, face), "the test network must change the face"


def test_a_slider_move_reruns_only_the_generative_decode(tiny_two_path, face, monkeypatch):
    prepared = tiny_two_path.encode([face])
    calls = []
    for name in ("clean", "damage"):
        monkeypatch.setattr(tiny_two_path.fidelity, name, lambda *a, _n=name: calls.append(_n))
    monkeypatch.setattr(tiny_two_path.generative, "encode", lambda *a: calls.append("encode"))
    for w in (0.1, 0.3, 0.5, 0.8, 1.0):
        assert tiny_two_path.decode(prepared, w)[0].shape == face.shape
    assert calls == []


def test_restore_is_encode_then_decode_for_any_w(tiny_two_path, face):
    for w in (0.0, 0.5, 0.7):
        assert np.array_equal(
            tiny_two_path.restore([face], w)[0], tiny_two_path.decode(tiny_two_path.encode([face]), w)[0]
        )


def test_faces_larger_than_the_template_keep_their_own_size(tiny_two_path, face):
    big = cv2.resize(face, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    out = tiny_two_path.restore([big], 0.5)[0]
    assert out.shape == big.shape


def test_detail_side_grows_with_the_face_in_multiples_of_64():
    assert detail_side(1.0) == 512 and detail_side(3.0) == 512
    assert detail_side(0.5) == 1024 and detail_side(0.45) == 1152
    assert detail_side(0.01) == 2048  # capped


def test_an_enlarged_affine_shows_the_same_face():
    rng = np.random.default_rng(1)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (900, 900, 3), dtype=np.uint8), (0, 0), 4)
    landmarks = face_template(512) * 1.6 + 40  # a face larger in the photo than the template
    affine = estimate_affine(landmarks, 512)
    small = warp_face(photo, affine, 512)
    large = warp_face(photo, enlarge_affine(affine, 2.0), 1024)
    assert psnr(cv2.resize(large, (512, 512), interpolation=cv2.INTER_AREA)[32:-32, 32:-32], small[32:-32, 32:-32]) > 40


# -- the bundled models on real faces -------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> tuple[Restorer, Restorer]:
    store = ModelStore()
    if not (store.is_installed("likeness-lite") and store.is_installed("likeness-fidelity")):
        pytest.skip("needs the bundled likeness-lite and likeness-fidelity")
    return Restorer(model="likeness-lite", device="cpu", store=store), Restorer(
        model="likeness-lite", device="cpu", store=store, fidelity=None
    )


@pytest.fixture(scope="module")
def clean_face() -> np.ndarray:
    """A sharp, clean aligned face (a studio portrait of the real-world test images)."""
    return read_image(shared_path("data", "real_world", "gray_faces", "089_Miley_Cyrus_00.png")).rgb


@pytest.fixture(scope="module")
def damaged_face() -> np.ndarray:
    return read_image(shared_path("data", "real_world", "cropped_faces", "0143.png")).rgb


def test_w1_returns_a_clean_face_nearly_unchanged(bundled, clean_face):
    two_path, generative_only = bundled
    assert psnr(two_path.restore_faces([clean_face], 1.0)[0], clean_face) >= 35
    # what the issue fixed: the generative network alone rebuilds the clean face far from itself
    assert psnr(generative_only.restore_faces([clean_face], 1.0)[0], clean_face) < 30


@pytest.mark.parametrize("which, closer", [("clean_face", 0.2), ("damaged_face", 0.8)])
def test_the_slider_runs_monotonically_toward_the_original(bundled, which, closer, request):
    face = request.getfixturevalue(which)
    two_path = bundled[0]
    encoded = two_path.encode_face(face)
    distance = [
        np.abs(two_path.decode_face(encoded, face, w).astype(float) - face).mean() for w in np.linspace(0, 1, 11)
    ]
    assert all(b <= a + 0.05 for a, b in zip(distance, distance[1:], strict=False)), distance
    assert distance[-1] < closer * distance[0]  # a damaged face is still cleaned at w = 1


def test_the_purely_generative_face_is_the_slider_s_other_end(bundled, damaged_face):
    two_path, generative_only = bundled
    assert np.array_equal(
        two_path.restore_faces([damaged_face], 0.0)[0], generative_only.restore_faces([damaged_face], 0.0)[0]
    )


def test_a_large_aligned_face_keeps_its_detail(bundled, clean_face, tmp_path):
    """A 1024² aligned input is restored at 1024², not squeezed through the 512 template."""
    big = cv2.resize(clean_face, (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    texture = np.random.default_rng(0).normal(0, 6, big.shape[:2])[..., None]  # fine detail only 1024² holds
    big = np.clip(big + texture, 0, 255).astype(np.uint8)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    result = bundled[0].restore(RestoreRequest(path, None, RestoreOptions(aligned=True, upscale=1, fidelity=1.0)))
    assert result.faces[0].restored.shape == (1024, 1024, 3)
    squeezed = cv2.resize(
        cv2.resize(big, (512, 512), interpolation=cv2.INTER_AREA), (1024, 1024), interpolation=cv2.INTER_CUBIC
    )
    assert psnr(result.image, big) > psnr(squeezed, big) + 3


def test_the_engine_s_blend_is_the_arithmetic_training_used():
    """``combine`` (OpenCV, the engine) and ``mix`` (torch, training) give the same face."""
    from engine.nets.fidelity import mix
    from engine.runtime.two_path import combine

    rng = np.random.default_rng(2)
    fid = cv2.GaussianBlur(rng.uniform(0, 255, (512, 512, 3)).astype(np.float32), (0, 0), 1.0)
    gen = cv2.GaussianBlur(rng.uniform(0, 255, (512, 512, 3)).astype(np.float32), (0, 0), 4.0).astype(np.uint8)
    damage = rng.uniform(0, 1, (32, 32)).astype(np.float32)

    def as_tensor(a):
        return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).transpose(2, 0, 1)))[None]

    expected = (
        mix(as_tensor(fid), as_tensor(gen), torch.from_numpy(damage)[None, None], 128)[0].numpy().transpose(1, 2, 0)
    )
    got = combine(fid, gen, damage, 0.5, 128).astype(np.float32)
    inner = (slice(16, -16), slice(16, -16))  # the borders pad differently; the paste mask hides them
    assert np.abs(got[inner] - np.clip(expected[inner], 0, 255)).max() <= 1.0


def test_onnx_runtime_gives_the_torch_correction(tmp_path):
    from engine.runtime.two_path import export_correction

    torch.manual_seed(0)
    model = FidelityModel(TINY_FIDELITY)
    torch.nn.init.normal_(model.net.tail.weight, std=0.05)
    weights = tmp_path / "f.safetensors"
    weights.write_bytes(b"stands in for the model file: the cache key is its size and time")
    graph = export_correction(model, weights, tmp_path / "cache")
    assert export_correction(model, weights, tmp_path / "cache") == graph  # exported once
    faces = [np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)]
    by_torch = FidelityPath(model, torch.device("cpu")).clean(faces)[0]
    by_onnx = FidelityPath(model, torch.device("cpu"), graph).clean(faces)[0]
    assert np.abs(by_torch - by_onnx).max() < 1e-3


def test_a_large_sharp_face_in_a_photo_keeps_its_detail(bundled):
    """A face larger in the photo than the template (CelebA, 460 px) keeps all its fine detail;
    the generative network alone kept 4 % of it."""
    photo = shared_path("data", "faces", "identities", "celeba_07354", "11.jpg")
    result = bundled[0].restore(RestoreRequest(photo, None, RestoreOptions(upscale=2)))
    face = max(result.faces, key=lambda f: f.box[2] - f.box[0])
    assert face.restored.shape[0] > 512 and face.restored_from is not None
    rgb = read_image(photo).rgb
    upscaled = cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    x0, y0, x1, y1 = (int(2 * v) for v in face.box)

    def detail(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(float), cv2.CV_64F).var())

    assert detail(result.image) >= 0.95 * detail(upscaled)
