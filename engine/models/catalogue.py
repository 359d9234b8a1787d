"""The catalogue: one record per model Likeness knows by name.

The records live in ``catalogue.json`` beside this file so that adding a model, or correcting a
hash, is a data change. Keys starting with ``_`` in that file are notes for maintainers (where a
checksum came from, licence caveats) and are dropped here; any other unknown key is an error, so
a typo cannot silently blank a field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Kind = Literal["restoration", "fidelity", "detection", "parsing", "upscaler", "identity", "other"]

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")


@dataclass(frozen=True)
class ModelRecord:
    """What Likeness knows about one model file, whether catalogued or imported by the user.

    Attributes:
        id: The name users and code ask for (``likeness models install ID``).
        file: File name, relative to the store root (or to the bundled folder when ``bundled``).
        kind: What the engine uses it for; "other" only for imports it cannot place.
        arch: Network family the engine's loader expects, e.g. "codeformer", "realesrgan".
        purpose: One sentence a user can read in the models dialog.
        licence: Licence of the weights as shown to the user.
        licence_url: Where the licence text is.
        url: Official download; None for bundled and imported models.
        size: Bytes, or None when unknown (not yet trained, or never published).
        sha256: Hex digest, or None when unknown; downloads are then checked by size alone.
        scale: Upscaling factor of upscalers, else None.
        non_commercial: The licence forbids commercial use: shown to users. Third-party models
            with such terms are never bundled; the project's own default model is, marked so.
        bundled: Ships inside the application instead of living in the user's store.
        source: For imported models, the path the user imported from.
    """

    id: str
    file: str
    kind: Kind
    arch: str
    purpose: str
    licence: str
    licence_url: str | None = None
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    scale: int | None = None
    non_commercial: bool = False
    bundled: bool = False
    source: str | None = None

    @property
    def imported(self) -> bool:
        """True for a model the user brought in with ``import_file``."""
        return self.source is not None


def load_catalogue(path: Path = CATALOGUE_PATH) -> Mapping[str, ModelRecord]:
    """Return the catalogued models by id, in file order (the order the models dialog shows).

    The result is read-only and shared: the file is parsed once per process.
    """
    return _load(path)


@cache
def _load(path: Path) -> Mapping[str, ModelRecord]:
    data = json.loads(path.read_text(encoding="utf-8"))
    records: dict[str, ModelRecord] = {}
    for entry in data["models"]:
        fields = {key: value for key, value in entry.items() if not key.startswith("_")}
        record = ModelRecord(**fields)
        if record.id in records:
            raise ValueError(f"{path}: model id {record.id!r} is listed twice")
        records[record.id] = record
    return MappingProxyType(records)
