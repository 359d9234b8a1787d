"""Export: which photos, where, how they are named, format and JPEG quality."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..export import DEFAULT_FOLDER, check_pattern
from ..settings import BY_KEY, Settings


class ExportDialog(QDialog):
    def __init__(self, settings: Settings, selected: int, total: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Restored Photos")
        self.settings = settings
        self.only_selected = QRadioButton(f"Selected photos ({selected})")
        self.everything = QRadioButton(f"All restored photos ({total})")
        group = QButtonGroup(self)
        group.addButton(self.only_selected)
        group.addButton(self.everything)
        (self.only_selected if selected else self.everything).setChecked(True)
        self.only_selected.setEnabled(selected > 0)

        self.folder_edit = QLineEdit(settings.get("output_folder"))
        self.folder_edit.setPlaceholderText(f"a '{DEFAULT_FOLDER}' folder beside each original")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)

        self.naming = QLineEdit(settings.get("naming"))
        self.naming.setToolTip(BY_KEY["naming"].help)
        self.format = QComboBox()
        for value, label in BY_KEY["format"].choices or ():
            self.format.addItem(label, value)
        self.format.setCurrentIndex(max(0, self.format.findData(settings.get("format"))))
        self.quality = QSpinBox()
        self.quality.setRange(50, 100)
        self.quality.setValue(settings.get("jpeg_quality"))
        self.quality.setToolTip(BY_KEY["jpeg_quality"].help)
        self.problem = QLabel("")
        self.problem.setProperty("hint", True)
        self.problem.setWordWrap(True)
        note = QLabel("Originals are never replaced. Dates, orientation and colour profiles are kept.")
        note.setProperty("hint", True)
        note.setWordWrap(True)

        form = QFormLayout()
        which = QVBoxLayout()
        which.addWidget(self.only_selected)
        which.addWidget(self.everything)
        form.addRow("Photos", which)
        form.addRow("Folder", folder_row)
        form.addRow("File name", self.naming)
        form.addRow("", QLabel("{name} = original name, {w} = likeness, {n} = number"))
        form.addRow("Format", self.format)
        form.addRow("JPEG quality", self.quality)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.naming.textChanged.connect(self._check)
        self.format.currentIndexChanged.connect(self._check)
        self._check()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)

    def _check(self) -> None:
        problem = check_pattern(self.naming.text())
        self.problem.setText(problem or "")
        self.export_button.setEnabled(problem is None)
        self.quality.setEnabled(self.format.currentData() in ("jpg", "same"))

    def folder(self) -> Path | None:
        text = self.folder_edit.text().strip()
        return Path(text).expanduser() if text else None

    def selected_only(self) -> bool:
        return self.only_selected.isChecked()

    def accept(self) -> None:
        s = self.settings
        s.set("output_folder", self.folder_edit.text().strip())
        s.set("naming", self.naming.text())
        s.set("format", self.format.currentData())
        s.set("jpeg_quality", self.quality.value())
        super().accept()
