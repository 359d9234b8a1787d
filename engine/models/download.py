"""Resumable, verified downloads with nothing but the standard library.

Bytes go to ``<dest>.part``; only a file whose size and sha256 match is renamed to ``dest``, so a
file at ``dest`` is always whole. A broken connection or a cancel keeps the ``.part`` and the next
call resumes it with an HTTP Range request; a checksum mismatch deletes it, since resuming a
corrupt prefix could never succeed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engine.errors import CancelledError, ChecksumMismatchError, DownloadError

Progress = Callable[[int, int | None], None]
"""Called as ``progress(done_bytes, total_bytes)`` after each chunk; total is None if unknown."""

CHUNK_SIZE = 1 << 20
USER_AGENT = "Likeness model downloader"


def part_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of ``dest`` are kept."""
    return dest.with_name(dest.name + ".part")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large weights do not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming an earlier ``.part``, and verify it.

    Args:
        url: Where the file is.
        dest: Final path; its folder is created if needed.
        sha256: Expected hex digest, or None to check the size alone.
        size: Expected bytes, or None to trust the server's Content-Length.
        progress: Called with (done, total) bytes as data arrives.
        cancel: Checked between chunks; when set, stops with CancelledError, keeping the .part.
        timeout: Seconds to wait on the connection before giving up.

    Raises:
        DownloadError: refused or broken connection, HTTP error, truncated body.
        ChecksumMismatchError: the bytes are complete but wrong (the .part is deleted).
        CancelledError: ``cancel`` was set.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    total = size
    if size is None or have < size:
        total = _fetch(url, part, have, size, progress, cancel, timeout)
    _verify(part, dest, url, sha256, size if size is not None else total)
    os.replace(part, dest)
    return dest


def _fetch(
    url: str,
    part: Path,
    have: int,
    size: int | None,
    progress: Progress | None,
    cancel: threading.Event | None,
    timeout: float,
) -> int | None:
    """Append the missing bytes to ``part``; return the total size the file should have."""
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            # Nothing left to send: the .part is already whole (verification decides).
            return have
        raise DownloadError(f"Could not download {url}: the server answered HTTP {err.code} {err.reason}.") from err
    except urllib.error.URLError as err:
        raise DownloadError(f"Could not connect to {url}: {err.reason}.") from err
    except OSError as err:
        raise DownloadError(f"Could not connect to {url}: {err}.") from err

    with response:
        if have and response.status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != have:
                raise DownloadError(
                    f"Could not resume {url}: the server sent bytes from {start}, not {have}; "
                    f"delete {part} and try again."
                )
        else:
            have = 0  # the server ignored Range and sends the whole file: start over
        length = response.headers.get("Content-Length")
        total = size if size is not None else (have + int(length) if length else None)
        done = have
        try:
            with part.open("ab" if have else "wb") as stream:
                if progress:
                    progress(done, total)
                while True:
                    if cancel is not None and cancel.is_set():
                        raise CancelledError(f"Download of {url} cancelled; {done} bytes kept for resuming.")
                    chunk = response.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    stream.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as err:
            raise DownloadError(
                f"Download of {url} broke off after {done} bytes ({err}); run it again to resume."
            ) from err
    if total is not None and done < total:
        raise DownloadError(f"Download of {url} was truncated: got {done} of {total} bytes; run it again to resume.")
    return total


def _range_start(content_range: str | None) -> int | None:
    """First byte offset of a ``Content-Range: bytes START-END/TOTAL`` header."""
    match = re.match(r"bytes (\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _verify(part: Path, dest: Path, url: str, sha256: str | None, size: int | None) -> None:
    """Reject a complete-looking file whose size or hash is wrong, deleting it."""
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        part.unlink()
        raise ChecksumMismatchError(
            f"{dest.name} from {url} has {got_size} bytes, expected {size}; the download was deleted, run it again."
        )
    if sha256 is None:
        return
    got = sha256_of(part)
    if got != sha256.lower():
        part.unlink()
        raise ChecksumMismatchError(
            f"{dest.name} from {url} is not the expected file: sha256 expected {sha256}, "
            f"got {got}; the download was deleted, run it again."
        )
