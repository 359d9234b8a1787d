"""Shared fixtures: the ../shared data folder and a private Likeness home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIKENESS_SHARED", REPO.parent / "shared"))
#: CI sets this: there ../shared is part of the test setup, and a test that cannot find it fails.
REQUIRE_SHARED = os.environ.get("LIKENESS_REQUIRE_SHARED") == "1"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is missing (fail in CI)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"needs {path} (the shared data folder beside the checkout is missing)"
        if REQUIRE_SHARED:
            pytest.fail(message + "; LIKENESS_REQUIRE_SHARED=1 makes this an error")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets an empty LIKENESS_HOME so no test sees the user's installed models."""
    home = tmp_path_factory.mktemp("likeness-home")
    monkeypatch.setenv("LIKENESS_HOME", str(home))
    return home


@pytest.fixture
def no_bundled_model(tmp_path_factory, monkeypatch) -> Path:
    """Hide resources/models, as on an installation whose bundled model is missing."""
    empty = tmp_path_factory.mktemp("no-bundled-models")
    monkeypatch.setattr("engine.models.store.BUNDLED_DIR", empty)
    return empty
