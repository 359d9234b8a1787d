"""Issue 21 part 4: does the background network help the faces' path? Held-out identities.

The restorer's input is each eval face's degraded image (``lq_size``, before the set's bilinear
↑r) brought to 512² in one of three ways, then the default path (generative + fidelity, w 0.5):
- ``as given``: the set's own LQ (bilinear ↑r), what ``likeness eval`` measures;
- ``bicubic first``: the same with bicubic ×2 (a control for the resizing alone);
- ``network first``: the background network ×2 on the small image, then resized to 512² (bicubic
  up, area down), as if faces were cut from the network-enlarged photo.

    .venv/bin/python scripts/background_net_on_faces.py --out out/eval-background-net [--limit 60]

Writes ``likeness eval``'s report (report.md) for the presets' cached sets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.api import DEFAULT_BACKGROUND, Restorer  # noqa: E402
from engine.background import BicubicUpscaler, Upscaler, resize  # noqa: E402
from training.evaluate import Method, run_eval  # noqa: E402


def first(upscaler: Upscaler, restorer: Restorer, fidelity: float) -> Method:
    def run(lq: list[np.ndarray], records: list[dict[str, Any]]) -> list[np.ndarray]:
        inputs = []
        for image, record in zip(lq, records, strict=True):
            h, w = record.get("lq_size") or image.shape[:2]
            small = cv2.resize(image, (int(w), int(h)), interpolation=cv2.INTER_AREA)
            inputs.append(resize(upscaler.upscale(small, 2), image.shape[1::-1]))
        return restorer.restore_faces(inputs, fidelity)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "eval-background-net")
    parser.add_argument("--sets", type=Path, default=ROOT.parent / "cache" / "eval" / "sets")
    parser.add_argument("--presets", default="mild,moderate,severe")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--fidelity", type=float, default=0.5)
    args = parser.parse_args()
    restorer = Restorer()
    network = restorer.upscaler(DEFAULT_BACKGROUND)
    methods = {
        f"as given (w={args.fidelity:g})": lambda lq, records: restorer.restore_faces(list(lq), args.fidelity),
        "bicubic first": first(BicubicUpscaler(), restorer, args.fidelity),
        "network first": first(network, restorer, args.fidelity),
    }
    sets = {p: args.sets / p for p in args.presets.split(",")}
    report, _ = run_eval(sets, args.out, limit=args.limit, extra_methods=methods)
    print(report.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
