"""Restorer: face selection, untouched exclusions, grayscale, cancel, progress, metadata."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from engine.api import RestoreOptions, Restorer, RestoreRequest
from engine.errors import CancelledError, LikenessError, NoFaceFoundError
from engine.models import ModelStore
from engine.nets.codeformer import TINY, CodeFormer, save_codeformer
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def restorer(tmp_path_factory) -> Restorer:
    """A tiny random network imported into a private store; the fast HOG detector."""
    root = tmp_path_factory.mktemp("store")
    torch.manual_seed(0)
    save_codeformer(CodeFormer(TINY), root / "tiny.safetensors")
    store = ModelStore(root / "models")
    store.import_file(root / "tiny.safetensors", name="tiny")
    return Restorer(model="tiny", device="cpu", store=store)


@pytest.fixture(scope="module")
def group_photo(tmp_path_factory):
    src = shared_path("data", "real_world", "whole_photos", "00.jpg")
    dst = tmp_path_factory.mktemp("photos") / "group.jpg"
    shutil.copy(src, dst)
    return dst


def hog(**kw) -> RestoreOptions:
    return RestoreOptions(detector="hog", **kw)


def test_selected_faces_only_are_restored_and_excluded_faces_stay_untouched(restorer, group_photo):
    everything = restorer.restore(RestoreRequest(group_photo, options=hog(color_fix=False)))
    assert len(everything.faces) == 4 and all(f.selected for f in everything.faces)
    some = restorer.restore(RestoreRequest(group_photo, options=hog(faces=(0, 2), color_fix=False)))
    assert [f.selected for f in some.faces] == [True, False, True, False]
    plain = restorer.restore(RestoreRequest(group_photo, options=hog(faces=(0,), color_fix=False)))
    # The default background upscaler (the bundled network) is what an excluded face stays as.
    photo = np.asarray(Image.open(group_photo).convert("RGB"))
    background = restorer.upscaler(RestoreOptions().background).upscale(photo, 2)
    for face in some.faces:
        x0, y0, x1, y1 = (int(v * 2) for v in face.box)
        inside = (slice(y0, y1), slice(x0, x1))
        diff_some = np.abs(some.image[inside].astype(int) - background[inside]).mean()
        if face.selected:
            assert diff_some > 5, "a selected face must be replaced by network output"
        else:
            assert diff_some < 0.5, "an excluded face must stay as the upscaled original"
    assert plain.faces[0].selected and not plain.faces[3].selected


def test_face_index_out_of_range_is_a_clear_error(restorer, group_photo):
    with pytest.raises(NoFaceFoundError, match="face number 7"):
        restorer.restore(RestoreRequest(group_photo, options=hog(faces=(7,))))


def test_only_center_face(restorer, group_photo):
    result = restorer.restore(RestoreRequest(group_photo, options=hog(only_center_face=True)))
    chosen = [f for f in result.faces if f.selected]
    assert len(chosen) == 1
    cx = result.image.shape[1] / 4
    assert chosen[0].index in (1, 2) and abs((chosen[0].box[0] + chosen[0].box[2]) / 2 - cx) < cx / 2


def test_output_written_with_exif_kept_and_original_untouched(restorer, group_photo, tmp_path):
    photo = tmp_path / "dated.jpg"
    exif = Image.Exif()
    exif[0x0132] = "1987:06:05 04:03:02"  # DateTime
    exif[0x0112] = 1
    Image.open(group_photo).save(photo, exif=exif.tobytes(), quality=92)
    original = photo.read_bytes()
    out = tmp_path / "out" / "dated_restored.jpg"
    out.parent.mkdir()
    restorer.restore(RestoreRequest(photo, out, hog(upscale=1)))
    assert photo.read_bytes() == original
    with Image.open(out) as im:
        assert im.size == Image.open(photo).size
        assert im.getexif().get(0x0132) == "1987:06:05 04:03:02"


def test_grayscale_photo_stays_grayscale(restorer, group_photo, tmp_path):
    gray = tmp_path / "gray.png"
    Image.open(group_photo).convert("L").save(gray)
    out = tmp_path / "gray_restored.png"
    result = restorer.restore(RestoreRequest(gray, out, hog()))
    assert np.array_equal(result.image[..., 0], result.image[..., 1])
    assert Image.open(out).mode == "L"


def test_refuses_to_overwrite_the_original(restorer, group_photo, tmp_path):
    photo = tmp_path / "p.jpg"
    shutil.copy(group_photo, photo)
    before = photo.read_bytes()
    with pytest.raises(LikenessError):
        restorer.restore(RestoreRequest(photo, photo, hog()))
    assert photo.read_bytes() == before


def test_cancel_stops_before_the_next_face_and_writes_nothing(restorer, group_photo, tmp_path):
    cancel = threading.Event()
    stages = []

    def progress(p):
        stages.append(p)
        if p.stage == "restore":
            cancel.set()  # the user presses cancel while the first face runs

    out = tmp_path / "never.jpg"
    with pytest.raises(CancelledError):
        restorer.restore(RestoreRequest(group_photo, out, hog()), progress=progress, cancel=cancel)
    assert not out.exists()
    assert sum(p.stage == "restore" for p in stages) == 1


def test_progress_is_monotonic_and_ends_at_one(restorer, group_photo):
    seen = []
    restorer.restore(RestoreRequest(group_photo, options=hog()), progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"read", "detect", "restore", "upscale", "paste", "done"} <= {p.stage for p in seen}
    # The background network reports after each tile (00.jpg, 491 px wide: two 384 px tiles).
    assert [p.fraction for p in seen if p.stage == "upscale"] == [0.8, 0.85, 0.9]


def test_cancel_acts_inside_the_background_tiles(restorer, group_photo, tmp_path):
    cancel = threading.Event()
    stages = []

    def progress(p):
        stages.append(p.stage)
        if p.stage == "upscale":
            cancel.set()

    with pytest.raises(CancelledError):
        restorer.restore(RestoreRequest(group_photo, tmp_path / "never.jpg", hog()), progress=progress, cancel=cancel)
    assert stages[-1] == "upscale" and "paste" not in stages and not (tmp_path / "never.jpg").exists()


def test_aligned_input_keeps_its_size_times_upscale(restorer, tmp_path):
    face = shared_path("data", "real_world", "cropped_faces", "0143.png")
    small = tmp_path / "small.png"
    Image.open(face).resize((128, 128)).save(small)
    result = restorer.restore(RestoreRequest(small, options=RestoreOptions(aligned=True, upscale=2)))
    assert result.image.shape == (256, 256, 3) and len(result.faces) == 1


def test_fidelity_out_of_range_is_rejected():
    with pytest.raises(LikenessError, match="between 0 and 1"):
        RestoreOptions(fidelity=1.2)


def test_gpu_out_of_memory_falls_back_to_the_cpu_with_a_notice(restorer, group_photo, monkeypatch):
    """Simulated: a restorer on 'cuda' whose network raises OutOfMemoryError on first use."""
    from engine.errors import OutOfMemoryError

    cpu_restorer = restorer.face_restorer

    class ExhaustedGpu:
        name = "tiny"

        def restore(self, faces, w):
            raise OutOfMemoryError("cuda ran out of memory running tiny")

        def moved_to(self, device):
            assert device.type == "cpu"
            return cpu_restorer

    fresh = Restorer(model="tiny", device="cpu", store=restorer.store)
    fresh.networks.face_restorer = ExhaustedGpu()
    monkeypatch.setattr(fresh.networks, "device", torch.device("cuda"))
    monkeypatch.setattr(fresh.networks, "describe_device", lambda: "test")
    result = fresh.restore(RestoreRequest(group_photo, options=hog(faces=(0,))))
    assert result.faces[0].selected
    assert fresh.device.type == "cpu"
    assert any("out of memory" in w for w in result.warnings)


def test_cached_encode_gives_the_same_face_as_a_full_restore_at_any_w(restorer, group_photo):
    face = restorer.find_faces(np.asarray(Image.open(group_photo).convert("RGB")), hog())[1]
    encoded = restorer.encode_face(face.aligned)
    previews = {w: restorer.decode_face(encoded, face.aligned, w) for w in (0.0, 0.5, 1.0)}
    for w, preview in previews.items():
        assert np.array_equal(preview, restorer.restore_faces([face.aligned], w)[0])
    assert not np.array_equal(previews[0.0], previews[1.0])


def test_onnx_backend_matches_torch_and_exports_once(restorer, group_photo, monkeypatch):
    face = restorer.find_faces(np.asarray(Image.open(group_photo).convert("RGB")), hog())[0]
    by_torch = Restorer(model="tiny", device="cpu", store=restorer.store, backend="torch")
    by_onnx = Restorer(model="tiny", device="cpu", store=restorer.store, backend="onnx")
    assert by_torch.face_restorer.backend == "torch" and by_onnx.face_restorer.backend == "onnx"
    for w in (0.0, 0.7):
        a = by_torch.restore_faces([face.aligned], w, color_fix=False)[0].astype(int)
        b = by_onnx.restore_faces([face.aligned], w, color_fix=False)[0].astype(int)
        assert np.abs(a - b).max() <= 2

    import engine.runtime.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("exported twice"))
    again = Restorer(model="tiny", device="cpu", store=restorer.store, backend="onnx")
    assert again.face_restorer.backend == "onnx"  # came from the cache


def test_auto_backend_is_onnx_on_the_cpu(restorer):
    assert restorer.face_restorer.backend == "onnx"


def test_faces_restored_in_one_batch_match_faces_restored_one_by_one(restorer, group_photo, monkeypatch):
    monkeypatch.setattr(restorer.networks, "face_batch", lambda side: 4)
    batched = restorer.restore(RestoreRequest(group_photo, options=hog()))
    calls = []
    real = restorer.networks.restore

    def counted(crops, w):
        calls.append(len(crops))
        return real(crops, w)

    monkeypatch.setattr(restorer.networks, "restore", counted)
    monkeypatch.setattr(restorer.networks, "face_batch", lambda side: 1)
    single = restorer.restore(RestoreRequest(group_photo, options=hog()))
    assert calls == [1, 1, 1, 1]
    diff = np.abs(batched.image.astype(int) - single.image.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.01


def test_a_batch_too_big_for_the_gpu_is_halved_there_not_moved_to_the_cpu(restorer, group_photo, monkeypatch):
    """Simulated: a 'cuda' network that runs out of memory with more than two faces at once."""
    from engine.errors import OutOfMemoryError

    cpu_restorer = restorer.face_restorer
    seen = []

    class SmallGpu:
        name = "tiny"

        def restore(self, faces, w):
            seen.append(len(faces))
            if len(faces) > 2:
                raise OutOfMemoryError("cuda ran out of memory running tiny")
            return cpu_restorer.restore(faces, w)

    fresh = Restorer(model="tiny", device="cpu", store=restorer.store)
    fresh.networks.face_restorer = SmallGpu()
    monkeypatch.setattr(fresh.networks, "device", torch.device("cuda"))
    monkeypatch.setattr(fresh.networks, "describe_device", lambda: "test")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (80 * 2**30, 80 * 2**30))
    # Bicubic background: the simulated device has no real CUDA for the background network.
    result = fresh.restore(RestoreRequest(group_photo, options=hog(background="bicubic")))
    assert seen == [4, 2, 2]  # 4 fit by the memory estimate; the device said no; halves did fit
    assert sum(f.restored is not None for f in result.faces) == 4
    assert fresh.networks.device.type == "cuda" and not any("out of memory" in w for w in result.warnings)
    assert fresh.networks.face_batch(512) == 2  # what fitted is remembered


def test_the_gpu_batch_follows_free_memory_and_face_size(restorer, monkeypatch):
    from engine.runtime import networks

    nets = Restorer(model="tiny", device="cpu", store=restorer.store).networks
    assert nets.face_batch(512) == networks.CPU_FACE_BATCH
    monkeypatch.setattr(nets, "device", torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    free = 8 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free, 2 * free))
    assert nets.face_batch(512) == int(free * networks.GPU_MEMORY_SHARE // networks.FACE_BYTES_512) == 6
    assert nets.face_batch(1024) == 1
    free = 200 * 2**30
    assert nets.face_batch(512) == networks.MAX_FACE_BATCH
