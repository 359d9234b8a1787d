"""Turn arbitrary photos into a cache of FFHQ-aligned faces, with identity labels and quality facts.

Training, evaluation and calibration all need aligned faces, and detection costs far more than
anything done with a face afterwards, so it runs once per photo here (the engine's detector,
landmarks and alignment: exactly what restoration sees) and the crops are cached:

    <out>/faces/<identity>/<stem>.png     aligned crops, ``size``² (PNG, lossless)
    <out>/index.jsonl                      one record per photo (see ``FaceRecord``)

The identity is the photo's folder name (``faces/identities/<identity>/<nn>.jpg`` in the shared
data). In a photo with several people the largest face is kept: in CelebA-style photos that is
the annotated one. ``scale`` (aligned-512 pixels per photo pixel) tells how much a crop was
enlarged: targets for training should come from faces with scale ≲ 512 / size so they are sharp.
The import resumes: photos already in the index are skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.errors import LikenessError
from engine.faces.align import FFHQ_SIZE, affine_scale
from engine.faces.detect import make_detector
from engine.faces.find import find_faces, largest_face
from engine.files import atomic_path
from engine.imageio import read_image, write_image

from .imaging import resize_square

log = logging.getLogger(__name__)

INDEX_NAME = "index.jsonl"
#: The held-out identity list of the shared face data (``../shared`` beside the checkout).
DEFAULT_TEST_LIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "test_identities.txt"
#: Where the training tools look for the face cache by default: ../cache/faces256 beside the checkout.
DEFAULT_FACE_CACHE = Path(__file__).resolve().parents[2] / "cache" / "faces256"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class FaceRecord:
    """One imported photo's main face."""

    name: str  # "<identity>/<stem>": unique key, and the crop's path under faces/ without .png
    identity: str
    source: str
    size: int  # crop side in pixels
    scale: float  # aligned-512 pixels per source pixel (>1: the face was enlarged)
    face_px: float  # detected box side in source pixels
    sharpness: float  # variance of the Laplacian of the crop's gray levels
    faces_found: int
    landmarks: list[list[float]]  # the 5 landmarks in source pixels
    crop_ext: str = ".png"  # ".jpg" in a packed copy (``pack_cache``)

    @property
    def path_suffix(self) -> str:
        return f"faces/{self.name}{self.crop_ext}"


