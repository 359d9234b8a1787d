"""The main window: photo list, compare view, controls; the batch and its progress.

State lives in ``PhotoListModel`` and ``Settings``; engine work goes through ``EngineClient``
(one worker thread, one queue). Widgets only display and emit.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar,
                               QScrollArea, QSizePolicy, QSplitter, QToolBar, QVBoxLayout, QWidget)

from engine.api import RestoreOptions, RestoreRequest

from . import jobs
from . import references as refs
from .export import output_path
from .icons import icon
from .imaging import PhotoLoader
from .photos import IMAGE_SUFFIXES, PhotoItem, PhotoListModel, Roles, Status
from .settings import Settings
from .widgets.compare_view import CompareView
from .widgets.controls import ControlPanel
from .widgets.photo_list import PhotoListView
from .worker import EngineClient

log = logging.getLogger(__name__)

ENGINE_KEYS = {"model", "device", "backend"}  # a new engine (Configure)
KEEP_RESULTS = 3  # restored photos kept in memory; the others are on disk (see EngineWorker)
FACE_KEYS = {"detector", "min_face"}
EMPTY_HINT = "Drop photos or folders here, or use File → Open"
OPEN_FILTER = "Photos (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, store=None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self._store = store
        self.setWindowTitle("Likeness")
        self.setWindowIcon(icon("face"))
        self.setAcceptDrops(True)
        self.resize(1360, 860)
        self.engine = EngineClient(self)
        self.loader = PhotoLoader(self)
        self.loader.loaded.connect(self._on_before_loaded)
        self.photos = PhotoListModel(self)
        self.current: PhotoItem | None = None
        self.current_face: int | None = None
        self._before_cache: tuple[int, object] | None = None
        self._batch: list[int] = []
        self._batch_finished = 0
        self._batch_failed = 0
        self._exports: dict[int, Path] = {}
        self._last_export_folder: Path | None = None
        self._engine_info = jobs.EngineInfo()
        self._in_memory: list[PhotoItem] = []
        self._closing = False

        self._build_widgets()
        self._build_actions()
        self._build_status_bar()
        self._connect()
        self._restore_geometry()
        self.refresh_models()
        self.engine.submit(self._configure_job())
        self._update_actions()

    # -- construction --------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.list = PhotoListView()
        self.list.setModel(self.photos)
        self.compare = CompareView()
        self.controls = ControlPanel(self.settings)
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
        header = QLabel("<b>Photos</b>")
        self.list_hint = QLabel("Drop photos or folders anywhere in the window.")
        self.list_hint.setProperty("hint", True)
        self.list_hint.setWordWrap(True)
        left_layout.addWidget(header)
        left_layout.addWidget(self.list, 1)
        left_layout.addWidget(self.list_hint)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.compare)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([270, 720, 370])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{text.replace('&', '').rstrip('…')} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                              if action.shortcut().toString() else text.replace("&", ""))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.act_open = self._action("&Open Photos…", self.open_files_dialog, K.Open, "open", "Add photos to the list")
        self.act_open_folder = self._action("Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O", "folder",
                                            "Add every photo in a folder")
        self.act_remove = self._action("&Remove from List", self.remove_selected, None, "remove",
                                       "Remove the selected photos from the list (the files stay)")
        self.act_run = self._action("&Restore All", self.run_batch, [QKeySequence("Ctrl+R"), QKeySequence("F5")], "run",
                                    "Restore every photo that is not restored with these settings yet")
        self.act_run_selected = self._action("Restore &Selected", self.run_selected, "Ctrl+Shift+R", None,
                                             "Restore the selected photos")
        self.act_cancel = self._action("&Cancel", self.cancel_batch, "Esc", "stop", "Stop the batch after the current face")
        self.act_export = self._action("&Export…", self.export_dialog, "Ctrl+E", "export",
                                       "Save restored photos to a folder (originals are never replaced)")
        self.act_copy = self._action("&Copy Result", self.copy_result, K.Copy, "copy", "Copy the restored photo")
        self.act_open_output = self._action("Open Output &Folder", self.open_output_folder, None, "folder",
                                            "Show the exported photos in the file manager")
        self.act_split = self._action("Split View", lambda: self.set_side_by_side(False), "S", "split",
                                      "Before and after on either side of a line you can drag")
        self.act_side = self._action("Side by Side", lambda: self.set_side_by_side(True), "D", "side",
                                     "Before and after next to each other")
        for a in (self.act_split, self.act_side):
            a.setCheckable(True)
        self.act_split.setChecked(True)
        self.act_fit = self._action("&Fit", self.compare.fit, "F", "fit", "Fit the photo in the view")
        self.act_actual = self._action("&100 %", self.compare.actual_size, "1", "actual",
                                       "One pixel of the result per screen pixel")
        self.act_zoom_in = self._action("Zoom &In", lambda: self.compare.zoom_by(1.25), K.ZoomIn)
        self.act_zoom_out = self._action("Zoom &Out", lambda: self.compare.zoom_by(0.8), K.ZoomOut)
        self.act_toggle_face = self._action("Include/Exclude Face", self.toggle_current_face, "X", None,
                                            "Restore the selected face or leave it as it is")
        self.act_faces = self._action("Show Face &Boxes", self._toggle_boxes, "B")
        self.act_faces.setCheckable(True)
        self.act_faces.setChecked(True)
        self.act_models = self._action("&Models…", self.models_dialog, "Ctrl+M", "models",
                                       "Download, import and check restoration models")
        self.act_settings = self._action("&Settings…", self.settings_dialog, K.Preferences, "settings")
        if self.act_settings.shortcut().isEmpty():
            self.act_settings.setShortcut(QKeySequence("Ctrl+,"))
        self.act_about = self._action("&About Likeness", self.about_dialog, None, "info")
        self.act_quit = self._action("&Quit", self.close, K.Quit)

        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addActions([self.act_open, self.act_open_folder])
        self.recent_menu = file.addMenu("Open &Recent")
        self._fill_recent()
        file.addSeparator()
        file.addActions([self.act_export, self.act_copy, self.act_open_output])
        file.addSeparator()
        file.addAction(self.act_remove)
        file.addSeparator()
        file.addAction(self.act_quit)
        restore = bar.addMenu("&Restore")
        restore.addActions([self.act_run, self.act_run_selected, self.act_cancel])
        restore.addSeparator()
        restore.addAction(self.act_toggle_face)
        view = bar.addMenu("&View")
        view.addActions([self.act_split, self.act_side])
        view.addSeparator()
        view.addActions([self.act_fit, self.act_actual, self.act_zoom_in, self.act_zoom_out])
        view.addSeparator()
        view.addAction(self.act_faces)
        tools = bar.addMenu("&Tools")
        tools.addActions([self.act_models, self.act_settings])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_about)

        tb = QToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        tb.addActions([self.act_open, self.act_open_folder])
        tb.addSeparator()
        tb.addActions([self.act_run, self.act_cancel])
        tb.addSeparator()
        tb.addActions([self.act_export])
        tb.addSeparator()
        for a in (self.act_split, self.act_side, self.act_fit, self.act_actual):
            tb.addAction(a)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        tb.addAction(self.act_models)
        for a in (self.act_split, self.act_side, self.act_fit, self.act_actual, self.act_models):
            button = tb.widgetForAction(a)
            if button is not None:
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.addToolBar(tb)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_text = QLabel("Ready")
        self.overall = QProgressBar()
        self.overall.setFixedWidth(200)
        self.overall.setTextVisible(True)
        self.overall.hide()
        self.zoom_label = QLabel("")
        self.device_label = QLabel("Device: starting…")
        self.model_label = QLabel("Model: …")
        for label in (self.zoom_label, self.device_label, self.model_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._status_timer = QTimer(self)  # owned by the window: never fires after it is gone
        self._status_timer.setSingleShot(True)
        self._status_timer.timeout.connect(lambda: self.status_text.setText(""))
        sb.addWidget(self.status_text, 1)
        sb.addPermanentWidget(self.overall)
        sb.addPermanentWidget(self.zoom_label)
        sb.addPermanentWidget(self.device_label)
        sb.addPermanentWidget(self.model_label)

    def _connect(self) -> None:
        e = self.engine
        e.job_started.connect(self._on_job_started)
        e.job_done.connect(self._on_job_done)
        e.failed.connect(self._on_failed)
        e.progress.connect(self._on_progress)
        e.engine_info.connect(self._on_engine_info)
        e.scanned.connect(self._on_scanned)
        e.restored.connect(self._on_restored)
        e.preview_ready.connect(self._on_preview)
        e.reference_ready.connect(self._on_reference)
        e.matched.connect(lambda outcome: self.controls.references.set_match(outcome.matches))
        e.exported.connect(self._on_exported)
        e.busy_changed.connect(lambda _busy: self._update_actions())
        self.list.selectionModel().currentChanged.connect(lambda cur, _prev: self.show_photo(cur.data(Roles.ITEM)))
        self.list.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.list.remove_requested.connect(self.remove_selected)
        self.photos.item_changed.connect(self._on_item_changed)
        self.compare.face_clicked.connect(self.select_face)
        self.compare.face_toggled.connect(self.toggle_face)
        self.compare.zoom_changed.connect(lambda pct: self.zoom_label.setText(f"Zoom {pct:.0f} %"))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._list_menu)
        self.controls.fidelity.moved.connect(self._on_fidelity)
        self.controls.preview.include_toggled.connect(lambda on: self.set_face_included(self.current_face, on))
        self.controls.manage_models.connect(self.models_dialog)
        self.controls.references.added.connect(self._analyse_references)
        self.controls.references.changed.connect(self._request_match)
        self.settings.changed.connect(self._on_setting)

    # -- opening -------------------------------------------------------------------------------
    def open_paths(self, paths: list[Path | str]) -> list[PhotoItem]:
        """Adds photos and folders to the list and starts finding their faces."""
        paths = [Path(p) for p in paths]
        new = self.photos.add(paths)
        missing = [p for p in paths if not p.exists()]
        for p in paths:
            if p.exists():
                self.settings.add_recent(str(p))
        self._fill_recent()
        options = self.base_options()
        for item in new:
            self.engine.submit(jobs.Scan(photo_id=item.id, path=item.path, options=options))
        if new and self.current is None:
            self.list.setCurrentIndex(self.photos.index(self.photos.row_of(new[0])))
        if missing:
            self.notify(f"Not found: {', '.join(str(p) for p in missing[:3])}")
        elif paths and not new:
            self.notify("No new photos (already in the list, or not a photo format Likeness reads).")
        else:
            self.notify(f"Added {len(new)} photo{'s' if len(new) != 1 else ''}.")
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

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.get("recent_files")
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent", lambda: (self.settings.set("recent_files", []), self._fill_recent()))
        self.recent_menu.setEnabled(bool(recent))

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
        from PySide6.QtWidgets import QMenu

        menu = QMenu(self)
        menu.addActions([self.act_run_selected, self.act_export, self.act_copy])
        reveal = menu.addAction(icon("folder"), "Show Original in Folder")
        menu.addSeparator()
        menu.addAction(self.act_remove)
        index = self.list.indexAt(pos)
        reveal.setEnabled(index.isValid())
        chosen = menu.exec(self.list.viewport().mapToGlobal(pos))
        if chosen is reveal and index.isValid():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(index.data(Roles.ITEM).path.parent)))

    def remove_selected(self) -> None:
        items = [i.data(Roles.ITEM) for i in self.list.selectionModel().selectedIndexes()]
        busy = self.engine.photos_in_queue(jobs.Restore)
        items = [i for i in items if i.id not in busy]
        if not items:
            return
        if self.current in items:
            self.current = None
            self.show_photo(None)
        self.photos.remove(items)
        exporting = self.engine.photos_in_queue(jobs.Export)
        for item in items:
            if item in self._in_memory:
                self._in_memory.remove(item)
            if item.result_file is not None and item.id not in exporting:
                item.result_file.unlink(missing_ok=True)
        self._update_actions()

    # -- options -------------------------------------------------------------------------------
    def base_options(self) -> RestoreOptions:
        s = self.settings
        options = RestoreOptions(
            fidelity=round(s.get("fidelity"), 3), upscale=s.get("upscale"), only_center_face=s.get("only_center_face"),
            min_face=s.get("min_face"), color_fix=s.get("color_fix"), background=s.get("background"),
            detector=s.get("detector"), jpeg_quality=s.get("jpeg_quality"),
        )  # fmt: skip
        return refs.with_references(options, self.controls.references.paths(), s.get("num_references"),
                                    s.get("guidance_steps"))

    def options_for(self, item: PhotoItem) -> RestoreOptions:
        return replace(self.base_options(), faces=item.chosen_faces())

    def _configure_job(self) -> jobs.Configure:
        s = self.settings
        return jobs.Configure(model=s.get("model"), device=s.get("device"), backend=s.get("backend"),
                              detector=s.get("detector"))

    # -- batch ---------------------------------------------------------------------------------
    def run_batch(self) -> None:
        """Restores every photo not yet restored with the current settings."""
        self._run([i for i in self.photos.items() if self._needs_run(i)])

    def run_selected(self) -> None:
        items = [i.data(Roles.ITEM) for i in self.list.selectionModel().selectedIndexes()]
        self._run(items or ([self.current] if self.current else []))

    def _needs_run(self, item: PhotoItem) -> bool:
        if item.status in (Status.QUEUED, Status.WORKING):
            return False
        if item.status == Status.DONE:
            return item.result_options != self.options_for(item)
        return True

    def _run(self, items: list[PhotoItem]) -> None:
        if self._engine_info.model_error and not self._engine_info.model:
            answer = QMessageBox.question(
                self, "No restoration model",
                f"{self._engine_info.model_error}\n\nOpen the model manager to download or import one?",
            )  # fmt: skip
            if answer == QMessageBox.StandardButton.Yes:
                self.models_dialog()
            return
        queued = self.engine.photos_in_queue(jobs.Restore)
        items = [i for i in items if i.id not in queued]
        if not items:
            self.notify("Every photo is already restored with these settings.")
            return
        if not self.engine.busy or not self._batch:
            self._batch, self._batch_finished, self._batch_failed = [], 0, 0
        auto = self.settings.get("auto_export")
        taken: set[Path] = set()
        for n, item in enumerate(items, start=1):
            item.status, item.progress, item.message = Status.QUEUED, 0.0, ""
            self.photos.update(item)
            options = self.options_for(item)
            output = self._output_path(item, n, options.fidelity, taken) if auto else None
            self.engine.submit(jobs.Restore(photo_id=item.id, request=RestoreRequest(item.path, output, options)))
            self._batch.append(item.id)
        self._batch_progress()
        self.overall.show()
        self.notify(f"Restoring {len(self._batch)} photo{'s' if len(self._batch) != 1 else ''}…")
        self._update_actions()

    def cancel_batch(self) -> None:
        dropped = self.engine.cancel((jobs.Restore,))
        for job in dropped:
            item = self.photos.by_id(job.photo_id)
            if item is not None:
                item.status, item.message = Status.CANCELLED, "Cancelled before it started"
                self.photos.update(item)
                self._batch_finished += 1
        if dropped or isinstance(self.engine.current, jobs.Restore):
            self.notify("Cancelling… the current face finishes first.")
        self._batch_progress()

    # -- engine answers ------------------------------------------------------------------------
    @Slot(object)
    def _on_job_started(self, job: jobs.Job) -> None:
        if isinstance(job, jobs.Restore):
            item = self.photos.by_id(job.photo_id)
            if item is not None:
                item.status, item.progress, item.message = Status.WORKING, 0.0, "Starting"
                self.photos.update(item)
                self.status_text.setText(f"Restoring {item.name}…")

    @Slot(object, float, str)
    def _on_progress(self, job: jobs.Job, fraction: float, text: str) -> None:
        if isinstance(job, jobs.Restore):
            item = self.photos.by_id(job.photo_id)
            if item is not None and item.status == Status.WORKING:
                item.progress, item.message = fraction, text
                self.photos.update(item)
                self._batch_progress(fraction)

    @Slot(object)
    def _on_scanned(self, outcome: jobs.ScanOutcome) -> None:
        item = self.photos.by_id(outcome.photo_id)
        if item is None:
            return
        item.size, item.faces, item.thumbnail, item.scanned = outcome.size, outcome.faces, outcome.thumbnail, True
        item.excluded &= {f.index for f in item.faces}
        if item.status == Status.SCANNING:
            item.status = Status.READY
        self.photos.update(item)

    @Slot(object)
    def _on_restored(self, outcome: jobs.RestoreOutcome) -> None:
        item = self.photos.by_id(outcome.photo_id)
        if item is None:
            return
        if item.result_file is not None and item.result_file != outcome.result_file:
            item.result_file.unlink(missing_ok=True)  # an earlier restoration of this photo
        item.result, item.result_file = outcome.image, outcome.result_file
        item.exported_to = outcome.output  # written by the engine when saving as restored
        if outcome.output is not None:
            self._last_export_folder = outcome.output.parent
        self._keep_in_memory(item)
        item.faces = outcome.faces
        item.scanned = True
        item.result_faces = {f.index for f in outcome.faces if f.restored}
        item.result_fidelity = outcome.options.fidelity
        item.result_options = outcome.options
        item.warnings = outcome.warnings
        item.status, item.progress, item.message = Status.DONE, 1.0, ""
        self.photos.update(item)
        for warning in outcome.warnings:
            self.notify(warning, 10000)
        if outcome.device and outcome.device != self._engine_info.device_label:
            self.device_label.setText(f"Device: {outcome.device}")
        self.model_label.setText(f"Model: {outcome.model}")

    def _keep_in_memory(self, item: PhotoItem) -> None:
        """Keeps the newest few results as images; older ones are read back from disk when shown."""
        if item in self._in_memory:
            self._in_memory.remove(item)
        self._in_memory.append(item)
        while len(self._in_memory) > KEEP_RESULTS:
            old = next((i for i in self._in_memory if i is not self.current), None)
            if old is None:
                break
            self._in_memory.remove(old)
            if old.result_file is not None:
                old.result = None

    def result_image(self, item: PhotoItem):
        """The restored image of ``item``, read back from disk when it is not in memory."""
        if item.result is None and item.result_file is not None:
            from .imaging import load_result, to_qimage

            item.result = to_qimage(load_result(item.result_file))
            self._keep_in_memory(item)
        return item.result

    @Slot(object, str, bool)
    def _on_failed(self, job: jobs.Job, message: str, cancelled: bool) -> None:
        if isinstance(job, (jobs.Restore, jobs.Scan)):
            item = self.photos.by_id(job.photo_id)
            if item is None:
                return
            if cancelled:
                item.status, item.message = Status.CANCELLED, "Cancelled"
            else:
                item.status, item.message = Status.FAILED, _short(message, item.path)
                if isinstance(job, jobs.Scan):
                    item.scanned = False
            self.photos.update(item)
        elif isinstance(job, jobs.Preview):
            if not cancelled:
                self.controls.preview.note.setText("Preview failed")
                self.notify(message, 10000)
        elif isinstance(job, jobs.AnalyseReference):
            self.controls.references.set_reference(job.ref_id, None, message, "")
        elif isinstance(job, jobs.Export):
            self.notify(f"Export failed: {message}", 15000)
        elif isinstance(job, jobs.Configure):
            self.notify(message, 15000)
        elif not cancelled:
            self.notify(message, 10000)

    @Slot(object)
    def _on_job_done(self, job: jobs.Job) -> None:
        if isinstance(job, jobs.Restore) and job.photo_id in self._batch:
            item = self.photos.by_id(job.photo_id)
            self._batch_finished += 1
            if item is not None and item.status == Status.FAILED:
                self._batch_failed += 1
            self._batch_progress()
            if not self.engine.pending(jobs.Restore):
                self._batch_complete()
        if isinstance(job, jobs.Export) and not self.engine.pending(jobs.Export):
            if self._exports:
                folder = next(iter(self._exports.values())).parent
                self.notify(f"Exported {len(self._exports)} photo{'s' if len(self._exports) != 1 else ''} to {folder}", 10000)
        self._update_actions()

    def _batch_progress(self, current_fraction: float = 0.0) -> None:
        if not self._batch:
            return
        total, finished = len(self._batch), min(len(self._batch), self._batch_finished)
        self.overall.setMaximum(total * 100)
        self.overall.setValue(min(total * 100, int(100 * (finished + current_fraction))))
        self.overall.setFormat(f"{finished} of {total} photos")
        self.overall.setToolTip(f"{(finished + current_fraction) / total:.0%} of the batch")

    def _batch_complete(self) -> None:
        done = sum(1 for i in self.photos.items() if i.id in self._batch and i.status == Status.DONE)
        cancelled = sum(1 for i in self.photos.items() if i.id in self._batch and i.status == Status.CANCELLED)
        parts = [f"Restored {done} of {len(self._batch)} photo{'s' if len(self._batch) != 1 else ''}"]
        if self._batch_failed:
            parts.append(f"{self._batch_failed} failed (see the list)")
        if cancelled:
            parts.append(f"{cancelled} cancelled")
        self.notify(", ".join(parts) + ".", 0)
        self.overall.hide()
        self._batch = []

    @Slot(object)
    def _on_engine_info(self, info: jobs.EngineInfo) -> None:
        self._engine_info = info
        self.controls.set_devices(info.devices)
        self.device_label.setText(f"Device: {info.device_label or 'unavailable'}")
        if info.model:
            self.model_label.setText(f"Model: {info.model}")
        else:
            self.model_label.setText("Model: none installed")
        if info.model_error:
            self.notify(info.model_error + "  (Tools → Models…)", 0)
        self.refresh_models()

    # -- photos and faces ----------------------------------------------------------------------
    def show_photo(self, item: PhotoItem | None) -> None:
        self.current = item
        self.current_face = None
        self.controls.preview.show_face(None, True)
        if item is None:
            self.compare.placeholder = EMPTY_HINT
            self.compare.set_photo(None, None)
            self.compare.set_faces([], set(), None)
            self._update_actions()
            return
        self.compare.placeholder = self._placeholder(item)
        # the thumbnail at once, the full-size original when the loader has read it
        self.compare.set_photo(item.thumbnail, item.size, item.result)
        self.compare.set_faces(item.faces, item.excluded, None)
        self.loader.load(item.id, item.path)
        if item.result is None and item.result_file is not None:
            self.loader.load(("result", item.id), item.result_file)
        self._update_actions()

    def _on_before_loaded(self, key, image) -> None:
        item = self.current
        if isinstance(key, tuple):  # a result read back from disk
            if item is not None and item.id == key[1] and not image.isNull() and item.result is None:
                item.result = image
                self._keep_in_memory(item)
                self.compare.set_after(image)
                self._update_actions()
            return
        if item is None or item.id != key or image.isNull():
            return
        size = item.size or (image.width(), image.height())
        self.compare.set_photo(image, size, item.result)
        self.compare.set_faces(item.faces, item.excluded, self.current_face)

    @staticmethod
    def _placeholder(item: PhotoItem) -> str:
        if item.status == Status.FAILED and not item.scanned:
            return f"{item.name} cannot be shown: {item.message}"
        return "Loading…"

    def _on_item_changed(self, item: PhotoItem) -> None:
        if item is not self.current:
            return
        self.compare.placeholder = self._placeholder(item)
        if self.compare.after is not item.result or (item.size and self.compare.scene_size.width() != item.size[0]):
            self.compare.set_photo(self.compare.before, item.size, item.result)
        self.compare.set_faces(item.faces, item.excluded, self.current_face)
        self._update_actions()

    def select_face(self, index: int) -> None:
        if self.current is None:
            return
        self.current_face = index
        self.compare.set_faces(self.current.faces, self.current.excluded, index)
        self.controls.preview.show_face(index + 1, self.current.included(index))
        self.request_preview()
        self._request_match()

    def request_preview(self) -> None:
        if self.current is None or self.current_face is None:
            return
        self.engine.submit(jobs.Preview(photo_id=self.current.id, path=self.current.path, options=self.base_options(),
                                        face_index=self.current_face, fidelity=self.controls.fidelity.value()))

    def toggle_face(self, index: int) -> None:
        if self.current is not None:
            self.set_face_included(index, not self.current.included(index))

    def toggle_current_face(self) -> None:
        if self.current_face is not None:
            self.toggle_face(self.current_face)

    def set_face_included(self, index: int | None, included: bool) -> None:
        item = self.current
        if item is None or index is None:
            return
        if included:
            item.excluded.discard(index)
        else:
            item.excluded.add(index)
        if item.status == Status.DONE and item.result_options != self.options_for(item):
            item.message = "face choice changed: restore again to apply"
        self.photos.update(item)
        if index == self.current_face:
            self.controls.preview.show_face(index + 1, included)

    def _on_fidelity(self, w: float) -> None:
        self.request_preview()
        stale = sum(1 for i in self.photos.items() if i.status == Status.DONE and self._needs_run(i))
        if stale:
            self.notify(f"Likeness w {w:.2f} is previewed on the selected face; Restore All (Ctrl+R) applies it "
                        f"to {stale} restored photo{'s' if stale != 1 else ''}.")

    @Slot(object)
    def _on_preview(self, outcome: jobs.PreviewOutcome) -> None:
        if self.current is None or outcome.photo_id != self.current.id or outcome.face_index != self.current_face:
            return
        self.controls.preview.show_preview(outcome.before, outcome.after, outcome.fidelity, outcome.seconds)
        self.last_preview = outcome

    def _toggle_boxes(self, on: bool) -> None:
        self.compare.show_faces = on
        self.compare.update()

    def set_side_by_side(self, on: bool) -> None:
        self.compare.set_side_by_side(on)
        self.act_side.setChecked(on)
        self.act_split.setChecked(not on)

    # -- references ----------------------------------------------------------------------------
    def _analyse_references(self, entries: list) -> None:
        options = self.base_options()
        for entry in entries:
            self.engine.submit(jobs.AnalyseReference(ref_id=entry.id, path=entry.path, options=options))

    def _request_match(self) -> None:
        panel = self.controls.references
        ids = tuple(e.id for e in panel.entries if e.aligned is not None)
        if self.current is None or self.current_face is None or not ids:
            return
        self.engine.submit(jobs.MatchReferences(ref_ids=ids, photo_id=self.current.id, path=self.current.path,
                                                options=self.base_options(), face_index=self.current_face))

    @Slot(object)
    def _on_reference(self, outcome: jobs.ReferenceOutcome) -> None:
        self.controls.references.set_reference(outcome.ref_id, outcome.aligned, outcome.error, outcome.note)

    # -- settings ------------------------------------------------------------------------------
    def _on_setting(self, key: str, value) -> None:
        if key in ENGINE_KEYS:
            self.engine.submit(self._configure_job())
            self.model_label.setText("Model: loading…")
        elif key in FACE_KEYS:  # faces are numbered by the detector: count them again
            options = self.base_options()
            for item in self.photos.items():
                if item.status not in (Status.QUEUED, Status.WORKING):
                    self.engine.submit(jobs.Scan(photo_id=item.id, path=item.path, options=options))
        elif key == "theme":
            from .theme import apply_theme

            apply_theme(QGuiApplication.instance(), value)
        elif key in ("color_fix",):
            self.request_preview()

    # -- export --------------------------------------------------------------------------------
    def export_targets(self, selected_only: bool) -> list[PhotoItem]:
        items = [i.data(Roles.ITEM) for i in self.list.selectionModel().selectedIndexes()] if selected_only else self.photos.items()
        return [i for i in items if i.has_result]

    def export(self, items: list[PhotoItem], folder: Path | None = None) -> list[jobs.Export]:
        """Writes each restored photo; ``folder`` None = the setting (or "restored" beside each original)."""
        s = self.settings
        taken: set[Path] = set()
        submitted = []
        self._exports = {}
        for n, item in enumerate(items, start=1):
            out = self._output_path(item, n, item.result_fidelity or 0.0, taken, folder)
            job = jobs.Export(photo_id=item.id, source=item.path, output=out, image=item.result,
                              image_file=None if item.result is not None else item.result_file,
                              quality=s.get("jpeg_quality"))
            submitted.append(self.engine.submit(job))
        if submitted:
            self.notify(f"Exporting {len(submitted)} photo{'s' if len(submitted) != 1 else ''}…")
        return submitted

    def _output_path(self, item: PhotoItem, n: int, fidelity: float, taken: set[Path], folder: Path | None = None) -> Path:
        s = self.settings
        if folder is None and s.get("output_folder"):
            folder = Path(s.get("output_folder")).expanduser()
        return output_path(item.path, folder, s.get("naming"), s.get("format"), fidelity, n, taken)

    def export_dialog(self) -> None:
        from .dialogs.export import ExportDialog

        selected = self.export_targets(True)
        everything = self.export_targets(False)
        if not everything:
            self.notify("Nothing to export yet: restore some photos first.")
            return
        dialog = ExportDialog(self.settings, len(selected), len(everything), self)
        if dialog.exec():
            folder = dialog.folder()
            self.export(selected if dialog.selected_only() else everything, folder)

    @Slot(object, object)
    def _on_exported(self, job: jobs.Export, path: Path) -> None:
        self._exports[job.photo_id] = path
        self._last_export_folder = path.parent
        item = self.photos.by_id(job.photo_id)
        if item is not None:
            item.exported_to = path
        self._update_actions()

    def copy_result(self) -> None:
        if self.current is not None and self.current.has_result:
            QGuiApplication.clipboard().setImage(self.result_image(self.current))
            self.notify(f"Copied the restored {self.current.name}.")

    def open_output_folder(self) -> None:
        if self._last_export_folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._last_export_folder)))

    # -- dialogs -------------------------------------------------------------------------------
    def store(self):
        if self._store is None:
            from engine.models import ModelStore

            return ModelStore()
        return self._store

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
        from .dialogs.models import ModelDialog

        dialog = ModelDialog(self.store(), self)
        dialog.models_changed.connect(self._models_changed)
        self.models_window = dialog
        dialog.show()

    def _models_changed(self) -> None:
        self.refresh_models()
        self.engine.submit(self._configure_job())

    def settings_dialog(self) -> None:
        from .dialogs.settings import SettingsDialog

        SettingsDialog(self.settings, self).exec()

    def about_dialog(self) -> None:
        from .dialogs.about import AboutDialog

        AboutDialog(self.store(), self._engine_info, self).exec()

    # -- misc ----------------------------------------------------------------------------------
    def notify(self, text: str, timeout_ms: int = 6000) -> None:
        self.status_text.setText(text)
        self.status_text.setToolTip(text)
        self._status_timer.stop()
        if timeout_ms:
            self._status_timer.start(timeout_ms)

    def _update_actions(self) -> None:
        has_photos = self.photos.rowCount() > 0
        running = bool(self.engine.photos_in_queue(jobs.Restore))
        self.act_run.setEnabled(has_photos)
        self.act_run_selected.setEnabled(has_photos)
        self.act_cancel.setEnabled(running)
        has_result = any(i.has_result for i in self.photos.items())
        self.act_export.setEnabled(has_result)
        self.act_copy.setEnabled(self.current is not None and self.current.has_result)
        self.act_open_output.setEnabled(self._last_export_folder is not None)
        self.act_remove.setEnabled(has_photos)
        self.list_hint.setVisible(not has_photos)

    def _restore_geometry(self) -> None:
        geometry = self.settings.get("geometry")
        if geometry:
            self.restoreGeometry(geometry)
        splitter = self.settings.get("splitter")
        if splitter:
            self.splitter.restoreState(splitter)

    def unsaved(self) -> list[PhotoItem]:
        return [i for i in self.photos.items() if i.has_result and i.exported_to is None]

    def _confirm_close(self, count: int) -> str:
        """"export", "discard" or "cancel", asked in a message box."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Restored photos not saved",
                          f"{count} restored photo{'s have' if count != 1 else ' has'} not been exported. "
                          "Unexported results are discarded when Likeness closes.", parent=self)
        export = box.addButton("Export…", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Close Without Saving", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return "export" if box.clickedButton() is export else "discard" if box.clickedButton() is discard else "cancel"

    def closeEvent(self, event) -> None:
        unsaved = self.unsaved()
        if unsaved and self.settings.get("confirm_close") and not self._closing:
            answer = self._confirm_close(len(unsaved))
            if answer != "discard":
                event.ignore()
                if answer == "export":
                    self.export_dialog()
                return
        self._closing = True
        self.settings.set("geometry", bytes(self.saveGeometry().data()))
        self.settings.set("splitter", bytes(self.splitter.saveState().data()))
        self.settings.sync()
        self.engine.shutdown()
        super().closeEvent(event)


def _short(message: str, path: Path) -> str:
    """The engine's one-line message without the path the list already shows."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
