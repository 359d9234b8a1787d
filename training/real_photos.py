"""Real photos, no ground truth: is each restored face still this person, and has it kept its detail?

    python -m training.real_photos [--data ../shared/data/real_world] [--out out/real] [--w 0.5]

For every image of ``real_world/`` (cropped and gray faces are already aligned; whole photos go
through detection) the face is restored twice: as before the fidelity path (the generative
network alone) and now (both paths and the region blend). Per face it reports

* ``cos``: the independent evaluator's cosine between the restored face and the input face — a
  restorer that keeps the person keeps it high (1 = the same image);
* ``detail``: the restored face's fine detail relative to the input's — the variance of the
  Laplacian of the gray face inside the template's face region (1 = as much as the input).

and writes one contact sheet per folder (input | before | now) and ``report.md``/``report.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from engine.api import RestoreOptions, Restorer, RestoreRequest
from engine.identity.embedders import IdentityEmbedder
from engine.imageio import read_image

FOLDERS = ("cropped_faces", "gray_faces", "whole_photos")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_world"
#: The face region of a 512 template crop where detail is measured (brows to chin, cheek to cheek).
FACE_REGION = (slice(160, 448), slice(128, 384))


def detail(face: np.ndarray) -> float:
    """Variance of the Laplacian of the gray face region, measured at 512²."""
    if face.shape[0] != 512:
        face = cv2.resize(face, (512, 512), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(gray, cv2.CV_64F)[FACE_REGION].var())


def restore_folder(folder: Path, restorers: dict[str, Restorer], w: float) -> list[dict]:
    """One row per face: the input and each restorer's face (uint8 512²), and the whole images."""
    rows = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        aligned = folder.name != "whole_photos"
        results = {
            name: r.restore(
                RestoreRequest(path, None, RestoreOptions(fidelity=w, aligned=aligned, upscale=1 if aligned else 2))
            )
            for name, r in restorers.items()
        }
        first = next(iter(results.values()))
        for k, face in enumerate(first.faces):
            if not face.selected:
                continue
            row = {"file": path.name, "face": k + 1, "input": face.aligned, "images": {}, "faces": {}}
            for name, res in results.items():
                out = res.faces[k].restored
                if out is None:  # every result restores the same selected faces
                    raise RuntimeError(f"{path.name}: face {k + 1} is selected but was not restored")
                row["faces"][name] = (
                    out if out.shape[0] == 512 else cv2.resize(out, (512, 512), interpolation=cv2.INTER_AREA)
                )
                row["images"][name] = res.image
            row["photo"] = read_image(path).rgb
            rows.append(row)
    return rows


def score(rows: list[dict], embedder: IdentityEmbedder) -> None:
    """Adds ``cos`` and ``detail`` per restorer to each row (in place)."""
    for row in rows:
        faces = [row["input"], *row["faces"].values()]
        emb = embedder.embed_images(faces)
        row["scores"] = {}
        base = detail(row["input"])
        for i, name in enumerate(row["faces"], start=1):
            row["scores"][name] = {
                "cos": float(emb[0] @ emb[i]),
                "detail": detail(row["faces"][name]) / max(base, 1e-6),
            }
        row["input_detail"] = base


def contact_sheet(rows: list[dict], path: Path, tile: int = 256) -> None:
    """input | before | now, one row per face (whole photos: per photo, then its faces)."""
    lines = []
    seen = set()
    for row in rows:
        if row["file"] not in seen and row["photo"].shape[:2] != (512, 512):
            seen.add(row["file"])
            ims = [
                cv2.resize(
                    row["photo"], (row["images"][n].shape[1], row["images"][n].shape[0]), interpolation=cv2.INTER_CUBIC
                )
                for n in list(row["images"])[:1]
            ] + list(row["images"].values())
            h = tile * 2
            ims = [cv2.resize(im, (int(im.shape[1] * h / im.shape[0]), h), interpolation=cv2.INTER_AREA) for im in ims]
            lines.append(np.concatenate(ims, axis=1))
        faces = [row["input"], *row["faces"].values()]
        lines.append(np.concatenate([cv2.resize(f, (tile, tile), interpolation=cv2.INTER_AREA) for f in faces], axis=1))
    width = max(line.shape[1] for line in lines)
    sheet = np.concatenate(
        [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


def report(by_folder: dict[str, list[dict]], names: list[str], w: float) -> str:
    head = "| face | input detail | " + " | ".join(f"cos {n} | detail {n}" for n in names) + " |"
    out = [
        f"# Real photos at w = {w:g}",
        "",
        "`cos`: evaluator cosine, restored face vs input face. `detail`: Laplacian variance of the face region, "
        "restored / input.",
        "",
    ]
    for folder, rows in by_folder.items():
        out += [f"## {folder}", "", head, "|" + "---|" * (2 + 2 * len(names))]
        for row in rows:
            cells = [f"{row['scores'][n]['cos']:.3f} | {row['scores'][n]['detail']:.2f}" for n in names]
            out.append(f"| {row['file']} #{row['face']} | {row['input_detail']:.0f} | " + " | ".join(cells) + " |")
        cos = {n: [r["scores"][n]["cos"] for r in rows] for n in names}
        detail = {n: [r["scores"][n]["detail"] for r in rows] for n in names}
        means = [f"{np.mean(cos[n]):.3f} | {np.mean(detail[n]):.2f}" for n in names]
        mins = [f"{min(cos[n]):.3f} | {min(detail[n]):.2f}" for n in names]
        out += ["| **mean** | | " + " | ".join(means) + " |", "| **min** | | " + " | ".join(mins) + " |", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=Path("out/real"))
    p.add_argument("--w", type=float, default=0.5)
    p.add_argument("--model", default="auto", help="model name or weights file")
    p.add_argument(
        "--before", default="none", help="the 'before' fidelity model: none (the generative network alone) or a name"
    )
    args = p.parse_args(argv)
    from engine.identity import make_embedder

    from .evaluate import make_restorer

    before = None if args.before == "none" else args.before
    # make_restorer: --model may be a weights file as well as a name (a candidate network).
    restorers = {"before": make_restorer(args.model, fidelity_path=before), "now": make_restorer(args.model)}
    embedder = make_embedder("evaluator")
    by_folder = {}
    for folder in FOLDERS:
        rows = restore_folder(args.data / folder, restorers, args.w)
        score(rows, embedder)
        contact_sheet(rows, args.out / f"{folder}.jpg")
        by_folder[folder] = rows
    text = report(by_folder, list(restorers), args.w)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n", encoding="utf-8")
    slim = {
        f: [
            {
                "file": r["file"],
                "face": r["face"],
                "input_detail": r["input_detail"],
                **{n: r["scores"][n] for n in restorers},
            }
            for r in rows
        ]
        for f, rows in by_folder.items()
    }
    (args.out / "report.json").write_text(json.dumps(slim, indent=1), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
