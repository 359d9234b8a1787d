"""The album personalisation wizard (Profiles → Personalise from an Album…).

Pages: choose a folder → scan it (progress, stop, resume) → sort its people (merge, split,
rename, remove faces) → pick a person and review the references of their new profile → train
the profile's adapter (progress, ETA, a before/after preview) → done. Album work runs in the
wizard's own album thread (``app.album_client.AlbumClient``), the training in a separate process
(``TrainingRun``). Cancel or close stops both without asking: the scan keeps what it did and the
training its state, so running them again continues.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget, QWizard

from ..album_client import AlbumEngine, ApiAlbumEngine
from ..icons import icon
from ..settings import Settings
from .people_page import PeoplePage
from .profile_pages import DonePage, ReferencesPage, TrainPage
from .scan_pages import FolderPage, ScanPage
from .state import WizardState


class AlbumWizard(QWizard):
    FOLDER, SCAN, PEOPLE, REFERENCES, TRAIN, DONE = range(6)

    profiles_changed = Signal()  # a profile was made or trained

    def __init__(
        self,
        engine: AlbumEngine | None = None,
        settings: Settings | None = None,
        parent: QWidget | None = None,
        *,
        train_steps: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Personalise from an Album")
        self.setWindowIcon(icon("face"))
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage)
        self.resize(940, 700)
        self.state = WizardState(engine or ApiAlbumEngine(), settings or Settings(), train_steps, self)
        self.state.profiles_changed.connect(self.profiles_changed)
        self.folder_page = FolderPage(self.state)
        self.scan_page = ScanPage(self.state)
        self.people_page = PeoplePage(self.state)
        self.references_page = ReferencesPage(self.state)
        self.train_page = TrainPage(self.state)
        self.done_page = DonePage(self.state)
        pages = (
            self.folder_page,
            self.scan_page,
            self.people_page,
            self.references_page,
            self.train_page,
            self.done_page,
        )
        for n, page in enumerate(pages):
            self.setPage(n, page)
        self._closed = False

    def done(self, result: int) -> None:
        """Finish, Cancel or close: stops the scan and the training (both resume next time)."""
        self.shutdown()
        super().done(result)

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self.state.shutdown()
