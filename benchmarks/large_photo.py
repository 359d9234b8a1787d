"""Peak memory and time of one very large photo through the CLI: ``python benchmarks/large_photo.py``.

Makes a 12000×9000 JPEG from a real group photo (four faces) and restores it at ×2 (a
24000×18000 result) in a child process, then prints its peak resident memory beside the
engine's estimate (``engine.memory``). The target is 4 GB.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "real_world" / "whole_photos" / "00.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", default="12000x9000", help="WIDTHxHEIGHT of the test photo")
    parser.add_argument("--upscale", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    sys.path.insert(0, str(REPO))
    from engine.memory import bytes_needed

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jpg"
        cv2.imwrite(str(big), cv2.resize(cv2.imread(str(PHOTO)), (width, height), interpolation=cv2.INTER_CUBIC))
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "engine.cli", "restore", str(big), "-o", tmp, "--detector", "hog"]
        subprocess.run([*cmd, "--upscale", str(args.upscale), "-q"], cwd=REPO, check=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
    estimate = bytes_needed(width, height, args.upscale)
    print(
        f"{width}×{height} at ×{args.upscale}: {seconds:.1f} s, peak RSS {peak / 2**30:.2f} GiB, "
        f"estimate {estimate / 2**30:.2f} GiB (target 4 GB)"
    )


if __name__ == "__main__":
    main()
