"""About Likeness: versions of the parts that matter and the licence of every model."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from ..logs import log_file

DISTRIBUTIONS = (
    "likeness",
    "torch",
    "onnxruntime",
    "opencv-python-headless",
    "dlib-bin",
    "spandrel",
    "numpy",
    "Pillow",
)


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html(store, engine_info=None) -> str:
    rows = "".join(f"<tr><td>{d}</td><td>{version(d)}</td></tr>" for d in DISTRIBUTIONS)
    rows += f"<tr><td>PySide6 / Qt</td><td>{pyside_version} / {qVersion()}</td></tr>"
    rows += f"<tr><td>Python</td><td>{platform.python_version()} ({platform.system()} {platform.machine()})</td></tr>"
    device = ""
    if engine_info is not None and engine_info.device_label:
        device = (
            f"<p><b>Device:</b> {engine_info.device_label} · <b>Model:</b> {engine_info.model or 'none installed'}</p>"
        )
    models = ""
    try:
        for r in store.records():
            state = "installed" if store.is_installed(r.id) else "not installed"
            link = f'<a href="{r.licence_url}">{r.licence}</a>' if r.licence_url else r.licence
            models += f"<tr><td>{r.id}</td><td>{link}</td><td>{state}</td></tr>"
    except Exception as err:  # a damaged store must not hide the About box
        models = f"<tr><td colspan=3>{err}</td></tr>"
    return (
        "<h2>Likeness</h2><p>Restores faces in old, blurry and compressed photos while keeping each person "
        "recognisably themselves. Originals are never modified.</p>"
        f"{device}<h3>Versions</h3><table cellspacing=4>{rows}</table>"
        f"<h3>Models and their licences</h3><table cellspacing=4><tr><th align=left>Model</th>"
        f"<th align=left>Licence</th><th align=left>State</th></tr>{models}</table>"
        "<p>Likeness is licensed under the Apache License 2.0. Icons are drawn by the application itself.</p>"
        f"{third_party_note()}"
        f"<p>Log file: {log_file()}</p>"
    )


def third_party_note() -> str:
    """Where the installed app keeps the licences of everything it bundles (``packaging/build.py``)."""
    folder = Path(sys.executable).parent / "licenses"
    if not getattr(sys, "frozen", False) or not folder.is_dir():
        return ""
    return f"<p>The licences of the libraries bundled with it are in {folder}.</p>"


class AboutDialog(QDialog):
    def __init__(self, store, engine_info=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Likeness")
        self.resize(620, 560)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html(store, engine_info))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.open_logs = QPushButton("Open Log Folder")
        self.open_logs.setToolTip(str(log_file().parent))
        self.open_logs.clicked.connect(self.show_logs)
        buttons.addButton(self.open_logs, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)

    def show_logs(self) -> None:
        """The log folder in the file manager (created if Likeness has not logged anything yet)."""
        folder = log_file().parent
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
