"""Event-loop latency of the desktop app while a batch runs: is the window still responsive?

A QTimer asks to fire every 10 ms on the GUI thread; how late each tick arrives is the time the
GUI thread could not react to input. The real main window runs a real batch (the engine in its
worker thread) while the script also drags the fidelity slider and zooms the compare view, as a
user would. Prints percentiles for: idle, engine start (PyTorch import, model load), the batch.

    .venv/bin/python benchmarks/gui_latency.py                 # tiny random model, offscreen
    .venv/bin/python benchmarks/gui_latency.py --installed     # the user's installed model
    .venv/bin/python benchmarks/gui_latency.py --photos 24 --backend auto --show

Photos come from ../shared/data/real_world/whole_photos (copied, repeated to --photos).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("LIKENESS_SHARED", REPO.parent / "shared"))
TICK_MS = 10


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))]  # noqa: E731
    return (
        f"n={len(v):5d}  median {statistics.median(v):6.1f} ms  p95 {pick(0.95):6.1f} ms  "
        f"p99 {pick(0.99):6.1f} ms  max {v[-1]:6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16, help="photos in the batch (default 16)")
    parser.add_argument("--installed", action="store_true", help="use the installed model instead of a tiny random one")
    parser.add_argument("--backend", default="torch", choices=["auto", "torch", "onnx"])
    parser.add_argument("--detector", default="hog")
    parser.add_argument("--show", action="store_true", help="show the window (needs a display)")
    args = parser.parse_args()
    if not args.show:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    work = Path(tempfile.mkdtemp(prefix="likeness-latency-"))
    if not args.installed:
        os.environ["LIKENESS_HOME"] = str(work / "home")
        # made in a child process, so that this process imports torch only where the app does:
        # in its worker thread (the engine-start figures include that import)
        make = (
            "import torch, sys; from pathlib import Path; from engine.models import ModelStore; "
            "from engine.nets.codeformer import TINY, CodeFormer, save_codeformer; torch.manual_seed(0); "
            "p = Path(sys.argv[1]); save_codeformer(CodeFormer(TINY), p); ModelStore().import_file(p, name='tiny')"
        )
        subprocess.run([sys.executable, "-c", make, str(work / "tiny.safetensors")], cwd=REPO, check=True)

    source = sorted((SHARED / "data" / "real_world" / "whole_photos").glob("*.jpg"))
    if not source:
        print(f"needs {SHARED}/data/real_world/whole_photos", file=sys.stderr)
        return 2
    photos = []
    for i in range(args.photos):
        dst = work / "photos" / f"{i:03d}_{source[i % len(source)].name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source[i % len(source)], dst)
        photos.append(dst)

    from PySide6.QtCore import QCoreApplication, QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("Likeness")
    QCoreApplication.setApplicationName("Likeness-benchmark")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication(sys.argv[:1])

    from app.main_window import MainWindow
    from app.photos import Status
    from app.settings import Settings
    from app.theme import apply_theme

    apply_theme(app, "dark")
    settings = Settings()
    settings.set("detector", args.detector)
    settings.set("backend", args.backend)
    settings.set("confirm_close", False)  # results are discarded on purpose here

    phase = ["idle"]
    lateness: dict[str, list[float]] = {"idle": [], "engine start": [], "scan": [], "batch": []}
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        late = (now - last[0]) / 1e6 - TICK_MS
        last[0] = now
        lateness.setdefault(phase[0], []).append(max(0.0, late))

    probe = QTimer()
    probe.setTimerType(probe.timerType().PreciseTimer)
    probe.timeout.connect(tick)
    probe.start(TICK_MS)

    def spin(condition, timeout_s: float) -> bool:
        end = time.perf_counter() + timeout_s
        while not condition() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        return condition()

    def wait(ms: int) -> None:
        end = time.perf_counter() + ms / 1000
        spin(lambda: time.perf_counter() >= end, ms / 1000 + 1)

    wait(1000)  # idle: the bare event loop on this machine
    phase[0] = "engine start"
    started = time.perf_counter()
    torch_before = "torch" in sys.modules
    window = MainWindow(settings)
    window.show()
    state = window.session.engine_state
    if not spin(lambda: state.info.model is not None or state.info.model_error, 300):
        print("the engine did not start", file=sys.stderr)
        return 1
    engine_s = time.perf_counter() - started
    if state.info.model_error:
        print(state.info.model_error, file=sys.stderr)
        return 1
    phase[0] = "scan"
    window.open_paths(photos)
    spin(lambda: all(i.scanned or i.status == Status.FAILED for i in window.photos.items()), 600)

    # the batch, with a user dragging the slider and zooming meanwhile
    window.list.setCurrentIndex(window.photos.index(0))
    window.select_face(0)
    phase[0] = "batch"
    started = time.perf_counter()
    window.run_batch()
    user = QTimer()
    steps = iter(range(10**9))

    def act() -> None:
        k = next(steps)
        window.controls.fidelity.slider.setValue(20 + (k * 7) % 70)
        window.compare.zoom_by(1.1 if k % 2 else 1 / 1.1)

    user.timeout.connect(act)
    user.start(100)
    spin(lambda: all(i.status in (Status.DONE, Status.FAILED) for i in window.photos.items()), 3600)
    batch_s = time.perf_counter() - started
    user.stop()
    probe.stop()
    info = state.info
    done = sum(i.status == Status.DONE for i in window.photos.items())
    window.close()

    print(f"Likeness GUI event-loop latency (timer every {TICK_MS} ms; lateness = how long input would wait)")
    print(
        f"model {info.model} on {info.device_label}, backend {args.backend}, detector {args.detector}, "
        f"{os.cpu_count()} CPU cores"
    )
    print(f"torch imported on the GUI thread before the window: {torch_before}")
    print(
        f"engine start {engine_s:.1f} s (window shown at once; PyTorch import and model load in the worker); "
        f"batch of {len(photos)} photos ({done} done) in {batch_s:.1f} s "
        f"({len(photos) / batch_s:.2f} photos/s) while moving the slider and zooming every 100 ms"
    )
    for name, values in lateness.items():
        print(f"  {name:13} {percentiles(values)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
