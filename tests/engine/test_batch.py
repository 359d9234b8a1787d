"""``likeness batch``: a tree restored into another, in this process and on a local Ray cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import shared_path

pytestmark = pytest.mark.slow


@pytest.fixture
def tree(tmp_path) -> Path:
    src = tmp_path / "src"
    photos = sorted(shared_path("data", "real_world", "whole_photos").glob("*.jpg"))
    for n, photo in enumerate(photos):
        (src / f"roll{n % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, src / f"roll{n % 2}" / photo.name)
    return src


def _outputs(dst: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dst)): p.read_bytes() for p in sorted(dst.rglob("*_restored.*"))}


def test_batch_keeps_the_tree_and_a_second_run_does_nothing(tree, tmp_path, capsys):
    dst = tmp_path / "dst"
    assert main(["batch", str(tree), str(dst), "--detector", "hog"]) == 0
    assert sorted(_outputs(dst)) == sorted(
        str(p.relative_to(tree).with_name(f"{p.stem}_restored{p.suffix}")) for p in tree.rglob("*.jpg")
    )
    records = [json.loads(line) for line in (dst / "likeness-batch.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["faces"] >= 1 for r in records)
    capsys.readouterr()
    assert main(["batch", str(tree), str(dst), "--detector", "hog"]) == 0
    said = capsys.readouterr().err
    assert "0 photos restored" in said and "4 already done" in said


def test_a_local_ray_cluster_of_two_workers_gives_the_same_photos(tree, tmp_path):
    pytest.importorskip("ray")
    here, on_ray = tmp_path / "here", tmp_path / "ray"
    assert main(["batch", str(tree), str(here), "--detector", "hog", "-q"]) == 0
    assert main(["batch", str(tree), str(on_ray), "--detector", "hog", "-q", "--ray", "local", "--workers", "2"]) == 0
    assert _outputs(on_ray) == _outputs(here)  # byte-identical: the same networks, whoever runs them
    assert len((on_ray / "likeness-batch.jsonl").read_text().splitlines()) == 4
