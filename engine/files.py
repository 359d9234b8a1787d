"""Atomic writes: a file (or folder) is either complete or absent, never half-written.

Everything the project writes for keeps (photos, models, caches, checkpoints) goes through here:
the content goes to a hidden temporary beside the target, which replaces the target only once it
is complete and on disk. Any interruption, Ctrl-C included, removes the temporary and leaves
the target as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
    os.umask(mask)
    return mask


#: The mode a plain ``open()`` would give a new file. ``mkstemp`` creates 0600, which would make
#: every atomically written output private to the user (unreadable to sync tools, other accounts).
NEW_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = ".part") -> Iterator[IO[bytes]]:
    """A binary file object to write ``path``'s new content into; ``path`` is replaced on success."""
    with atomic_path(path, suffix) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """``path`` gets ``data``, atomically."""
    with atomic_write(path) as f:
        f.write(data)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """A temporary file name beside ``path``, for writers that take a name (``torch.save``,
    ``torch.onnx.export``); it replaces ``path`` when the block ends without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    tmp = Path(name)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, NEW_FILE_MODE)
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; it becomes ``path`` when the block ends without
    an exception (a folder another process completed meanwhile is kept, and this one dropped)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError:  # a non-empty folder of the same name: someone else finished first
            if not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
