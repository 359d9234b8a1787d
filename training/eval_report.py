"""The evaluation report: ``report.md`` and ``report.json`` with a contact sheet per preset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.files import write_bytes
from engine.imageio import write_image

from .eval_scoring import EVAL_SIZE, METRICS, PSNR_CAP, summarize, to_eval_size
from .eval_sets import PairedSet

HIGHER, LOWER = "↑", "↓"
INTRO = (
    "Mean ± std over the faces of each set; ↑ higher is better, ↓ lower is better. "
    f"Metrics at {EVAL_SIZE}²; PSNR capped at {PSNR_CAP:g} dB. IDS = cosine to the ground truth, "
    "IDS(REF) = cosine to the first reference photo; evaluator = independent network, dlib = the "
    "network training optimises (compressed scale: different people ≈ 0.82)."
)


@dataclass
class MethodResult:
    """One method on one set: per-face metric rows, its speed, and a few outputs for the contact sheet."""

    method: str
    rows: list[dict[str, Any]]  # per image: name + metrics
    seconds_per_face: float
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # name -> output at EVAL_SIZE


def contact_sheet(pset: PairedSet, results: dict[str, MethodResult], path: Path, tile: int = 128) -> Path:
    """LQ | methods… | GT for the kept samples, labelled, written atomically as PNG."""
    names = [n for n in pset.names if all(n in r.samples for r in results.values())]
    columns = ["LQ"] + [m for m in results if m != "input"] + ["GT"]
    header = 28
    sheet = np.full((header + tile * len(names), tile * len(columns), 3), 255, np.uint8)
    for c, label in enumerate(columns):
        text = (label if len(label) <= 18 else label[:17] + ".").replace("…", ".")  # Hershey fonts are ASCII
        cv2.putText(sheet, text, (c * tile + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
    for r, name in enumerate(names):
        tiles = [to_eval_size(pset.lq(name))] + [results[m].samples[name] for m in columns[1:-1]]
        tiles.append(to_eval_size(pset.hq(name)))
        y = header + r * tile
        for c, img in enumerate(tiles):
            sheet[y : y + tile, c * tile : (c + 1) * tile] = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
    if path.exists():
        path.unlink()
    write_image(path, sheet)
    return path


def _fmt(stat: dict[str, float] | None, key: str) -> str:
    if stat is None:
        return "—"
    digits = 2 if key.startswith("psnr") or key in ("lmd", "niqe") else 3
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _preset_section(
    preset: str,
    results: dict[str, MethodResult],
    summaries: dict[str, dict[str, dict[str, float]]],
    present: list[str],
    faces: int,
    sheet: str,
) -> list[str]:
    """The Markdown of one preset: the summary table, the contact sheet, the per-image rows (folded)."""
    rule = "|---" * (len(present) + 2) + "|"
    headers = [f"{METRICS[k][0]} {HIGHER if METRICS[k][1] else LOWER}" for k in present]
    md = [f"## {preset} ({faces} faces)", ""]
    md += [_row(["method", *headers, "s/face"]), rule]
    for m, r in results.items():
        md.append(_row([m, *(_fmt(summaries[m].get(k), k) for k in present), f"{r.seconds_per_face:.3f}"]))
    md += ["", f"![contact sheet]({sheet})", ""]
    md += ["<details><summary>per-image rows</summary>", ""]
    md += [_row(["image", "method", *(METRICS[k][0] for k in present)]), rule]
    for m, r in results.items():
        for row in r.rows:
            md.append(_row([row["name"], m, *(f"{row[k]:.3f}" if k in row else "—" for k in present)]))
    md += ["", "</details>", ""]
    return md


def write_report(
    out: Path,
    by_preset: dict[str, dict[str, MethodResult]],
    sets: dict[str, PairedSet],
    skipped: dict[str, str],
    meta: dict[str, Any],
) -> tuple[Path, Path]:
    """report.md + report.json (+ contact_<preset>.png) in ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    presets: dict[str, Any] = {}
    md = ["# Likeness evaluation report", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()]
    md += ["", INTRO, ""]
    present = [k for k in METRICS if any(k in summarize(r.rows) for res in by_preset.values() for r in res.values())]
    for preset, results in by_preset.items():
        summaries = {m: summarize(r.rows) for m, r in results.items()}
        sheet = contact_sheet(sets[preset], results, out / f"contact_{preset}.png")
        faces = len(sets[preset].records)
        methods = {
            m: {"summary": summaries[m], "seconds_per_face": r.seconds_per_face, "rows": r.rows}
            for m, r in results.items()
        }
        presets[preset] = {
            "set": str(sets[preset].root),
            "faces": faces,
            "methods": methods,
            "contact_sheet": sheet.name,
        }
        md += _preset_section(preset, results, summaries, present, faces, sheet.name)
    if skipped:
        md += ["## Not measured", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()] + [""]
    data = {"meta": meta, "skipped": skipped, "presets": presets}
    json_path, md_path = out / "report.json", out / "report.md"
    write_bytes(json_path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
    write_bytes(md_path, "\n".join(md).encode("utf-8"))
    return md_path, json_path
