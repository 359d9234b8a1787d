"""``python -m app [photos or folders...]``: the Likeness desktop app.

Paths given on the command line are opened, so a file manager's "Open with…" works.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def create_window(argv: list[str]):
    """The application object (created if needed) and the main window, with ``argv``'s photos opened."""
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from .icons import icon
    from .main_window import MainWindow
    from .settings import Settings
    from .theme import apply_theme, follow_system

    QCoreApplication.setOrganizationName("Likeness")
    QCoreApplication.setApplicationName("Likeness")
    if QApplication.instance() is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationDisplayName("Likeness")
    app.setDesktopFileName("likeness")
    app.setWindowIcon(icon("face"))
    settings = Settings()
    apply_theme(app, settings.get("theme"))
    follow_system(app, lambda: settings.get("theme"))
    window = MainWindow(settings)
    window.show()
    paths = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if paths:
        window.open_paths(paths)
    return app, window


def log_file() -> Path:
    """Where the app keeps its log (errors with their tracebacks), in the user's log folder."""
    import platformdirs

    return Path(platformdirs.user_log_dir("Likeness", appauthor=False)) / "likeness.log"


def setup_logging(verbose: bool) -> None:
    from logging.handlers import RotatingFileHandler

    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        path = log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError as err:
        logging.getLogger(__name__).warning("no log file (%s)", err)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(level)
    logging.getLogger().addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # the face-detector helper process, in packaged builds too
    argv = list(sys.argv if argv is None else argv)
    setup_logging("--verbose" in argv)
    app, _window = create_window([a for a in argv if a != "--verbose"])
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
