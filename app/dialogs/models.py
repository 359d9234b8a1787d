"""The model manager: every catalogued and imported model, its state and licence; download
(with progress and cancel) and import in a worker thread, so the window stays responsive."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.api import CancelledError, LikenessError

from ..icons import icon
from ..worker import EngineThread

log = logging.getLogger(__name__)

KIND_LABELS = {
    "restoration": "Face restoration",
    "fidelity": "Face fidelity path",
    "detection": "Face detection",
    "parsing": "Face outline",
    "upscaler": "Background upscaler",
    "identity": "Identity check",
    "other": "Other",
}


def size_text(size: int | None) -> str:
    if not size:
        return "—"
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


class StoreWorker(QObject):
    """Downloads and imports in its own thread (they take seconds to minutes)."""

    progress = Signal(str, float, float)  # name, done bytes, total bytes (0 = unknown)
    finished = Signal(str, str)  # name, message
    failed = Signal(str, str, bool)  # name, message, cancelled

    def __init__(self, store) -> None:
        super().__init__()
        self.store = store

    @Slot(str, object)
    def install(self, name: str, cancel: threading.Event) -> None:
        try:
            path = self.store.install(
                name,
                progress=lambda done, total: self.progress.emit(name, float(done), float(total or 0)),
                cancel=cancel,
            )
            self.finished.emit(name, f"Installed {name} ({path}).")
        except CancelledError:
            self.failed.emit(name, f"Download of {name} cancelled; it resumes where it stopped next time.", True)
        except LikenessError as err:
            self.failed.emit(name, str(err), False)
        except Exception as err:
            log.exception("installing %s", name)
            self.failed.emit(name, f"Could not install {name}: {err}", False)

    @Slot(str)
    def import_file(self, path: str) -> None:
        try:
            record = self.store.import_file(Path(path))
            self.finished.emit(
                record.id, f"Imported {Path(path).name} as {record.id} ({KIND_LABELS.get(record.kind, record.kind)})."
            )
        except LikenessError as err:
            self.failed.emit(Path(path).name, str(err), False)
        except Exception as err:
            log.exception("importing %s", path)
            self.failed.emit(Path(path).name, f"Could not import {path}: {err}", False)


class ModelDialog(QDialog):
    models_changed = Signal()
    _install = Signal(str, object)
    _import = Signal(str)

    COLUMNS = ("Model", "Used for", "State", "Size", "Licence")

    def __init__(self, store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(900, 560)
        self.store = store
        self._cancel: threading.Event | None = None
        self._busy: str | None = None

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 14)
        self.table.setStyleSheet("QTableWidget::item { padding: 0 10px; }")
        header = self.table.horizontalHeader()
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.details = QTextBrowser()
        self.details.setOpenExternalLinks(True)
        self.details.setMinimumHeight(150)

        self.download = QPushButton(icon("export"), "Download")
        self.cancel = QPushButton(icon("stop"), "Cancel Download")
        self.import_button = QPushButton(icon("open"), "Import File…")
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.message = QLabel(f"Models folder: {store.root}")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setProperty("hint", True)

        buttons = QHBoxLayout()
        for b in (self.download, self.cancel, self.import_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        buttons.addWidget(close)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setSizes([260, 240])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addLayout(buttons)

        self._thread = EngineThread(self)  # one Python thread state for the thread (see EngineThread)
        self.worker = StoreWorker(store)
        self.worker.moveToThread(self._thread)
        self._thread.finished.connect(self.worker.deleteLater)
        self._install.connect(self.worker.install)
        self._import.connect(self.worker.import_file)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self._thread.start()

        self.table.itemSelectionChanged.connect(self._show_details)
        self.download.clicked.connect(self.start_download)
        self.cancel.clicked.connect(self.cancel_download)
        self.import_button.clicked.connect(self.choose_import)
        self.remove_button.clicked.connect(self.remove_selected)
        self.refresh()
        if self.table.rowCount():
            self.table.selectRow(0)

    # -- table ---------------------------------------------------------------------------------
    def records(self) -> list:
        return self.store.records()

    def state(self, record) -> str:
        if self.store.is_installed(record.id):
            return "Bundled" if record.bundled else "Installed"
        if record.bundled:
            return "Missing (not shipped yet)"
        return "Not installed"

    def refresh(self) -> None:
        selected = self.selected_name()
        records = self.records()
        self.table.setRowCount(len(records))
        for row, r in enumerate(records):
            licence = r.licence + (
                "" if not r.non_commercial or "non-commercial" in r.licence.lower() else " · non-commercial"
            )
            cells = (r.id, KIND_LABELS.get(r.kind, r.kind), self.state(r), size_text(r.size), licence)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setData(Qt.ItemDataRole.UserRole, r.id)
                item.setToolTip(r.purpose)
                self.table.setItem(row, col, item)
            if r.id == selected:
                self.table.selectRow(row)
        self._update_buttons()

    def selected_name(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select(self, name: str) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == name:
                self.table.selectRow(row)
                return

    def _show_details(self) -> None:
        name = self.selected_name()
        if name is None:
            self.details.clear()
            return
        r = self.store.get(name)
        licence = f'<a href="{r.licence_url}">{r.licence}</a>' if r.licence_url else r.licence
        shipped = (
            "It ships with Likeness for that use only."
            if r.bundled
            else "It is not shipped with Likeness: you download or import it yourself."
        )
        warn = (
            f"<p><b>Non-commercial licence:</b> you may use this model for personal, non-commercial work only. "
            f"{shipped}</p>"
            if r.non_commercial
            else ""
        )
        where = self.store.root / r.file if not r.bundled else self.store.bundled_dir / r.file
        source = f"<br>Imported from {r.source}" if r.source else (f"<br>Download: {r.url}" if r.url else "")
        self.details.setHtml(
            f"<h3>{r.id}</h3><p>{r.purpose}</p><p><b>Licence:</b> {licence}</p>{warn}"
            f"<p><b>State:</b> {self.state(r)} · {size_text(r.size)}<br><b>File:</b> {where}{source}</p>"
            + (f"<p><b>sha256:</b> <code>{r.sha256}</code></p>" if r.sha256 else "")
        )
        self._update_buttons()

    def _update_buttons(self) -> None:
        name = self.selected_name()
        record = self.store.get(name) if name else None
        busy = self._busy is not None
        installed = record is not None and self.store.is_installed(record.id)
        self.download.setEnabled(
            bool(record)
            and not busy
            and not installed
            and not record.bundled
            and not record.imported
            and record.url is not None
        )
        self.cancel.setEnabled(busy and self._cancel is not None)
        self.import_button.setEnabled(not busy)
        self.remove_button.setEnabled(
            bool(record) and not busy and not record.bundled and (installed or record.imported)
        )

    # -- actions -------------------------------------------------------------------------------
    def start_download(self) -> None:
        name = self.selected_name()
        if name is None or self._busy:
            return
        record = self.store.get(name)
        if record.non_commercial:
            answer = QMessageBox.question(
                self,
                "Non-commercial licence",
                f"{record.id} is licensed for non-commercial use only ({record.licence}).\n\nDownload it?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._busy, self._cancel = name, threading.Event()
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"Downloading {name}…")
        self.progress.show()
        self.message.setText(f"Downloading {name} from {record.url}")
        self._update_buttons()
        self._install.emit(name, self._cancel)

    def cancel_download(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.message.setText("Cancelling…")

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import a model file",
            str(Path.home()),
            "Model weights (*.pth *.pt *.ckpt *.safetensors);;All files (*)",
        )
        if path:
            self.import_path(path)

    def import_path(self, path: str | Path) -> None:
        if self._busy:
            return
        self._busy, self._cancel = Path(path).name, None
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"Importing {Path(path).name}…")
        self.progress.show()
        self.message.setText(f"Checking and copying {path}")
        self._update_buttons()
        self._import.emit(str(path))

    def remove_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        answer = QMessageBox.question(self, "Remove model", f"Delete the file of {name} from the models folder?")
        if answer == QMessageBox.StandardButton.Yes:
            try:
                self.store.remove(name)
            except LikenessError as err:
                self.message.setText(str(err))
                return
            self.message.setText(f"Removed {name}.")
            self.refresh()
            self.models_changed.emit()

    @Slot(str, float, float)
    def _on_progress(self, name: str, done: float, total: float) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{name}: {done / 1e6:.0f} of {total / 1e6:.0f} MB (%p%)")
        else:
            self.progress.setFormat(f"{name}: {done / 1e6:.0f} MB")

    @Slot(str, str)
    def _on_finished(self, name: str, message: str) -> None:
        self._busy, self._cancel = None, None
        self.progress.hide()
        self.message.setText(message)
        self.refresh()
        self.select(name)
        self.models_changed.emit()

    @Slot(str, str, bool)
    def _on_failed(self, name: str, message: str, cancelled: bool) -> None:
        self._busy, self._cancel = None, None
        self.progress.hide()
        self.message.setText(message)
        self._update_buttons()

    def done(self, result: int) -> None:
        self.cancel_download()
        self._thread.quit()
        self._thread.wait(5000)
        super().done(result)

    def closeEvent(self, event) -> None:
        self.cancel_download()
        self._thread.quit()
        self._thread.wait(5000)
        super().closeEvent(event)
