"""Long work survives ``kill -9``: a batch and a training stage resume where they stopped.

Each test starts the real command in a child process, kills it outright once some of the work
is on disk, runs it again with ``--resume``, and checks that the finished work was kept (not
redone), the rest was done, and nothing half-written is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import REPO, shared_path

pytestmark = pytest.mark.slow


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no progress to kill"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_killed_batch_resumes_without_redoing_finished_photos(tmp_path):
    photo = cv2.imread(str(shared_path("data", "real_world", "whole_photos", "00.jpg")))
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(5):  # the same group photo, enlarged: a few seconds each
        cv2.imwrite(str(folder / f"p{n}.jpg"), cv2.resize(photo, None, fx=2 + n * 0.1, fy=2 + n * 0.1))
    out = tmp_path / "out"
    cmd = ["engine.cli", "restore", str(folder), "-o", str(out), "--detector", "hog", "-q"]
    proc = _start(cmd)
    _kill_when(proc, lambda: len(list(out.glob("*_restored.jpg"))) >= 2)
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*_restored.jpg")}
    assert 2 <= len(done_before) < 5

    again = subprocess.run([sys.executable, "-m", *cmd, "--resume"], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    finished = sorted(p.name for p in out.iterdir())
    assert finished == [f"p{n}_restored.jpg" for n in range(5)]  # no numbered copies, no leftovers
    assert {n: (out / n).stat().st_mtime_ns for n in done_before} == done_before  # kept, not redone
    assert again.stderr.count("already restored, skipped") == 0  # -q: only errors are printed


def test_a_killed_likeness_batch_resumes_from_its_manifest(tmp_path):
    photo = cv2.imread(str(shared_path("data", "real_world", "whole_photos", "00.jpg")))
    src = tmp_path / "src"
    for n in range(5):  # a small tree: the structure is kept under DST
        (src / f"roll{n % 2}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / f"roll{n % 2}" / f"p{n}.jpg"), cv2.resize(photo, None, fx=2 + n * 0.1, fy=2 + n * 0.1))
    dst = tmp_path / "dst"
    cmd = ["engine.cli", "batch", str(src), str(dst), "--detector", "hog", "-q"]
    proc = _start(cmd)
    manifest = dst / "likeness-batch.jsonl"
    _kill_when(proc, lambda: manifest.is_file() and len(manifest.read_text().splitlines()) >= 2)
    done_before = {p: p.stat().st_mtime_ns for p in dst.rglob("*_restored.jpg")}
    assert 2 <= len(done_before) < 5

    again = subprocess.run([sys.executable, "-m", *cmd], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    outputs = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert outputs == sorted(["likeness-batch.jsonl"] + [f"roll{n % 2}/p{n}_restored.jpg" for n in range(5)])
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before  # finished photos were not redone
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(Path(r["source"]).name for r in records) == [f"p{n}.jpg" for n in range(5)]


def _faces_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(6):
        img = np.zeros((64, 64, 3), np.uint8) + rng.integers(40, 160, 3).astype(np.uint8)
        cv2.circle(img, (32, 34), 21, tuple(int(v) for v in rng.integers(120, 230, 3)), -1)
        (root / f"id{i % 3}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"id{i % 3}" / f"f{i}.png"), img)
    return root


def test_a_killed_training_stage_resumes_from_its_last_checkpoint(tmp_path):
    data = _faces_folder(tmp_path / "faces")
    config = tmp_path / "kill_test.json"
    every, steps = 3, 60
    config.write_text(
        json.dumps(
            {
                "base": "tiny_stage1",
                "name": "kill_test",
                "data": {"source": "folder", "path": str(data)},
                "steps": steps,
                "checkpoint_every": every,
                "disc_start": 10**6,
                "reseed_every": 0,
            }
        )
    )
    out = tmp_path / "run"
    cmd = ["training.cli", "stage", "1", "--config", str(config), "--out", str(out), "--no-progress"]
    proc = _start(cmd)
    last = out / "last.pt"

    def checkpoint_step() -> int:
        try:
            return int(torch.load(last, map_location="cpu", weights_only=False)["step"])
        except Exception:  # not written yet
            return 0

    _kill_when(proc, lambda: checkpoint_step() >= 2 * every)
    saved = checkpoint_step()
    assert every <= saved < steps
    assert not list(out.glob(".*")), "a half-written checkpoint was left"

    again = subprocess.run([sys.executable, "-m", *cmd, "--resume"], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert checkpoint_step() == steps
    logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    assert logged == sorted(set(logged)) and logged[-1] == steps  # continued from the checkpoint, no step twice
