"""The user's model store: which models are installed, where, and how they get there.

Callers ask by name (``store.path("codeformer")``), never by path. Catalogued models live in the
store root under their catalogue file name, imported ones under ``imported/`` with their records
in ``imported.json``, and the bundled default in the application's ``resources/models``.
Only ``install`` opens network connections; everything else reads local files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import (
    CheckpointFormatError,
    ChecksumMismatchError,
    LikenessError,
    ModelMissingError,
)
from engine.files import atomic_write
from engine.models.catalogue import Kind, ModelRecord, load_catalogue
from engine.models.download import CHUNK_SIZE, Progress, download, part_path, sha256_of
from engine.userdata import data_root

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"
IMPORTED_DIR = "imported"
IMPORTED_INDEX = "imported.json"
IMPORTED_LICENCE = "Unknown: imported by you; the terms of its source apply."

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def default_root() -> Path:
    """The per-user models folder: ``$LIKENESS_HOME/models`` or the platform's data dir."""
    return data_root() / "models"


class ModelStore:
    """Installed models of one user, looked up by catalogue id or imported name.

    Args:
        root: Folder holding downloaded and imported models; ``default_root()`` when None.
        catalogue: Known models; the packaged catalogue when None (tests pass their own).
        bundled_dir: Where bundled models ship; the repository's ``resources/models`` when None.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        catalogue: Mapping[str, ModelRecord] | None = None,
        bundled_dir: Path | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.catalogue = load_catalogue() if catalogue is None else catalogue
        self.bundled_dir = BUNDLED_DIR if bundled_dir is None else Path(bundled_dir)

    # Looking up

    def records(self) -> list[ModelRecord]:
        """Every model the user can pick: the catalogue, then their imports."""
        return [*self.catalogue.values(), *self._imported().values()]

    def get(self, name: str) -> ModelRecord:
        """The record called ``name``; ModelMissingError if no model has that name."""
        record = self.catalogue.get(name) or self._imported().get(name)
        if record is None:
            known = ", ".join(record.id for record in self.records())
            raise ModelMissingError(
                f"There is no model called {name!r} (known: {known}). "
                "To use a file of your own: likeness models import FILE"
            )
        return record

    def is_installed(self, name: str) -> bool:
        """Whether the file is in place with the expected size (cheap: no hashing)."""
        return self._present(self.get(name))

    def path(self, name: str) -> Path:
        """The installed file of ``name``; ModelMissingError telling the user how to get it."""
        record = self.get(name)
        if not self._present(record):
            raise ModelMissingError(self._missing_message(record))
        return self._file(record)

    def sha256(self, name: str) -> str:
        """sha256 of the installed file of ``name``: the catalogue's when it has one, else the file
        hashed (what an adapter records of the model it was trained for)."""
        record = self.get(name)
        return record.sha256 or sha256_of(self.path(name))

    def verify(self, name: str) -> Path:
        """Like ``path``, but also hashes the file: for a "check my models" action."""
        path = self.path(name)
        record = self.get(name)
        if record.sha256 is not None:
            got = sha256_of(path)
            if got != record.sha256:
                raise ChecksumMismatchError(
                    f"{path} is damaged: sha256 expected {record.sha256}, got {got}. {self._remedy(record)}"
                )
        return path

    # Changing

    def install(
        self,
        name: str,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        url: str | None = None,
    ) -> Path:
        """Download a catalogued model (the only network access in the engine).

        An interrupted or cancelled download resumes where it stopped on the next call. ``url``
        replaces the catalogue's, e.g. for a mirror; the file must still match size and sha256.
        """
        record = self.get(name)
        source = url or record.url
        if record.bundled:
            raise LikenessError(f"Model {name} ships with Likeness; there is nothing to download.")
        if record.imported or source is None:
            raise LikenessError(f"Model {name} has no download address: import its file instead.")
        dest = self._file(record)
        if self._present(record):
            return dest
        return download(source, dest, sha256=record.sha256, size=record.size, progress=progress, cancel=cancel)

    def import_file(self, path: Path | str, name: str | None = None) -> ModelRecord:
        """Copy a local weights file into the store and return its record.

        The user's file is only read. A byte-identical copy of a catalogued model installs that
        model; anything else must be a CodeFormer checkpoint or a network spandrel recognises, and
        is recorded as an imported model called ``name`` (by default, from the file name).
        """
        source = Path(path).expanduser().resolve()
        if not source.is_file():
            raise CheckpointFormatError(f"Cannot import {source}: there is no such file.")
        if name is not None and not _NAME.fullmatch(name):
            raise LikenessError(f"{name!r} cannot name a model: use letters, digits, '.', '-' and '_'.")
        incoming = self.root / IMPORTED_DIR
        incoming.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=incoming, prefix=".import-", suffix=source.suffix.lower())
        os.close(handle)
        temp = Path(temp_name)
        try:
            digest = _copy_hashing(source, temp)
            for record in self.catalogue.values():
                if record.sha256 == digest and not record.bundled:
                    dest = self._file(record)
                    os.replace(temp, dest)
                    return record
            target = self.catalogue.get(name) if name else None
            if target is not None and target.sha256 is None and not target.bundled:
                # A catalogued model whose publisher gives no checksum (ArcFace): the file is
                # accepted for it when its architecture is the record's.
                _check_architecture(temp, source, target)
                os.replace(temp, self._file(target))
                return target
            record = self._new_import(source, temp, digest, name or _name_from(source))
            os.replace(temp, self._file(record))
        finally:
            temp.unlink(missing_ok=True)
        imported = self._imported()
        imported[record.id] = record
        self._save_imported(imported)
        return record

    def remove(self, name: str) -> None:
        """Delete a downloaded or imported model (and any unfinished download of it)."""
        record = self.get(name)
        if record.bundled:
            raise LikenessError(f"Model {name} ships with Likeness and cannot be removed.")
        if record.imported:
            imported = self._imported()
            del imported[name]
            self._save_imported(imported)
        file = self._file(record)
        file.unlink(missing_ok=True)
        part_path(file).unlink(missing_ok=True)

    # Internals

    def _file(self, record: ModelRecord) -> Path:
        return (self.bundled_dir if record.bundled else self.root) / record.file

    def _present(self, record: ModelRecord) -> bool:
        try:
            size = self._file(record).stat().st_size
        except OSError:
            return False
        return record.size is None or size == record.size

    def _missing_message(self, record: ModelRecord) -> str:
        file = self._file(record)
        state = "is damaged (wrong size)" if file.exists() else "is not installed"
        licence = (
            f" Its licence allows non-commercial use only: {record.licence}, {record.licence_url}."
            if record.non_commercial
            else ""
        )
        return f"Model {record.id} {state} ({file}).{licence} {self._remedy(record)}"

    def _remedy(self, record: ModelRecord) -> str:
        if record.bundled:
            return (
                "It ships with Likeness: reinstall the application, "
                "or use a model of your own with: likeness models import FILE"
            )
        if record.imported:
            return f"Import it again with: likeness models import {record.source}"
        return (
            f"Install it with: likeness models install {record.id} "
            "(or, if you already have the file: likeness models import FILE)"
        )

    def _new_import(self, source: Path, copy: Path, digest: str, name: str) -> ModelRecord:
        taken = {existing.lower() for existing in [*self.catalogue, *self._imported()]}
        if name.lower() in taken:  # file names collide case-insensitively on macOS and Windows
            raise LikenessError(
                f"A model called {name} already exists: import {source.name} under another "
                "name, or remove the existing model first."
            )
        kind, arch, scale = _classify(copy, source)
        return ModelRecord(
            id=name,
            file=f"{IMPORTED_DIR}/{name}{copy.suffix}",
            kind=kind,
            arch=arch,
            scale=scale,
            purpose=_import_purpose(kind, scale, source),
            licence=IMPORTED_LICENCE,
            size=copy.stat().st_size,
            sha256=digest,
            source=str(source),
        )

    def _imported(self) -> dict[str, ModelRecord]:
        index = self.root / IMPORTED_INDEX
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))["models"]
            return {entry["name"]: _record_from_entry(entry) for entry in entries}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as err:
            raise LikenessError(f"{index} is damaged ({err!r}); move it away and import your models again.") from err

    def _save_imported(self, records: dict[str, ModelRecord]) -> None:
        entries = [_entry_from_record(record) for record in records.values()]
        text = json.dumps({"version": 1, "models": entries}, indent=2)
        with atomic_write(self.root / IMPORTED_INDEX) as f:
            f.write((text + "\n").encode("utf-8"))


def _copy_hashing(source: Path, dest: Path) -> str:
    """Copy a file and return its sha256, reading it once (weights are hundreds of MB)."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, dest.open("wb") as writer:
        while chunk := reader.read(CHUNK_SIZE):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def _name_from(source: Path) -> str:
    """A model name from a file name: 'My Upscaler (x4).pth' -> 'my-upscaler-x4'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", source.stem.lower()).strip("-._")
    return name or "model"


def _check_architecture(copy: Path, source: Path, record: ModelRecord) -> None:
    """CheckpointFormatError unless ``copy`` holds the architecture ``record`` names."""
    from engine.nets import registry  # torch-heavy: only when importing

    if registry.architecture(record.arch) is not None:
        descriptor = registry.describe_file(copy, name=source)  # CheckpointFormatError naming the file
        if descriptor.arch != record.arch:
            raise CheckpointFormatError(
                f"{source} is a {descriptor.arch} model, not the {record.arch} model {record.id} needs."
            )
        descriptor.load()  # the weights must fit the network their shapes describe
        return
    _, arch, _ = _classify(copy, source)
    if arch != record.arch:
        raise CheckpointFormatError(f"{source} is a {arch} model, not the {record.arch} model {record.id} needs.")


def _classify(copy: Path, source: Path) -> tuple[Kind, str, int | None]:
    """Kind, architecture and scale of a weights file, or CheckpointFormatError."""
    from engine.nets import registry  # torch-heavy: only when importing

    descriptor = registry.identify_file(copy)  # None for anything else, unreadable files included
    if descriptor is not None and descriptor.purpose == "restoration":
        return "restoration", descriptor.arch, None

    import spandrel

    try:
        loaded = spandrel.ModelLoader().load_from_file(copy)
    except Exception as err:  # torch and spandrel raise many types on foreign or corrupt files
        raise CheckpointFormatError(
            f"{source} is not a model Likeness can use: expected a CodeFormer checkpoint or an "
            f"upscaler that spandrel recognises ({type(err).__name__}: {str(err).rstrip('.')})."
        ) from err
    arch = loaded.architecture.id.lower()
    scale = loaded.scale
    if loaded.purpose in ("SR", "Restoration") and scale > 1:
        return "upscaler", arch, scale
    return "other", arch, scale if scale > 1 else None


def _import_purpose(kind: Kind, scale: int | None, source: Path) -> str:
    what = {
        "restoration": "face-restoration model",
        "upscaler": f"×{scale} upscaler",
    }.get(kind, "model")
    return f"Your own {what}, imported from {source}."


def _entry_from_record(record: ModelRecord) -> dict[str, Any]:
    return {
        "name": record.id,
        "file": record.file,
        "sha256": record.sha256,
        "size": record.size,
        "kind": record.kind,
        "arch": record.arch,
        "scale": record.scale,
        "source": record.source,
    }


def _record_from_entry(entry: dict[str, Any]) -> ModelRecord:
    source = Path(entry["source"])
    return ModelRecord(
        id=entry["name"],
        file=entry["file"],
        kind=entry["kind"],
        arch=entry["arch"],
        scale=entry["scale"],
        purpose=_import_purpose(entry["kind"], entry["scale"], source),
        licence=IMPORTED_LICENCE,
        size=entry["size"],
        sha256=entry["sha256"],
        source=str(source),
    )
