"""dlib's identity ResNet in torch: parser, equality with dlib's descriptors, chip, gradients, cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import CheckpointFormatError, ModelMissingError
from engine.identity import (
    DlibFaceEmbedder,
    chip_from_aligned,
    descriptor_from_chip,
    dlib_resnet,
    find_dlib_model,
    load_dlib_embedder,
    normalize_descriptor,
    parse_dlib_dnn,
)
from engine.identity.dlib_format import DlibReader
from tests.conftest import shared_path

FOLDERS = ("cropped_faces", "gray_faces", "whole_photos")
ALIGNED_FOLDERS = ("cropped_faces", "gray_faces")  # FFHQ-aligned 512 faces
DLIB_PARAMS = 5_614_592  # learnable values of dlib_face_recognition_resnet_model_v1


@pytest.fixture(scope="session")
def dat_path() -> Path:
    try:
        return find_dlib_model()
    except ModelMissingError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def embedder(dat_path: Path, tmp_path_factory: pytest.TempPathFactory) -> DlibFaceEmbedder:
    """Converted once per session into a private home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIKENESS_HOME", str(tmp_path_factory.mktemp("identity-home")))
        return load_dlib_embedder()


@pytest.fixture(scope="session")
def real_world(dat_path: Path) -> dict[str, dict]:
    """Per folder: dlib's chips, its descriptors and the images, for every face dlib finds."""
    dlib = pytest.importorskip("dlib")
    from PIL import Image

    root = shared_path("data", "real_world")
    models = dat_path.parent
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    recognizer = dlib.face_recognition_model_v1(str(dat_path))
    out: dict[str, dict] = {}
    for folder in FOLDERS:
        files = sorted(p for p in (root / folder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        entry = {
            "files": len(files),
            "found": 0,
            "chips": [],
            "descriptors": [],
            "aligned": [],
            "aligned_descriptors": [],
        }
        for path in files:
            img = np.asarray(Image.open(path).convert("RGB"))
            dets = list(detector(img, 1))
            if not dets:
                continue
            entry["found"] += 1
            for det in dets:
                shape = predictor(img, det)
                entry["chips"].append(np.asarray(dlib.get_face_chip(img, shape, 150, 0.25)))
                entry["descriptors"].append(np.asarray(recognizer.compute_face_descriptor(img, shape)))
            if folder in ALIGNED_FOLDERS:  # the main face, for the fixed-affine chip
                shape = predictor(img, max(dets, key=lambda d: d.area()))
                entry["aligned"].append(img)
                entry["aligned_descriptors"].append(np.asarray(recognizer.compute_face_descriptor(img, shape)))
        out[folder] = entry
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# Parser


def test_dlib_integer_and_float_encoding() -> None:
    r = DlibReader(bytes([0x00, 0x01, 0x05, 0x82, 0x2C, 0x01, 0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C, 0x31, 0x30]))
    assert [r.int(), r.int(), r.int()] == [0, 5, -300]
    assert r.float() == pytest.approx(0.04, rel=1e-7)  # 10737418 * 2**-28, as in loss_metric_2
    assert (r.bool(), r.bool()) == (True, False)
    with pytest.raises(CheckpointFormatError):
        r.int()


def test_parser_reads_the_whole_network(dat_path: Path) -> None:
    net = parse_dlib_dnn(dat_path)
    kinds = [layer.kind for layer in net.layers]
    assert len(kinds) == 108
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "con": 29,
        "affine": 29,
        "relu": 29,
        "add_prev": 14,
        "avg_pool": 5,
        "max_pool": 1,
        "fc": 1,
    }
    assert net.num_params == DLIB_PARAMS
    assert net.loss["tag"] == "loss_metric_2" and net.loss["distance_threshold"] == pytest.approx(0.6)
    assert net.input["nr"] == net.input["nc"] == 150
    assert net.input["avg_rgb"] == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert net.versions == dlib_resnet._expected_versions()
    state = dlib_resnet.state_dict_from_dlib(net)
    assert sum(t.numel() for t in state.values()) == DLIB_PARAMS
    assert sum(p.numel() for p in DlibFaceEmbedder().parameters()) == DLIB_PARAMS


def test_truncated_file_is_a_format_error(dat_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(dat_path.read_bytes()[:1_000_000])
    with pytest.raises(CheckpointFormatError, match="truncated.dat"):
        parse_dlib_dnn(bad)


# Equality with dlib


@pytest.mark.shared
def test_descriptor_equals_dlib_on_real_world_faces(embedder: DlibFaceEmbedder, real_world: dict) -> None:
    for folder, entry in real_world.items():
        assert entry["found"] >= 0.9 * entry["files"], f"{folder}: dlib found faces in too few images"
        with torch.no_grad():
            ours = descriptor_from_chip(embedder, np.stack(entry["chips"])).numpy()
        cos = _cosines(ours, np.stack(entry["descriptors"]))
        assert cos.min() >= 0.999, f"{folder}: min cosine {cos.min():.6f}"
        np.testing.assert_allclose(ours, np.stack(entry["descriptors"]), atol=1e-4)


@pytest.mark.shared
def test_chip_from_aligned_matches_dlib_on_ffhq_faces(embedder: DlibFaceEmbedder, real_world: dict) -> None:
    # Measured (template-derived affine, 5-point shapes): cropped_faces min 0.988 mean 0.9945,
    # gray_faces min 0.994 mean 0.996; dlib fits each face's own landmarks, we use the template.
    for folder in ALIGNED_FOLDERS:
        entry = real_world[folder]
        faces = torch.from_numpy(np.stack(entry["aligned"])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        with torch.no_grad():
            ours = embedder.embed_aligned(faces).numpy()
        cos = _cosines(ours, np.stack(entry["aligned_descriptors"]))
        assert cos.mean() >= 0.99 and cos.min() >= 0.98, f"{folder}: cosines {np.round(cos, 4)}"


# Differentiability


def test_gradient_flows_through_chip_to_the_input(embedder: DlibFaceEmbedder) -> None:
    torch.manual_seed(0)
    for size in (256, 1024):
        faces = (torch.rand(2, 3, size, size) * 2 - 1).requires_grad_(True)
        target = normalize_descriptor(torch.randn(2, 128))
        emb = embedder.embed_aligned(faces)
        assert emb.shape == (2, 128)
        assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
        (1 - (emb * target).sum(1)).mean().backward()
        assert faces.grad is not None and torch.isfinite(faces.grad).all()
        assert faces.grad.abs().sum() > 0
    assert all(p.grad is None for p in embedder.parameters())  # frozen net


def test_chip_geometry_is_resolution_independent() -> None:
    def smooth_face(size: int) -> torch.Tensor:
        """A smooth pattern defined in FFHQ-512 pixel coordinates, rendered at ``size``."""
        c = (torch.arange(size, dtype=torch.float64) + 0.5) * 512 / size - 0.5
        y, x = torch.meshgrid(c, c, indexing="ij")
        img = torch.stack([torch.sin(x / 37), torch.cos(y / 53), torch.sin((x + y) / 61)])
        return img[None].float()

    chip = chip_from_aligned(smooth_face(512))
    assert chip.shape == (1, 3, 150, 150)
    for size in (256, 384, 1024):
        assert (chip_from_aligned(smooth_face(size)) - chip).abs().max() < 0.03, size


# Cache


def test_cache_written_once_and_reused(dat_path: Path, private_home: Path, tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / dat_path.name
    shutil.copyfile(dat_path, source)
    cache = private_home / "cache" / dlib_resnet.CACHE_NAME
    calls: list[Path] = []
    convert = dlib_resnet.convert_dlib_model

    def counting(src: Path, dst: Path):
        calls.append(src)
        return convert(src, dst)

    monkeypatch.setattr(dlib_resnet, "convert_dlib_model", counting)
    first = load_dlib_embedder(source=source)
    assert cache.is_file() and len(calls) == 1
    stamp = cache.stat().st_mtime_ns
    second = load_dlib_embedder(source=source)
    assert len(calls) == 1 and cache.stat().st_mtime_ns == stamp
    assert not list(cache.parent.glob("*.part"))
    x = torch.rand(1, 3, 150, 150) * 255
    with torch.no_grad():
        assert torch.equal(first(x), second(x))
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # source changed: convert again
    load_dlib_embedder(source=source)
    assert len(calls) == 2
