"""Per-stage timings of whole-photo restoration (read, detect, align, network, upscale, paste, write).

    python benchmarks/pipeline.py                       # installed default model
    python benchmarks/pipeline.py --random official     # official 94 M network, random weights
    python benchmarks/pipeline.py --random tiny --detector hog PHOTO...

Random weights time exactly like real ones, so the official network can be measured on
machines where its checkpoint cannot be downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = ("read", "detect", "align", "network", "upscale", "paste", "write")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--random", choices=["official", "tiny"], help="benchmark a network with random weights")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--upscale", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per photo (the first loads the models)")
    args = parser.parse_args()

    import torch

    from engine.api import RestoreOptions, Restorer, RestoreRequest
    from engine.models import ModelStore
    from engine.samples import sample_photos

    photos = args.photos or sample_photos()
    if not photos:
        print("no photos given and no samples found", file=sys.stderr)
        return 2
    model = args.model
    if args.random:
        from engine.nets.codeformer import OFFICIAL, TINY, CodeFormer, save_codeformer

        home = Path(tempfile.mkdtemp(prefix="likeness-bench-"))
        os.environ["LIKENESS_HOME"] = str(home)
        torch.manual_seed(0)
        weights = home / f"random-{args.random}.safetensors"
        save_codeformer(CodeFormer(OFFICIAL if args.random == "official" else TINY), weights)
        model = ModelStore().import_file(weights, name=f"random-{args.random}").id

    restorer = Restorer(model=model, device=args.device)
    options = RestoreOptions(upscale=args.upscale, detector=args.detector)
    print(f"model {restorer.model_name} on {restorer.device_label()}, torch threads {torch.get_num_threads()}")
    print(f"{'photo':14}{'MP':>6}{'faces':>6}" + "".join(f"{s:>9}" for s in STAGES) + f"{'total':>9}  (seconds)")
    out_dir = Path(tempfile.mkdtemp(prefix="likeness-bench-out-"))
    for photo in photos:
        for run in range(args.repeat):
            start = time.perf_counter()
            result = restorer.restore(RestoreRequest(photo, out_dir / f"{photo.stem}_restored{photo.suffix}", options))
            total = time.perf_counter() - start
            h, w = result.image.shape[:2]
            mp = h * w / args.upscale**2 / 1e6
            cells = "".join(f"{result.timings.get(s, 0.0):9.3f}" for s in STAGES)
            tag = f"{photo.name}" + (f" #{run + 1}" if args.repeat > 1 else "")
            print(f"{tag:14}{mp:6.2f}{len(result.faces):6d}{cells}{total:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
