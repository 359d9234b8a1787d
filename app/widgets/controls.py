"""The right-hand panel: fidelity with a live face preview, references, output and engine choices.

Controls bind to keys of ``Settings`` (two-way), so what the panel shows is what is saved and
what the next request uses.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..dialogs.face_compare import FaceCompareDialog
from ..icons import icon
from ..settings import BY_KEY, Settings
from .face_image import FaceImage
from .reference_panel import ReferencePanel

SLIDER_STEPS = 100


def bind_combo(combo: QComboBox, settings: Settings, key: str) -> None:
    """Keeps ``combo`` (items with their value as data) and the setting ``key`` equal."""

    def show(value) -> None:
        i = combo.findData(value)
        if i >= 0 and i != combo.currentIndex():
            combo.blockSignals(True)
            combo.setCurrentIndex(i)
            combo.blockSignals(False)

    combo.currentIndexChanged.connect(lambda i: settings.set(key, combo.itemData(i)) if i >= 0 else None)
    settings.changed.connect(lambda k, v: show(v) if k == key else None)
    show(settings.get(key))


def bind_check(box: QCheckBox, settings: Settings, key: str) -> None:
    box.setChecked(settings.get(key))
    box.toggled.connect(lambda on: settings.set(key, on))
    settings.changed.connect(lambda k, v: box.setChecked(v) if k == key and box.isChecked() != v else None)


def with_help(widget: QWidget, key: str) -> QWidget:
    widget.setToolTip(BY_KEY[key].help)
    return widget


class FidelitySlider(QWidget):
    """w from 0 (cleaner, more generated) to 1 (closer to the original), labelled by effect."""

    moved = Signal(float)  # every step while dragging (drives the live preview)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setPageStep(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(25)
        self.slider.setAccessibleName("Likeness: closer to the original or cleaner")
        self.slider.setToolTip(BY_KEY["fidelity"].help)
        self.value_label = QLabel()
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        left = QLabel("Cleaner,\nmore generated")
        right = QLabel("Closer to\nthe original")
        right.setAlignment(Qt.AlignmentFlag.AlignRight)
        for label in (left, right):
            label.setProperty("hint", True)
        title = QLabel("<b>Likeness</b>")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        grid.addWidget(title, 0, 0)
        grid.addWidget(self.value_label, 0, 1)
        grid.addWidget(self.slider, 1, 0, 1, 2)
        grid.addWidget(left, 2, 0)
        grid.addWidget(right, 2, 1)
        self.slider.valueChanged.connect(self._changed)
        settings.changed.connect(lambda k, v: self.set_value(v) if k == "fidelity" else None)
        self.set_value(settings.get("fidelity"))
        self._show(self.value())

    def value(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_value(self, w: float) -> None:
        step = round(w * SLIDER_STEPS)
        if step != self.slider.value():
            self.slider.setValue(step)

    def _changed(self, step: int) -> None:
        w = step / SLIDER_STEPS
        self._show(w)
        self.settings.set("fidelity", w)
        self.moved.emit(w)

    def _show(self, w: float) -> None:
        self.value_label.setText(f"w = {w:.2f}")


class FacePreview(QWidget):
    """The selected face, aligned, before and after at the slider's w; include/exclude it."""

    include_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click a face in the photo to preview it here.")
        self.title.setWordWrap(True)
        self.before = FaceImage("Before")
        self.after = FaceImage("After")
        self.include = QCheckBox("Restore this face")
        self.include.setEnabled(False)
        self.include.toggled.connect(self.include_toggled)
        self.larger = QPushButton("Larger…")
        self.larger.setToolTip("The face before and after in a window of its own, to zoom in")
        self.larger.clicked.connect(self.open_larger)
        self.dialog: FaceCompareDialog | None = None
        self.number: int | None = None
        self.images: tuple[QImage, QImage, float] | None = None
        self.with_refs: tuple[QImage, str] | None = None  # the face in the result made with references
        self.note = QLabel("")
        self.note.setProperty("hint", True)
        images = QHBoxLayout()
        images.setSpacing(8)
        images.addWidget(self.before)
        images.addWidget(self.after)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(images)
        row = QHBoxLayout()
        row.addWidget(self.include)
        row.addStretch()
        row.addWidget(self.note)
        row.addWidget(self.larger)
        layout.addLayout(row)

    def open_larger(self) -> None:
        if self.dialog is None:
            self.dialog = FaceCompareDialog(self.window())
        self._show_larger()
        self.dialog.show()
        self.dialog.raise_()

    def _show_larger(self) -> None:
        if self.dialog is None:
            return
        if self.number is None or self.images is None:
            self.dialog.show_face("No face chosen", None, None)
            self.dialog.show_versions(None, None, "", None)
            return
        before, after, w = self.images
        self.dialog.show_face(f"Face {self.number} · after at w {w:.2f}", before, after)
        self.dialog.show_versions(before, after, f"Without references · w {w:.2f}", self.with_refs)

    def show_face(self, number: int | None, included: bool) -> None:
        if number != self.number:
            self.images, self.with_refs = None, None
        self.number = number
        self._show_larger()
        if number is None:
            self.title.setText("Click a face in the photo to preview it here.")
            self.before.set_image(None)
            self.after.set_image(None)
            self.include.setEnabled(False)
            self.note.setText("")
            return
        self._show_title()
        self.include.setEnabled(True)
        self.include.blockSignals(True)
        self.include.setChecked(included)
        self.include.blockSignals(False)

    def show_preview(self, before: QImage, after: QImage, w: float, seconds: float) -> None:
        self.before.set_image(before)
        self.after.set_image(after)
        self.after.caption = f"After · w {w:.2f}"
        self.note.setText(f"{seconds * 1000:.0f} ms")
        self.images = (before, after, w)
        self._show_larger()

    def show_with_references(self, found: tuple[QImage, str] | None) -> None:
        """The face as restored with its references (None: its result was made without them)."""
        self.with_refs = found
        self._show_title()
        self._show_larger()

    def _show_title(self) -> None:
        if self.number is not None:
            more = " · restored with references: <i>Larger…</i> shows it with and without" if self.with_refs else ""
            self.title.setText(f"<b>Face {self.number}</b>{more}")


