"""What the window says about the state of a photo: why a result is out of date, and the
engine's warnings in the window's face numbering (faces are numbered from 1 everywhere in the GUI).
"""

from __future__ import annotations

import re
from dataclasses import fields

from engine.api import RestoreOptions

_FACE = re.compile(r"\bface (\d+):")


def one_based(text: str) -> str:
    """The engine numbers faces from 0 in its messages ("face 0: …"); the window from 1."""
    return _FACE.sub(lambda m: f"face {int(m.group(1)) + 1}:", text)


def stale_reason(made: RestoreOptions | None, now: RestoreOptions) -> str:
    """Why a result made with ``made`` is out of date under ``now`` ("" when it is current).

    The JPEG quality only changes how an export is written, not the result.
    """
    if made is None or made == now:
        return ""
    parts = []
    if made.fidelity != now.fidelity:
        parts.append(f"made at w {made.fidelity:.2f}")  # not the new w: the text stays while the slider moves
    if made.upscale != now.upscale:
        parts.append(f"made at {made.upscale}×")
    if made.faces != now.faces or made.only_center_face != now.only_center_face:
        parts.append("face choice changed")
    if (made.references, made.num_references, made.guidance_steps) != (
        now.references,
        now.num_references,
        now.guidance_steps,
    ):
        parts.append("references changed")
    named = {
        "jpeg_quality",
        "fidelity",
        "upscale",
        "faces",
        "only_center_face",
        "references",
        "num_references",
        "guidance_steps",
    }
    if any(getattr(made, f.name) != getattr(now, f.name) for f in fields(RestoreOptions) if f.name not in named):
        parts.append("settings changed")
    return "Out of date: " + "; ".join(parts) if parts else ""
