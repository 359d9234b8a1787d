"""The album's clustering threshold, calibrated on training identities and reported on held-out ones.

    python -m training.album_calibration [--faces /work/cache/faces256] [--shared ../shared] [--out FILE]

1. Calibrate (training identities only: all but ``test_identities.txt``). Embeds every cached
   FFHQ-aligned face of the training identities (``--faces``, made by ``training.face_import``)
   as the album scan does (dlib, mirror-averaged), draws
   ``ALBUMS`` albums of ``IDENTITIES`` identities each, clusters each at every threshold of the
   grid and measures pairwise precision and recall against the identity labels. The chosen
   threshold is the lowest one (most recall) whose mean precision is ≥ ``PRECISION``.
2. Report (held-out identities only). Builds a real album folder: the held-out identities'
   photos symlinked flat under unique names, plus two non-image files; runs ``scan_album`` on
   it (HOG detector) and scores the people it found. A photo's identity labels its largest face
   only; other faces in the photo (bystanders) are left out of the pairs. The per-threshold table
   re-clusters the scan's own faces at each threshold, to show how the cut trades the two.

Prints the tables and writes them as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.album.cluster import THRESHOLD, cluster_faces, pairwise_scores
from engine.album.index import Album
from engine.album.scan import scan_album
from engine.identity import make_embedder
from engine.references.analyse import verification_embeddings

from .face_import import DEFAULT_FACE_CACHE, load_crop, read_index, split_identities

DEFAULT_FACES = DEFAULT_FACE_CACHE
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
GRID = tuple(round(float(t), 3) for t in np.arange(0.90, 0.9601, 0.005))
ALBUMS = 30
IDENTITIES = 30
PRECISION = 0.99  # a margin over the 0.98 asked of an album
SEED = 0


def embed_training_faces(faces: Path, test_list: Path, cache: Path | None) -> tuple[list[str], np.ndarray]:
    """(identity per face, mirror-averaged dlib vectors) of the training identities' cached faces."""
    if cache is not None and cache.is_file():
        data = np.load(cache)
        return [str(s) for s in data["identities"]], data["embeddings"]
    train, _ = split_identities(read_index(faces), test_list)
    embedder = make_embedder()
    out = []
    for start in range(0, len(train), 64):
        crops = [load_crop(faces, r) for r in train[start : start + 64]]
        out.append(verification_embeddings(crops, embedder))
    embeddings = np.concatenate(out).astype(np.float32)
    identities = [r.identity for r in train]
    if cache is not None:
        np.savez(cache, identities=np.array(identities), embeddings=embeddings)
    return identities, embeddings


def calibrate(identities: list[str], embeddings: np.ndarray) -> dict:
    """Per-threshold (worst precision, mean precision, mean recall) over random training albums."""
    rng = random.Random(SEED)
    names = sorted(set(identities))
    albums = []
    for _ in range(ALBUMS):
        chosen = set(rng.sample(names, IDENTITIES))
        albums.append([i for i, name in enumerate(identities) if name in chosen])
    table = []
    for threshold in GRID:
        precisions, recalls = [], []
        for rows in albums:
            groups = cluster_faces(embeddings[rows], threshold=threshold)
            p, r = pairwise_scores(groups, [identities[i] for i in rows])
            precisions.append(p)
            recalls.append(r)
        table.append(
            {
                "threshold": threshold,
                "worst_precision": round(min(precisions), 4),
                "precision": round(float(np.mean(precisions)), 4),
                "recall": round(float(np.mean(recalls)), 4),
            }
        )
    ok = [row for row in table if row["precision"] >= PRECISION]
    chosen_threshold = min(row["threshold"] for row in ok) if ok else max(GRID)
    return {
        "albums": ALBUMS,
        "identities_per_album": IDENTITIES,
        "faces_per_album": round(float(np.mean([len(a) for a in albums])), 1),
        "chosen_threshold": chosen_threshold,
        "table": table,
    }


