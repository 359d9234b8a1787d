"""The Profiles menu: personalise from an album (the wizard), and the person profiles there are, to delete."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from engine.api import LikenessError, ProfileStore

from .icons import icon

log = logging.getLogger(__name__)


class ProfilesMenu(QMenu):
    """Personalise from an Album…, then one submenu per profile (what it has; Delete…)."""

    def __init__(self, store: Callable[[], ProfileStore], personalise: Callable[[], object], parent: QWidget) -> None:
        super().__init__("&Profiles", parent)
        self.store = store
        self.personalise = self.addAction(icon("face"), "Personalise from an &Album…")
        self.personalise.setStatusTip("Find the people in a folder of photos and make a profile of one of them")
        self.personalise.triggered.connect(lambda: personalise())
        self.aboutToShow.connect(self.refresh)
        self.refresh()

    def names(self) -> list[str]:
        try:
            return self.store().names()
        except (OSError, LikenessError) as err:
            log.warning("cannot list the profiles: %s", err)
            return []

    def refresh(self) -> None:
        for action in self.actions():
            if action is not self.personalise:
                self.removeAction(action)
                if action.menu() is not None:
                    action.menu().deleteLater()
        self.addSeparator()
        names = self.names()
        if not names:
            self.addAction("No profiles yet").setEnabled(False)
        for name in names:
            sub = self.addMenu(icon("face"), name)
            sub.addAction(self._describe(name)).setEnabled(False)
            sub.addAction(icon("remove"), "&Delete…", lambda n=name: self.delete(n))

    def _describe(self, name: str) -> str:
        try:
            profile = self.store().get(name)
        except LikenessError as err:
            return str(err)
        trained = "adapter trained" if profile.adapter is not None else "no adapter"
        return f"{len(profile.chosen)} reference faces, {trained}"

    def delete(self, name: str) -> bool:
        """Asks, then deletes the profile and every file made from the person's photos."""
        text = (
            f"Delete the profile {name!r}? Its reference faces, identity data and trained adapter are removed; "
            "your photos are not touched."
        )
        answer = QMessageBox.question(self.parentWidget(), "Delete profile", text)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        try:
            self.store().delete(name)
        except LikenessError as err:
            QMessageBox.warning(self.parentWidget(), "Delete profile", str(err))
            return False
        self.refresh()
        return True
