"""Pages 1 and 2: choose the album folder, then scan it (stop at any time; scanning again resumes)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from engine.api import AlbumProgress, ScanReport

from ..album_client import AlbumFailed, ScanAlbum
from ..icons import icon
from .state import WizardState, hint, plural

UNREADABLE_SHOWN = 5


class FolderPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Choose an album")
        self.setSubTitle(
            "A folder of photos of the people you want Likeness to know: family photos, an old album's scans."
        )
        self.edit = QLineEdit(state.settings.get("album_folder"))
        self.edit.setPlaceholderText("Folder of photos")
        self.edit.textChanged.connect(lambda _text: self.completeChanged.emit())
        browse = QPushButton(icon("folder"), "Browse…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Album folder:"))
        layout.addLayout(row)
        layout.addWidget(
            hint(
                "Likeness finds the faces in every photo of the folder and its subfolders and groups them "
                "by person. Your photos are only read: what the scan learns is kept in Likeness's own data "
                "folder, so a second scan reads only new or changed photos."
            )
        )
        layout.addStretch(1)

    def folder(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def browse(self) -> None:
        start = self.edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Album Folder", start)
        if folder:
            self.edit.setText(folder)

    def isComplete(self) -> bool:  # noqa: N802 (Qt)
        folder = self.folder()
        return folder is not None and folder.is_dir()

    def validatePage(self) -> bool:  # noqa: N802 (Qt)
        folder = self.folder()
        if folder is None:
            return False
        self.state.folder = folder.resolve()
        self.state.settings.set("album_folder", str(self.state.folder))
        return True


class ScanPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.job: ScanAlbum | None = None
        self.setTitle("Scanning the album")
        self.setSubTitle("Finding every face and grouping the faces by person.")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.stop_button.setToolTip("Stop scanning; what is scanned is kept")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton(icon("run"), "Resume Scan")
        self.resume_button.setToolTip("Scan the photos not scanned yet (and any that changed)")
        self.resume_button.clicked.connect(self.start)
        buttons = QHBoxLayout()
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        layout.addWidget(
            hint("You can stop at any time, or close the wizard: the next scan continues where this one stopped.")
        )
        client = state.client
        client.scan_progress.connect(self._on_progress)
        client.scan_done.connect(self._on_done)
        client.failed.connect(self._on_failed)

    @property
    def scanning(self) -> bool:
        return self.job is not None

    def initializePage(self) -> None:  # noqa: N802 (Qt)
        self.start()

    def cleanupPage(self) -> None:  # noqa: N802 (Qt): Back
        self.stop()

    def start(self) -> None:
        if self.job is not None or self.state.folder is None:
            return
        self.state.report = None
        self.summary.setText("")
        self.bar.setRange(0, 0)
        self.status.setText(f"Looking for photos in {self.state.folder}…")
        self.job = ScanAlbum(folder=self.state.folder)
        self.state.client.submit(self.job)
        self._update()

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel.set()
            self.status.setText("Stopping after the current photo…")

    def _on_progress(self, p: AlbumProgress) -> None:
        if self.job is None:
            return
        self.bar.setRange(0, max(1, p.total))
        self.bar.setValue(p.done)
        self.status.setText(f"{p.text} ({p.done} of {p.total})" if p.total else p.text)

    def _on_done(self, report: ScanReport) -> None:
        self.job = None
        self.state.report = report
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.status.setText(f"Scanned {plural(report.photos, 'photo')} in {report.seconds:.0f} s.")
        self.summary.setText(summary(report))
        self._update()

    def _on_failed(self, failure: AlbumFailed) -> None:
        if failure.job is not self.job:
            return
        self.job = None
        if failure.cancelled:
            self.status.setText(
                f"Stopped after {self.bar.value()} of {self.bar.maximum()} photos. "
                "What was scanned is kept: Resume Scan continues from there."
            )
        else:
            self.status.setText(f"The scan failed: {failure.message}")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self._update()

    def _update(self) -> None:
        self.stop_button.setEnabled(self.scanning)
        self.resume_button.setEnabled(not self.scanning)
        self.resume_button.setText("Scan Again" if self.state.report is not None else "Resume Scan")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 (Qt)
        report = self.state.report
        return not self.scanning and report is not None and report.faces > 0


def summary(report: ScanReport) -> str:
    """What a finished scan found, in a sentence or three."""
    read = f"{report.processed} read now, {report.cached} unchanged since the last scan"
    people = "1 person" if report.people == 1 else f"{report.people} people"
    parts = [f"{plural(report.photos, 'photo')} ({read}): {plural(report.faces, 'face')} of {people}."]
    if report.removed:
        parts.append(f"{plural(report.removed, 'photo')} gone since the last scan were forgotten.")
    if report.unreadable:
        shown = "; ".join(report.unreadable[:UNREADABLE_SHOWN])
        more = len(report.unreadable) - UNREADABLE_SHOWN
        parts.append(
            f"Could not read {plural(len(report.unreadable), 'file')}: {shown}"
            + (f" and {more} more." if more > 0 else ".")
        )
    if not report.faces:
        parts.append("No faces were found: choose a folder with photos of people.")
    return " ".join(parts)
