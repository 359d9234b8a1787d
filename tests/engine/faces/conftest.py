"""Fixtures for the facexlib-backed parts: they must never download anything."""

from __future__ import annotations

import pytest


@pytest.fixture
def facexlib_offline(monkeypatch) -> None:
    """Makes any facexlib download attempt fail the test."""
    import facexlib.utils.misc

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(facexlib.utils.misc, "load_file_from_url", no_download)
