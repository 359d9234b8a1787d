"""Paired evaluation sets: HQ/LQ faces of the held-out identities, with reference photos.

A *set* is a folder written by ``training.degrade.write_paired_set``: ``hq/``, ``lq/``,
``params.jsonl`` and ``references.json`` (other photos of the same identity, copied into
``refs/``). ``build_sets`` makes one per preset from the aligned-face cache
(``training.face_import``), at 512² like the faces the engine restores, so the presets' ranges
mean what they mean in the CodeFormer paper (r = 16 leaves a 32 px face).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import LikenessError
from engine.files import write_bytes
from engine.imageio import read_image, write_image

from .degrade import write_paired_set
from .face_import import FaceRecord, read_index, split_identities

log = logging.getLogger(__name__)

SET_SIZE = 512
DEFAULT_PRESETS = ("mild", "moderate", "severe")


@dataclass
class PairedSet:
    """A paired set on disk (see module docstring)."""

    root: Path
    records: list[dict[str, Any]]
    references: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike[str], limit: int | None = None) -> PairedSet:
        root = Path(root)
        params = root / "params.jsonl"
        if not params.is_file():
            raise LikenessError(f"{root}: not a paired set (no params.jsonl); build one with `likeness eval --faces`")
        records = [json.loads(line) for line in params.read_text(encoding="utf-8").splitlines() if line.strip()]
        refs_file = root / "references.json"
        refs = json.loads(refs_file.read_text(encoding="utf-8")) if refs_file.is_file() else {}
        return cls(root, records[:limit] if limit else records, refs)

    @property
    def names(self) -> list[str]:
        return [r["name"] for r in self.records]

    def hq(self, name: str) -> np.ndarray:
        return read_image(self.root / "hq" / f"{name}.png").rgb

    def lq(self, name: str) -> np.ndarray:
        return read_image(self.root / "lq" / f"{name}.png").rgb


def build_sets(
    cache: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    test_list: str | os.PathLike[str],
    presets: Sequence[str] = DEFAULT_PRESETS,
    per_identity: int | None = 2,
    seed: int = 0,
    refs_per_identity: int = 5,
) -> dict[str, Path]:
    """One paired set per preset from the held-out identities of a face cache (skipped if present).

    ``per_identity`` photos of each identity are restored; references are chosen among all of
    that identity's photos (never the photo itself).
    """
    records = read_index(cache)
    _, test = split_identities(records, test_list)
    if not test:
        raise LikenessError(f"{cache}: no face of the held-out identities in {test_list}")
    by_id: dict[str, list[FaceRecord]] = {}
    for r in sorted(test, key=lambda r: r.name):
        by_id.setdefault(r.identity, []).append(r)
    items = []
    for identity, recs in sorted(by_id.items()):
        chosen = recs if per_identity is None else recs[:per_identity]
        items += [(Path(cache) / r.path_suffix, identity) for r in chosen]
    sets = {}
    for preset in presets:
        root = Path(out) / preset
        if not (root / "params.jsonl").is_file():
            log.info("building the %s set (%d faces) in %s", preset, len(items), root)
            write_paired_set(items, root, preset, seed, size=SET_SIZE, refs_per_identity=None)
            _add_references(root, cache, by_id, refs_per_identity)
        sets[preset] = root
    return sets


def _add_references(root: Path, cache: str | os.PathLike[str], by_id: dict[str, list[FaceRecord]], count: int) -> None:
    """references.json lists other sharp photos of the identity, copied into ``refs/`` at 512²."""
    (root / "refs").mkdir(exist_ok=True)
    params = [json.loads(x) for x in (root / "params.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    refs: dict[str, list[str]] = {}
    for rec in params:
        source_stem = Path(rec["source"]).stem
        others = [r for r in by_id[rec["identity"]] if Path(r.name).name != source_stem]
        others.sort(key=lambda r: -r.sharpness)
        names = []
        for r in others[:count]:
            ref_name = r.name.replace("/", "_")
            target = root / "refs" / f"{ref_name}.png"
            if not target.exists():
                img = read_image(Path(cache) / r.path_suffix).rgb
                write_image(target, cv2.resize(img, (SET_SIZE, SET_SIZE), interpolation=cv2.INTER_CUBIC))
            names.append(ref_name)
        refs[rec["name"]] = names
    write_bytes(root / "references.json", (json.dumps(refs, indent=1, sort_keys=True) + "\n").encode("utf-8"))
