"""The album personalisation wizard: scan an album, sort its people, make a profile, train it."""

from .wizard import AlbumWizard

__all__ = ["AlbumWizard"]
