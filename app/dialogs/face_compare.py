"""The chosen face large: before and after with the compare view's split line, zoom and pan."""

from __future__ import annotations

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..widgets.compare_view import CompareView
from ..widgets.face_image import FaceImage


class FaceCompareDialog(QDialog):
    """A resizable window with the aligned face before and after; it follows the live preview."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Face Before and After")
        self.resize(760, 820)
        self.view = CompareView()
        self.view.placeholder = "Click a face in the photo to compare it here."
        self.title = QLabel("")
        hint = QLabel("Drag the line to compare; the mouse wheel zooms, dragging pans.")
        hint.setProperty("hint", True)
        side = QPushButton("Side by Side")
        side.setCheckable(True)
        side.toggled.connect(self.view.set_side_by_side)
        fit = QPushButton("Fit")
        fit.clicked.connect(self.view.fit)
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addWidget(side)
        row.addWidget(fit)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        layout.addWidget(hint)
        # before / without references / with references, when the photo was restored with them
        self.versions = QWidget()
        strip = QHBoxLayout(self.versions)
        strip.setContentsMargins(0, 0, 0, 0)
        self.version_images = [FaceImage("Before"), FaceImage("Without references"), FaceImage("With references")]
        for image in self.version_images:
            strip.addWidget(image)
        self.versions.setVisible(False)
        layout.addWidget(self.versions)

    def show_face(self, title: str, before: QImage | None, after: QImage | None) -> None:
        """Shows a new face or a new w of the same one (the zoom stays while the face does)."""
        self.title.setText(f"<b>{title}</b>")
        size = (before.width(), before.height()) if before is not None else None
        self.view.after_label = title.split(" · ", 1)[1] if " · " in title else "After"
        self.view.set_photo(before, size, after)

    def show_versions(
        self, before: QImage | None, without: QImage | None, without_caption: str, with_refs: tuple[QImage, str] | None
    ) -> None:
        """Before, without and with references side by side; hidden when there is no with-references result."""
        self.versions.setVisible(with_refs is not None)
        if with_refs is None:
            return
        first, second, third = self.version_images
        first.set_image(before)
        second.set_image(without)
        second.caption = without_caption
        third.set_image(with_refs[0])
        third.caption = with_refs[1]
