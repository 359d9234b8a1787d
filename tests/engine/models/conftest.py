"""Fixtures for the model store: a loopback HTTP server, a small catalogue, a private store."""

from __future__ import annotations

import hashlib
import random
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.models.catalogue import ModelRecord
from engine.models.download import CHUNK_SIZE
from engine.models.store import ModelStore
from engine.nets import registry

# Two and a half chunks, so progress, cancel and resume all see several reads.
BODY = random.Random(0).randbytes(CHUNK_SIZE * 5 // 2)
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()
CODEFORMER_MAGIC = b"test codeformer checkpoint"


@dataclass
class Served:
    """What the server sends, how it misbehaves, and what it saw."""

    body: bytes = BODY
    status: int = 200
    truncate_after: int | None = None
    ignore_range: bool = False
    requests: list[dict] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        served = self.server.served
        asked = self.headers.get("Range")
        seen = {"path": self.path, "range": asked, "sent": 0}
        served.requests.append(seen)
        if served.status != 200:
            self.send_error(served.status)
            return
        body, start = served.body, 0
        if asked and not served.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if served.truncate_after is not None:
            payload = payload[: served.truncate_after]
        seen["sent"] = len(payload)
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _Server(ThreadingHTTPServer):
    served: Served


@dataclass
class Loopback:
    served: Served
    url: str


@pytest.fixture
def server() -> Iterator[Loopback]:
    """An HTTP server on 127.0.0.1 serving ``BODY`` at every path, Range supported."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.served = Served()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    host, port = httpd.server_address[:2]
    yield Loopback(httpd.served, f"http://{host}:{port}/sample.bin")
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL whose port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/sample.bin"


@pytest.fixture
def catalogue() -> dict[str, ModelRecord]:
    """A downloadable model whose bytes are ``BODY``, a non-commercial one, a bundled one."""
    return {
        "sample": ModelRecord(
            id="sample",
            file="sample.pth",
            kind="upscaler",
            arch="realesrgan",
            scale=2,
            purpose="Test upscaler.",
            licence="MIT",
            url="http://127.0.0.1:9/unused",
            size=len(BODY),
            sha256=BODY_SHA256,
        ),
        "restricted": ModelRecord(
            id="restricted",
            file="restricted.pth",
            kind="restoration",
            arch="codeformer",
            purpose="Test restorer.",
            licence="Test Licence (non-commercial use only)",
            licence_url="https://example.invalid/licence",
            url="http://127.0.0.1:9/unused",
            size=10,
            sha256="0" * 64,
            non_commercial=True,
        ),
        "builtin": ModelRecord(
            id="builtin",
            file="builtin.safetensors",
            kind="restoration",
            arch="codeformer",
            purpose="Test bundled model.",
            licence="Apache-2.0",
            bundled=True,
        ),
    }


@pytest.fixture
def store(tmp_path: Path, catalogue: dict[str, ModelRecord]) -> ModelStore:
    return ModelStore(tmp_path / "store", catalogue=catalogue, bundled_dir=tmp_path / "bundled")


@pytest.fixture
def fake_identify_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for ``engine.nets.registry.identify_file``: a real CodeFormer checkpoint is 376 MB.

    Files starting with ``CODEFORMER_MAGIC`` are CodeFormer checkpoints; nothing else is.
    """

    def identify(path: Path) -> SimpleNamespace | None:
        with open(path, "rb") as stream:
            head = stream.read(len(CODEFORMER_MAGIC))
        return SimpleNamespace(arch="codeformer", purpose="restoration") if head == CODEFORMER_MAGIC else None

    monkeypatch.setattr(registry, "identify_file", identify)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a connection fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unexpected network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
