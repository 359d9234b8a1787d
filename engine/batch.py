"""``likeness batch SRC DST``: a folder tree of any size restored into another, resumable.

The tree's structure is kept under DST. A manifest (``DST/likeness-batch.jsonl``, one line per
photo finished: source, output, faces, seconds) is appended and flushed to disk after each
photo, so a batch killed at any moment (``kill -9`` included) is run again with the same command
and goes on where it stopped: finished photos are skipped, the output of the photo that was
being written never exists half-written (``engine.files``). Progress shows photos per second and
the time left; the summary gives the throughput.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import api
from .api import LikenessError, RestoreOptions, RestoreRequest
from .imageio import probe_image
from .memory import check_fits
from .outputs import PlannedOutput, check_output_folders, plan_outputs

MANIFEST = "likeness-batch.jsonl"


@dataclass(frozen=True)
class BatchSummary:
    done: int  # restored in this run
    skipped: int  # finished by an earlier run
    failed: int
    seconds: float

    @property
    def photos_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def finished(dst: Path) -> set[str]:
    """Sources the manifest records as done whose output is still there (a torn last line is skipped)."""
    done: set[str] = set()
    path = dst / MANIFEST
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the line a kill cut short
            continue
        if Path(record["output"]).is_file():
            done.add(record["source"])
    return done


def plan(photos: list[tuple[Path, Path]], dst: Path, fmt: str) -> tuple[list[PlannedOutput], int]:
    """(outputs to make, photos already done): the manifest's photos are skipped."""
    done = finished(dst)
    todo = [(p, root) for p, root in photos if str(p.resolve()) not in done]
    plans = plan_outputs(todo, dst, fmt=fmt, resume=True)
    check_output_folders(plans)
    already = len(photos) - len(todo) + sum(p.output is None for p in plans)
    return [p for p in plans if p.output is not None], already


def run_batch(
    photos: list[tuple[Path, Path]],
    dst: Path,
    options: RestoreOptions,
    restorer_args: dict[str, str],  # model, device, backend
    fmt: str = "same",
    quiet: bool = False,
) -> BatchSummary:
    """Restores ``photos`` (each with the folder it was found under) into ``dst``."""
    todo, skipped = plan(photos, dst, fmt)
    ready = []
    failed = 0
    for plan_ in todo:
        try:
            check_fits(str(plan_.photo), *probe_image(plan_.photo), options.upscale)
            ready.append(plan_)
        except LikenessError as err:
            failed += 1
            tqdm.write(f"likeness: error: {err}", file=sys.stderr)
    start = time.perf_counter()
    done = 0
    if ready:
        restorer = api.Restorer(  # loads torch
            model=restorer_args["model"], device=restorer_args["device"], backend=restorer_args["backend"]
        )
        restorer.status()
        dst.mkdir(parents=True, exist_ok=True)
        with open(dst / MANIFEST, "a", encoding="utf-8") as manifest:
            bar = tqdm(ready, unit="photo", disable=quiet, file=sys.stderr, desc="batch")
            for plan_ in bar:
                t = time.perf_counter()
                try:
                    assert plan_.output is not None
                    result = restorer.restore(RestoreRequest(plan_.photo, plan_.output, options))
                except LikenessError as err:
                    failed += 1
                    bar.write(f"likeness: error: {err}", file=sys.stderr)
                    continue
                record = {
                    "source": str(plan_.photo.resolve()),
                    "output": str(plan_.output.resolve()),
                    "faces": sum(f.selected for f in result.faces),
                    "seconds": round(time.perf_counter() - t, 3),
                }
                manifest.write(json.dumps(record) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                done += 1
    return BatchSummary(done, skipped, failed, time.perf_counter() - start)
