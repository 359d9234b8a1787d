"""The model store: lookup, messages, install over loopback, imports, removal, no hidden network."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import platformdirs
import pytest
import torch
from spandrel.architectures.Compact import Compact

from engine.errors import (
    CancelledError,
    CheckpointFormatError,
    ChecksumMismatchError,
    LikenessError,
    ModelMissingError,
)
from engine.models.download import part_path
from engine.models.store import ModelStore, default_root

from .conftest import BODY, CODEFORMER_MAGIC, Loopback


@pytest.fixture
def tiny_upscaler(tmp_path: Path) -> Path:
    """A two-times Real-ESRGAN Compact network with 8 features: a few kilobytes."""
    torch.manual_seed(0)
    net = Compact(num_feat=8, num_conv=2, upscale=2)
    path = tmp_path / "user files" / "My Tiny Upscaler (x2).pth"
    path.parent.mkdir()
    torch.save(net.state_dict(), path)
    return path


def test_root_follows_likeness_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIKENESS_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / "models"
    assert ModelStore().root == tmp_path / "home" / "models"


def test_root_defaults_to_the_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIKENESS_HOME", raising=False)
    expected = Path(platformdirs.user_data_dir("Likeness", appauthor=False)) / "models"
    assert ModelStore().root == expected


def test_missing_model_message_says_what_to_do(store: ModelStore) -> None:
    assert not store.is_installed("restricted")
    with pytest.raises(ModelMissingError) as caught:
        store.path("restricted")
    message = str(caught.value)
    assert "restricted" in message
    assert "non-commercial" in message and "https://example.invalid/licence" in message
    assert "likeness models install restricted" in message
    assert "likeness models import FILE" in message
    assert "\n" not in message


def test_missing_permissive_model_does_not_mention_licence(store: ModelStore) -> None:
    with pytest.raises(ModelMissingError) as caught:
        store.path("sample")
    assert "non-commercial" not in str(caught.value)


def test_unknown_name(store: ModelStore) -> None:
    with pytest.raises(ModelMissingError, match="no model called 'nope'.*sample"):
        store.get("nope")


def test_install_downloads_verifies_and_is_idempotent(store: ModelStore, server: Loopback) -> None:
    seen: list[tuple[int, int | None]] = []
    path = store.install("sample", url=server.url, progress=lambda *a: seen.append(a))
    assert path == store.root / "sample.pth" == store.path("sample")
    assert path.read_bytes() == BODY and store.is_installed("sample")
    assert seen[-1] == (len(BODY), len(BODY))
    assert store.verify("sample") == path
    store.install("sample", url=server.url)
    assert len(server.served.requests) == 1


def test_install_resumes_after_cancel(store: ModelStore, server: Loopback) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        store.install("sample", url=server.url, cancel=cancel)
    assert part_path(store.root / "sample.pth").exists() and not store.is_installed("sample")

    cancel.clear()
    server.served.truncate_after = 1000
    with pytest.raises(LikenessError, match="truncated"):
        store.install("sample", url=server.url)
    server.served.truncate_after = None
    store.install("sample", url=server.url)
    assert store.path("sample").read_bytes() == BODY
    assert server.served.requests[-1]["range"] == "bytes=1000-"


def test_bundled_models_resolve_to_the_bundled_folder(store: ModelStore) -> None:
    with pytest.raises(ModelMissingError, match="ships with Likeness"):
        store.path("builtin")
    store.bundled_dir.mkdir()
    (store.bundled_dir / "builtin.safetensors").write_bytes(b"weights")
    assert store.path("builtin") == store.bundled_dir / "builtin.safetensors"
    with pytest.raises(LikenessError, match="ships with Likeness"):
        store.install("builtin")
    with pytest.raises(LikenessError, match="ships with Likeness"):
        store.remove("builtin")


def test_verify_catches_a_damaged_file(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "sample.pth").write_bytes(bytes(len(BODY)))
    with pytest.raises(ChecksumMismatchError, match="likeness models install sample"):
        store.verify("sample")


def test_import_of_a_catalogued_file_installs_it(store: ModelStore, tmp_path: Path) -> None:
    mine = tmp_path / "downloaded elsewhere.bin"
    mine.write_bytes(BODY)
    before = mine.stat()
    record = store.import_file(mine)
    assert record is store.catalogue["sample"]
    assert store.path("sample").read_bytes() == BODY
    assert mine.read_bytes() == BODY and mine.stat().st_mtime_ns == before.st_mtime_ns
    assert [r.id for r in store.records()] == ["sample", "restricted", "builtin"]
    assert not (store.root / "imported.json").exists()


def test_import_of_garbage_is_refused_and_leaves_nothing(store: ModelStore, tmp_path: Path) -> None:
    garbage = tmp_path / "holiday.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 100)
    with pytest.raises(CheckpointFormatError) as caught:
        store.import_file(garbage)
    message = str(caught.value)
    assert str(garbage) in message and "CodeFormer" in message and "spandrel" in message
    assert garbage.exists()
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == []
    assert len(store.records()) == 3


def test_import_of_a_missing_file(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(CheckpointFormatError, match="no such file"):
        store.import_file(tmp_path / "nowhere.pth")


def test_import_of_a_spandrel_upscaler(store: ModelStore, tiny_upscaler: Path) -> None:
    original = tiny_upscaler.read_bytes()
    record = store.import_file(tiny_upscaler)
    assert (record.id, record.kind, record.arch, record.scale) == (
        "my-tiny-upscaler-x2",
        "upscaler",
        "compact",
        2,
    )
    assert record.imported and record.source == str(tiny_upscaler)
    assert tiny_upscaler.read_bytes() == original
    assert store.path(record.id).read_bytes() == original
    assert store.path(record.id).parent == store.root / "imported"

    reopened = ModelStore(store.root, catalogue=store.catalogue, bundled_dir=store.bundled_dir)
    assert reopened.get(record.id) == record
    assert reopened.records()[-1] == record
    index = json.loads((store.root / "imported.json").read_text())
    assert index["models"][0]["source"] == str(tiny_upscaler)


@pytest.mark.usefixtures("fake_identify_checkpoint")
def test_import_of_a_codeformer_checkpoint(store: ModelStore, tmp_path: Path) -> None:
    mine = tmp_path / "codeformer-finetune.pth"
    mine.write_bytes(CODEFORMER_MAGIC + b"...")
    record = store.import_file(mine, name="Family-v2")
    assert (record.id, record.kind, record.arch) == ("Family-v2", "restoration", "codeformer")
    assert store.is_installed("Family-v2")


def test_import_names_must_be_free_and_valid(store: ModelStore, tiny_upscaler: Path) -> None:
    with pytest.raises(LikenessError, match="already exists"):
        store.import_file(tiny_upscaler, name="sample")
    store.import_file(tiny_upscaler, name="mine")
    with pytest.raises(LikenessError, match="already exists"):
        store.import_file(tiny_upscaler, name="Mine")
    with pytest.raises(LikenessError, match="cannot name a model"):
        store.import_file(tiny_upscaler, name="../escape")
    assert [p.name for p in (store.root / "imported").iterdir()] == ["mine.pth"]


def test_remove(store: ModelStore, server: Loopback, tiny_upscaler: Path) -> None:
    record = store.import_file(tiny_upscaler)
    store.remove(record.id)
    assert record.id not in [r.id for r in store.records()]
    assert not list((store.root / "imported").iterdir())

    store.install("sample", url=server.url)
    store.remove("sample")
    assert not store.is_installed("sample") and not (store.root / "sample.pth").exists()


def test_damaged_import_index_is_reported(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "imported.json").write_text("{not json")
    with pytest.raises(LikenessError, match="imported.json is damaged"):
        store.records()


def test_only_install_touches_the_network(
    store: ModelStore, tiny_upscaler: Path, tmp_path: Path, no_network: None
) -> None:
    assert len(store.records()) == 3
    assert not store.is_installed("sample")
    with pytest.raises(ModelMissingError):
        store.path("sample")
    record = store.import_file(tiny_upscaler)
    assert store.path(record.id).is_file()
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointFormatError):
        store.import_file(garbage)
    with pytest.raises(AssertionError, match="unexpected network access"):
        store.install("sample", url="http://127.0.0.1:9/x")
