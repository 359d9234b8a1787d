"""The packaged catalogue is complete, honest about licences, never bundles restricted weights."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from engine.errors import ModelMissingError
from engine.models.catalogue import Kind, ModelRecord, load_catalogue
from engine.models.store import BUNDLED_DIR, ModelStore

RECORDS = list(load_catalogue().values())


def test_lists_the_models_the_engine_needs() -> None:
    assert list(load_catalogue()) == [
        "likeness-lite",
        "likeness-fidelity",
        "likeness-background-x2",
        "codeformer",
        "retinaface-resnet50",
        "parsenet",
        "realesrgan-x2plus",
        "realesrgan-x4plus",
        "esrgan-slim-x2",
        "esrgan-slim-x4",
        "arcface-r100",
    ]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_every_record_is_complete(record: ModelRecord) -> None:
    assert record.licence and record.licence_url and record.licence_url.startswith("https://")
    assert record.purpose.endswith(".") and len(record.purpose.split()) >= 6
    assert record.kind in typing.get_args(Kind) and record.kind != "other"
    assert record.arch
    assert (record.scale is not None) == (record.kind == "upscaler")
    if record.bundled:
        assert record.url is None
    elif record.url is None:  # published without a direct address: the user fetches it; nothing is claimed
        assert record.size is None and record.sha256 is None and record.kind == "identity"
    else:
        assert record.url and record.url.startswith("https://")
        assert record.url.endswith("/" + record.file)
        assert record.size and record.size > 1_000_000
        assert record.sha256 and re.fullmatch(r"[0-9a-f]{64}", record.sha256)


def test_codeformer_is_non_commercial_and_not_bundled() -> None:
    codeformer = load_catalogue()["codeformer"]
    assert codeformer.non_commercial and not codeformer.bundled
    assert "non-commercial" in codeformer.licence
    assert codeformer.url == ("https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth")


def test_only_our_own_models_are_bundled_and_their_data_terms_are_stated() -> None:
    # Third-party non-commercial weights are never bundled. likeness-lite, likeness-fidelity and
    # likeness-background-x2 are ours, but trained on CelebA (non-commercial research terms), so
    # they are bundled marked non-commercial; the ESRGAN background upscalers are MIT
    # (@upscalerjs), converted, and the fine-tuned one says so too.
    ours = ["likeness-lite", "likeness-fidelity", "likeness-background-x2"]
    esrgan = ["esrgan-slim-x2", "esrgan-slim-x4"]
    assert [r.id for r in RECORDS if r.bundled] == ours + esrgan
    for record in RECORDS:
        if record.id in ours:
            assert record.non_commercial and "CelebA" in record.licence
            assert record.id != "likeness-background-x2" or "MIT" in record.licence
        elif record.bundled:
            assert not record.non_commercial and "MIT" in record.licence


def test_bundled_default_resolves_inside_the_application(tmp_path: Path) -> None:
    assert BUNDLED_DIR.parts[-2:] == ("resources", "models")
    assert (BUNDLED_DIR.parent.parent / "engine" / "models" / "catalogue.json").is_file()
    store = ModelStore(tmp_path)
    assert store.get("likeness-lite").bundled
    expected = BUNDLED_DIR / "likeness-lite.safetensors"
    if expected.is_file():
        assert store.path("likeness-lite") == expected
    else:  # not trained yet
        with pytest.raises(ModelMissingError, match=re.escape(str(expected))):
            store.path("likeness-lite")


def test_is_read_only() -> None:
    with pytest.raises(TypeError):
        load_catalogue()["codeformer"] = RECORDS[0]  # type: ignore[index]


@pytest.mark.parametrize("record", [r for r in RECORDS if r.bundled], ids=lambda r: r.id)
def test_each_bundled_file_is_the_one_its_record_describes(record: ModelRecord) -> None:
    """A retrained bundled model must come with its new size and sha256 (the app checks them)."""
    from engine.models.download import sha256_of

    path = BUNDLED_DIR / record.file
    if not path.is_file():
        pytest.skip(f"{record.file} is not bundled in this checkout")
    assert path.stat().st_size == record.size
    assert sha256_of(path) == record.sha256
