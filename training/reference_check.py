"""Calibrate and measure the wrong-reference warning (``engine.references``).

The engine warns when a reference's identity does not match the face being restored. That face
is degraded, so the check is calibrated on degraded inputs: pairs (degraded input face, sharp
reference photo) of the same person and of different people, inputs degraded by each
evaluation preset, all embeddings mirror-averaged as the engine compares them. Two numbers are
fitted on the *training* identities:

* ``reference_min_sharpness``: the input-face sharpness below which the check abstains (UNSURE).
  Pairs are pooled over the presets and binned by sharpness; the floor is the lowest bin from
  which on the check separates same from different people with ≥ 90 % balanced accuracy.
* ``reference_threshold``: the cosine that best balances (same passes, different warned) over
  the pairs the check does decide.

Rates are reported on the *held-out* identities per preset: the share of pairs decided, and
among those the same-person passes and the different-person warnings (the issue's target is
≥ 95 % of both).

    python -m training.reference_check CACHE [--every K] [--write]

``--write`` stores both numbers and the held-out rates for the embedder in
``engine/identity/calibration.json`` (other entries are kept).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.files import write_bytes
from engine.identity import make_embedder
from engine.identity.embedders import CALIBRATION_FILE, IdentityEmbedder
from engine.references import face_sharpness, verification_embeddings

from .degrade import degrade
from .face_import import DEFAULT_TEST_LIST, FaceRecord, load_crop, read_index, split_identities

PRESETS = ("none", "mild", "moderate", "severe")
MIN_BALANCED_ACCURACY = 0.90


@dataclass(frozen=True)
class Pairs:
    """Cosines of (degraded input, sharp reference) pairs, each with its input's sharpness."""

    same: np.ndarray
    same_sharpness: np.ndarray
    different: np.ndarray
    different_sharpness: np.ndarray

    def above(self, floor: float) -> Pairs:
        return self.band(floor, np.inf)

    def band(self, low: float, high: float) -> Pairs:
        keep_s = (self.same_sharpness >= low) & (self.same_sharpness < high)
        keep_d = (self.different_sharpness >= low) & (self.different_sharpness < high)
        return Pairs(
            self.same[keep_s], self.same_sharpness[keep_s], self.different[keep_d], self.different_sharpness[keep_d]
        )

    @staticmethod
    def pooled(pairs: Sequence[Pairs]) -> Pairs:
        return Pairs(
            *(
                np.concatenate([getattr(p, f) for p in pairs])
                for f in ("same", "same_sharpness", "different", "different_sharpness")
            )
        )


