"""References across the damage sweep, every judge on its own: what issue 15 is judged by.

    python -m training.reference_sweep --faces CACHE -o OUT [--model likeness-lite] [--refs 1,5]
        [--limit 60] [--sets-dir DIR] [--guidance 1.0] [--steps 2] [--levels mild,sweep1,...]

For each level (``mild`` and the five ``training.degrade.SWEEP`` levels, built from the held-out
identities of the face cache), each LQ face is restored with N = 0 (the model alone) and with
N references of the same person, ranked as the engine ranks them, through the engine's default
reference path (prior, gate and guidance; ``training.reference_eval.reference_method``).
``training.evaluate`` scores every output with the combined evaluator, mobileface,
faceres-pool and dlib. This module then pairs each face with itself at N = 0 and writes
``OUT/sweep.md`` and ``OUT/sweep.json``:

* per level × N × judge: IDS, the paired gain over N = 0 (mean ± standard error) and the share
  of faces it raised, beside the input's own IDS;
* the gain with one reference against the input's evaluator IDS (bins), per judge: whether the
  references reach the faces whose identity is damaged and leave the others alone;
* the time per face of each N against N = 0.

A gain counts only when every independent network (mobileface and faceres-pool) shows it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import write_bytes

from .degrade import SWEEP
from .eval_sets import PairedSet, build_sets
from .evaluate import make_restorer, run_eval
from .face_import import DEFAULT_TEST_LIST, read_index, split_identities
from .reference_eval import reference_method

log = logging.getLogger(__name__)

JUDGES = ("evaluator", "mobileface", "faceres-pool", "dlib")
INDEPENDENT = ("mobileface", "faceres-pool")
LEVELS = ("mild", *SWEEP)
#: Bins of the input's evaluator IDS for the gain curve.
BINS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.01)
#: Training identities in a calibration sweep (as many as the held-out list has).
CALIBRATION_IDENTITIES = 55


def calibration_list(faces: str, held_out: Path, out: Path) -> Path:
    """A list of ``CALIBRATION_IDENTITIES`` training identities (never the held-out ones), written
    to ``out``: ``build_sets`` then makes the levels from them, for tuning."""
    records = read_index(faces)
    train, _ = split_identities(records, held_out)
    names = sorted({r.identity for r in train})[:CALIBRATION_IDENTITIES]
    path = out / "calibration_identities.txt"
    write_bytes(path, ("\n".join(names) + "\n").encode())
    return path


def method_name(model: str, n: int) -> str:
    return f"{model} N={n}"


def paired(results: dict[str, Any], base: str, other: str, judge: str) -> dict[str, float]:
    """Gain of ``other`` over ``base`` on the same faces: mean, standard error, share raised."""
    key = f"ids_{judge}"
    a = {r["name"]: r[key] for r in results[base]["rows"] if key in r}
    b = {r["name"]: r[key] for r in results[other]["rows"] if key in r}
    names = sorted(set(a) & set(b))
    d = np.array([b[n] - a[n] for n in names])
    if not d.size:
        return {}
    return {
        "ids": float(np.mean([b[n] for n in names])),
        "gain": float(d.mean()),
        "se": float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0,
        "up": float((d > 0).mean()),
        "n": int(d.size),
    }


def summarise(report: dict[str, Any], model: str, counts: Sequence[int]) -> dict[str, Any]:
    """The sweep's figures from ``training.evaluate``'s report.json (see the module docstring)."""
    out: dict[str, Any] = {"levels": {}, "curve": {}}
    base = method_name(model, 0)
    curve: dict[str, list[tuple[float, float]]] = {j: [] for j in JUDGES}
    for level, results in report["presets"].items():
        row: dict[str, Any] = {"input": {}, "seconds_per_face": {}}
        for judge in JUDGES:
            summary = results["input"]["summary"].get(f"ids_{judge}")
            row["input"][judge] = summary["mean"] if summary else None
        row["seconds_per_face"]["0"] = results[base]["seconds_per_face"]
        for n in counts:
            name = method_name(model, n)
            row[str(n)] = {judge: paired(results, base, name, judge) for judge in JUDGES}
            row["seconds_per_face"][str(n)] = results[name]["seconds_per_face"]
        row["0"] = {judge: paired(results, base, base, judge) for judge in JUDGES}
        out["levels"][level] = row
        if 1 in counts:
            inputs = {r["name"]: r.get("ids_evaluator") for r in results["input"]["rows"]}
            before = {r["name"]: r for r in results[base]["rows"]}
            for r in results[method_name(model, 1)]["rows"]:
                x = inputs.get(r["name"])
                for judge in JUDGES:
                    key = f"ids_{judge}"
                    if x is not None and key in r and key in before.get(r["name"], {}):
                        curve[judge].append((x, r[key] - before[r["name"]][key]))
    for judge, points in curve.items():
        bins = []
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            gains = [g for x, g in points if lo <= x < hi]
            if gains:
                bins.append({"from": lo, "to": min(hi, 1.0), "faces": len(gains), "gain": float(np.mean(gains))})
        out["curve"][judge] = bins
    return out


def busy_cpu_note(loads: Sequence[float], cores: int | None) -> str | None:
    """A warning for the report when other work shared the CPU (1-minute load averages seen
    during the run above the core count): the times per face then measure the machine, not the
    method."""
    peak = max(loads, default=0.0)
    if not cores or peak <= cores:
        return None
    return f"the CPU was shared (load average up to {peak:.1f} on {cores} cores): times per face are not comparable"


def markdown(summary: dict[str, Any], model: str, counts: Sequence[int], meta: dict[str, Any]) -> str:
    md = [f"# References across the damage sweep ({model})", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()]
    md += [
        "",
        "IDS against the undamaged photo; gain = paired mean over the same faces against N = 0 "
        "(± standard error, share of faces raised). A gain counts when mobileface and "
        "faceres-pool both show it.",
        "",
        "| level | judge | input | N = 0 | " + " | ".join(f"N = {n}: IDS, gain" for n in counts) + " |",
        "|---|---|---|---|" + "---|" * len(counts),
    ]
    for level, row in summary["levels"].items():
        for judge in JUDGES:
            inp = row["input"][judge]
            base = row["0"][judge]
            cells = []
            for n in counts:
                p = row[str(n)][judge]
                cells.append(f"{p['ids']:.3f}, {p['gain']:+.3f} ± {p['se']:.3f} ({p['up']:.0%})" if p else "—")
            md.append(
                f"| {level} | {judge} | {inp:.3f} | {base['ids']:.3f} | " + " | ".join(cells) + " |"
                if inp is not None and base
                else f"| {level} | {judge} | — | — | " + " | ".join(cells) + " |"
            )
    md += ["", "## Time per face (s)", "", "| level | N = 0 | " + " | ".join(f"N = {n}" for n in counts) + " |"]
    md += ["|---|---|" + "---|" * len(counts)]
    for level, row in summary["levels"].items():
        t = row["seconds_per_face"]
        cells = [f"{t[str(n)]:.3f} ({t[str(n)] / t['0']:.1f}×)" for n in counts]
        md.append(f"| {level} | {t['0']:.3f} | " + " | ".join(cells) + " |")
    md += ["", "## Gain with one reference against the input's evaluator IDS (all levels)", ""]
    md += ["| input IDS | faces | " + " | ".join(JUDGES) + " |", "|---|---|" + "---|" * len(JUDGES)]
    bins = summary["curve"].get("evaluator", [])
    for i, b in enumerate(bins):
        cells = []
        for judge in JUDGES:
            jb = summary["curve"][judge]
            cells.append(f"{jb[i]['gain']:+.3f}" if i < len(jb) else "—")
        md.append(f"| {b['from']:.1f}–{b['to']:.1f} | {b['faces']} | " + " | ".join(cells) + " |")
    return "\n".join(md) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--faces", required=True, help="aligned-face cache (training.face_import)")
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--model", default="likeness-lite")
    parser.add_argument("--refs", default="1,5", help="numbers of references besides N = 0")
    parser.add_argument("--limit", type=int, default=60, help="faces per level")
    parser.add_argument("--sets-dir", help="where the level sets are built (default: OUT/sets)")
    parser.add_argument("--levels", default=",".join(LEVELS))
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("-w", "--fidelity", type=float, default=0.5)
    parser.add_argument("--test-list", default=str(DEFAULT_TEST_LIST))
    parser.add_argument(
        "--calibration",
        action="store_true",
        help=f"levels of {CALIBRATION_IDENTITIES} *training* identities instead of the held-out ones (for tuning)",
    )
    parser.add_argument("--prior-sharpness", type=float, help="ReferencePrior.max_sharpness (tuning)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    levels = [x for x in args.levels.split(",") if x]
    counts = [int(x) for x in args.refs.split(",") if x]
    test_list = Path(args.test_list)
    if args.calibration:
        test_list = calibration_list(args.faces, test_list, out)
    sets = build_sets(args.faces, Path(args.sets_dir or out / "sets"), test_list=test_list, presets=levels)
    restorer = make_restorer(args.model, backend="torch")
    report: dict[str, Any] = {"presets": {}}
    loads = [os.getloadavg()[0]]
    for level, root in sets.items():
        pset = PairedSet.open(root, args.limit)
        methods = {
            method_name(args.model, n): reference_method(
                restorer,
                pset.root,
                pset.references,
                n,
                ranked=True,
                guidance=args.guidance,
                steps=args.steps,
                fidelity=args.fidelity,
                prior_sharpness=args.prior_sharpness,
            )
            for n in (0, *counts)
        }
        _md, json_path = run_eval(
            {level: root}, out / level, fidelity=args.fidelity, backend="torch", limit=args.limit, extra_methods=methods
        )
        report["presets"][level] = json.loads(Path(json_path).read_text())["presets"][level]["methods"]
        loads.append(os.getloadavg()[0])
        log.info("%s done", level)
    summary = summarise(report, args.model, counts)
    meta = {
        "model": args.model,
        "faces per level": args.limit,
        "guidance": f"{args.guidance:g} × {args.steps} steps + the reference prior, the engine's gate",
        "w": args.fidelity,
        "identities": "training (calibration)" if args.calibration else "held-out",
        "prior max_sharpness": args.prior_sharpness or "default",
    }
    busy = busy_cpu_note(loads, os.cpu_count())
    if busy:
        log.warning("%s", busy)
        meta["warning"] = busy
    write_bytes(out / "sweep.json", (json.dumps(summary, indent=1) + "\n").encode())
    md_path = out / "sweep.md"
    write_bytes(md_path, markdown(summary, args.model, counts, meta).encode())
    print(f"report: {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
