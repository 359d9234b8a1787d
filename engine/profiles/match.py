"""Whose profile a face in a photo is: decided per face, conservatively.

A face gets a profile only when the identity check says it is that profile's person and no
other's. A face that matches two profiles (siblings, a parent and child) or none is restored as
without a profile. A face too damaged to identify gets a profile only when the user named one
(``--profile NAME``), as with reference photos, with a notice that it could not be confirmed.

The score of a profile is the mean of the face's three best cosines to its chosen references
(mirror-averaged vectors, as the reference checks use), against the reference check's threshold:
a single lucky reference can match a look-alike, three rarely do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..identity import make_embedder
from ..references.analyse import ReferenceFace, verification_embeddings
from ..references.check import MATCH, MISMATCH, UNSURE, identity_threshold, verifiable
from .store import Profile

#: The face's best cosines to a profile's references that are averaged into its score.
TOP_MATCHES = 3


@dataclass(frozen=True)
class LoadedProfile:
    """A profile with its references analysed (cached per restorer)."""

    profile: Profile
    references: list[ReferenceFace]

    @property
    def name(self) -> str:
        return self.profile.name

    def score(self, face_vector: np.ndarray) -> float:
        sims = sorted((float(np.dot(face_vector, r.verification)) for r in self.references), reverse=True)
        top = sims[:TOP_MATCHES]
        return float(np.mean(top)) if top else -1.0


@dataclass(frozen=True)
class ProfileMatch:
    """The outcome for one face: the profile to use (or None) and a notice for the user (or "")."""

    profile: LoadedProfile | None
    verdict: str  # MATCH, MISMATCH or UNSURE
    notice: str = ""


def match_face(
    index: int,
    aligned: np.ndarray,
    face_size: float | None,
    profiles: Sequence[LoadedProfile],
    named: str | None,
    embedder=None,
) -> ProfileMatch:
    """Which of ``profiles`` face ``index`` shows. ``named``: the profile the user asked for (None = auto)."""
    embedder = embedder or make_embedder()
    candidates = [p for p in profiles if named is None or p.name == named]
    if not candidates:
        return ProfileMatch(None, MISMATCH)
    threshold = identity_threshold(embedder)
    if not verifiable(aligned, embedder, face_size):
        if named is not None:  # as asked; the reference check says it could not be confirmed
            return ProfileMatch(candidates[0], UNSURE)
        names = ", ".join(p.name for p in candidates)
        return ProfileMatch(
            None,
            UNSURE,
            f"face {index}: too damaged to tell whose profile it is ({names}); choose one to use it (--profile NAME)",
        )
    vector = verification_embeddings([aligned], embedder)[0]
    matches = [p for p in candidates if p.score(vector) >= threshold]
    if len(matches) == 1:
        return ProfileMatch(matches[0], MATCH)
    if len(matches) > 1:
        names = " and ".join(p.name for p in matches)
        return ProfileMatch(
            None, UNSURE, f"face {index}: looks like both {names}; restored without a profile (choose one to use it)"
        )
    if named is not None:
        return ProfileMatch(None, MISMATCH, f"face {index}: does not look like {named}; restored without the profile")
    return ProfileMatch(None, MISMATCH)


__all__ = ["MATCH", "MISMATCH", "UNSURE", "LoadedProfile", "ProfileMatch", "match_face"]
