"""Shared fixtures of the judges' tests: the human-models files (skip with the fix when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ModelMissingError


@pytest.fixture(scope="session")
def human_models_dir() -> Path:
    """vendor/human-models (or $LIKENESS_HUMAN_MODELS); skip, saying how to fetch it, when missing."""
    from training.judges.tfjs_models import find_human_models

    try:
        return find_human_models()
    except ModelMissingError as err:
        pytest.skip(str(err))
