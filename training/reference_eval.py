"""Reference-guided restoration measured like the paper's Table 2: IDS against the number of references.

    python -m training.reference_eval --set SETDIR --model NAME -o OUT [--refs 0,1,3,5] [--guidance 1.0]
        [--steps K] [--no-prior]

On a paired set (``training.evaluate``; references are other photos of the same identity,
``refs/``) each LQ face is restored by the model with N = 0, 1, 3, 5 references, chosen either
at random (seeded) or ranked by ``engine.references.rank_references`` (sharpness, pose,
identity consistency). With a reference-trained model the references enter through eq. 6;
``--guidance`` adds test-time identity guidance (any model) and, as the engine does, the
reference prior for faces too damaged to carry their identity (``--no-prior`` leaves it out;
``--steps 0`` measures the prior alone). Rows are scored by the evaluation
module: IDS by the independent evaluator with dlib beside it, IDS(REF), PSNR, LMD, NIQE, and
the time per face. Writes ``OUT/report.md`` / ``report.json`` via ``training.evaluate``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.api import finish_face
from engine.imageio import read_image
from engine.references.guide import IdentityGuidance, ReferencePrior

from .evaluate import Method, PairedSet, make_restorer, run_eval

if TYPE_CHECKING:
    from engine.api import Restorer
    from engine.references import ReferenceFace


def reference_method(
    restorer: Restorer,
    set_root: Path,
    refs: dict[str, list[str]],
    count: int,
    *,
    ranked: bool,
    guidance: float,
    steps: int,
    fidelity: float,
    prior: bool = True,
    prior_sharpness: float | None = None,
    seed: int = 0,
) -> Method:
    """A method restoring each face with ``count`` references of its identity."""
    from engine.identity import make_embedder
    from engine.references import rank_references, reference_from_aligned
    from engine.references.guide import restore_with_references

    torch_restorer = restorer.torch_restorer
    embedder = make_embedder(device=torch_restorer.device)
    cache: dict[str, ReferenceFace] = {}
    rng = np.random.default_rng(seed)
    plan = IdentityGuidance(strength=guidance, steps=steps) if guidance > 0 else None
    tuned = {} if prior_sharpness is None else {"max_sharpness": prior_sharpness}
    face_prior = ReferencePrior(**tuned) if guidance > 0 and prior else None

    def ref_face(name: str) -> ReferenceFace:
        if name not in cache:
            cache[name] = reference_from_aligned(
                read_image(set_root / "refs" / f"{name}.png").rgb, embedder=embedder, path=name
            )
        return cache[name]

    def run(lq: list[np.ndarray], records: list[dict[str, Any]]) -> list[np.ndarray]:
        out = []
        for face, rec in zip(lq, records, strict=True):
            candidates = [ref_face(n) for n in refs.get(rec["name"], [])]
            if ranked:
                chosen = rank_references(candidates, 0.0, count)
            else:
                pick = rng.permutation(len(candidates))[:count]
                chosen = [candidates[i] for i in sorted(pick)]
            if not chosen:
                out += restorer.restore_faces([face], fidelity)
                continue
            restored, _ = restore_with_references(
                torch_restorer,
                [face],
                fidelity,
                [c.aligned for c in chosen],
                embedder,
                plan,
                np.stack([c.embedding for c in chosen]),
                face_prior,
            )
            restored = restorer.mix_with_fidelity_path([face], restored, fidelity)  # as the engine's restore does
            out.append(finish_face(restored[0], face))
        return out

    return run


def _print_progress(text: str) -> None:
    print(text, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--set", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--refs", default="1,3,5", help="numbers of references (N = 0 is the model alone)")
    parser.add_argument("--guidance", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--no-prior", action="store_true", help="guidance without the reference prior")
    parser.add_argument("-w", "--fidelity", type=float, default=0.5)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--random", action="store_true", help="also rows with randomly chosen references")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pset = PairedSet.open(args.set)
    restorer = make_restorer(args.model, backend="torch")
    methods: dict[str, Method] = {}
    tag = (
        f"g={args.guidance:g}x{args.steps}{'' if args.no_prior else '+prior'}"
        if args.guidance > 0
        else "eq.6"
        if restorer.torch_restorer.net.reference
        else "no guidance"
    )
    for n in (int(x) for x in args.refs.split(",") if x):
        for ranked in (True, False) if args.random else (True,):
            methods[f"{restorer.model_name} N={n} {'ranked' if ranked else 'random'} ({tag})"] = reference_method(
                restorer,
                pset.root,
                pset.references,
                n,
                ranked=ranked,
                guidance=args.guidance,
                steps=args.steps,
                fidelity=args.fidelity,
                prior=not args.no_prior,
            )
    md, _ = run_eval(
        {Path(args.set).name: Path(args.set)},
        Path(args.out),
        models=[args.model],
        fidelity=args.fidelity,
        backend="torch",
        limit=args.limit,
        extra_methods=methods,
        progress=_print_progress,
    )
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
