"""Per-face cost of the fidelity path: a restoration with and without it, and a slider re-render.

    python benchmarks/fidelity_path.py [--model likeness-lite] [--repeat 8] [FACE.png ...]

Aligned faces (default: the real-world cropped faces) are restored at the default w by the
generative network alone (before the fidelity path) and by both paths; then a slider move
(decode at another w from the cached encoding) is timed, as the GUI's preview does it. Prints
medians in milliseconds and the ratios the issue sets (≤ 1.5× per face, re-render ≤ 40 %).
Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("faces", nargs="*", type=Path)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeat", type=int, default=8)
    args = parser.parse_args()

    import torch

    from engine.api import Restorer
    from engine.imageio import read_image

    faces_dir = REPO.parent / "shared" / "data" / "real_world" / "cropped_faces"
    paths = args.faces or sorted(faces_dir.glob("*.png"))[:4]
    if not paths:
        print("no faces given and none in ../shared/data/real_world/cropped_faces", file=sys.stderr)
        return 2
    faces = [read_image(p).rgb for p in paths]
    both = Restorer(model=args.model, device=args.device, backend=args.backend)
    alone = Restorer(model=args.model, device=args.device, backend=args.backend, fidelity=None)
    if both.fidelity_model is None:
        print("the fidelity path is not installed", file=sys.stderr)
        return 2

    def timed(fn) -> float:
        runs = []
        for _ in range(args.repeat):
            for face in faces:
                start = time.perf_counter()
                fn(face)
                runs.append(time.perf_counter() - start)
        return statistics.median(runs) * 1000

    for r in (both, alone):  # load the networks (and export ONNX) outside the timings
        r.restore_faces(faces[:1], 0.5)
    before = timed(lambda f: alone.restore_faces([f], 0.5))
    now = timed(lambda f: both.restore_faces([f], 0.5))
    encoded = {id(f): both.encode_face(f) for f in faces}
    rerender = timed(lambda f: both.decode_face(encoded[id(f)], f, 0.7))
    print(
        f"model {both.model_name} + {both.fidelity_model}, backend {type(both.face_restorer.generative).__name__}, "
        f"{len(faces)} faces × {args.repeat}, {torch.get_num_threads()} threads"
    )
    print(f"generative network alone (before): {before:7.1f} ms per face")
    print(f"both paths + region blend (now):   {now:7.1f} ms per face   ({now / before:.2f}× before)")
    print(
        f"slider re-render (decode at w=0.7): {rerender:7.1f} ms per face   "
        f"({100 * rerender / now:.0f} % of a restoration)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
