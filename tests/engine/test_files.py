"""Atomic writes: the target is complete or untouched, and no temporary survives an interruption."""

from __future__ import annotations

import os
import stat

import pytest

from engine.files import NEW_FILE_MODE, atomic_folder, atomic_path, atomic_write


def test_a_write_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as f:
        f.write(b"new")
        assert not target.exists()  # nothing at the target while writing
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["out.bin"]
    assert stat.S_IMODE(target.stat().st_mode) == NEW_FILE_MODE  # not mkstemp's private 0600


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, interruption):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(interruption)), atomic_write(target) as f:
        f.write(b"half")
        raise interruption
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_named_temporary_for_writers_that_take_a_path(tmp_path):
    target = tmp_path / "model.onnx"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.onnx.")
        tmp.write_bytes(b"graph")
    assert target.read_bytes() == b"graph"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"graph" and os.listdir(tmp_path) == ["model.onnx"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as tmp:
        (tmp / "a").write_text("1")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with atomic_folder(target) as tmp:  # another export finished first: the first one is kept
        (tmp / "a").write_text("2")
    assert (target / "a").read_text() == "1" and os.listdir(tmp_path) == ["cache"]
