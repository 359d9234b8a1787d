"""Personal adapters (training.personalise): a few steps on a tiny network, progress lines, kill and resume."""

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

from engine.errors import LikenessError
from engine.models import ModelStore
from engine.nets import lora
from engine.nets.codeformer import TINY, CodeFormer, load_codeformer, save_codeformer
from engine.profiles.store import ProfileFace, ProfileStore
from tests.conftest import REPO
from training import personalise


def _tiny_model(home: Path) -> str:
    """A TINY network (random weights) imported into the private store as "tiny"."""
    torch.manual_seed(0)
    path = home / "tiny.safetensors"
    save_codeformer(CodeFormer(TINY).eval(), path, half=False)
    ModelStore().import_file(path, name="tiny")
    return "tiny"


def _face(rng: np.random.Generator) -> np.ndarray:
    """A synthetic aligned "face" at 512: skin disc, eyes, mouth, on a plain background."""
    img = np.zeros((512, 512, 3), np.uint8) + rng.integers(30, 120, 3).astype(np.uint8)
    skin = tuple(int(v) for v in rng.integers(140, 230, 3))
    cv2.ellipse(img, (256, 270), (150, 190), 0, 0, 360, skin, -1)
    for x in (200, 312):
        cv2.circle(img, (x + int(rng.integers(-6, 6)), 240), 18, (40, 30, 30), -1)
    cv2.ellipse(img, (256, 360), (50, 15), 0, 0, 360, (120, 50, 60), -1)
    return cv2.GaussianBlur(img, (0, 0), 2)


def _profile(root: Path, n: int = 5, name: str = "Ada"):
    rng = np.random.default_rng(0)
    faces = []
    for _ in range(n):
        ok, png = cv2.imencode(".png", _face(rng))
        assert ok
        faces.append((ProfileFace("", "synthetic", 0, 100.0, 300.0, 0.0), png.tobytes()))
    store = ProfileStore(root)
    return store, store.create(name, faces, np.zeros((n, 128), np.float32))


def test_a_few_steps_make_an_adapter_that_changes_the_output(tmp_path, private_home):
    model = _tiny_model(private_home)
    store, profile = _profile(tmp_path / "profiles")
    seen: list[dict] = []
    record = personalise.train_adapter(profile, model=model, steps=6, device="cpu", store=store, progress=seen.append)
    profile = store.get("Ada")
    assert profile.adapter == record
    assert (record.model, record.rank, record.steps) == ("tiny", 4, 6)
    assert sum(f.held_out for f in profile.faces) == 1 and record.photos == 4  # 20 %, recorded in the profile
    assert not profile.training_dir.exists()  # resume state removed once the adapter is written
    assert seen[-1]["done"] and Path(seen[-1]["preview"]).is_file()
    adapter = lora.load_adapter(profile.folder / record.file)
    assert adapter.model == "tiny" and adapter.model_sha256 == record.model_sha256
    base = load_codeformer(ModelStore().path(model)).float().eval()
    x = torch.rand(1, 3, TINY.img_size, TINY.img_size) * 2 - 1
    with torch.no_grad():
        moved = (lora.merged(base, adapter)(x)[0] - base(x)[0]).abs().max()
    # the adapter kept is the best on the held-out faces: the base network itself when none beat it
    assert bool(moved > 1e-4) == (record.validation["best_step"] > 0)


def test_training_steps_lower_the_loss_and_move_the_output(tmp_path, private_home):
    model = _tiny_model(private_home)
    store, profile = _profile(tmp_path / "profiles")
    profile = personalise.split_faces(profile, store)
    net = load_codeformer(ModelStore().path(model))
    trainer = personalise.PersonalTrainer(
        profile, net, model, "sha", torch.device("cpu"), personalise.PersonalConfig(lr=3e-3), 10, None
    )
    x = torch.rand(1, 3, TINY.img_size, TINY.img_size) * 2 - 1
    with torch.no_grad():
        before_out = trainer.net(x)[0]
        before = trainer.loss(0)[0].item()
    for _ in range(10):
        trainer.train_step()
    with torch.no_grad():
        after = trainer.loss(0)[0].item()
        after_out = trainer.net.eval()(x)[0]
    assert after < before
    assert (after_out - before_out).abs().max() > 1e-4


def test_errors_are_one_line_likeness_errors(tmp_path, private_home, capsys):
    _tiny_model(private_home)
    store, profile = _profile(tmp_path / "profiles", n=2, name="Bo")
    with pytest.raises(LikenessError, match="at least 3"):
        personalise.train_adapter(profile, model="tiny", steps=1, store=store)
    assert personalise.main(["Nobody", "--profiles", str(tmp_path / "profiles"), "--model", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "no profile called 'Nobody'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_saved_step(tmp_path, private_home):
    _tiny_model(private_home)
    store, profile = _profile(tmp_path / "profiles")
    state = profile.training_dir / personalise.STATE_FILE
    cmd = [
        sys.executable, "-m", "training.personalise", "Ada", "--model", "tiny", "--steps", "40", "--device", "cpu",
        "--json-progress", "--checkpoint-every", "2", "--profiles", str(tmp_path / "profiles"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())

    def saved_step() -> int:
        try:
            return int(torch.load(state, map_location="cpu", weights_only=False)["run"]["step"])
        except Exception:  # not written yet, or being replaced
            return 0

    deadline = time.monotonic() + 120
    while saved_step() < 4:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "no progress to kill"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = saved_step()
    assert 4 <= saved < 40
    assert not list(profile.training_dir.glob(".*")), "a half-written state file was left"

    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy())
    assert again.returncode == 0, again.stderr[-2000:]
    lines = [json.loads(line) for line in again.stdout.splitlines() if line.strip()]
    assert lines[0]["resumed"] is True and lines[0]["step"] == saved
    steps = [m["step"] for m in lines[1:] if "loss" in m]
    assert steps == list(range(saved + 1, 41))  # continued from the saved step, none twice
    assert lines[-1]["done"] and lines[-1]["steps"] == 40 and "preview" in lines[-1]
    assert all({"step", "steps", "eta_s"} <= set(m) for m in lines)
    record = ProfileStore(tmp_path / "profiles").get("Ada").adapter
    assert record is not None and record.steps == 40
    assert not profile.training_dir.exists()
