"""Calibrate and measure the wrong-reference warning (``engine.references``).

The engine warns when a reference's identity does not match the face being restored. That face
is degraded, so the threshold is chosen on degraded inputs: pairs (degraded input face,
sharp reference photo) of the same person and of different people, inputs degraded by each
evaluation preset. The threshold is fitted on the *training* identities (balanced error over
the presets, weighting each equally) and the rates are reported on the *held-out* identities:
the warning must fire for ≥ 95 % of different-person pairs while ≥ 95 % of same-person pairs
pass.

    python -m training.reference_check CACHE [--write]

``--write`` stores the threshold as ``reference_threshold`` of the embedder in
``engine/identity/calibration.json`` (other entries are kept).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import cv2
import numpy as np

from engine.identity import make_embedder
from engine.identity.embedders import CALIBRATION_FILE

from .degrade import atomic_write, degrade
from .face_import import DEFAULT_TEST_LIST, FaceRecord, load_crop, read_index, split_identities

PRESETS = ("none", "mild", "moderate", "severe")


def _embeddings(cache: str, records: Sequence[FaceRecord], embedder, preset: str, seed: int) -> np.ndarray:
    faces = []
    for i, rec in enumerate(records):
        face = cv2.resize(load_crop(cache, rec), (512, 512), interpolation=cv2.INTER_CUBIC)
        if preset != "none":
            face, _ = degrade(face, preset, np.random.default_rng([seed, i]))
        faces.append(face)
    return embedder.embed_images(faces)


def pair_scores(cache: str, records: Sequence[FaceRecord], embedder, preset: str, seed: int = 0,
                max_per_identity: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(same-person cosines, different-person cosines) of (degraded input, sharp reference) pairs."""
    by_id: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        by_id.setdefault(rec.identity, []).append(i)
    chosen = [i for ids in by_id.values() for i in ids[:max_per_identity]]
    subset = [records[i] for i in chosen]
    ref = _embeddings(cache, subset, embedder, "none", seed)
    inp = ref if preset == "none" else _embeddings(cache, subset, embedder, preset, seed)
    ident = np.array([r.identity for r in subset])
    sims = inp @ ref.T
    same = (ident[:, None] == ident[None, :]) & ~np.eye(len(subset), dtype=bool)
    diff = ident[:, None] != ident[None, :]
    return sims[same], sims[diff]


def balanced_threshold(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """Threshold maximising the worst of (same-pass rate, different-warn rate) averaged over presets."""
    candidates = np.linspace(0.5, 1.0, 501)
    best, best_t = -1.0, 0.9
    for t in candidates:
        tpr = np.mean([np.mean(s >= t) for s, _ in pairs.values()])
        tnr = np.mean([np.mean(d < t) for _, d in pairs.values()])
        score = min(tpr, tnr)
        if score > best:
            best, best_t = score, float(t)
    return best_t


def rates(pairs: dict[str, tuple[np.ndarray, np.ndarray]], t: float) -> dict[str, dict[str, float]]:
    return {p: {"same_pass": float(np.mean(s >= t)), "different_warned": float(np.mean(d < t)),
                "same_mean": float(s.mean()), "different_mean": float(d.mean()), "pairs": [int(s.size), int(d.size)]}
            for p, (s, d) in pairs.items()}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("--embedder", default="dlib")
    parser.add_argument("--test-list", default=str(DEFAULT_TEST_LIST))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    emb = make_embedder(args.embedder)
    train, test = split_identities(read_index(args.cache), args.test_list)
    fit_ids = sorted({r.identity for r in train})[::3]  # a third of the training identities is plenty
    fit_records = [r for r in train if r.identity in set(fit_ids)]
    fit = {p: pair_scores(args.cache, fit_records, emb, p) for p in PRESETS}
    t = balanced_threshold(fit)
    held_out = {p: pair_scores(args.cache, test, emb, p, seed=1) for p in PRESETS}
    report = {"embedder": args.embedder, "threshold": t, "train": rates(fit, t), "held_out": rates(held_out, t)}
    print(json.dumps(report, indent=1))
    if args.write:
        data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8")) if CALIBRATION_FILE.is_file() else {"embedders": {}}
        entry = data.setdefault("embedders", {}).setdefault(args.embedder, {})
        entry["reference_threshold"] = round(t, 4)
        entry["reference_check"] = report["held_out"]
        atomic_write(CALIBRATION_FILE, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
        print(f"wrote reference_threshold {t:.3f} for {args.embedder} to {CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
