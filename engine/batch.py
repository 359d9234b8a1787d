"""``likeness batch SRC DST``: a folder tree of any size restored into another, resumable.

The tree's structure is kept under DST. A manifest (``DST/likeness-batch.jsonl``, one line per
photo finished: source, output, faces, seconds) is appended and flushed to disk after each
photo, so a batch killed at any moment (``kill -9`` included) is run again with the same command
and goes on where it stopped: finished photos are skipped, the output of the photo that was
being written never exists half-written (``engine.files``). Progress shows photos per second and
the time left; the summary gives the throughput.

With ``ray`` (``--ray local|auto|ADDRESS``) the photos go to workers of a Ray cluster, each
holding its own loaded networks (an actor); the driver keeps the manifest, so resuming works the
same way. SRC and DST must be paths every worker can read and write (one machine, or a shared
file system).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    ray: str | None = None,
    workers: int = 2,
) -> BatchSummary:
    """Restores ``photos`` (each with the folder it was found under) into ``dst``, here or, with
    ``ray``, on ``workers`` Ray workers."""
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
        dst.mkdir(parents=True, exist_ok=True)
        results = _on_ray(ready, options, restorer_args, ray, workers) if ray else _here(ready, options, restorer_args)
        with open(dst / MANIFEST, "a", encoding="utf-8") as manifest:
            bar = tqdm(total=len(ready), unit="photo", disable=quiet, file=sys.stderr, desc="batch")
            for outcome in results:
                bar.update(1)
                if isinstance(outcome, str):
                    failed += 1
                    bar.write(f"likeness: error: {outcome}", file=sys.stderr)
                    continue
                manifest.write(json.dumps(outcome) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                done += 1
            bar.close()
    return BatchSummary(done, skipped, failed, time.perf_counter() - start)


Outcome = dict[str, object] | str  # a manifest record, or the error message of a failed photo


def restore_one(restorer: api.Restorer, photo: Path, output: Path, options: RestoreOptions) -> Outcome:
    """One photo restored to ``output``: its manifest record, or the one-line error."""
    t = time.perf_counter()
    try:
        result = restorer.restore(RestoreRequest(photo, output, options))
    except LikenessError as err:
        return str(err)
    return {
        "source": str(photo.resolve()),
        "output": str(output.resolve()),
        "faces": sum(f.selected for f in result.faces),
        "seconds": round(time.perf_counter() - t, 3),
    }


def _restorer(args: dict[str, str]) -> api.Restorer:
    restorer = api.Restorer(model=args["model"], device=args["device"], backend=args["backend"])  # loads torch
    restorer.status()  # ModelMissingError before the first photo
    return restorer


def _here(plans: list[PlannedOutput], options: RestoreOptions, args: dict[str, str]) -> Iterator[Outcome]:
    restorer = _restorer(args)
    for plan_ in plans:
        assert plan_.output is not None
        yield restore_one(restorer, plan_.photo, plan_.output, options)


class _Worker:
    """A Ray actor's body: the networks loaded once, then photos one after another."""

    def __init__(self, args: dict[str, str]) -> None:
        self.restorer = _restorer(args)

    def restore(self, photo: str, output: str, options: RestoreOptions) -> Outcome:
        return restore_one(self.restorer, Path(photo), Path(output), options)


def _on_ray(
    plans: list[PlannedOutput], options: RestoreOptions, args: dict[str, str], address: str, workers: int
) -> Iterator[Outcome]:
    """Outcomes as Ray workers finish them (two photos in flight per worker keeps each busy)."""
    try:
        import ray
    except ImportError:
        raise LikenessError("--ray needs Ray: pip install 'likeness[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        actor: Any = ray.remote(num_cpus=1)(_Worker)  # Ray's actor handles are untyped
        pool: list[Any] = [actor.remote(args) for _ in range(max(1, workers))]
        queue = list(plans)
        pending: dict[object, int] = {}

        def submit(k: int) -> None:
            plan_ = queue.pop(0)
            ref = pool[k].restore.remote(str(plan_.photo), str(plan_.output), options)
            pending[ref] = k

        for k in range(len(pool)):
            for _ in range(2):
                if queue:
                    submit(k)
        while pending:
            ready_refs, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready_refs[0])
            if queue:
                submit(k)
            yield ray.get(ready_refs[0])
    finally:
        if started_here:
            ray.shutdown()