def build_album(shared: Path, folder: Path, identities: list[str]) -> dict[str, str]:
    """Symlinks of the identities' photos, flat, under unique names; returns file name → identity."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = {}
    for identity in identities:
        for photo in sorted((shared / "data" / "faces" / "identities" / identity).glob("*.jpg")):
            name = f"{identity}_{photo.name}"
            (folder / name).symlink_to(photo.resolve())
            labels[name] = identity
    (folder / "notes.txt").write_text("not a photo\n", encoding="utf-8")
    (folder / "album.json").write_text("{}\n", encoding="utf-8")
    return labels


def held_out_report(shared: Path, work: Path) -> dict:
    """Scan a real album of the held-out identities' photos and score the people found."""
    test_list = shared / "data" / "faces" / "test_identities.txt"
    held_out = [line.strip() for line in test_list.read_text(encoding="utf-8").splitlines() if line.strip()]
    folder, home = work / "album", work / "home"
    labels = build_album(shared, folder, held_out)
    report = scan_album(folder, detector="hog", root=home)
    album = Album.open(folder, root=home)
    faces = album.faces()
    main: dict[str, str] = {}  # photo name -> face id of its largest face
    for face in faces:
        best = main.get(face.photo.name)
        if best is None or face.size > next(f.size for f in faces if f.face_id == best):
            main[face.photo.name] = face.face_id
    face_label = {fid: labels.get(name) for name, fid in main.items()}
    people = album.people()
    index = {f.face_id: i for i, f in enumerate(faces)}
    groups = [[index[f.face_id] for f in person.faces] for person in people]
    row_labels = [face_label.get(f.face_id) for f in faces]
    precision, recall = pairwise_scores(groups, row_labels)
    found = {frozenset(labels.get(f.photo.name) for f in p.faces if face_label.get(f.face_id)) for p in people}
    embeddings = np.stack([f.embedding for f in faces])
    table = []
    for threshold in GRID:
        g = cluster_faces(embeddings, threshold=threshold)
        p, r = pairwise_scores(g, row_labels)
        table.append({"threshold": threshold, "precision": round(p, 4), "recall": round(r, 4), "groups": len(g)})
    labelled_people = [p for p in people if any(face_label.get(f.face_id) for f in p.faces)]
    return {
        "identities": len(held_out),
        "photos": report.photos,
        "skipped_non_images": report.skipped,
        "unreadable": len(report.unreadable),
        "faces": report.faces,
        "labelled_faces": sum(label is not None for label in row_labels),
        "photos_without_face": len(labels) - len(main),
        "people_found": report.people,
        "people_with_two_or_more_faces": sum(len(p.faces) >= 2 for p in people),
        "people_holding_labelled_faces": len(labelled_people),
        "mixed_people": sum(len(s) > 1 for s in found),
        "threshold": THRESHOLD,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "scan_seconds": round(report.seconds, 1),
        "photos_per_second": round(report.photos / report.seconds, 2) if report.seconds else None,
        "table": table,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--embeddings", type=Path, help="cache of the training faces' vectors (.npz)")
    parser.add_argument("--skip-report", action="store_true", help="calibrate only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    test_list = args.shared / "data" / "faces" / "test_identities.txt"
    started = time.perf_counter()
    identities, embeddings = embed_training_faces(args.faces, test_list, args.embeddings)
    result: dict = {"calibration": calibrate(identities, embeddings)}
    result["calibration"]["training_faces"] = len(identities)
    result["calibration"]["training_identities"] = len(set(identities))
    cal = result["calibration"]
    print(f"calibration: {cal['training_identities']} training identities, {cal['training_faces']} faces")
    print(f"  {ALBUMS} albums x {IDENTITIES} identities (~{cal['faces_per_album']} faces)")
    print("  threshold  worst-P  mean-P  mean-R")
    for row in cal["table"]:
        print(
            f"  {row['threshold']:.3f}      {row['worst_precision']:.4f}   {row['precision']:.4f}  {row['recall']:.4f}"
        )
    print(f"  chosen: {cal['chosen_threshold']:.3f} (engine.album.cluster.THRESHOLD = {THRESHOLD:.3f})")
    if not args.skip_report:
        with tempfile.TemporaryDirectory() as work:
            rep = held_out_report(args.shared, Path(work))
        result["held_out"] = rep
        print(
            f"held-out album: {rep['identities']} identities, {rep['photos']} photos, {rep['faces']} faces "
            f"({rep['labelled_faces']} labelled), {rep['skipped_non_images']} non-images skipped"
        )
        print(
            f"  threshold {rep['threshold']:.3f}: pairwise precision {rep['precision']:.4f}, recall "
            f"{rep['recall']:.4f}; {rep['people_found']} people ({rep['people_with_two_or_more_faces']} with 2+ "
            f"faces) for {rep['identities']} identities, {rep['mixed_people']} mixing identities"
        )
        print(f"  scan: {rep['scan_seconds']} s, {rep['photos_per_second']} photos/s")
        print("  threshold  precision  recall  groups")
        for row in rep["table"]:
            print(f"  {row['threshold']:.3f}      {row['precision']:.4f}     {row['recall']:.4f}  {row['groups']}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
