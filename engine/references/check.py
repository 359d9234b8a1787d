"""Identity checks: does a reference show the person in the photo, and do the references agree?

Decisions use the identity interface (``engine.identity``) with mirror-averaged embeddings and
a threshold fitted on degraded faces of the training identities (``training.reference_check`` →
``engine/identity/calibration.json``). A face too damaged to carry its identity gets no verdict
either way: a check that guesses at a 20-pixel face raises false alarms on half the right
references and still misses wrong ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..identity import make_embedder
from .analyse import ReferenceFace, face_sharpness, verification_embeddings

# Used only while no calibration exists for the embedder (dlib: same ≈ 0.94, different ≈ 0.82).
FALLBACK_THRESHOLDS = {"dlib": 0.90}

MATCH, MISMATCH, UNSURE = "match", "mismatch", "unsure"

# Faces smaller than this (detection box, source pixels) count as too damaged to identify
# whatever their measured sharpness: enlarging a tiny JPEG face puts sharp-looking block and
# interpolation edges into it (a 20 px face measured 3.3, above the calibrated floor). On the
# training identities' pairs (face box ≈ 0.57 of the crop ÷ the preset's downscale) the check's
# best balanced accuracy is 68–76 % under 20 px, 90 % at 24–30 px and ≈ 95 % from 30 px.
MIN_IDENTIFIABLE_FACE = 24.0


@dataclass(frozen=True)
class ReferenceCheck:
    """How well a reference matches the input face (or the other references).

    ``verdict`` is MATCH, MISMATCH or UNSURE (the face is too damaged to tell who it is).
    """

    similarity: float
    threshold: float
    verdict: str

    @property
    def matches(self) -> bool:
        return self.verdict == MATCH

    @property
    def mismatch(self) -> bool:
        return self.verdict == MISMATCH

    @property
    def text(self) -> str:
        if self.verdict == UNSURE:
            return "cannot be confirmed: the face is too damaged to tell who it is"
        verdict = "same person" if self.matches else "may be a different person"
        return f"{verdict} (similarity {self.similarity:.2f}, needs ≥ {self.threshold:.2f})"


def identity_threshold(embedder) -> float:
    """The reference-check threshold measured for this embedder (see training.reference_check)."""
    value = embedder.reference_threshold
    if value is None:
        value = FALLBACK_THRESHOLDS.get(embedder.name, 0.5)
    return float(value)


def verifiable(face_aligned: np.ndarray, embedder, face_size: float | None = None) -> bool:
    """Whether the face is large and sharp enough for the identity check to say anything.

    ``face_size``: the face's detection box in the source photo, when known.
    """
    if face_size is not None and face_size < MIN_IDENTIFIABLE_FACE:
        return False
    floor = embedder.reference_min_sharpness
    return floor is None or face_sharpness(face_aligned) >= floor


def steered_by_references(face_aligned: np.ndarray, embedder, face_size: float | None = None) -> bool:
    """Whether identity guidance should pull this face toward the references: only faces too
    damaged to identify (every face while the embedder is uncalibrated); a face that still shows
    its person loses more to a reference's own pose and light than it gains (docs/references.md)."""
    return embedder.reference_min_sharpness is None or not verifiable(face_aligned, embedder, face_size)


def check_against(
    face_aligned: np.ndarray, references: Sequence[ReferenceFace], *, embedder=None, face_size: float | None = None
) -> list[ReferenceCheck]:
    """Each reference's identity match with the (unrestored) input face; UNSURE when the face
    is too damaged for any identity check (below the calibrated sharpness, or ``face_size``
    under MIN_IDENTIFIABLE_FACE)."""
    embedder = embedder or make_embedder()
    threshold = identity_threshold(embedder)
    face = verification_embeddings([face_aligned], embedder)[0]
    known = verifiable(face_aligned, embedder, face_size)
    checks = []
    for ref in references:
        sim = float(np.dot(face, ref.verification))
        verdict = UNSURE if not known else MATCH if sim >= threshold else MISMATCH
        checks.append(ReferenceCheck(sim, threshold, verdict))
    return checks


def check_consistency(references: Sequence[ReferenceFace], *, embedder=None) -> list[ReferenceCheck]:
    """Each reference against the mean of the *others*: flags the one that shows someone else."""
    embedder = embedder or make_embedder()
    threshold = identity_threshold(embedder)
    if len(references) < 2:
        return [ReferenceCheck(1.0, threshold, MATCH) for _ in references]
    emb = np.stack([r.verification for r in references])
    checks = []
    for i in range(len(references)):
        others = np.delete(emb, i, axis=0).mean(0)
        others /= max(np.linalg.norm(others), 1e-12)
        sim = float(np.dot(emb[i], others))
        checks.append(ReferenceCheck(sim, threshold, MATCH if sim >= threshold else MISMATCH))
    return checks
