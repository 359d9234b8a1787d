"""``likeness eval``: score restoration methods on paired LQ/HQ face sets and write a report.

A *set* (``training.eval_sets``) holds LQ faces with their HQ ground truth and reference photos
of the same identity, built from the held-out identities of the aligned-face cache, one per
degradation preset.

Every method maps the list of LQ faces (512²) to restored faces; the baselines are always
included: ``input`` (the LQ itself) and ``bicubic+unsharp`` (the LQ brought back to its
degraded size, bicubic up, unsharp mask). Models run through the engine's ``Restorer``.
``training.eval_scoring`` lists the metrics; ``training.eval_report`` writes the report.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from engine.errors import LikenessError
from engine.imageio import read_image

from .eval_report import MethodResult, write_report
from .eval_scoring import IDENTITY_NETS, PSNR_CAP, Scorer, to_eval_size
from .eval_sets import DEFAULT_PRESETS, PairedSet, build_sets
from .face_import import DEFAULT_TEST_LIST

if TYPE_CHECKING:
    from engine.api import Restorer

__all__ = [
    "BASELINES",
    "PSNR_CAP",
    "Method",
    "PairedSet",
    "bicubic_unsharp",
    "build_sets",
    "evaluate_set",
    "input_method",
    "main",
    "make_restorer",
    "model_method",
    "run_eval",
]

log = logging.getLogger(__name__)

BASELINES = ("input", "bicubic+unsharp")
#: A restoration method: (LQ faces, their set records) -> restored faces.
Method = Callable[[list[np.ndarray], list[dict[str, Any]]], list[np.ndarray]]


# ----------------------------------------------------------------------------- methods


def input_method(lq: list[np.ndarray], records: list[dict[str, Any]]) -> list[np.ndarray]:
    return list(lq)


def bicubic_unsharp(lq: list[np.ndarray], records: list[dict[str, Any]]) -> list[np.ndarray]:
    """The classical fix: back to the degraded size, bicubic up, unsharp mask (amount 0.8, σ ∝ r)."""
    out = []
    for img, rec in zip(lq, records, strict=True):
        h, w = rec.get("lq_size") or img.shape[:2]
        small = cv2.resize(img, (int(w), int(h)), interpolation=cv2.INTER_AREA)
        up = cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_CUBIC).astype(np.float32)
        sigma = max(1.0, img.shape[1] / float(w) / 2)
        blur = cv2.GaussianBlur(up, (0, 0), sigma)
        out.append(np.clip(up + 0.8 * (up - blur), 0, 255).astype(np.uint8))
    return out


def make_restorer(
    model: str, *, device: str = "auto", backend: str = "auto", fidelity_path: str | None = "auto"
) -> Restorer:
    """An engine Restorer for a model name, or for a weights file (imported into a private store).

    ``fidelity_path``: as ``Restorer(fidelity=...)``; None = the generative network alone.
    """
    import tempfile

    from engine import api
    from engine.models import ModelStore

    path = Path(model)
    if not path.is_file():
        return api.Restorer(model=model, device=device, backend=backend, fidelity=fidelity_path)
    store = ModelStore(Path(tempfile.mkdtemp(prefix="likeness-eval-")) / "models")
    record = store.import_file(path, name=path.stem.replace(" ", "_"))
    return api.Restorer(model=record.id, device=device, store=store, backend=backend, fidelity=fidelity_path)


def model_method(
    model: str,
    *,
    fidelity: float = 0.5,
    device: str = "auto",
    backend: str = "auto",
    batch: int = 4,
    fidelity_path: str | None = "auto",
) -> tuple[str, Method]:
    """(label, method) restoring with an engine model by name or weights file.

    The label names the fidelity path when it is used: "likeness-lite + likeness-fidelity (w=0.5)".
    """
    restorer = make_restorer(model, device=device, backend=backend, fidelity_path=fidelity_path)
    paths = restorer.model_name + (f" + {restorer.fidelity_model}" if restorer.fidelity_model else "")

    def run(lq: list[np.ndarray], records: list[dict[str, Any]]) -> list[np.ndarray]:
        out = []
        for i in range(0, len(lq), batch):
            out += restorer.restore_faces(list(lq[i : i + batch]), fidelity)
        return out

    return f"{paths} (w={fidelity:g})", run


# ----------------------------------------------------------------------------- running


def _reference_embeddings(pset: PairedSet, names: list[str], scorer: Scorer) -> dict[str, list[np.ndarray | None]]:
    """Per identity network, the embedding of each face's first reference (None without one)."""
    refs = [pset.references.get(n, []) for n in names]
    ref_imgs = [to_eval_size(read_image(pset.root / "refs" / f"{r[0]}.png").rgb) if r else None for r in refs]
    ref_emb: dict[str, list[np.ndarray | None]] = {}
    have = [im for im in ref_imgs if im is not None]
    for net, vecs in (scorer.embed(have) if have else {}).items():
        it = iter(vecs)
        ref_emb[net] = [next(it) if im is not None else None for im in ref_imgs]
    for net in scorer.embedders:
        ref_emb.setdefault(net, [None] * len(names))
    return ref_emb


