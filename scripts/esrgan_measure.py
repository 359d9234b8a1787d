"""Measures the ESRGAN background upscalers against bicubic on the sample whole photos.

For each converted model in ``--models`` (default out/esrgan, from scripts/convert_esrgan.py --out
out/esrgan, or the bundled ones) and each ``--network LABEL=FILE`` (e.g. the bundled default,
``likeness-background=resources/models/likeness-background-x2.safetensors``), this upscales every
photo of ``../shared/data/real_world/whole_photos`` by 2 in tiles, times it (seconds per input
megapixel, torch CPU threads as set), scores NIQE (training/niqe.py: lower is more natural) and
writes a contact sheet of 100 % crops (bicubic, then each network) to out/esrgan_sheet.png. Prints
a markdown table, with two artefact measures: how strongly the input's JPEG grid shows
(``engine.jpeg_grid.grid_strength``) and how much grain the smooth areas get (``flat_grain``).

Usage: .venv/bin/python scripts/esrgan_measure.py [--photos DIR] [--models DIR] [--sheet PNG]
       [--sizes slim ...] [--network LABEL=FILE ...] [--deblock]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import jpeg_grid  # noqa: E402
from engine.background import BicubicUpscaler, EsrganUpscaler  # noqa: E402
from training.niqe import load_model, niqe  # noqa: E402

CROP = 160  # output pixels, shown at 100 %


def crops(image: np.ndarray) -> list[tuple[int, int]]:
    """Top-left corners (in x2 output pixels) of two crops: the most textured region and the centre."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.boxFilter(np.abs(cv2.Laplacian(gray, cv2.CV_32F)), -1, (CROP // 2, CROP // 2))
    half = CROP // 4  # a CROP-px output crop is CROP/2 input px; keep its centre inside
    energy[:half], energy[-half:], energy[:, :half], energy[:, -half:] = 0, 0, 0, 0
    y, x = np.unravel_index(int(np.argmax(energy)), energy.shape)
    h, w = image.shape[:2]
    corners = [(2 * int(y) - CROP // 2, 2 * int(x) - CROP // 2), (h - CROP // 2, w - CROP // 2)]
    return [(min(max(cy, 0), 2 * h - CROP), min(max(cx, 0), 2 * w - CROP)) for cy, cx in corners]


def luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def flat_grain(out: np.ndarray, reference: np.ndarray) -> float:
    """RMS of the fine detail (luma minus its σ = 1 blur) in the flattest quarter of the photo
    (by the reference's local contrast): how much noise and grain the upscaler put in smooth areas."""
    ref = luma(reference)
    local = cv2.blur(ref * ref, (7, 7)) - cv2.blur(ref, (7, 7)) ** 2
    flat = local <= np.percentile(local, 25)
    y = luma(out)
    return float(np.sqrt(np.mean((y - cv2.GaussianBlur(y, (0, 0), 1.0))[flat] ** 2)))


def label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, 0), (CROP, 16), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared/data/real_world/whole_photos")
    parser.add_argument("--models", type=Path, default=ROOT / "out" / "esrgan")
    parser.add_argument("--sheet", type=Path, default=ROOT / "out" / "esrgan_sheet.png")
    parser.add_argument("--sizes", nargs="*", default=["slim", "medium", "thick"])
    parser.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="LABEL=FILE",
        help="also measure this ×2 network file (repeatable)",
    )
    parser.add_argument(
        "--deblock", action="store_true", help="even out the JPEG grid before each --network, as the default does"
    )
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = {p.name: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos}
    upscalers: dict[str, object] = {"bicubic": BicubicUpscaler()}
    for size in args.sizes:
        upscalers[size] = EsrganUpscaler({2: args.models / f"esrgan-{size}-x2.safetensors"}, name=f"esrgan-{size}")
    for entry in args.network:
        key, _, file = entry.partition("=")
        upscalers[key] = EsrganUpscaler({2: Path(file)}, name=key, deblock=args.deblock)
    model = load_model()
    outputs: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for key, upscaler in upscalers.items():
        seconds, megapixels, scores, grids, grains = 0.0, 0.0, [], [], []
        outputs[key] = {}
        for name, image in images.items():
            upscaler.upscale(image[:32, :32], 2)  # type: ignore[attr-defined]  # load and warm up
            start = time.perf_counter()
            out = upscaler.upscale(image, 2)  # type: ignore[attr-defined]
            seconds += time.perf_counter() - start
            megapixels += image.shape[0] * image.shape[1] / 1e6
            outputs[key][name] = out
            scores.append(niqe(out, model))
            grids.append(jpeg_grid.grid_strength(out, period=16))  # the input's 8×8 grid at ×2
            grains.append(flat_grain(out, outputs["bicubic"][name]))
        artefacts = (float(np.mean(grids)), float(np.mean(grains)))
        rows.append((key, float(np.mean(scores)), scores, seconds / megapixels, artefacts))
        per_photo = " ".join(f"{s:.2f}" for s in scores)
        print(f"{key}: NIQE {np.mean(scores):.3f} ({per_photo}), {seconds / megapixels:.2f} s/MP", flush=True)
    print(
        "\n| upscaler | NIQE (mean) | NIQE per photo (" + ", ".join(images) + ") | s per input MP "
        "| JPEG grid (1 = none) | grain in flat areas (levels RMS) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for key, mean, scores, spm, (grid, grain) in rows:
        per_photo = " / ".join(f"{s:.2f}" for s in scores)
        print(f"| {key} | {mean:.3f} | {per_photo} | {spm:.2f} | {grid:.3f} | {grain:.2f} |")
    sheet_rows = []
    for name, image in images.items():
        for cy, cx in crops(image):
            tiles = [label(outputs[k][name][cy : cy + CROP, cx : cx + CROP], f"{name} {k}") for k in upscalers]
            sheet_rows.append(np.concatenate(tiles, axis=1))
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.sheet), cv2.cvtColor(np.concatenate(sheet_rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"\ncontact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
