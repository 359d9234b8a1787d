"""User-facing errors of the engine.

Every failure a user can cause or fix is one of these, with a message that names the file
and the cause in one line. The CLI prints ``str(err)``; the GUI shows it; logs keep tracebacks.
"""

from __future__ import annotations


class LikenessError(Exception):
    """Base class: a problem the user can act on. ``str()`` is the one-line message."""


class InvalidImageError(LikenessError):
    """An input file is not a readable image (missing, empty, corrupt, unsupported)."""


class NoFaceFoundError(LikenessError):
    """No face large enough was found where one was required."""


class ModelMissingError(LikenessError):
    """A model is needed but not installed; the message names the command that installs it."""


class CheckpointFormatError(LikenessError):
    """A weights file is not in a format the engine understands."""


class ChecksumMismatchError(LikenessError):
    """A downloaded or imported file does not have the catalogue's sha256."""


class DownloadError(LikenessError):
    """A download failed (refused connection, truncated body, HTTP error)."""


class OutputError(LikenessError):
    """An output could not be written, or would overwrite an input."""


class OutOfMemoryError(LikenessError):
    """The device ran out of memory; the caller may retry on the CPU."""


class CancelledError(LikenessError):
    """The user cancelled the job."""
