"""A fake ``likeness profile train NAME --json-progress`` for the wizard's tests (run with ``-m``).

Prints one JSON object per step, a before/after preview once, and records an adapter in the
profile at the end, as the engine's command does. Its state (the last step) is saved each step
in the profile's training folder, so a run that was terminated resumes from there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace

import numpy as np
from PIL import Image

from engine.api import AdapterRecord, ProfileStore


def emit(line: dict) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--json-progress", action="store_true")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.0)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()
    store = ProfileStore()
    profile = store.get(args.name)
    if args.fail:
        sys.stderr.write("loading the model…\nerror: no restoration model to adapt is installed\n")
        return 1
    folder = profile.training_dir
    folder.mkdir(exist_ok=True)
    state = folder / "state.json"
    first = json.loads(state.read_text())["step"] + 1 if state.exists() else 1
    starts = json.loads((folder / "starts.json").read_text()) if (folder / "starts.json").exists() else []
    (folder / "starts.json").write_text(json.dumps([*starts, first]))
    for step in range(first, args.steps + 1):
        time.sleep(args.step_seconds)
        line = {"step": step, "steps": args.steps, "eta_s": (args.steps - step) * 61.0, "loss": 1.0 / step}
        if step == first:
            preview = profile.folder / "preview.png"  # outlives the training folder, removed at the end
            before_after = np.zeros((64, 128, 3), np.uint8)
            before_after[:, 64:] = 200
            Image.fromarray(before_after).save(preview)
            line["preview"] = str(preview)
        state.write_text(json.dumps({"step": step}))
        emit(line)
    record = AdapterRecord("adapter.safetensors", "tiny", "0" * 64, 4, len(profile.faces), args.steps, 0.1)
    store.save(replace(profile, adapter=record))
    shutil.copy(folder / "starts.json", profile.folder / "starts.json")  # the test reads where each run began
    shutil.rmtree(folder)
    emit({"done": True, "step": args.steps, "steps": args.steps})
    return 0


if __name__ == "__main__":
    sys.exit(main())