def photos_in(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``folder``, sorted (identity folders, then files)."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_index(out_dir: str | os.PathLike[str]) -> list[FaceRecord]:
    path = Path(out_dir) / INDEX_NAME
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(FaceRecord(**json.loads(line)))
    return records


def sharpness(rgb: np.ndarray) -> float:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def import_faces(
    photos: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    size: int = 256,
    min_face: float = 40,
    fallback_cnn: bool = True,
) -> Iterator[FaceRecord | str]:
    """Detect, align and cache the main face of each photo; yields a record or an error line per photo.

    ``root``: identities are taken from the path relative to it (first folder); default: parent name.
    HOG finds frontal faces fast; photos where it finds none are retried with dlib's CNN.
    """
    out = Path(out_dir)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    done = {r.source for r in read_index(out)}
    hog = make_detector("hog")
    cnn = None
    with open(out / INDEX_NAME, "a", encoding="utf-8") as index:
        for photo in map(Path, photos):
            source = str(photo.resolve())
            if source in done:
                continue
            identity = _identity(photo, root)
            try:
                rgb = read_image(photo).rgb
            except LikenessError as exc:
                yield f"{photo}: {exc}"
                continue
            # the engine's own find → align, at the cache's size
            faces = find_faces(rgb, hog, min_face=min_face, size=size)
            if not faces and fallback_cnn:
                cnn = cnn or make_detector("cnn")
                faces = find_faces(rgb, cnn, min_face=min_face, size=size)
            main = largest_face(faces)  # CelebA labels the main person: the largest face in nearly all photos
            if main is None:
                yield f"{photo}: no face found"
                continue
            face, crop = main.detection, main.crop
            record = FaceRecord(
                name=f"{identity}/{photo.stem}" if identity else photo.stem,
                identity=identity,
                source=source,
                size=size,
                scale=round(affine_scale(main.affine) * FFHQ_SIZE / size, 4),  # aligned-512 pixels per photo pixel
                face_px=round(face.size, 1),
                sharpness=round(sharpness(crop), 2),
                faces_found=len(faces),
                landmarks=np.round(face.landmarks, 2).tolist(),
            )
            target = out / record.path_suffix
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()  # a crop left by an interrupted run, not in the index
            write_image(target, crop)
            index.write(json.dumps(asdict(record)) + "\n")
            index.flush()
            yield record


def _identity(photo: Path, root: str | os.PathLike[str] | None) -> str:
    if root is not None:
        rel = photo.resolve().relative_to(Path(root).resolve())
        return rel.parts[0] if len(rel.parts) > 1 else ""
    return photo.parent.name


def load_crop(out_dir: str | os.PathLike[str], record: FaceRecord) -> np.ndarray:
    """The cached aligned crop of ``record`` as uint8 RGB."""
    return read_image(Path(out_dir) / record.path_suffix).rgb


def pack_cache(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    size: int,
    quality: int = 95,
    exclude: Iterable[str] = (),
) -> int:
    """A compact copy of a face cache for another machine (a GPU lent with a small upload limit).

    Crops are resized to the model's ``size`` (the resize training does anyway) and stored as
    JPEG at ``quality``; the index is rewritten to point at them, so ``faces_from_cache`` reads
    the copy unchanged. ``exclude``: identities left out (the held-out ones never travel).
    Returns the number of faces written.
    """
    out = Path(dst)
    excluded = set(exclude)
    records = [r for r in read_index(src) if r.identity not in excluded]
    lines = []
    for rec in records:
        packed = FaceRecord(**{**asdict(rec), "size": size, "crop_ext": ".jpg"})
        target = out / packed.path_suffix
        target.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(resize_square(load_crop(src, rec), size), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(target), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f"{target}: could not be written")
        lines.append(json.dumps(asdict(packed)))
    (out / INDEX_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(records)


def split_identities(
    records: list[FaceRecord], test_list: str | os.PathLike[str]
) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """(train, test) records by the held-out identity list (one folder name per line)."""
    held_out = {line.strip() for line in Path(test_list).read_text(encoding="utf-8").splitlines() if line.strip()}
    train = [r for r in records if r.identity not in held_out]
    test = [r for r in records if r.identity in held_out]
    return train, test


def archive_cache(cache: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """One uncompressed tar of a (packed) cache, its folder name at the top: one file to carry
    to a lent machine instead of thousands (its JPEGs would not compress further)."""
    import tarfile

    src, target = Path(cache), Path(archive)
    with atomic_path(target) as tmp, tarfile.open(tmp, "w") as tar:
        tar.add(src, arcname=target.name.removesuffix(".tar"))
    return target


if __name__ == "__main__":  # python -m training.face_import SRC OUT [--size N] [--pack [--exclude LIST]]
    import argparse

    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("src", help="photo folder, or with --pack an existing face cache")
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pack", action="store_true", help="write a compact JPEG copy of the cache SRC at --size")
    parser.add_argument("--exclude", help="with --pack: file of identities to leave out (the held-out list)")
    parser.add_argument("--quality", type=int, default=95, help="with --pack: JPEG quality")
    parser.add_argument(
        "--archive", help="with --pack: also write OUT as one tar file here (its name, less .tar, is its folder)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.pack:
        held = (
            [ln.strip() for ln in Path(args.exclude).read_text(encoding="utf-8").splitlines()] if args.exclude else []
        )
        n = pack_cache(args.src, args.out, size=args.size, quality=args.quality, exclude=held)
        print(f"{n} faces packed into {args.out}")
        if args.archive:
            print(f"archive: {archive_cache(args.out, args.archive)}")
        raise SystemExit(0)
    photos = photos_in(args.src)
    failures = 0
    for item in tqdm(import_faces(photos, args.out, root=args.src, size=args.size), total=len(photos), unit="photo"):
        if isinstance(item, str):
            failures += 1
            tqdm.write(item)
    print(f"{len(read_index(args.out))} faces in {args.out}; {failures} photos without a usable face")
