"""Drives the real app on a real X display with real input events (xdotool), taking screenshots.

Run by ``scripts/gui_real_display.sh`` (``make gui-check``), which starts Xvfb and a window
manager first. The app is ``python -m app`` with the engine and models of this machine, in a
private settings folder; the window writes where its faces, slider and buttons are
(``LIKENESS_GUI_PROBE``, see ``app/probe.py``), and this script moves the mouse and types:

launch with one photo on the command line → open a second through File → Open (typing its
path in the dialog) → drag a third from another window → choose a face → move the slider with
the keyboard → exclude and include a face by its badge → Restore All → Export (Ctrl+E, Enter)
→ close (Ctrl+Q). Screenshots go to OUT (out/gui-check); any step that does not happen in
time fails the check with its name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = (Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "out" / "gui-check").resolve()
PROBE = OUT / "probe.json"
PYTHON = REPO / ".venv" / "bin" / "python"
SAMPLES = (REPO / "resources" / "samples", REPO.parent / "shared" / "data" / "real_world" / "whole_photos")


def xdo(*args: object) -> str:
    return subprocess.run(["xdotool", *map(str, args)], capture_output=True, text=True, check=False).stdout


def shot(name: str) -> None:
    subprocess.run(["import", "-window", "root", str(OUT / f"{name}.png")], check=True)
    print(f"  screenshot {name}.png", flush=True)


def state() -> dict:
    try:
        return json.loads(PROBE.read_text())
    except (OSError, ValueError):
        return {}


def wait(what: str, ok: Callable[[dict], bool], timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = state()
        if s and ok(s):
            return s
        time.sleep(0.2)
    shot(f"failed-{what.replace(' ', '-')}")
    raise SystemExit(f"gui-check: FAILED waiting for {what} (last state: {json.dumps(state())[:600]})")


def click(x: int, y: int, button: int = 1) -> None:
    xdo("mousemove", "--sync", x, y)
    time.sleep(0.1)
    xdo("click", button)
    time.sleep(0.2)


def key(*keys: str) -> None:
    xdo("key", "--delay", 60, *keys)
    time.sleep(0.2)


def window_id(title: str, timeout: float = 60.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ids = xdo("search", "--onlyvisible", "--name", title).split()
        if ids:
            return ids[-1]
        time.sleep(0.3)
    raise SystemExit(f"gui-check: FAILED: no window titled {title!r}")


def photos() -> list[Path]:
    folder = next((d for d in SAMPLES if d.is_dir() and list(d.glob("*.jpg"))), None)
    if folder is None:
        raise SystemExit("gui-check: no sample photos (resources/samples or ../shared/data/real_world/whole_photos)")
    copies = OUT / "photos"
    copies.mkdir(parents=True, exist_ok=True)
    chosen = sorted(folder.glob("*.jpg"))[:3]
    for p in chosen:
        shutil.copy(p, copies / p.name)
    return [copies / p.name for p in chosen]


def settings(config: Path) -> None:
    ini = config / "Likeness" / "Likeness.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(config / "Likeness" / "sessions", ignore_errors=True)  # a killed run's journal would ask to recover
    export = OUT / "export"
    ini.write_text(f"[General]\ndetector=hog\noutput_folder={export}\nconfirm_close=true\n")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    shutil.rmtree(OUT / "export", ignore_errors=True)
    first, second, third = photos()
    env = dict(os.environ, LIKENESS_GUI_PROBE=str(PROBE), XDG_CONFIG_HOME=str(OUT / "config"))
    settings(OUT / "config")
    PROBE.unlink(missing_ok=True)
    log = (OUT / "app.log").open("w")
    start = time.monotonic()
    app = subprocess.Popen([PYTHON, "-m", "app", str(first)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        print("launch", flush=True)
        win = window_id("Likeness")
        xdo("windowmove", "--sync", win, 0, 0)
        s = wait("the first photo", lambda s: len(s["photos"]) == 1 and s["photos"][0]["scanned"], 180)
        print(f"  window up and the first photo scanned in {time.monotonic() - start:.1f} s", flush=True)
        shot("01-launch")

        print("open a photo through File → Open", flush=True)
        key("ctrl+o")
        wait("the Open dialog", lambda s: s["modal"] == "Open Photos")
        time.sleep(0.5)
        shot("02-open-dialog")
        xdo("type", "--delay", 20, str(second))
        key("Return")
        wait("the second photo", lambda s: len(s["photos"]) == 2 and all(p["scanned"] for p in s["photos"]), 120)

        print("drag a photo from another window", flush=True)
        source = subprocess.Popen([PYTHON, REPO / "scripts" / "gui_drag_source.py", third], cwd=REPO, env=env)
        try:
            drag_win = window_id("Likeness drag source")
            xdo("windowmove", "--sync", drag_win, 1450, 120)
            time.sleep(0.5)
            shot("03-drag-source")
            s = state()
            cx, cy, cw, ch = s["compare"]
            xdo("mousemove", "--sync", 1450 + 130, 120 + 80)
            xdo("mousedown", 1)
            for n in range(1, 21):  # a real drag: motion events all the way
                x = 1580 + (cx + cw // 2 - 1580) * n // 20
                y = 200 + (cy + ch // 2 - 200) * n // 20
                xdo("mousemove", "--sync", x, y)
                time.sleep(0.05)
            time.sleep(0.3)
            xdo("mouseup", 1)
            wait("the dropped photo", lambda s: len(s["photos"]) == 3 and all(p["scanned"] for p in s["photos"]), 120)
        finally:
            source.terminate()
            source.wait(10)
        shot("04-dropped")

        print("choose a face", flush=True)
        s = wait("faces on the first photo", lambda s: s["current"] == first.name and s["faces"])
        click(*s["faces"][0]["centre"])
        s = wait("the face preview", lambda s: s["selected_face"] == 0 and s["preview_w"] is not None, 120)
        shot("05-face-chosen")

        print("move the slider with the keyboard", flush=True)
        x, y, w, h = s["slider"]["rect"]
        before = s["slider"]["value"]
        click(x + w * before // 100, y + h // 2)  # on the handle: focus, no jump
        key(*["Right"] * 20)
        s = wait("the slider's new w", lambda s: s["slider"]["value"] >= before + 15)
        wait("the preview at the new w", lambda s: abs((s["preview_w"] or 0) * 100 - s["slider"]["value"]) < 1.5, 120)
        shot("06-slider")

        print("exclude and include a face by its badge", flush=True)
        s = state()
        click(*s["faces"][0]["badge"])
        wait("the face excluded", lambda s: s["photos"][0]["excluded"] == [0])
        shot("07-face-excluded")
        click(*state()["faces"][0]["badge"])
        wait("the face included again", lambda s: s["photos"][0]["excluded"] == [])

        print("Restore All", flush=True)
        click(*state()["buttons"]["run"])
        finished = ("DONE", "FAILED", "CANCELLED")
        s = wait("the batch", lambda s: all(p["status"] in finished for p in s["photos"]) and not s["busy"], 540)
        shot("08-restored")
        failed = [f"{p['name']}: {p['message']}" for p in s["photos"] if p["status"] != "DONE"]
        if failed:
            raise SystemExit(f"gui-check: FAILED: Restore All: {'; '.join(failed)} (see {OUT / 'app.log'})")

        print("move the slider: the result is out of date", flush=True)
        s = state()
        x, y, w, h = s["slider"]["rect"]
        click(x + w * s["slider"]["value"] // 100, y + h // 2)  # the compare view had the keyboard
        key("Left", "Left", "Left")
        wait("the out-of-date mark", lambda s: bool(s["photos"][0]["stale"]))
        time.sleep(0.5)
        shot("09-stale")

        print("export", flush=True)
        x, y, _, _ = state()["list"]
        click(x + 60, y + 30)  # the photo list: select every photo
        key("ctrl+a")
        key("ctrl+e")
        wait("the Export dialog", lambda s: s["modal"] == "Export Restored Photos")
        time.sleep(0.5)
        shot("10-export-dialog")
        key("Return")
        wait("every photo exported", lambda s: all(p["exported_to"] for p in s["photos"]) and not s["busy"], 120)
        exported = sorted(p.name for p in (OUT / "export").iterdir())
        print(f"  exported: {', '.join(exported)}", flush=True)
        shot("11-exported")

        print("close", flush=True)
        key("ctrl+q")
        code = app.wait(60)
    finally:
        if app.poll() is None:
            app.terminate()
            app.wait(30)
        log.close()
    text = (OUT / "app.log").read_text()
    if code != 0 or "Traceback" in text:
        raise SystemExit(f"gui-check: FAILED: the app exited with {code}; see {OUT / 'app.log'}")
    if len(exported) != 3:
        raise SystemExit(f"gui-check: FAILED: expected 3 exported photos, got {exported}")
    print(f"gui-check: passed in {time.monotonic() - start:.0f} s; screenshots in {OUT}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
