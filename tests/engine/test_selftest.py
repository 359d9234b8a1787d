"""``likeness --self-test``: what it checks, and that it fails loudly and names the check."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import selftest

ROOT = Path(__file__).resolve().parents[2]


def test_changes_measures_the_face_and_everything_away_from_it():
    before = np.full((200, 300, 3), 100, np.uint8)
    after = before.copy()
    after[80:120, 130:170] += 10  # the face box changed by 10 levels
    after[0, 0] = 150  # one stray pixel far away
    face, untouched = selftest.changes(before, after, (130, 80, 170, 120))
    assert face == pytest.approx(10.0)
    far = 200 * 300 - 80 * 80  # the box grown 2× is (110, 60)-(190, 140)
    assert untouched == pytest.approx(1 - 1 / far)


def test_both_onnx_runtimes_installed_is_a_failure_that_says_what_to_do(monkeypatch):
    monkeypatch.setattr(selftest, "version", lambda dist: "1.20.0")
    result = selftest.SelfTest()
    selftest.one_onnxruntime(result)
    assert not result.ok
    assert "onnxruntime and onnxruntime-gpu are both installed" in result.failures[0]


def test_a_missing_sample_fails_the_self_test_naming_the_file(monkeypatch):
    monkeypatch.setattr(selftest, "SAMPLE", Path("/nonexistent/face.jpg"))
    out = io.StringIO()
    assert selftest.run_self_test(out=out) == 1
    text = out.getvalue()
    assert "FAIL sample photo: /nonexistent/face.jpg is missing" in text
    assert text.rstrip().endswith("self-test FAILED (1 checks)")


@pytest.mark.slow
def test_the_cli_self_test_restores_the_sample_and_passes():
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--self-test"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("ok   face found and restored: 1 of 1 faces", "ok   size: 640×480", "self-test passed"):
        assert line in done.stdout
    assert "ONNX Runtime providers" in done.stdout


@pytest.mark.slow
def test_the_app_self_test_opens_and_closes_the_window_offscreen(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run(
        [sys.executable, "-m", "app", "--self-test"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   window: shown on offscreen" in done.stdout
    assert "ok   window closed" in done.stdout
    assert not (tmp_path / "config" / "Likeness").exists()  # the user's settings were not touched


def test_without_facexlib_auto_detection_falls_back_and_retinaface_says_why(monkeypatch, tmp_path):
    """The bundle leaves facexlib out: installed RetinaFace weights must not break "auto"."""
    from engine.errors import LikenessError
    from engine.faces import detect

    weights = tmp_path / "retinaface.pth"
    weights.write_bytes(b"weights")
    monkeypatch.setattr(detect, "retinaface_available", lambda: False)
    assert isinstance(detect.make_detector("auto", weights), detect.CascadeDetector)
    with pytest.raises(LikenessError, match="needs facexlib and torchvision"):
        detect.make_detector("retinaface", weights)


def test_the_cli_names_its_version():
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0 and done.stdout.startswith("likeness 0.")