def evaluate_set(
    pset: PairedSet,
    methods: dict[str, Method],
    scorer: Scorer,
    *,
    batch: int = 16,
    keep_samples: int = 6,
    progress: Callable[[str], None] | None = None,
) -> dict[str, MethodResult]:
    """Run every method on every LQ face of ``pset`` and score it against the ground truth."""
    results = {m: MethodResult(m, [], 0.0) for m in methods}
    elapsed = dict.fromkeys(methods, 0.0)
    sample_names = set(pset.names[:keep_samples])
    for start in range(0, len(pset.records), batch):
        recs = pset.records[start : start + batch]
        names = [r["name"] for r in recs]
        gts = [to_eval_size(pset.hq(n)) for n in names]
        lqs = [pset.lq(n) for n in names]
        gt_emb = scorer.embed(gts)
        ref_emb = _reference_embeddings(pset, names, scorer)
        gt_lms = []
        if scorer.landmarks is not None:
            for gt in gts:
                box = scorer.landmarks.box(gt)
                gt_lms.append((box, scorer.landmarks.points(gt, box)))
        for label, method in methods.items():
            t0 = time.perf_counter()
            outs = method(lqs, recs)
            elapsed[label] += time.perf_counter() - t0
            rows = scorer.score(outs, gts, gt_emb, ref_emb, gt_lms)
            for name, row, out in zip(names, rows, outs, strict=True):
                results[label].rows.append({"name": name, **row})
                if name in sample_names:
                    results[label].samples[name] = to_eval_size(out)
        if progress:
            progress(f"{min(start + batch, len(pset.records))}/{len(pset.records)} faces")
    for label in methods:
        results[label].seconds_per_face = elapsed[label] / max(len(pset.records), 1)
    return results


def _prefixed(progress: Callable[[str], None] | None, prefix: str) -> Callable[[str], None] | None:
    if progress is None:
        return None
    return lambda text: progress(f"{prefix}: {text}")


def run_eval(
    sets: dict[str, Path],
    out: Path,
    *,
    models: Sequence[str] = (),
    fidelity: float = 0.5,
    device: str = "auto",
    backend: str = "auto",
    limit: int | None = None,
    identity_nets: Sequence[str] = IDENTITY_NETS,
    extra_methods: dict[str, Method] | None = None,
    progress: Callable[[str], None] | None = None,
    generative_only: bool = False,
) -> tuple[Path, Path]:
    """Evaluate the baselines, ``models`` and ``extra_methods`` on each set; write the report.

    ``generative_only``: also each model without the fidelity path (what restoration was before it).
    """
    methods: dict[str, Method] = {"input": input_method, "bicubic+unsharp": bicubic_unsharp}
    for model in models:
        for path in (None, "auto") if generative_only else ("auto",):
            label, method = model_method(model, fidelity=fidelity, device=device, backend=backend, fidelity_path=path)
            methods[label] = method
    methods.update(extra_methods or {})
    scorer = Scorer(identity_nets, device="cpu")
    opened = {p: PairedSet.open(root, limit) for p, root in sets.items()}
    by_preset = {}
    for preset, pset in opened.items():
        t0 = time.perf_counter()
        by_preset[preset] = evaluate_set(pset, methods, scorer, progress=_prefixed(progress, preset))
        log.info("%s evaluated in %.0f s", preset, time.perf_counter() - t0)
    meta = {
        "methods": ", ".join(methods),
        "identity networks": ", ".join(scorer.embedders),
        "fidelity w": fidelity,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    return write_report(out, by_preset, opened, scorer.skipped, meta)


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``likeness eval`` options (shared by the engine CLI's hook and ``python -m training.evaluate``)."""
    parser.add_argument("--faces", help="aligned-face cache (training.face_import) to build sets from")
    parser.add_argument("--sets-dir", help="where built sets go (default: OUT/sets)")
    parser.add_argument(
        "--test-list", help="held-out identity list (default: ../shared/data/faces/test_identities.txt)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="DIR", help="an existing paired set (repeatable)")
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="presets to build (comma-separated)")
    parser.add_argument("--per-identity", type=int, default=2, help="faces per held-out identity (default 2)")
    parser.add_argument("--limit", type=int, help="evaluate at most this many faces per set")
    parser.add_argument("--model", action="append", default=[], help="model name or file to evaluate (repeatable)")
    parser.add_argument("-w", "--fidelity", type=float, default=0.5)
    parser.add_argument(
        "--generative-only",
        action="store_true",
        help="also evaluate each model without the fidelity path (its generative network alone)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--identity", default=",".join(IDENTITY_NETS), help="identity networks for IDS")
    parser.add_argument("-o", "--out", required=True, help="report folder")


def _print_progress(text: str) -> None:
    print(text, flush=True)


def run_from_args(args: argparse.Namespace) -> int:
    out = Path(args.out)
    sets: dict[str, Path] = {}
    if args.faces:
        test_list = args.test_list or DEFAULT_TEST_LIST
        if not Path(test_list).is_file():
            raise LikenessError(f"{test_list}: held-out identity list not found; pass --test-list")
        presets = [p for p in args.presets.split(",") if p]
        sets_dir = Path(args.sets_dir or out / "sets")
        sets = build_sets(args.faces, sets_dir, test_list=test_list, presets=presets, per_identity=args.per_identity)
    for s in args.set:
        sets[Path(s).name] = Path(s)
    if not sets:
        raise LikenessError("nothing to evaluate: give --faces CACHE or --set DIR")
    md, js = run_eval(
        sets,
        out,
        models=args.model,
        fidelity=args.fidelity,
        device=args.device,
        backend=args.backend,
        limit=args.limit,
        identity_nets=[n for n in args.identity.split(",") if n],
        progress=_print_progress,
        generative_only=args.generative_only,
    )
    print(f"report: {md}\n        {js}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="likeness eval", description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return run_from_args(args)
    except LikenessError as exc:
        print(f"likeness eval: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
