"""The one entry point of reference handling: a restoration's references, checked and applied per face.

Per restoration: the photos are analysed (cached by the caller), and with three or more the odd
one out is dropped by majority. Per face: the best-ranked references are checked against it. A
face that none of them matches is another person: it is restored as without references, and
nothing is said about it. For the references' person, a reference that looks like someone else
is dropped with a warning, and a face too damaged to confirm gets a notice; guidance and the
reference prior go only to faces too damaged to show who they are
(``check.steered_by_references``), unless the network has a reference adapter, which reads the
references for every face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LikenessError
from ..faces.detect import DetectedFace
from ..identity import make_embedder
from ..runtime.face_restorer import FaceRestorer
from .analyse import ReferenceFace, estimate_yaw
from .check import UNSURE, check_against, check_consistency, steered_by_references
from .guide import IdentityGuidance, ReferencePrior, restore_with_references
from .rank import rank_references

#: Restores a face crop without references, ready to paste (fidelity path and colour fix included).
PlainRestore = Callable[[np.ndarray], np.ndarray]
#: Makes a reference-guided generative face ready to paste: (crop, generative face) → the face
#: mixed with the fidelity path at w, colours fixed.
FinishGuided = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GuidanceSettings:
    """The user's reference options (``RestoreOptions``' fields of the same meaning)."""

    count: int = 5
    strength: float | None = None  # None = 1.0 with references
    steps: int = 2
    explain_gate: bool = True  # say when a face is clear enough to need no references (not for profiles)


class ReferenceSet:
    """The references of one restoration, after their consistency check."""

    def __init__(self, faces: Sequence[ReferenceFace], settings: GuidanceSettings = GuidanceSettings()) -> None:
        self.faces = list(faces)
        self.settings = settings
        self.used = False  # whether a face of this restoration was found to be the references' person

    @classmethod
    def prepare(
        cls,
        paths: Sequence[Path],
        analyse: Callable[[Path], ReferenceFace],
        warnings: list[str],
        settings: GuidanceSettings = GuidanceSettings(),
    ) -> ReferenceSet:
        """Analysed references; unreadable or face-less files and odd ones out become warnings."""
        refs = []
        for path in paths:
            try:
                refs.append(analyse(Path(path)))
            except LikenessError as exc:
                warnings.append(f"reference skipped: {exc}")
        if len(refs) >= 3:  # with three or more, a majority tells who the person is
            checks = check_consistency(refs)
            for ref, check in zip(refs, checks, strict=True):
                if not check.matches:
                    warnings.append(
                        f"reference {ref.path.name} not used: it does not match the other references ({check.text})"
                    )
            refs = [r for r, c in zip(refs, checks, strict=True) if c.matches] or refs
        elif len(refs) == 2 and not check_consistency(refs)[0].matches:
            warnings.append(f"references {refs[0].path.name} and {refs[1].path.name} may show different people")
        return cls(refs, settings)

    def __bool__(self) -> bool:
        return bool(self.faces)

    @property
    def strength(self) -> float:
        return 1.0 if self.settings.strength is None else self.settings.strength

    def restore(
        self,
        index: int,
        aligned: np.ndarray,
        detection: DetectedFace,
        detail: np.ndarray,
        w: float,
        restorer: FaceRestorer,
        plain: PlainRestore,
        finish: FinishGuided,
        warnings: list[str],
    ) -> np.ndarray:
        """Face ``index`` (``aligned``, the 512 crop the checks read) restored toward the references.

        ``detail``: the face's crop at its detail size; the result has its size, ready to paste.
        ``restorer``: the generative network in torch (guidance needs gradients).
        """
        ranked = rank_references(self.faces, estimate_yaw(detection.landmarks), self.settings.count)
        checks = check_against(aligned, ranked, face_size=detection.size)
        if ranked and all(c.mismatch for c in checks):
            return plain(detail)  # another person in the photo: the references are not theirs
        self.used = True
        for ref, check in zip(ranked, checks, strict=True):
            if check.mismatch:
                warnings.append(
                    f"face {index}: reference {ref.path.name} {check.text}; it is not used for this face, "
                    "since a wrong reference pulls the face toward another person"
                )
        chosen = [ref for ref, check in zip(ranked, checks, strict=True) if not check.mismatch]
        if chosen and all(c.verdict == UNSURE for c in checks):
            warnings.append(
                f"face {index}: too damaged to confirm that the references show this person; "
                "make sure they do, a wrong reference pulls the face toward another person"
            )
        strength = self.strength
        embedder = make_embedder(device=restorer.device)
        steered = steered_by_references(aligned, embedder, detection.size)
        if restorer.net.reference is None and (strength <= 0 or not steered):
            if strength > 0 and self.settings.explain_gate:
                warnings.append(
                    f"face {index}: clear enough to be restored from the photo itself; the "
                    "references were checked, and guide only faces too damaged to show who they are"
                )
            return plain(detail)
        guidance = IdentityGuidance(strength=strength, steps=self.settings.steps) if strength > 0 else None
        prior = ReferencePrior() if strength > 0 else None  # strength 0: the references are only checked
        restored, _ = restore_with_references(
            restorer,
            [aligned],
            w,
            [r.aligned for r in chosen],
            embedder,
            guidance,
            np.stack([r.embedding for r in chosen]),
            prior,
            guided=[steered],
        )
        return finish(detail, restored[0])
