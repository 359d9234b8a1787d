"""``python -m app [photos or folders...]``: the Likeness desktop app.

Paths given on the command line are opened, so a file manager's "Open with…" works.
``--self-test`` checks the installation (``app.selftest``) and exits 0 or 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import Backend


def create_window(argv: list[str], backend: Backend | None = None):
    """The application object (created if needed) and the main window, with ``argv``'s photos opened.

    ``backend``: the engine behind the window's worker (``engine.api`` by default; tests pass a fake).
    """
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from . import probe, recovery
    from .icons import app_icon
    from .main_window import MainWindow
    from .settings import Settings
    from .theme import apply_theme, follow_system

    QCoreApplication.setOrganizationName("Likeness")
    QCoreApplication.setApplicationName("Likeness")
    if QApplication.instance() is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv)
    app.setApplicationDisplayName("Likeness")
    app.setDesktopFileName("likeness")
    app.setWindowIcon(app_icon())
    settings = Settings()
    apply_theme(app, settings.get("theme"))
    follow_system(app, lambda: settings.get("theme"))
    window = MainWindow(settings, backend=backend)
    probe.attach(window)  # only with LIKENESS_GUI_PROBE set (scripts/gui_real_display.py)
    window.show()
    recovery.offer(window)  # after a crash: the last session back, before the new photos
    paths = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if paths:
        window.open_paths(paths)
    return app, window


def main(argv: list[str] | None = None, backend: Backend | None = None) -> int:
    """The app; ``backend`` replaces the engine (tests run the whole app on a fake one)."""
    import multiprocessing

    multiprocessing.freeze_support()  # the face-detector helper process, in packaged builds too
    from .logs import setup_logging

    argv = list(sys.argv if argv is None else argv)
    if "--self-test" in argv:  # the installation checks itself, the window included (app.selftest)
        from .selftest import main as self_test

        return self_test()
    from .system_check import check

    problem = check()  # Qt's own abort on missing X11 libraries names only one of them
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    setup_logging("--verbose" in argv)
    app, _window = create_window([a for a in argv if a != "--verbose"], backend)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
