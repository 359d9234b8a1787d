"""The README's main job without a display: restore the sample photos, write before/after.

Samples come from ``resources/samples`` (redistributable photos shipped with the app) and,
in a development checkout, from ``../shared/data/real_world/whole_photos``. Without any
restoration model the job still finds and marks the faces, and names the command that installs
a model, so a newcomer sees what is missing and how to fix it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from . import api
from .api import LikenessError, ModelMissingError, RestoreOptions, RestoreRequest, read_image, write_image
from .background import resize, scaled_size

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIRS = (REPO / "resources" / "samples", REPO.parent / "shared" / "data" / "real_world" / "whole_photos")


def sample_photos() -> list[Path]:
    for folder in SAMPLE_DIRS:
        photos = (
            sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
            if folder.is_dir()
            else []
        )
        if photos:
            return photos
    return []


def before_after(before: np.ndarray, after: np.ndarray, label_after: str) -> np.ndarray:
    """Side-by-side panel, the input upscaled to the output's size (nearest: shows real pixels)."""
    h, w = after.shape[:2]
    left = cv2.resize(before, (w, h), interpolation=cv2.INTER_NEAREST)
    gap = np.full((h, 8, 3), 255, np.uint8)
    panel = np.concatenate([left, gap, after], axis=1)
    for text, x in (("before", 8), (label_after, w + 16)):
        cv2.putText(panel, text, (x, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(panel, text, (x, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def run_samples(out_dir: Path, model: str = "auto", device: str = "auto") -> int:
    photos = sample_photos()
    if not photos:
        print(
            "likeness: no sample photos found (looked in " + ", ".join(map(str, SAMPLE_DIRS)) + "); "
            "restore your own with: likeness restore PHOTO...",
            file=sys.stderr,
        )
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    restorer = api.Restorer(model=model, device=device)
    try:
        restore = bool(restorer.model_name)
    except ModelMissingError as err:
        print(f"likeness: {err}", file=sys.stderr)
        print("likeness: meanwhile, writing the faces found in each sample (no restoration).", file=sys.stderr)
        restore = False
    options = RestoreOptions()
    for photo in photos:
        try:
            before = read_image(photo).rgb
            if restore:
                result = restorer.restore(RestoreRequest(photo, out_dir / f"{photo.stem}_restored.png", options))
                after, label = result.image, f"after ({result.model}, w={options.fidelity})"
                faces = result.faces
            else:
                faces = restorer.find_faces(before, options)
                after = resize(before, scaled_size(before.shape, options.upscale))
                for face in faces:
                    x0, y0, x1, y1 = (int(v * options.upscale) for v in face.box)
                    cv2.rectangle(after, (x0, y0), (x1, y1), (255, 200, 0), 2)
                label = "faces found (no model installed)"
            panel_path = out_dir / f"{photo.stem}_before_after.png"
            write_image(panel_path, before_after(before, after, label))
            print(f"{photo.name}: {len(faces)} face{'' if len(faces) == 1 else 's'} -> {panel_path}")
        except LikenessError as err:
            print(f"likeness: error: {err}", file=sys.stderr)
    print(f"before/after images are in {out_dir.resolve()}")
    return 0
