"""Page 3: the album's people as a grid; merge, split, rename, and take out faces that are not theirs."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from engine.api import AlbumFace, Person

from ..album_client import FACE_THUMB, AlbumFailed, LoadPeople, Merge, PeopleLoaded, Reject, Rename, Split, Thumbnails
from .state import WizardState, hint, plural

ID = Qt.ItemDataRole.UserRole
FACES_SHOWN = 300  # a person's faces shown at once (best first)


def face_grid() -> QListWidget:
    grid = QListWidget()
    grid.setViewMode(QListView.ViewMode.IconMode)
    grid.setIconSize(QSize(FACE_THUMB, FACE_THUMB))
    grid.setGridSize(QSize(FACE_THUMB + 28, FACE_THUMB + 44))
    grid.setResizeMode(QListView.ResizeMode.Adjust)
    grid.setMovement(QListView.Movement.Static)
    grid.setWordWrap(True)
    grid.setUniformItemSizes(True)
    grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    return grid


def placeholder_icon() -> QIcon:
    pixmap = QPixmap(FACE_THUMB, FACE_THUMB)
    pixmap.fill(Qt.GlobalColor.lightGray)
    return QIcon(pixmap)


class PeoplePage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self._covers: dict[str, QListWidgetItem] = {}  # face id → the person item showing it
        self._faces: dict[str, QListWidgetItem] = {}  # face id → its item in the faces grid
        self._blank = placeholder_icon()
        self.setTitle("Who is who")
        self.setSubTitle(
            "Check the groups: merge two groups of one person, split off faces of someone else, name people."
        )

        self.people_list = face_grid()
        self.people_list.setAccessibleName("People")
        self.people_list.currentItemChanged.connect(lambda *_: self._show_person())
        self.people_list.itemSelectionChanged.connect(self._update_buttons)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Name of the chosen person")
        self.name_edit.returnPressed.connect(self.rename)
        self.rename_button = QPushButton("Rename")
        self.rename_button.clicked.connect(self.rename)
        self.merge_button = QPushButton("Merge Selected People")
        self.merge_button.setToolTip("The selected groups show one person: make them one group")
        self.merge_button.clicked.connect(self.merge)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name:"))
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.rename_button)
        people_box = QGroupBox("People")
        left = QVBoxLayout(people_box)
        left.addWidget(self.people_list, 1)
        left.addLayout(name_row)
        left.addWidget(self.merge_button)

        self.faces_list = face_grid()
        self.faces_list.setAccessibleName("Faces of the chosen person")
        self.faces_list.itemSelectionChanged.connect(self._update_buttons)
        self.split_button = QPushButton("Split Off as New Person")
        self.split_button.setToolTip("The selected faces show someone else: make them a group of their own")
        self.split_button.clicked.connect(self.split)
        self.reject_button = QPushButton("Remove Faces")
        self.reject_button.setToolTip("The selected faces are not faces, or nobody to keep: leave them out")
        self.reject_button.clicked.connect(self.reject)
        face_buttons = QHBoxLayout()
        face_buttons.addWidget(self.split_button)
        face_buttons.addWidget(self.reject_button)
        self.faces_box = QGroupBox("Faces")
        right = QVBoxLayout(self.faces_box)
        right.addWidget(self.faces_list, 1)
        right.addLayout(face_buttons)

        self.status = hint(
            "Select several people (Ctrl+click) to merge them; select faces on the right to split them off."
        )
        boxes = QHBoxLayout()
        boxes.addWidget(people_box, 1)
        boxes.addWidget(self.faces_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(boxes, 1)
        layout.addWidget(self.status)

        client = state.client
        client.people_loaded.connect(self._on_people)
        client.thumbnail_ready.connect(self._on_thumbnail)
        client.failed.connect(self._on_failed)
        client.busy_changed.connect(lambda _busy: self._update_buttons())
        self._update_buttons()

    # -- loading -------------------------------------------------------------------------------
    def initializePage(self) -> None:  # noqa: N802 (Qt)
        if self.state.folder is not None:
            self.people_list.clear()
            self.faces_list.clear()
            self.state.client.submit(LoadPeople(folder=self.state.folder))

    def _on_people(self, loaded: PeopleLoaded) -> None:
        state = self.state
        keep = loaded.focus or self.current_id() or state.current_person
        state.people = [p for p in loaded.people if p.faces]
        self.people_list.blockSignals(True)
        self.people_list.clear()
        self._covers = {}
        current = None
        for person in state.people:
            item = QListWidgetItem(
                self._icon(person.faces[0]), f"{state.label(person)}\n{plural(len(person.faces), 'face')}"
            )
            item.setData(ID, person.person_id)
            item.setToolTip(f"{state.label(person)}: {plural(len(person.faces), 'face')}")
            self.people_list.addItem(item)
            self._covers[person.faces[0].face_id] = item
            if person.person_id == keep:
                current = item
        self.people_list.blockSignals(False)
        if current is None and self.people_list.count():
            current = self.people_list.item(0)
        if current is not None:
            self.people_list.setCurrentItem(current)
        self._show_person()
        missing = [p.faces[0] for p in state.people if p.faces[0].face_id not in state.thumbs]
        if missing:
            state.client.submit(Thumbnails(faces=missing))
        self.completeChanged.emit()

    def _show_person(self) -> None:
        person = self.current_person()
        self.faces_list.clear()
        self._faces = {}
        if person is None:
            self.faces_box.setTitle("Faces")
            self.name_edit.clear()
            self._update_buttons()
            return
        self.state.current_person = person.person_id
        label = self.state.label(person)
        shown = person.faces[:FACES_SHOWN]
        more = f", the best {len(shown)} shown" if len(shown) < len(person.faces) else ""
        self.faces_box.setTitle(f"Faces of {label} ({len(person.faces)}{more})")
        self.name_edit.setText(person.name)
        for face in shown:
            item = QListWidgetItem(self._icon(face), face.photo.name)
            item.setData(ID, face.face_id)
            item.setToolTip(f"{face.photo}\nface {face.index + 1}, {face.size:.0f} px, quality {face.quality:.2f}")
            self.faces_list.addItem(item)
            self._faces[face.face_id] = item
        missing = [f for f in shown if f.face_id not in self.state.thumbs]
        if missing:
            self.state.client.submit(Thumbnails(faces=missing))
        self._update_buttons()

    def _icon(self, face: AlbumFace) -> QIcon:
        image = self.state.thumbs.get(face.face_id)
        return QIcon(QPixmap.fromImage(image)) if image is not None else self._blank

    def _on_thumbnail(self, face_id: str, image: QImage) -> None:
        items = [i for i in (self._covers.get(face_id), self._faces.get(face_id)) if i is not None]
        if items:
            icon = QIcon(QPixmap.fromImage(image))
            for item in items:
                item.setIcon(icon)

    def _on_failed(self, failure: AlbumFailed) -> None:
        if isinstance(failure.job, (LoadPeople, Rename, Merge, Split, Reject, Thumbnails)) and not failure.cancelled:
            self.status.setText(failure.message)

    # -- edits ---------------------------------------------------------------------------------
    def current_id(self) -> str | None:
        item = self.people_list.currentItem()
        return None if item is None else item.data(ID)

    def current_person(self) -> Person | None:
        return self.state.person(self.current_id())

    def selected_people(self) -> list[str]:
        return [i.data(ID) for i in self.people_list.selectedItems()]

    def selected_faces(self) -> list[str]:
        return [i.data(ID) for i in self.faces_list.selectedItems()]

    def rename(self) -> None:
        person, name = self.current_person(), self.name_edit.text().strip()
        if person is not None and name and name != person.name:
            self.state.client.submit(Rename(person_id=person.person_id, name=name))

    def merge(self) -> None:
        chosen = self.selected_people()
        if len(chosen) >= 2:
            self.state.client.submit(Merge(person_ids=chosen))

    def split(self) -> None:
        person, faces = self.current_person(), self.selected_faces()
        if person is not None and faces and len(faces) < len(person.faces):
            self.state.client.submit(Split(person_id=person.person_id, face_ids=faces))

    def reject(self) -> None:
        faces = self.selected_faces()
        if faces:
            self.state.client.submit(Reject(face_ids=faces))

    def _update_buttons(self) -> None:
        idle = not self.state.client.busy
        person = self.current_person()
        faces = len(self.faces_list.selectedItems())
        self.rename_button.setEnabled(idle and person is not None)
        self.name_edit.setEnabled(person is not None)
        self.merge_button.setEnabled(idle and len(self.people_list.selectedItems()) >= 2)
        self.split_button.setEnabled(idle and person is not None and 0 < faces < len(person.faces))
        self.reject_button.setEnabled(idle and faces > 0)

    def isComplete(self) -> bool:  # noqa: N802 (Qt)
        return bool(self.state.people)
