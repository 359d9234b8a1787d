"""Networks of the engine. Each family lives in its own sub-package with config and loader."""

from .codeformer import identify_checkpoint as _identify_codeformer


def identify_checkpoint(path) -> str | None:
    """Name of the architecture family a weights file holds (``"codeformer"``), or None."""
    return _identify_codeformer(path)
