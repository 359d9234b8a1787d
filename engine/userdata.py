"""Where Likeness keeps a user's own data: models, caches, album indexes and person profiles.

One root for all of it: ``$LIKENESS_HOME`` when set (tests, portable installs), else the
platform's per-user data folder. Albums and profiles hold private photos' faces, so nothing
here is ever written beside the user's photos.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from .errors import LikenessError

HOME_ENV = "LIKENESS_HOME"


def data_root() -> Path:
    """``$LIKENESS_HOME`` or the platform's user data folder (created on first write, not here)."""
    home = os.environ.get(HOME_ENV)
    if home:
        folder = Path(home).expanduser()
        if folder.exists() and not folder.is_dir():
            raise LikenessError(f"{folder}: {HOME_ENV} names a file, not a folder; point it at a folder")
        return folder
    return Path(platformdirs.user_data_dir("Likeness", appauthor=False))
