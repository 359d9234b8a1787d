"""Every command of the main window as a QAction, and the menus and toolbar that show them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QObject, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QSizePolicy, QToolBar, QToolButton, QWidget

from .icons import icon
from .settings import Settings
from .widgets.compare_view import CompareView

Shortcut = QKeySequence.StandardKey | str | list[QKeySequence] | None


class Commands(Protocol):
    """What the actions trigger (the main window)."""

    def open_files_dialog(self) -> None: ...
    def open_folder_dialog(self) -> None: ...
    def remove_selected(self) -> None: ...
    def run_batch(self) -> None: ...
    def run_selected(self) -> None: ...
    def cancel_batch(self) -> None: ...
    def export_dialog(self) -> bool: ...
    def copy_result(self) -> None: ...
    def open_output_folder(self) -> None: ...
    def set_side_by_side(self, on: bool) -> None: ...
    def toggle_current_face(self) -> None: ...
    def show_face_boxes(self, on: bool) -> None: ...
    def models_dialog(self) -> None: ...
    def settings_dialog(self) -> None: ...
    def about_dialog(self) -> None: ...
    def close(self) -> bool: ...


class ReferenceCommands(Protocol):
    """What the reference actions trigger (``app.reference_commands.ReferenceCommands``)."""

    def add_dialog(self) -> None: ...
    def paste(self) -> list: ...
    def use_for_every_face(self) -> object: ...


class Actions(QObject):
    """The window's commands (``c``), its reference commands (``refs``) and the compare view's
    zoom (``view``) as actions."""

    def __init__(self, parent: QObject, c: Commands, view: CompareView, refs: ReferenceCommands) -> None:
        super().__init__(parent)
        K = QKeySequence.StandardKey
        a = self._action
        self.open = a("&Open Photos…", c.open_files_dialog, K.Open, "open", "Add photos to the list")
        self.open_folder = a(
            "Open &Folder…", c.open_folder_dialog, "Ctrl+Shift+O", "folder", "Add every photo in a folder"
        )
        self.add_references = a(
            "Add &Reference Photos…",
            refs.add_dialog,
            None,
            "face",
            "Add photos of a person to guide the restoration of their face (the chosen face)",
        )
        self.paste_references = a(
            "&Paste Reference Photos",
            refs.paste,
            K.Paste,
            "face",
            "Add the photos (or the image) on the clipboard as references of the chosen face's person",
        )
        self.use_everywhere = a(
            "Use References for Every Face of This &Person",
            refs.use_for_every_face,
            None,
            None,
            "Use the references for every face in the open photos that the identity check says is them",
        )
        self.remove = a(
            "&Remove from List",
            c.remove_selected,
            None,
            "remove",
            "Remove the selected photos from the list (the files stay)",
        )
        self.run = a(
            "&Restore All",
            c.run_batch,
            [QKeySequence("Ctrl+R"), QKeySequence("F5")],
            "run",
            "Restore every photo that is not restored with these settings yet",
        )
        self.run_selected = a("Restore &Selected", c.run_selected, "Ctrl+Shift+R", None, "Restore the selected photos")
        self.cancel = a("&Cancel", c.cancel_batch, "Esc", "stop", "Stop the batch after the current face")
        self.export = a(
            "&Export…",
            c.export_dialog,
            "Ctrl+E",
            "export",
            "Save restored photos to a folder (originals are never replaced)",
        )
        self.copy = a("&Copy Result", c.copy_result, K.Copy, "copy", "Copy the restored photo")
        self.open_output = a(
            "Open Output &Folder", c.open_output_folder, None, "folder", "Show the exported photos in the file manager"
        )
        self.split = a(
            "Split View",
            lambda: c.set_side_by_side(False),
            "S",
            "split",
            "Before and after on either side of a line you can drag",
        )
        self.side = a(
            "Side by Side", lambda: c.set_side_by_side(True), "D", "side", "Before and after next to each other"
        )
        for action in (self.split, self.side):
            action.setCheckable(True)
        self.split.setChecked(True)
        self.fit = a("&Fit", view.fit, "F", "fit", "Fit the photo in the view")
        self.actual = a("&100 %", view.actual_size, "1", "actual", "One pixel of the result per screen pixel")
        self.zoom_in = a("Zoom &In", lambda: view.zoom_by(1.25), K.ZoomIn)
        self.zoom_out = a("Zoom &Out", lambda: view.zoom_by(0.8), K.ZoomOut)
        self.toggle_face = a(
            "Include/Exclude Face", c.toggle_current_face, "X", None, "Restore the selected face or leave it as it is"
        )
        self.faces = a("Show Face &Boxes", c.show_face_boxes, "B")
        self.faces.setCheckable(True)
        self.faces.setChecked(True)
        self.models = a(
            "&Models…", c.models_dialog, "Ctrl+M", "models", "Download, import and check restoration models"
        )
        self.settings = a("&Settings…", c.settings_dialog, K.Preferences, "settings")
        if self.settings.shortcut().isEmpty():
            self.settings.setShortcut(QKeySequence("Ctrl+,"))
        self.about = a("&About Likeness", c.about_dialog, None, "info")
        self.quit = a("&Quit", c.close, K.Quit)

    def _action(
        self, text: str, slot: Callable, shortcut: Shortcut = None, icon_name: str | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if isinstance(shortcut, list):
            action.setShortcuts(shortcut)
        elif shortcut is not None:
            action.setShortcuts([QKeySequence(shortcut)])
        if tip:
            action.setStatusTip(tip)
            name = text.replace("&", "")
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{name.rstrip('…')} ({keys})" if action.shortcut().toString() else name)
        action.triggered.connect(slot)
        return action

    def fill_menus(self, bar: QMenuBar, recent: QMenu) -> None:
        file = bar.addMenu("&File")
        file.addActions([self.open, self.open_folder])
        file.addMenu(recent)
        file.addActions([self.add_references, self.paste_references])
        for group in ([self.export, self.copy, self.open_output], [self.remove], [self.quit]):
            file.addSeparator()
            file.addActions(group)
        bar.addMenu("&Edit").addActions([self.copy, self.paste_references])
        restore = bar.addMenu("&Restore")
        restore.addActions([self.run, self.run_selected, self.cancel])
        restore.addSeparator()
        restore.addActions([self.toggle_face, self.use_everywhere])

        view = bar.addMenu("&View")
        view.addActions([self.split, self.side])
        view.addSeparator()
        view.addActions([self.fit, self.actual, self.zoom_in, self.zoom_out])
        view.addSeparator()
        view.addAction(self.faces)
        bar.addMenu("&Tools").addActions([self.models, self.settings])
        bar.addMenu("&Help").addAction(self.about)

    def toolbar(self) -> QToolBar:
        tb = QToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        for group in ([self.open, self.open_folder], [self.run, self.cancel], [self.export]):
            tb.addActions(group)
            tb.addSeparator()
        icon_only = [self.split, self.side, self.fit, self.actual, self.models]
        tb.addActions(icon_only[:-1])
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        tb.addAction(self.models)
        for action in icon_only:
            button = tb.widgetForAction(action)
            if isinstance(button, QToolButton):
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        return tb


class RecentMenu(QMenu):
    """File → Open Recent: the photos and folders opened lately (the ``recent_files`` setting)."""

    def __init__(self, settings: Settings, open_paths: Callable[[Sequence[str]], object], parent: QWidget) -> None:
        super().__init__("Open &Recent", parent)
        self.settings, self.open_paths = settings, open_paths
        settings.changed.connect(lambda key, _value: self.refresh() if key == "recent_files" else None)
        self.refresh()

    def refresh(self) -> None:
        self.clear()
        recent = self.settings.get("recent_files")
        for path in recent:
            action = self.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        if recent:
            self.addSeparator()
            self.addAction("Clear Recent", lambda: self.settings.set("recent_files", []))
        self.setEnabled(bool(recent))
