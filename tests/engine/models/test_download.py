"""Downloads against a loopback server: resume, truncation, refusal, bad bytes, cancel."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from engine.errors import CancelledError, ChecksumMismatchError, DownloadError
from engine.models.download import CHUNK_SIZE, download, part_path

from .conftest import BODY, BODY_SHA256, Loopback


def test_downloads_and_verifies(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "model.pth"
    seen: list[tuple[int, int | None]] = []
    got = download(server.url, dest, sha256=BODY_SHA256, size=len(BODY), progress=lambda *a: seen.append(a))
    assert got == dest and dest.read_bytes() == BODY
    assert not part_path(dest).exists()
    assert seen[0] == (0, len(BODY)) and seen[-1] == (len(BODY), len(BODY))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert server.served.requests[0]["range"] is None


def test_without_a_known_size_trusts_content_length(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    seen: list[tuple[int, int | None]] = []
    download(server.url, dest, sha256=None, size=None, progress=lambda *a: seen.append(a))
    assert dest.read_bytes() == BODY and seen[-1] == (len(BODY), len(BODY))


def test_resumes_an_existing_part(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    have = CHUNK_SIZE + 123
    part_path(dest).write_bytes(BODY[:have])
    seen: list[tuple[int, int | None]] = []
    download(server.url, dest, sha256=BODY_SHA256, size=len(BODY), progress=lambda *a: seen.append(a))
    assert dest.read_bytes() == BODY
    (request,) = server.served.requests
    assert request["range"] == f"bytes={have}-"
    assert request["sent"] == len(BODY) - have
    assert seen[0] == (have, len(BODY))


def test_restarts_when_the_server_ignores_range(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    part_path(dest).write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    server.served.ignore_range = True
    download(server.url, dest, sha256=BODY_SHA256, size=len(BODY))
    assert dest.read_bytes() == BODY
    assert server.served.requests[0]["sent"] == len(BODY)


def test_a_complete_part_needs_no_request(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    part_path(dest).write_bytes(BODY)
    download(server.url, dest, sha256=BODY_SHA256, size=len(BODY))
    assert dest.read_bytes() == BODY and not server.served.requests


def test_a_complete_part_of_unknown_size_is_kept(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    part_path(dest).write_bytes(BODY)
    download(server.url, dest, sha256=BODY_SHA256, size=None)  # the server answers 416
    assert dest.read_bytes() == BODY
    assert server.served.requests[0]["range"] == f"bytes={len(BODY)}-"


def test_wrong_checksum_names_both_hashes_and_deletes_the_part(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChecksumMismatchError) as caught:
        download(server.url, dest, sha256=wrong, size=len(BODY))
    message = str(caught.value)
    assert "model.pth" in message and wrong in message and BODY_SHA256 in message
    assert not dest.exists() and not part_path(dest).exists()


def test_wrong_size_is_rejected(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    with pytest.raises(ChecksumMismatchError, match="bytes"):
        download(server.url, dest, sha256=None, size=len(BODY) - 1)
    assert not dest.exists() and not part_path(dest).exists()


def test_refused_connection_names_the_url_and_cause(refused_url: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        download(refused_url, tmp_path / "model.pth", sha256=BODY_SHA256, size=len(BODY))
    assert refused_url in str(caught.value)
    assert "refused" in str(caught.value).lower()
    assert isinstance(caught.value.__cause__.reason, ConnectionRefusedError)


def test_http_error_names_the_status(server: Loopback, tmp_path: Path) -> None:
    server.served.status = 404
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url, tmp_path / "model.pth", sha256=BODY_SHA256, size=len(BODY))


def test_truncated_body_keeps_the_part_and_resumes(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    cut = CHUNK_SIZE + 777
    server.served.truncate_after = cut
    with pytest.raises(DownloadError, match="truncated"):
        download(server.url, dest, sha256=BODY_SHA256, size=len(BODY))
    assert not dest.exists() and part_path(dest).read_bytes() == BODY[:cut]

    server.served.truncate_after = None
    download(server.url, dest, sha256=BODY_SHA256, size=len(BODY))
    assert dest.read_bytes() == BODY
    assert server.served.requests[1]["range"] == f"bytes={cut}-"


def test_truncation_is_caught_without_a_known_size(server: Loopback, tmp_path: Path) -> None:
    server.served.truncate_after = 100
    with pytest.raises(DownloadError, match="truncated"):
        download(server.url, tmp_path / "model.pth", sha256=None, size=None)


def test_cancel_stops_between_chunks_and_keeps_the_part(server: Loopback, tmp_path: Path) -> None:
    dest = tmp_path / "model.pth"
    cancel = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done:
            cancel.set()

    with pytest.raises(CancelledError):
        download(server.url, dest, sha256=BODY_SHA256, size=len(BODY), progress=progress, cancel=cancel)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == BODY[:CHUNK_SIZE]
