"""Where exported photos go: names from a pattern, never over an original or an existing file."""

from __future__ import annotations

import string
from pathlib import Path

from engine.api import OutputError

SUFFIXES = {"jpg": ".jpg", "png": ".png", "webp": ".webp", "tif": ".tif"}
WRITABLE = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
DEFAULT_FOLDER = "restored"


def check_pattern(pattern: str) -> str | None:
    """None when ``pattern`` is usable, else a message saying what is wrong."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as err:
        return f"The file name pattern is not valid ({err})."
    unknown = fields - {"name", "w", "n"}
    if unknown:
        return f"Unknown field {{{sorted(unknown)[0]}}} in the file name; use {{name}}, {{w}} or {{n}}."
    if not pattern.strip() or "/" in pattern or "\\" in pattern:
        return "The file name pattern must be a plain file name without folders."
    return None


def output_suffix(source: Path, fmt: str) -> str:
    if fmt == "same":
        suffix = source.suffix.lower()
        return suffix if suffix in WRITABLE else ".png"  # e.g. BMP originals become PNG
    return SUFFIXES[fmt]


def output_path(
    source: Path, folder: Path | None, pattern: str, fmt: str, fidelity: float, n: int, taken: set[Path] | None = None
) -> Path:
    """The export path of ``source``; ``folder`` None = a "restored" folder beside the original.

    A name already used by this export (``taken``), an existing file or the original itself gets
    " (2)", " (3)"… appended, so nothing is ever overwritten.
    """
    problem = check_pattern(pattern)
    if problem:
        raise OutputError(problem)
    folder = folder if folder is not None else source.parent / DEFAULT_FOLDER
    stem = pattern.format(name=source.stem, w=f"{fidelity:.2f}", n=f"{n:03d}").strip() or source.stem
    suffix = output_suffix(source, fmt)
    taken = taken if taken is not None else set()
    candidate = folder / f"{stem}{suffix}"
    k = 2
    while candidate.exists() or candidate.resolve() in taken or _same(candidate, source):
        candidate = folder / f"{stem} ({k}){suffix}"
        k += 1
    taken.add(candidate.resolve())
    return candidate


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()
