"""``Likeness --self-test`` (the app's executable): the engine's self-test, then the main window.

The window starts (offscreen when there is no display), its engine thread reports a device and a
model, and it closes cleanly. It runs with settings in a temporary folder, so the user's
settings, session journal and crash recovery are never touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from engine import api

#: How long the window's engine may take to report (loading torch and the model on a slow disk).
ENGINE_WAIT_S = 120.0


def window_check(result) -> None:
    """Adds the window's checks to ``result`` (an ``engine.selftest.SelfTest``)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .system_check import check

    problem = check()
    if problem:
        result.check("window", False, problem)
        return
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings import Settings

    with tempfile.TemporaryDirectory(prefix="likeness-self-test-") as folder:
        started = time.perf_counter()
        existing = QApplication.instance()
        app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
        store = QSettings(str(Path(folder) / "Likeness.ini"), QSettings.Format.IniFormat)
        window = MainWindow(Settings(store))
        window.show()
        state = window.session.engine_state
        while state.model is None and time.perf_counter() - started < ENGINE_WAIT_S:
            app.processEvents()
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        result.check(
            "window",
            window.isVisible() and state.model not in (None, "none installed"),
            f"shown on {app.platformName()}; the engine reported {state.device} and {state.model} in {seconds:.1f} s",
        )
        window.close()
        app.processEvents()
        result.check("window closed", not window.isVisible(), "closed, its engine shut down")


def main() -> int:
    return api.run_self_test(extra=window_check)