def _inputs(
    cache: str, records: Sequence[FaceRecord], embedder: IdentityEmbedder, preset: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mirror-averaged embeddings, sharpness) of the faces degraded by ``preset``."""
    faces = []
    for i, rec in enumerate(records):
        face = cv2.resize(load_crop(cache, rec), (512, 512), interpolation=cv2.INTER_CUBIC)
        if preset != "none":
            face, _ = degrade(face, preset, np.random.default_rng([seed, i]))
        faces.append(face)
    return verification_embeddings(faces, embedder), np.array([face_sharpness(f) for f in faces])


def pair_scores(
    cache: str,
    records: Sequence[FaceRecord],
    embedder: IdentityEmbedder,
    presets: Sequence[str] = PRESETS,
    seed: int = 0,
    max_per_identity: int = 3,
) -> dict[str, Pairs]:
    """Per preset, the (degraded input, sharp reference) pairs of up to 3 photos per identity."""
    by_id: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        by_id.setdefault(rec.identity, []).append(i)
    subset = [records[i] for ids in by_id.values() for i in ids[:max_per_identity]]
    ref, _ = _inputs(cache, subset, embedder, "none", seed)
    ident = np.array([r.identity for r in subset])
    same = (ident[:, None] == ident[None, :]) & ~np.eye(len(subset), dtype=bool)
    diff = ident[:, None] != ident[None, :]
    out = {}
    for preset in presets:
        inp, sharp = _inputs(cache, subset, embedder, preset, seed)
        sims = inp @ ref.T
        q = np.broadcast_to(sharp[:, None], sims.shape)
        out[preset] = Pairs(sims[same], q[same], sims[diff], q[diff])
    return out


def _best_balanced(p: Pairs) -> tuple[float, float]:
    """(worst of same-pass / different-warn rate, threshold) at the best threshold."""
    if p.same.size == 0 or p.different.size == 0:
        return 0.0, 0.9
    best = (-1.0, 0.9)
    for t in np.unique(np.quantile(np.concatenate([p.same, p.different]), np.linspace(0, 1, 1001))):
        best = max(best, (min(float(np.mean(p.same >= t)), float(np.mean(p.different < t))), float(t)))
    return best


def sharpness_floor(pairs: Pairs, step: float = 1.12, min_pairs: int = 40) -> float:
    """Lowest sharpness from which on every band of pairs reaches MIN_BALANCED_ACCURACY."""
    edges = [float(np.quantile(pairs.same_sharpness, 0.01))]
    while edges[-1] < np.quantile(pairs.same_sharpness, 0.99):
        edges.append(edges[-1] * step)
    good = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        band = pairs.band(low, high)
        good.append(band.same.size < min_pairs or _best_balanced(band)[0] >= MIN_BALANCED_ACCURACY)
    floor = edges[-1]
    for low, ok in zip(reversed(edges[:-1]), reversed(good), strict=True):  # a verdict per band
        if not ok:
            break
        floor = low
    return floor


def balanced_threshold(pairs: Pairs) -> float:
    """Threshold maximising the worst of (same-pass rate, different-warn rate)."""
    return _best_balanced(pairs)[1]


def rates(pairs: dict[str, Pairs], t: float, floor: float) -> dict[str, dict]:
    """Per preset: share of pairs decided, and among those the same-pass / different-warn rates."""
    out = {}
    for preset, p in pairs.items():
        kept = p.above(floor)
        decided = (kept.same.size + kept.different.size) / max(p.same.size + p.different.size, 1)
        out[preset] = {
            "decided": decided,
            "same_pass": float(np.mean(kept.same >= t)) if kept.same.size else None,
            "different_warned": float(np.mean(kept.different < t)) if kept.different.size else None,
            "same_mean": float(p.same.mean()),
            "different_mean": float(p.different.mean()),
            "pairs": [int(p.same.size), int(p.different.size)],
        }
    return out


def calibrate(fit: dict[str, Pairs]) -> tuple[float, float]:
    """(sharpness floor, threshold) fitted on the training identities' pairs."""
    pooled = Pairs.pooled(list(fit.values()))
    floor = sharpness_floor(pooled)
    return floor, balanced_threshold(pooled.above(floor))


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("cache")
    parser.add_argument("--embedder", default="dlib")
    parser.add_argument("--test-list", default=str(DEFAULT_TEST_LIST))
    parser.add_argument("--every", type=int, default=1, help="fit on every k-th training identity (default: all)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    emb = make_embedder(args.embedder)
    train, test = split_identities(read_index(args.cache), args.test_list)
    fit_ids = sorted({r.identity for r in train})[:: args.every]
    fit_records = [r for r in train if r.identity in set(fit_ids)]
    fit = pair_scores(args.cache, fit_records, emb)
    floor, t = calibrate(fit)
    held_out = pair_scores(args.cache, test, emb, seed=1)
    report = {
        "embedder": args.embedder,
        "threshold": t,
        "min_sharpness": floor,
        "train": rates(fit, t, floor),
        "held_out": rates(held_out, t, floor),
        "held_out_without_floor": rates(held_out, t, 0.0),
    }
    print(json.dumps(report, indent=1))
    if args.write:
        data = (
            json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
            if CALIBRATION_FILE.is_file()
            else {"embedders": {}}
        )
        entry = data.setdefault("embedders", {}).setdefault(args.embedder, {})
        entry["reference_threshold"] = round(t, 4)
        entry["reference_min_sharpness"] = round(floor, 3)
        entry["reference_check"] = report["held_out"]
        write_bytes(CALIBRATION_FILE, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
        print(
            f"wrote reference_threshold {t:.3f} and reference_min_sharpness {floor:.2f} for {args.embedder} "
            f"to {CALIBRATION_FILE}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
