"""The settings dialog: one page per section, one row per declared setting (see app.settings)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..settings import SETTINGS, Setting, Settings, sections

Choices = list[tuple[object, str]]


def editor_for(setting: Setting, settings: Settings, choices: Choices | None = None) -> QWidget:
    """A control bound two-way to ``setting``, chosen from its declaration; ``choices`` (value,
    label) make a drop-down of a setting whose choices are known only at run time (models, devices)."""
    key, value = setting.key, settings.get(setting.key)
    choices = choices or list(setting.choices or ())
    if choices:
        w = QComboBox()
        for data, label in choices:
            w.addItem(label, data)
        if w.findData(value) < 0:  # a value saved earlier that is not offered now: keep it
            w.addItem(str(value), value)
        w.setCurrentIndex(max(0, w.findData(value)))
        w.currentIndexChanged.connect(lambda i: settings.set(key, w.itemData(i)))
    elif setting.type is bool:
        w = QCheckBox(setting.label)
        w.setChecked(value)
        w.toggled.connect(lambda on: settings.set(key, on))
    elif setting.type is int:
        w = QSpinBox()
        w.setRange(
            int(setting.minimum if setting.minimum is not None else 0),
            int(setting.maximum if setting.maximum is not None else 10**6),
        )
        w.setValue(value)
        w.valueChanged.connect(lambda v: settings.set(key, v))
    elif setting.type is float:
        w = QDoubleSpinBox()
        w.setRange(setting.minimum or 0.0, setting.maximum if setting.maximum is not None else 1e6)
        w.setSingleStep(0.05)
        w.setDecimals(2)
        w.setValue(value)
        w.valueChanged.connect(lambda v: settings.set(key, v))
    else:
        w = QLineEdit(str(value))
        w.editingFinished.connect(lambda: settings.set(key, w.text()))
    w.setToolTip(setting.help)
    w.setObjectName(f"setting-{key}")
    return w


class SettingsDialog(QDialog):
    def __init__(
        self, settings: Settings, parent: QWidget | None = None, choices: dict[str, Choices] | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(560, 440)
        tabs = QTabWidget()
        self.editors: dict[str, QWidget] = {}
        for section in sections():
            page = QWidget()
            form = QFormLayout(page)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
            for setting in (s for s in SETTINGS if s.section == section):
                editor = editor_for(setting, settings, (choices or {}).get(setting.key))
                self.editors[setting.key] = editor
                help_label = QLabel(setting.help)
                help_label.setWordWrap(True)
                help_label.setProperty("hint", True)
                if isinstance(editor, QCheckBox):
                    form.addRow(editor)
                    form.addRow(help_label)
                else:
                    form.addRow(setting.label, editor)
                    form.addRow("", help_label)
            tabs.addTab(page, section)
        note = QLabel(f"Saved in {settings.file_name}")
        note.setProperty("hint", True)
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(note)
        layout.addWidget(buttons)