#: The background choices every install has: the bundled network (the default) and bicubic.
BASIC_BACKGROUNDS: tuple[tuple[object, str], ...] = (
    (BY_KEY["background"].default, "Sharp, cleans JPEG blocks (bundled network)"),
    ("bicubic", "Smooth resizing (bicubic)"),
)


class ControlPanel(QWidget):
    """Every restoration control of the main window."""

    manage_models = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.backgrounds = list(BASIC_BACKGROUNDS)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(12)

        # Likeness: slider + face preview
        likeness = QGroupBox("Restoration")
        box = QVBoxLayout(likeness)
        box.setSpacing(10)
        self.fidelity = FidelitySlider(settings)
        self.preview = FacePreview()
        box.addWidget(self.fidelity)
        box.addWidget(self.preview)
        layout.addWidget(likeness)

        # References
        self.references = ReferencePanel(settings)
        layout.addWidget(self.references)

        # Output
        output = QGroupBox("Output")
        form = QFormLayout(output)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.upscale = QComboBox()
        for value, label in BY_KEY["upscale"].choices or ():
            self.upscale.addItem(label, value)
        bind_combo(self.upscale, settings, "upscale")
        form.addRow("Size", with_help(self.upscale, "upscale"))
        self.center_only = QCheckBox(BY_KEY["only_center_face"].label)
        bind_check(self.center_only, settings, "only_center_face")
        form.addRow(with_help(self.center_only, "only_center_face"))
        layout.addWidget(output)

        # Engine
        engine = QGroupBox("Engine")
        form = QFormLayout(engine)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model = QComboBox()
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(12)
        manage = QPushButton(icon("models"), "")
        manage.setToolTip("Manage models (download, import, licences)")
        manage.setAccessibleName("Manage models")
        manage.clicked.connect(self.manage_models)
        self.model.addItem("Automatic", "auto")
        bind_combo(self.model, settings, "model")
        with_help(self.model, "model")
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(manage)
        form.addRow("Model", row)
        self.device = QComboBox()
        self.device.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device.setMinimumContentsLength(12)
        self.device.addItem("Automatic", "auto")
        bind_combo(self.device, settings, "device")
        form.addRow("Device", with_help(self.device, "device"))
        layout.addWidget(engine)
        layout.addStretch(1)

    def choices(self) -> dict[str, list[tuple[object, str]]]:
        """The drop-downs' choices of the settings known only at run time (the settings dialog's too)."""

        def items(combo: QComboBox) -> list[tuple[object, str]]:
            return [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())]

        return {"model": items(self.model), "device": items(self.device), "background": self.backgrounds}

    def set_models(self, records: list, installed: set[str]) -> None:
        """Fills the model choice: automatic, then installed restoration models, then missing ones."""
        known = {value for value, _ in BASIC_BACKGROUNDS}
        self.backgrounds = list(BASIC_BACKGROUNDS) + [
            (r.id, f"{r.id} (upscaler)")
            for r in records
            if r.kind == "upscaler" and r.id in installed and r.id not in known
        ]
        current = self.settings.get("model")
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItem("Automatic", "auto")
        for record in records:
            if record.kind != "restoration":
                continue
            state = "" if record.id in installed else " (not installed)"
            self.model.addItem(record.id + state, record.id)
            self.model.setItemData(self.model.count() - 1, record.purpose, Qt.ItemDataRole.ToolTipRole)
        i = self.model.findData(current)
        self.model.setCurrentIndex(i if i >= 0 else 0)
        self.model.blockSignals(False)

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        current = self.settings.get("device")
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItem("Automatic", "auto")
        for device, label in devices:
            self.device.addItem(label, device)
        i = self.device.findData(current)
        self.device.setCurrentIndex(i if i >= 0 else 0)
        self.device.blockSignals(False)
