"""What the wizard's pages share: the engine, the album thread, the training process and the choices so far."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from engine.api import Person, Profile, ScanReport

from ..album_client import AlbumClient, AlbumEngine, TrainingRun
from ..session import plural
from ..settings import Settings

__all__ = ["WizardState", "hint", "plural"]


class WizardState(QObject):
    """One wizard run. Pages read and write it; the album and training objects live as long as it."""

    profiles_changed = Signal()

    def __init__(
        self, engine: AlbumEngine, settings: Settings, train_steps: int | None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.settings = settings
        self.train_steps = train_steps  # a fixed number of steps (tests); None: the time budget decides
        self.client = AlbumClient(engine, self)
        self.client.thumbnail_ready.connect(self._remember_thumbnail)
        self.training = TrainingRun(self)
        self.folder: Path | None = None
        self.report: ScanReport | None = None
        self.people: list[Person] = []
        self.current_person: str | None = None  # the person last chosen on the people page
        self.profile: Profile | None = None
        self.thumbs: dict[str, QImage] = {}

    def _remember_thumbnail(self, face_id: str, image: QImage) -> None:
        self.thumbs[face_id] = image

    def person(self, person_id: str | None) -> Person | None:
        return next((p for p in self.people if p.person_id == person_id), None)

    def label(self, person: Person) -> str:
        """The person's name, or "Unnamed N" by their place in the album's list."""
        if person.name:
            return person.name
        unnamed = [p.person_id for p in self.people if not p.name]
        n = unnamed.index(person.person_id) + 1 if person.person_id in unnamed else 0
        return f"Unnamed {n}"

    def shutdown(self) -> None:
        """Stops the scan and the training (both resume next time) and ends the album thread."""
        self.training.stop_and_wait()
        self.client.shutdown()


def hint(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setProperty("hint", True)
    return label
