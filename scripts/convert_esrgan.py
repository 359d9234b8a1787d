"""Converts the fetched UpscalerJS ESRGAN models (scripts/fetch_esrgan.sh) to Likeness .safetensors.

Usage: .venv/bin/python scripts/convert_esrgan.py [SIZE ...] [--scales 2 4] [--out resources/models]
writes ``esrgan-<size>-x<scale>.safetensors`` and prints each file's size and sha256 for the
catalogue. The value range is the package's: 255 for the RDN models (slim, medium), 1 for the
RRDN ones (thick).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.nets import tfjs_layers  # noqa: E402

VALUE_RANGE = {"slim": 255.0, "medium": 255.0, "thick": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", help="slim, medium, thick (default: all)")
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--vendor", type=Path, default=ROOT / "vendor" / "upscalerjs")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "models")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for size in args.sizes or list(VALUE_RANGE):
        for scale in args.scales:
            layers, state = tfjs_layers.read_model(args.vendor / size / f"x{scale}" / "model.json")
            path = args.out / f"esrgan-{size}-x{scale}.safetensors"
            tfjs_layers.save(path, layers, state, scale=scale, value_range=VALUE_RANGE[size])
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            print(f"{path.name}\t{path.stat().st_size}\t{digest}")


if __name__ == "__main__":
    main()
