"""Cost of test-time identity guidance: seconds per face for 0, 1, 3 guidance steps, with and
without the reference prior.

    python benchmarks/guidance.py [--model likeness-lite] [--faces 12] [--threads 2]

Each face is restored with one reference (its identity vector already known, as the app has it
after analysing the reference), so the figures are the network and the guidance steps alone.
Faces and references are random pixels: the cost does not depend on the content (random pixels
are sharp, so the prior, which the engine applies to badly damaged faces only, is forced on for
its rows; guidance, which the engine gives only to faces too damaged to identify, is forced on
too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="likeness-lite")
    parser.add_argument("--faces", type=int, default=12)
    parser.add_argument("--steps", default="0,1,3")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    from engine.api import Restorer
    from engine.identity import make_embedder
    from engine.references.guide import IdentityGuidance, ReferencePrior, restore_with_references

    torch.set_num_threads(args.threads)
    restorer = Restorer(model=args.model, device="cpu", backend="torch").torch_restorer
    embedder = make_embedder(device=restorer.device)
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(args.faces)]
    ref = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    emb = embedder.embed_images([ref])
    base = None
    print(f"{args.model}, {args.faces} faces, {args.threads} threads")
    forced = ReferencePrior(max_sharpness=float("inf"))
    for steps in (int(s) for s in args.steps.split(",")):
        plan = IdentityGuidance(strength=1.0, steps=steps) if steps else None
        for prior in (None, forced):
            restore_with_references(restorer, faces[:1], 0.5, [ref], embedder, plan, emb, prior, True)  # warm-up
            t = time.perf_counter()
            for face in faces:
                restore_with_references(restorer, [face], 0.5, [ref], embedder, plan, emb, prior, True)
            per = (time.perf_counter() - t) / len(faces)
            base = base or per
            print(
                f"guidance steps {steps}{' + prior' if prior else ''}: {per * 1000:.0f} ms/face "
                f"({per / base:.2f}x the unguided restoration)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
