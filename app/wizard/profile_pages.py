"""Pages 4 to 6: make the chosen person's profile and review its references, train it, done."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWizardPage,
)

from engine.api import ProfileError

from ..album_client import FACE_THUMB, AlbumFailed, MakeProfile, ProfileMade, Rename, TrainingEnd
from ..icons import icon
from .people_page import face_grid
from .state import WizardState, hint, plural

DEFAULT_MINUTES = 20
PREVIEW_HEIGHT = 240


class ReferencesPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.job: MakeProfile | None = None
        self.setTitle("Choose a person")
        self.setSubTitle("Likeness makes their profile from their best faces; you choose which guide restorations.")
        self.person_combo = QComboBox()
        self.person_combo.currentIndexChanged.connect(self._on_person)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("The profile's name, e.g. Grandma Rose")
        self.name_edit.textChanged.connect(lambda _text: self._update())
        self.make_button = QPushButton(icon("face"), "Make Profile")
        self.make_button.clicked.connect(self.make)
        name_row = QHBoxLayout()
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.make_button)
        form = QFormLayout()
        form.addRow("Person:", self.person_combo)
        form.addRow("Profile name:", name_row)
        self.faces_list = face_grid()
        self.faces_list.setAccessibleName("The profile's reference faces")
        self.faces_list.itemChanged.connect(self._on_checked)
        self.status = hint("")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.faces_list, 1)
        layout.addWidget(self.status)
        state.client.profile_made.connect(self._on_made)
        state.client.failed.connect(self._on_failed)

    def initializePage(self) -> None:  # noqa: N802 (Qt)
        state = self.state
        self.person_combo.blockSignals(True)
        self.person_combo.clear()
        for person in state.people:
            self.person_combo.addItem(f"{state.label(person)} ({plural(len(person.faces), 'face')})", person.person_id)
        at = self.person_combo.findData(state.current_person)
        self.person_combo.setCurrentIndex(max(0, at))
        self.person_combo.blockSignals(False)
        self._on_person()

    def person_id(self) -> str | None:
        return self.person_combo.currentData()

    def _on_person(self) -> None:
        person = self.state.person(self.person_id())
        self.name_edit.setText(person.name if person is not None else "")
        if self.state.profile is not None and self.state.profile.name != self.name_edit.text().strip():
            self.state.profile = None
        self._show_profile()

    def _name_problem(self) -> str | None:
        """Why the name cannot be a profile's, or None."""
        try:
            self.state.engine.profiles().folder(self.name_edit.text())
        except ProfileError as err:
            return str(err)
        return None

    def _exists(self) -> bool:
        return self._name_problem() is None and self.state.engine.profiles().exists(self.name_edit.text().strip())

    def make(self) -> None:
        person = self.state.person(self.person_id())
        name = self.name_edit.text().strip()
        if person is None or self.job is not None or self._name_problem():
            return
        if not person.name:  # the album learns the name too
            self.state.client.submit(Rename(person_id=person.person_id, name=name))
        self.state.profile = None
        self.job = MakeProfile(name=name, faces=list(person.faces))
        self.state.client.submit(self.job)
        self.status.setText(f"Making {name}'s profile: aligning and checking {plural(len(person.faces), 'face')}…")
        self._show_profile()

    def _on_made(self, made: ProfileMade) -> None:
        if made.profile.name != self.name_edit.text().strip():
            return
        self.job = None
        self.state.profile = made.profile
        self.state.profiles_changed.emit()
        self._show_profile()
        if made.existed:
            self.status.setText(
                f"{made.profile.name} has a profile already: it is used as it is (its training continues where it "
                "stopped). To start again, delete it in the Profiles menu first."
            )

    def _on_failed(self, failure: AlbumFailed) -> None:
        if failure.job is self.job:
            self.job = None
            self.status.setText(f"The profile could not be made: {failure.message}")
            self._update()

    def _show_profile(self) -> None:
        profile = self.state.profile
        self.faces_list.blockSignals(True)
        self.faces_list.clear()
        if profile is not None:
            for i, face in enumerate(profile.faces):
                image = QImage(str(profile.face_path(face)))
                pixmap = QPixmap.fromImage(image).scaled(
                    QSize(FACE_THUMB, FACE_THUMB),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
                item = QListWidgetItem(QIcon(pixmap), f"{i + 1}. {Path(face.source).name}")
                item.setData(Qt.ItemDataRole.UserRole, i)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if face.chosen else Qt.CheckState.Unchecked)
                item.setToolTip(
                    f"{face.source}\nsharpness {face.sharpness:.0f}, {face.size:.0f} px, turned {face.yaw:.0f}°"
                )
                self.faces_list.addItem(item)
        self.faces_list.blockSignals(False)
        self._update()

    def _on_checked(self, _item: QListWidgetItem) -> None:
        profile = self.state.profile
        if profile is None:
            return
        chosen = [
            self.faces_list.item(r).data(Qt.ItemDataRole.UserRole)
            for r in range(self.faces_list.count())
            if self.faces_list.item(r).checkState() == Qt.CheckState.Checked
        ]
        try:
            self.state.profile = self.state.engine.profiles().set_chosen(profile.name, chosen)
        except ProfileError as err:
            self.status.setText(str(err))
        self._update()

    def _update(self) -> None:
        problem = self._name_problem() if self.name_edit.text().strip() else "Give the person a name."
        profile = self.state.profile
        self.make_button.setEnabled(self.job is None and problem is None and profile is None)
        self.make_button.setText("Use Existing Profile" if problem is None and self._exists() else "Make Profile")
        if self.job is not None:
            pass
        elif profile is not None:
            self.status.setText(
                f"{len(profile.chosen)} of {plural(len(profile.faces), 'face')} guide restorations of "
                f"{profile.name} (best first). Untick blurred or wrong ones; the training learns from all of them."
            )
        elif problem is not None:
            self.status.setText(problem)
        else:
            self.status.setText("Make Profile picks this person's sharpest, most frontal faces as references.")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 (Qt)
        return self.state.profile is not None and bool(self.state.profile.chosen) and self.job is None


class TrainPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Train")
        self.setSubTitle("Likeness fine-tunes a small adapter of the restoration model on this person's faces.")
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 600)
        self.minutes.setValue(DEFAULT_MINUTES)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("The longest the training may take; it stops sooner when it stops improving")
        self.train_button = QPushButton(icon("run"), "Train")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.stop_button.setToolTip("Stop training; what is trained is kept and Train continues from there")
        self.stop_button.clicked.connect(state.training.stop)
        row = QHBoxLayout()
        row.addWidget(QLabel("At most"))
        row.addWidget(self.minutes)
        row.addStretch(1)
        row.addWidget(self.train_button)
        row.addWidget(self.stop_button)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(PREVIEW_HEIGHT)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview_caption = hint("")
        self.preview_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.preview_caption)
        layout.addWidget(hint("Stop or close the wizard at any time: training again continues where it stopped."))
        training = state.training
        training.step.connect(self._on_step)
        training.preview.connect(self._on_preview)
        training.ended.connect(self._on_ended)
        training.running_changed.connect(lambda _on: self._update())
        self.error: str | None = None

    def initializePage(self) -> None:  # noqa: N802 (Qt)
        profile = self.state.profile
        self.error = None
        self.preview.clear()
        self.preview_caption.setText("")
        if profile is not None and profile.adapter is not None:
            a = profile.adapter
            self.status.setText(f"{profile.name}'s adapter is trained ({a.steps} steps in {a.minutes:.0f} min).")
        elif profile is not None:
            self.status.setText(f"Train {profile.name}'s adapter, or go on without one: the references alone help too.")
        self._update()

    def cleanupPage(self) -> None:  # noqa: N802 (Qt): Back stops the training (it resumes)
        self.state.training.stop()

    def train(self) -> None:
        profile = self.state.profile
        if profile is None or self.state.training.running:
            return
        steps = self.state.train_steps
        program, args = self.state.engine.train_command(
            profile.name, minutes=None if steps else float(self.minutes.value()), steps=steps
        )
        self.error = None
        self.bar.setRange(0, 0)
        self.status.setText(f"Starting the training of {profile.name}'s adapter…")
        self.state.training.start(program, args)

    def _on_step(self, data: dict) -> None:
        if data.get("done"):
            return
        step, steps = int(data.get("step") or 0), int(data.get("steps") or 0)
        if steps > 0:
            self.bar.setRange(0, steps)
            self.bar.setValue(min(step, steps))
        parts = [f"Step {step} of {steps}" if steps else f"Step {step}"]
        if isinstance(data.get("loss"), int | float):
            parts.append(f"loss {float(data['loss']):.4f}")
        if isinstance(data.get("eta_s"), int | float):  # null until a few steps are timed
            parts.append(eta_text(float(data["eta_s"])))
        self.status.setText(" · ".join(parts))

    def _on_preview(self, path: Path) -> None:
        pixmap = QPixmap(str(path))
        if pixmap.isNull():
            return
        height = max(PREVIEW_HEIGHT, self.preview.height())
        self.preview.setPixmap(
            pixmap.scaled(
                QSize(self.preview.width(), height),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        name = self.state.profile.name if self.state.profile else "the person"
        self.preview_caption.setText(f"Before and after, on one of {name}'s own photos, degraded for the test.")

    def _on_ended(self, end: TrainingEnd) -> None:
        profile = self.state.profile
        if end.ok and profile is not None:
            try:
                self.state.profile = profile = self.state.engine.profiles().get(profile.name)
            except ProfileError as err:
                end = TrainingEnd(False, False, str(err))
        if end.ok:
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.status.setText(f"Trained: {profile.name if profile else ''}'s adapter is ready.")
            self.state.profiles_changed.emit()
        elif end.stopped:
            self.status.setText(end.message)
        else:
            self.error = end.message
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.status.setText(f"The training failed: {end.message}")
        self._update()

    def _update(self) -> None:
        running = self.state.training.running
        profile = self.state.profile
        self.train_button.setEnabled(not running and profile is not None)
        trained = profile is not None and profile.adapter is not None
        self.train_button.setText("Train Again" if trained else "Train")
        self.stop_button.setEnabled(running)
        self.minutes.setEnabled(not running)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 (Qt)
        return not self.state.training.running


def eta_text(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


class DonePage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Done")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 (Qt)
        profile = self.state.profile
        if profile is None:
            self.text.setText("No profile was made.")
            return
        name = html.escape(profile.name)
        adapter = (
            f"its adapter is trained ({profile.adapter.steps} steps)"
            if profile.adapter is not None
            else "it has no adapter yet (the references alone guide the restoration)"
        )
        self.text.setText(
            f"<p><b>{name}</b>'s profile is ready: {plural(len(profile.chosen), 'reference face')}, "
            f"and {adapter}.</p>"
            f"<p>Likeness now finds {name} in the photos you restore and restores their face with this "
            f"profile: the face's number tag then shows “{name}”. Profiles are listed in the "
            "Profiles menu, where you can delete them; Settings → Restoration → Use person profiles turns "
            "them off.</p>"
        )
