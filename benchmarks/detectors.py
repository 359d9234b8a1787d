"""Face finding: faces found and time per photo for each detector policy (issue 19, part 2).

    python benchmarks/detectors.py [--photos 200] [--json out.json]

Runs on the four real-world whole photos (their faces counted by eye: 4, 4, 1, 1) and on the
first N identity photos of the held-out list of ``../shared/data/faces`` (one labelled person
each, often with others). Recall on the identity photos is measured against the union of what
any policy found there, matched by box overlap, so a policy is not judged by itself alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
WHOLE = {"00.jpg": 4, "01.jpg": 4, "03.jpg": 1, "04.jpg": 1}


def policies():
    from engine.faces.detect import make_detector

    cnn, hog = make_detector("cnn"), make_detector("hog")

    def cascade(rgb, min_face):
        return hog.detect(rgb, min_face=min_face) or cnn.detect(rgb, min_face=min_face)

    return {
        "cnn (today's default)": lambda rgb, m: cnn.detect(rgb, min_face=m),
        "hog": lambda rgb, m: hog.detect(rgb, min_face=m),
        "hog, cnn when hog finds none": cascade,
    }


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--min-face", type=float, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from engine.imageio import read_image

    held = (SHARED / "faces" / "test_identities.txt").read_text().split()
    ids = sorted(p for ident in held for p in (SHARED / "faces" / "identities" / ident).glob("*.jpg"))
    photos = [(SHARED / "real_world" / "whole_photos" / n) for n in WHOLE] + ids[: args.photos]
    images = {str(p): read_image(p).rgb for p in photos}
    found: dict[str, dict[str, list]] = {}
    seconds: dict[str, float] = {}
    for name, detect in policies().items():
        found[name], start = {}, time.perf_counter()
        for path, rgb in images.items():
            found[name][path] = [f.box for f in detect(rgb, args.min_face)]
        seconds[name] = (time.perf_counter() - start) / len(images)
    union: dict[str, list] = {}
    for path in images:
        boxes: list = []
        for name in found:
            for box in found[name][path]:
                if all(iou(box, b) < 0.3 for b in boxes):
                    boxes.append(box)
        union[path] = boxes
    rows = []
    for name in found:
        whole = {Path(p).name: len(found[name][str(p)]) for p in photos[:4]}
        hit = sum(
            any(iou(b, f) >= 0.3 for f in found[name][p])
            for p in images
            if p not in map(str, photos[:4])
            for b in union[p]
        )
        total = sum(len(union[p]) for p in images if p not in map(str, photos[:4]))
        none = sum(not found[name][p] for p in images if p not in map(str, photos[:4]))
        rows.append(
            {
                "policy": name,
                "whole_photo_faces": whole,
                "identity_recall": hit / max(total, 1),
                "identity_photos_without_a_face": none,
                "seconds_per_photo": seconds[name],
            }
        )
    print(f"{len(images) - 4} identity photos (union of faces: {sum(len(union[p]) for p in list(images)[4:])})")
    print("| policy | whole photos 00/01/03/04 (4/4/1/1) | identity recall | photos with none | s/photo |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in rows:
        w = "/".join(str(v) for v in r["whole_photo_faces"].values())
        print(
            f"| {r['policy']} | {w} | {r['identity_recall']:.3f} | {r['identity_photos_without_a_face']} | "
            f"{r['seconds_per_photo']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
