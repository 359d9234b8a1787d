"""``likeness`` command line: exit codes, one-line errors, outputs, originals untouched."""

from __future__ import annotations

import hashlib
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from engine.cli import main
from engine.nets.codeformer import OFFICIAL, TINY, CodeFormer
from tests.conftest import shared_path
from tests.engine.nets.test_codeformer import recipe_weights


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_model(tmp_path, config, name) -> None:
    net = CodeFormer(config)
    ckpt = tmp_path / f"{name}.pth"
    torch.save({"params_ema": recipe_weights(net)}, ckpt)
    assert main(["models", "import", str(ckpt), "--name", name]) == 0


@pytest.fixture
def tiny_model(tmp_path) -> str:
    import_model(tmp_path, TINY, "tiny")
    return "tiny"


def test_missing_input_is_a_usage_error(tmp_path, capsys):
    assert main(["restore", str(tmp_path / "nope.jpg")]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg: no such file or folder" in err
    assert "Traceback" not in err


def test_empty_folder_is_a_usage_error(tmp_path, capsys):
    assert main(["restore", str(tmp_path)]) == 2
    assert "folder holds no images" in capsys.readouterr().err


def test_bad_fidelity_is_rejected_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["restore", str(tmp_path), "--w", "1.5"])
    assert exit_.value.code == 2
    assert "--w must be between 0 and 1" in capsys.readouterr().err


def test_no_model_names_the_install_command(tmp_path, capsys, no_bundled_model):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    assert main(["restore", str(photo)]) == 1
    err = capsys.readouterr().err
    assert "likeness models install codeformer" in err and "likeness models import FILE" in err
    assert len(err.strip().splitlines()) == 1


def test_aligned_face_restored_beside_the_original(tmp_path, tiny_model, capsys):
    src = shared_path("data", "real_world", "cropped_faces", "0143.png")
    photo = tmp_path / "face.png"
    shutil.copy(src, photo)
    before = digest(photo)
    assert main(["restore", str(photo), "--aligned", "--upscale", "1", "--model", tiny_model]) == 0
    out = tmp_path / "face_restored.png"
    assert out.exists() and digest(photo) == before
    assert cv2.imread(str(out)).shape == (512, 512, 3)


def test_corrupt_photo_fails_alone_and_the_batch_goes_on(tmp_path, tiny_model, capsys):
    good = tmp_path / "in" / "good.png"
    good.parent.mkdir()
    shutil.copy(shared_path("data", "real_world", "cropped_faces", "0143.png"), good)
    bad = tmp_path / "in" / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    out = tmp_path / "out"
    code = main(["restore", str(good.parent), "-o", str(out), "--aligned", "--model", tiny_model, "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert "bad.jpg" in err and "Traceback" not in err
    assert (out / "good_restored.png").exists() and not (out / "bad_restored.jpg").exists()
    assert bad.read_bytes() == b"not a jpeg at all"


def test_models_list_shows_licences(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("codeformer"))
    assert "not installed" in line and "non-commercial" in line


def test_info_lists_versions_and_devices(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "cpu" in out and "installed models" in out


def test_unknown_model_is_one_line(tmp_path, capsys):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    assert main(["restore", str(photo), "--model", "nonesuch"]) == 2  # a usage error, found before any work
    assert "no model called 'nonesuch'" in capsys.readouterr().err


@pytest.mark.slow
def test_whole_photo_with_official_network_replaces_faces(tmp_path, capsys):
    """Official config + recipe weights imported as a checkpoint: right size, faces replaced."""
    src = shared_path("data", "real_world", "whole_photos", "00.jpg")
    photo = tmp_path / "00.jpg"
    shutil.copy(src, photo)
    before = digest(photo)
    import_model(tmp_path, OFFICIAL, "official-recipe")
    # A bicubic background, so that everything outside the faces can be compared with bicubic.
    args = ["restore", str(photo), "-o", str(tmp_path / "out"), "--model", "official-recipe", "--background", "bicubic"]
    assert main(args) == 0
    assert digest(photo) == before
    out = cv2.imread(str(tmp_path / "out" / "00_restored.jpg"))
    rgb_in = cv2.imread(str(photo))
    assert out.shape == (rgb_in.shape[0] * 2, rgb_in.shape[1] * 2, 3)
    assert "4 of 4 faces" in capsys.readouterr().out
    bicubic = cv2.resize(rgb_in, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
    changed = np.abs(out.astype(int) - bicubic).max(axis=2) > 40
    assert changed.mean() > 0.005  # the faces were replaced by network output
    assert changed[: out.shape[0] // 12].mean() < 0.001  # the top strip holds no face: untouched


def test_info_does_not_load_torch():
    """`likeness info` lists the devices through the GPU driver itself: quick, and no PyTorch."""
    import subprocess
    import sys

    code = "import sys; from engine.cli import main; main(['info']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "cpu" in out.stdout and "threads" in out.stdout


def test_the_device_list_agrees_with_torch():
    import torch

    from engine.devices import available_devices

    ids = [device for device, _ in available_devices()]
    assert ids[0] == "cpu"
    assert sum(d.startswith("cuda:") for d in ids) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


@pytest.mark.slow
def test_bench_prints_one_json_line_with_every_figure(capsys):
    assert main(["bench", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    for key in (
        "peak_gflops",
        "official_ms_per_face",
        "lite_ms_per_face",
        "slider_ms",
        "whole_photo_ms",
        "detect_ms_per_photo",
    ):
        assert isinstance(figures[key], float) and figures[key] > 0, key


def test_restore_and_batch_enlarge_the_background_with_the_bundled_network_by_default():
    from engine.api import DEFAULT_BACKGROUND
    from engine.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["restore", "a.jpg"]).background == DEFAULT_BACKGROUND
    assert parser.parse_args(["batch", "src", "dst"]).background == DEFAULT_BACKGROUND
    assert parser.parse_args(["restore", "a.jpg", "--background", "bicubic"]).background == "bicubic"
