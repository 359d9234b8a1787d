"""The main window: photo list, compare view, controls and status bar, laid out and connected.

State lives in the ``Session`` (photos, selection, batch, engine) and in ``Settings``; engine work
goes through the session's ``EngineClient``. The window shows the models and turns the user's
clicks into session requests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.api import ModelStore

from . import jobs
from .actions import Actions, RecentMenu
from .album_client import AlbumEngine, ApiAlbumEngine, wait_for_stragglers
from .backend import Backend
from .dialogs.about import AboutDialog
from .dialogs.confirm import ask_before_closing
from .dialogs.export import ExportDialog
from .dialogs.models import ModelDialog
from .dialogs.settings import SettingsDialog
from .icons import icon
from .photos import IMAGE_SUFFIXES, PhotoItem, Roles
from .presenter import PhotoPresenter, ReferencePresenter
from .profiles_menu import ProfilesMenu
from .reference_commands import ReferenceCommands
from .session import Session, plural
from .settings import Settings
from .theme import apply_theme
from .widgets.compare_view import CompareView
from .widgets.controls import ControlPanel
from .widgets.photo_list import PhotoListView
from .widgets.stale_banner import StaleBanner
from .widgets.status_bar import StatusBar
from .wizard import AlbumWizard

log = logging.getLogger(__name__)

ENGINE_KEYS = {"model", "device", "backend"}  # a new engine (Configure)
FACE_KEYS = {"detector", "min_face"}
OPEN_FILTER = "Photos (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings | None = None,
        store: ModelStore | None = None,
        backend: Backend | None = None,
        album: AlbumEngine | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self._store = store
        self.album_engine = album  # the album wizard's engine; engine.api when None
        self.wizard: AlbumWizard | None = None
        self.setWindowTitle("Likeness")
        self.setWindowIcon(icon("face"))
        self.setAcceptDrops(True)
        self.resize(1360, 860)
        self.controls = ControlPanel(self.settings)
        self.session = Session(self.settings, self.controls.references, backend, self)
        self.photos = self.session.photos
        self.engine = self.session.engine
        self.models_window = None
        self._closing = self._close_after_export = False
        self._build_widgets()
        self.presenter = PhotoPresenter(self.session, self.compare, self.controls.preview, self.banner)
        self.reference_presenter = ReferencePresenter(self.session, self.controls.references)
        self.references = ReferenceCommands(self.session, self.controls.references, self, self._last_dir)
        self.act = Actions(self, self, self.compare, self.references)
        self.recent_menu = RecentMenu(self.settings, self.open_paths, self)
        self.act.fill_menus(self.menuBar(), self.recent_menu)
        self.profiles_menu = ProfilesMenu(lambda: self.album().profiles(), self.personalise_dialog, self)
        help_menu = self.menuBar().actions()[-1]
        self.menuBar().insertMenu(help_menu, self.profiles_menu)
        self.toolbar = self.act.toolbar()
        self.addToolBar(self.toolbar)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self._connect()
        self._restore_geometry()
        self.refresh_models()
        self.session.configure()
        self._update_actions()

    @property
    def current(self) -> PhotoItem | None:
        return self.session.selection.photo

    @property
    def current_face(self) -> int | None:
        return self.session.selection.face

    # -- construction --------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.list = PhotoListView()
        self.list.setModel(self.photos)
        self.compare = CompareView()
        self.banner = StaleBanner()
        middle = self.banner.over(self.compare)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(340)
        scroll.setFrameShape(scroll.Shape.NoFrame)
        self.controls_scroll = scroll
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 0, 6)
        left_layout.setSpacing(4)
        self.list_hint = QLabel("Drop photos or folders anywhere in the window.")
        self.list_hint.setProperty("hint", True)
        self.list_hint.setWordWrap(True)
        left_layout.addWidget(QLabel("<b>Photos</b>"))
        left_layout.addWidget(self.list, 1)
        left_layout.addWidget(self.list_hint)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for n, (widget, stretch) in enumerate(((left, 0), (middle, 1), (scroll, 0))):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(n, stretch)
        self.splitter.setSizes([270, 720, 370])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

    def _connect(self) -> None:
        s, e = self.session, self.engine
        s.notice.connect(self.status.notify)
        s.last_export_folder_changed.connect(lambda _folder: self._update_actions())
        self.presenter.changed.connect(self._update_actions)
        s.batch.progress_changed.connect(self.status.show_batch)
        s.engine_state.device_changed.connect(self.status.show_device)
        s.engine_state.model_changed.connect(self.status.show_model)
        s.engine_state.info_changed.connect(self._on_engine_info)
        e.job_done.connect(self._on_job_done)
        e.busy_changed.connect(lambda _busy: self._update_actions())
        selection = self.list.selectionModel()
        selection.currentChanged.connect(lambda cur, _prev: s.select_photo(cur.data(Roles.ITEM)))
        selection.selectionChanged.connect(lambda *_: self._update_actions())
        self.list.remove_requested.connect(self.remove_selected)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._list_menu)
        self.compare.face_clicked.connect(self.select_face)
        self.compare.face_toggled.connect(self.toggle_face)
        self.compare.zoom_changed.connect(self.status.show_zoom)
        self.controls.fidelity.moved.connect(self._on_fidelity)
        self.controls.preview.include_toggled.connect(lambda on: self.set_face_included(self.current_face, on))
        self.controls.manage_models.connect(self.models_dialog)
        self.banner.restore_clicked.connect(lambda: self._run([self.current] if self.current else []))
        self.settings.changed.connect(self._on_setting)

    # -- opening -------------------------------------------------------------------------------
    def open_paths(self, paths: Sequence[Path | str]) -> list[PhotoItem]:
        """Adds photos and folders to the list and starts finding their faces."""
        new = self.session.open_paths([Path(p) for p in paths])
        if new and self.current is None:
            self.list.setCurrentIndex(self.photos.index(self.photos.row_of(new[0])))
        self._update_actions()
        return new

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open Photos", self._last_dir(), OPEN_FILTER)
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open Folder", self._last_dir())
        if folder:
            self.open_paths([folder])

    def _last_dir(self) -> str:
        recent = self.settings.get("recent_files")
        if recent:
            p = Path(recent[0])
            return str(p if p.is_dir() else p.parent)
        return str(Path.home())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    def _list_menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addActions([self.act.run_selected, self.act.export, self.act.copy])
        reveal = menu.addAction(icon("folder"), "Show Original in Folder")
        menu.addSeparator()
        menu.addAction(self.act.remove)
        index = self.list.indexAt(pos)
        reveal.setEnabled(index.isValid())
        chosen = menu.exec(self.list.viewport().mapToGlobal(pos))
        if chosen is reveal and index.isValid():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(index.data(Roles.ITEM).path.parent)))

    def selected_items(self) -> list[PhotoItem]:
        return [i.data(Roles.ITEM) for i in self.list.selectionModel().selectedIndexes()]

    def remove_selected(self) -> None:
        self.session.remove(self.selected_items())
        self._update_actions()

    # -- the batch -----------------------------------------------------------------------------
    def run_batch(self) -> None:
        """Restores every photo not yet restored with the current settings."""
        self._run([i for i in self.photos.items() if self.session.needs_run(i)])

    def run_selected(self) -> None:
        self._run(self.selected_items() or ([self.current] if self.current else []))

    def _run(self, items: list[PhotoItem]) -> None:
        state = self.session.engine_state
        if not state.has_model:
            text = f"{state.info.model_error}\n\nOpen the model manager to download or import one?"
            if QMessageBox.question(self, "No restoration model", text) == QMessageBox.StandardButton.Yes:
                self.models_dialog()
            return
        self.session.run(items)
        self._update_actions()

    def cancel_batch(self) -> None:
        self.session.cancel()

    # -- faces ----------------------------------------------------------------------------------
    def select_face(self, index: int) -> None:
        self.session.select_face(index)

    def toggle_face(self, index: int) -> None:
        if self.current is not None:
            self.set_face_included(index, not self.current.included(index))

    def toggle_current_face(self) -> None:
        if self.current_face is not None:
            self.toggle_face(self.current_face)

    def set_face_included(self, index: int | None, included: bool) -> None:
        if self.current is not None and index is not None:
            self.session.set_face_included(self.current, index, included)

    def _on_fidelity(self, w: float) -> None:
        self.session.request_preview()
        stale = len(self.session.stale())
        if stale:
            self.status.notify(
                f"Likeness w {w:.2f} is previewed on the selected face; Restore All (Ctrl+R) applies "
                f"it to {plural(stale, 'restored photo')}."
            )

    def show_face_boxes(self, on: bool) -> None:
        self.compare.show_faces = on
        self.compare.update()

    def set_side_by_side(self, on: bool) -> None:
        self.compare.set_side_by_side(on)
        self.act.side.setChecked(on)
        self.act.split.setChecked(not on)

    # -- settings and engine -------------------------------------------------------------------
    def _on_setting(self, key: str, value) -> None:
        if key in ENGINE_KEYS:
            self.session.configure(loading=True)
        elif key in FACE_KEYS:  # faces are numbered by the detector: count them again
            self.session.rescan()
        elif key == "theme" and isinstance(app := QApplication.instance(), QApplication):
            apply_theme(app, value)
        elif key == "color_fix":
            self.session.request_preview()

    def _on_engine_info(self, info: jobs.EngineInfo) -> None:
        self.controls.set_devices(list(info.devices))
        self.refresh_models()

    # -- export --------------------------------------------------------------------------------
    def export_targets(self, selected_only: bool) -> list[PhotoItem]:
        items = self.selected_items() if selected_only else self.photos.items()
        return [i for i in items if i.has_result]

    def export_dialog(self) -> bool:
        """Asks where and exports; False when there was nothing to export or the user cancelled."""
        selected, everything = self.export_targets(True), self.export_targets(False)
        if not everything:
            self.status.notify("Nothing to export yet: restore some photos first.")
            return False
        dialog = ExportDialog(self.settings, len(selected), len(everything), self)
        if not dialog.exec():
            return False
        return bool(self.session.export(selected if dialog.selected_only() else everything, dialog.folder()))

    def copy_result(self) -> None:
        item = self.current
        image = self.session.result_image(item) if item is not None else None
        if item is not None and image is not None:
            QGuiApplication.clipboard().setImage(image)
            self.status.notify(f"Copied the restored {item.name}.")

    def open_output_folder(self) -> None:
        folder = self.session.last_export_folder
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # -- dialogs -------------------------------------------------------------------------------
    def store(self) -> ModelStore:
        return self._store if self._store is not None else ModelStore()

    def refresh_models(self) -> None:
        try:
            store = self.store()
            records = store.records()
            installed = {r.id for r in records if store.is_installed(r.id)}
        except Exception as err:  # a damaged imported.json must not stop the window
            log.warning("cannot read the model store: %s", err)
            records, installed = [], set()
        self.controls.set_models(records, installed)

    def models_dialog(self) -> None:
        dialog = ModelDialog(self.store(), self)
        dialog.models_changed.connect(self._models_changed)
        self.models_window = dialog
        dialog.show()

    def _models_changed(self) -> None:
        self.refresh_models()
        self.session.configure()

    def settings_dialog(self) -> None:
        SettingsDialog(self.settings, self, self.controls.choices()).exec()

    def about_dialog(self) -> None:
        AboutDialog(self.store(), self.session.engine_state.info, self).exec()

    def album(self) -> AlbumEngine:
        if self.album_engine is None:
            self.album_engine = ApiAlbumEngine()
        return self.album_engine

    def personalise_dialog(self) -> AlbumWizard:
        """Profiles → Personalise from an Album…: the wizard, beside the window (one at a time)."""
        if self.wizard is None:
            self.wizard = AlbumWizard(self.album(), self.settings, self)
            self.wizard.profiles_changed.connect(self.profiles_menu.refresh)
            self.wizard.finished.connect(self._wizard_closed)
        self.wizard.show()
        self.wizard.raise_()
        self.wizard.activateWindow()
        return self.wizard

    def _wizard_closed(self, _result: int) -> None:
        self.profiles_menu.refresh()
        if self.wizard is not None:
            self.wizard.deleteLater()
            self.wizard = None

    # -- misc ----------------------------------------------------------------------------------
    def _on_job_done(self, message: jobs.JobDone) -> None:
        self._update_actions()
        exporting = self.engine.photos_in_queue(jobs.Export)
        if self._close_after_export and isinstance(message.job, jobs.Export) and not exporting:
            self._close_after_export = False
            self.close()  # asks again only if an export failed

    def _update_actions(self) -> None:
        has_photos = self.photos.rowCount() > 0
        self.act.run.setEnabled(has_photos)
        self.act.run_selected.setEnabled(has_photos)
        self.act.cancel.setEnabled(bool(self.engine.photos_in_queue(jobs.Restore)))
        self.act.export.setEnabled(any(i.has_result for i in self.photos.items()))
        self.act.copy.setEnabled(self.current is not None and self.current.has_result)
        self.act.open_output.setEnabled(self.session.last_export_folder is not None)
        self.act.remove.setEnabled(has_photos)
        self.list_hint.setVisible(not has_photos)

    def _restore_geometry(self) -> None:
        geometry = self.settings.get("geometry")
        if geometry:
            self.restoreGeometry(geometry)
        splitter = self.settings.get("splitter")
        if splitter:
            self.splitter.restoreState(splitter)

    def _confirm_close(self, count: int) -> str:
        """Asks in a message box: "export", "discard" or "cancel"."""
        return ask_before_closing(self, count)

    def closeEvent(self, event) -> None:
        unsaved = self.session.unsaved()
        if unsaved and self.settings.get("confirm_close") and not self._closing:
            answer = self._confirm_close(len(unsaved))
            if answer != "discard":
                event.ignore()
                if answer == "export":
                    self._close_after_export = self.export_dialog()
                return
        self._closing = True
        if self.wizard is not None:
            self.wizard.reject()  # stops its scan and training; both resume next time
        self.settings.set("geometry", bytes(self.saveGeometry().data()))
        self.settings.set("splitter", bytes(self.splitter.saveState().data()))
        self.settings.sync()
        self.session.shutdown()
        wait_for_stragglers()
        super().closeEvent(event)
