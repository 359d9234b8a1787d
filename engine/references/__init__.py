"""Reference photos of the person being restored: analyse, check, rank, guide.

A wrong reference pulls a badly degraded face toward the wrong person (the reference-guided
restoration paper, §4.2), so every reference is checked before it is used: it must contain a
face, it should show the same person as the input face, and the references should agree with
each other. Then, for the faces too damaged to show who they are, the best-ranked references
guide the restoration.

- ``analyse``: a reference photo's main face, aligned, embedded and measured.
- ``check``: identity verdicts (same person, different person, too damaged to tell).
- ``rank``: which references help most for a given face.
- ``guide``: the reference prior, multi-reference logits and test-time identity guidance.
- ``use``: ``ReferenceSet``, the one entry point restoration calls.
"""

from .analyse import (
    ReferenceFace,
    analyse_reference,
    estimate_yaw,
    face_sharpness,
    reference_from_aligned,
    verification_embeddings,
)
from .check import (
    MATCH,
    MIN_IDENTIFIABLE_FACE,
    MISMATCH,
    UNSURE,
    ReferenceCheck,
    check_against,
    check_consistency,
    identity_threshold,
    steered_by_references,
    verifiable,
)
from .rank import rank_references
from .use import GuidanceSettings, ReferenceSet

__all__ = [
    "MATCH",
    "MIN_IDENTIFIABLE_FACE",
    "MISMATCH",
    "UNSURE",
    "GuidanceSettings",
    "ReferenceCheck",
    "ReferenceFace",
    "ReferenceSet",
    "analyse_reference",
    "check_against",
    "check_consistency",
    "estimate_yaw",
    "face_sharpness",
    "identity_threshold",
    "rank_references",
    "reference_from_aligned",
    "steered_by_references",
    "verifiable",
    "verification_embeddings",
]
