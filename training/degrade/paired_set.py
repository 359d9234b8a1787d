"""Paired HQ/LQ sets on disk: the evaluation sets and their references, written atomically."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.files import write_bytes

from ..imaging import resize_square
from .config import PRESETS, DegradationConfig
from .operators import degrade, lq_size


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    write_bytes(path, buf.tobytes())


def _load_square(path: Path, size: int | None) -> np.ndarray:
    """Read as RGB (EXIF orientation applied); centre-crop to a square and resize to ``size``."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    if size is None:
        return np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(resize_square(rgb[top : top + side, left : left + side], size))


def write_paired_set(
    items: Iterable[str | os.PathLike[str] | tuple[str | os.PathLike[str], str]],
    out_dir: str | os.PathLike[str],
    preset: str | DegradationConfig,
    seed: int,
    *,
    size: int | None = 512,
    refs_per_identity: int | None = None,
) -> list[dict[str, Any]]:
    """Write an HQ/LQ pair set: ``hq/NAME.png``, ``lq/NAME.png``, ``params.jsonl``, ``references.json``.

    ``items`` are image paths, or ``(path, identity)`` pairs. Each image is read as RGB,
    centre-cropped to a square and resized to ``size`` × ``size`` (``size=None`` keeps it as is);
    aligning faces is the caller's job. NAME is ``<identity>_<stem>`` (or ``<stem>``), made unique
    with a ``_<n>`` suffix. Each image's degradation is seeded by (``seed``, NAME), so it does not
    change when other images are added or reordered.

    ``params.jsonl``: one JSON object per image (name, source, identity, the per-image seed, the
    effective downscaled size ``lq_size`` and every drawn parameter). ``references.json`` (only when
    identities are given): NAME → other NAMEs of the same identity, never itself; at most
    ``refs_per_identity`` of them (a seeded random choice), all when None. Every file is written
    atomically. Returns the params records.
    """
    config = PRESETS[preset] if isinstance(preset, str) else preset
    out = Path(out_dir)
    (out / "hq").mkdir(parents=True, exist_ok=True)
    (out / "lq").mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    used: set[str] = set()
    any_identity = False
    for item in items:
        if isinstance(item, tuple):
            path, identity = Path(item[0]), str(item[1])
            any_identity = True
        else:
            path, identity = Path(item), None
        base = f"{identity}_{path.stem}" if identity is not None else path.stem
        name, n = base, 1
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        image_seed = [int(seed), zlib.crc32(name.encode("utf-8"))]
        hq = _load_square(path, size)
        lq, params = degrade(hq, config, np.random.default_rng(image_seed))
        _write_png(out / "hq" / f"{name}.png", hq)
        _write_png(out / "lq" / f"{name}.png", lq)
        records.append(
            {
                "name": name,
                "source": str(path),
                "identity": identity,
                "seed": image_seed,
                "hq_size": list(hq.shape[:2]),
                "lq_size": list(lq_size(hq.shape[0], hq.shape[1], params.scale)),
                **params.to_dict(),
            }
        )
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    write_bytes(out / "params.jsonl", lines.encode("utf-8"))
    if any_identity:
        by_id: dict[str, list[str]] = {}
        for r in records:
            if r["identity"] is not None:
                by_id.setdefault(r["identity"], []).append(r["name"])
        refs: dict[str, list[str]] = {}
        rng = np.random.default_rng([int(seed), 0x5EF])
        for r in records:
            others = [m for m in by_id.get(r["identity"], []) if m != r["name"]] if r["identity"] is not None else []
            if refs_per_identity is not None and len(others) > refs_per_identity:
                pick = rng.choice(len(others), size=refs_per_identity, replace=False)
                others = [others[i] for i in sorted(pick)]
            refs[r["name"]] = others
        write_bytes(out / "references.json", (json.dumps(refs, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return records
