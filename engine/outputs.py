"""Where each result goes: one naming policy that never replaces a file it should not.

An output never replaces an input of the same run, another output of the same run, or (unless
the user asks for ``overwrite``) a file that already exists: such a collision gets the next
numbered name (``a_restored-2.jpg``) and a notice. ``resume`` instead skips the photos whose
output is already there, so a batch that was killed finishes where it stopped (results are
written atomically: an existing output is complete). Every output folder is checked before any
photo is restored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import OutputError
from .imageio import SUFFIX_FORMATS

OUTPUT_TAG = "_restored"
#: ``--format`` choices; "same" keeps the input's format when it can be written, else PNG.
OUTPUT_FORMATS = ("same", "jpg", "png", "webp", "tiff")
FALLBACK_SUFFIX = ".png"  # lossless, and every viewer reads it


@dataclass(frozen=True)
class PlannedOutput:
    """One photo's output: ``output`` None when ``resume`` found it done; ``notice`` says why a
    name or format differs from the usual one."""

    photo: Path
    output: Path | None
    notice: str | None = None


def is_output_name(path: Path) -> bool:
    """Whether ``path`` is named like an output of this policy (``a_restored.jpg``, ``a_restored-2.jpg``)."""
    return re.search(rf"{OUTPUT_TAG}(-\d+)?$", path.stem) is not None


def output_suffix(photo: Path, fmt: str = "same") -> tuple[str, str | None]:
    """(suffix, notice): the output's suffix for ``photo`` and ``--format``, with a notice when
    the input's own format cannot be written."""
    if fmt != "same":
        return f".{fmt}", None
    suffix = photo.suffix.lower()
    if suffix in SUFFIX_FORMATS:
        return photo.suffix, None
    kind = suffix.lstrip(".").upper() or "this format"
    return FALLBACK_SUFFIX, f"{kind} cannot be written; the result is a PNG"


def usual_output(photo: Path, root: Path, out_dir: Path | None, suffix: str) -> Path:
    """``name_restored.ext`` beside the photo, or under ``out_dir`` mirroring walked folders."""
    name = f"{photo.stem}{OUTPUT_TAG}{suffix}"
    if out_dir is None:
        return photo.with_name(name)
    return out_dir / photo.parent.relative_to(root) / name


def plan_outputs(
    photos: Sequence[tuple[Path, Path]],
    out_dir: Path | None = None,
    *,
    fmt: str = "same",
    overwrite: bool = False,
    resume: bool = False,
) -> list[PlannedOutput]:
    """The output of each (photo, folder it was found under), decided before any work starts."""
    if fmt not in OUTPUT_FORMATS:
        raise OutputError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    inputs = {_key(photo) for photo, _ in photos}
    taken: set[str] = set()
    plans = []
    for photo, root in photos:
        suffix, notice = output_suffix(photo, fmt)
        usual = usual_output(photo, root, out_dir, suffix)
        if resume:
            remove_stale_temporaries(usual)
        if resume and usual.is_file() and _key(usual) not in inputs and _key(usual) not in taken:
            taken.add(_key(usual))
            plans.append(PlannedOutput(photo, None, f"{usual} exists: already restored, skipped"))
            continue
        output, n = usual, 1
        while _key(output) in inputs or _key(output) in taken or (output.exists() and not overwrite):
            n += 1
            output = usual.with_name(f"{usual.stem}-{n}{usual.suffix}")
        if output != usual:
            why = (
                "is one of the inputs"
                if _key(usual) in inputs
                else "is another output of this run"
                if _key(usual) in taken
                else "already exists"
            )
            notice = f"{usual.name} {why}; writing {output.name}" + (f" ({notice})" if notice else "")
        taken.add(_key(output))
        plans.append(PlannedOutput(photo, output, notice))
    return plans


def remove_stale_temporaries(output: Path) -> None:
    """Deletes what a killed run left while writing ``output`` (``.NAME.XXXX.part``): a process
    killed outright runs no cleanup, and the run being resumed is the one that wrote them."""
    if output.parent.is_dir():
        for leftover in output.parent.glob(f".{output.name}.*.part"):
            leftover.unlink(missing_ok=True)


def check_output_folders(plans: Sequence[PlannedOutput]) -> None:
    """OutputError naming the folder when an output cannot be written there (checked up front)."""
    seen: set[Path] = set()
    for plan in plans:
        if plan.output is None or plan.output.parent in seen:
            continue
        folder = plan.output.parent
        seen.add(folder)
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None:
            continue
        if not existing.is_dir():
            raise OutputError(f"{existing}: is a file, not a folder; choose another output folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"{existing}: this folder cannot be written to; choose another output folder")


def _key(path: Path) -> str:
    """Paths compared as the file system resolves them (``a/../b`` and symlinks)."""
    return os.path.normcase(str(path.resolve()))
