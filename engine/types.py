"""The engine's public types: a request in, progress and a result out (plain data, no networks).

``engine.api`` re-exports them; the CLI, the GUI and training build requests and read results
from these records and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import LikenessError
from .faces.align import FFHQ_SIZE, enlarge_affine
from .faces.detect import SMALLEST_FACE, DetectedFace
from .faces.find import AlignedFace

MAX_REFERENCES = 5
DEFAULT_BACKGROUND = "likeness-background-x2"
"""The background upscaler by default: ESRGAN slim fine-tuned on real-photo damage (bundled)."""


@dataclass(frozen=True)
class RestoreOptions:
    """How to restore; one record shared by CLI flags, GUI controls and saved settings.

    Attributes:
        fidelity: w in [0, 1]: 0 = cleaner, more generated; 1 = closer to the original.
        upscale: output size relative to the input (1, 2, 4...).
        faces: indices (reading order, left to right) of the faces to restore; None = all.
        only_center_face: restore only the face nearest the photo's centre.
        aligned: the input is already a face aligned to the FFHQ template (any square size).
        min_face: faces smaller than this (box side, input pixels) are left alone.
        color_fix: match the restored face's colours to the input's (avoids colour shift).
        background: "bicubic" or the name of an installed upscaler model; by default the
            bundled network trained for real photos (``DEFAULT_BACKGROUND``).
        detector: "auto", "cnn", "hog" or "retinaface".
        jpeg_quality: quality of JPEG outputs.
        references: photos of the same person; each face is restored toward their identity.
        num_references: how many of the references to use per face (the best-ranked 1..5).
        identity_guidance: strength of test-time identity guidance toward the references;
            None = 1.0 when references are given; 0 = off, together with the reference prior
            for badly damaged faces (a reference-trained model still uses them by eq. 6).
        guidance_steps: gradient steps of that guidance (each ≈ one decoder pass and back);
            0 leaves the reference prior alone. Two by default: with one reference they raise
            identity by +0.12 at ``severe`` (one step +0.09) for ≈ 4× an unguided restoration
            of the few faces they go to (docs/references.md).
        profile: a person profile (``likeness profile``) to restore toward: its name, "auto"
            (each face gets the profile whose person it shows, if exactly one) or None (off).
            A face matching no profile, or two, is restored as without one.
    """

    fidelity: float = 0.5
    upscale: int = 2
    faces: tuple[int, ...] | None = None
    only_center_face: bool = False
    aligned: bool = False
    min_face: int = 32
    color_fix: bool = True
    background: str = DEFAULT_BACKGROUND
    detector: str = "auto"
    jpeg_quality: int = 95
    references: tuple[Path, ...] = ()
    num_references: int = 5
    identity_guidance: float | None = None
    guidance_steps: int = 2
    profile: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.num_references <= MAX_REFERENCES:
            raise LikenessError(
                f"number of references must be between 1 and {MAX_REFERENCES}, got {self.num_references}"
            )
        if self.identity_guidance is not None and self.identity_guidance < 0:
            raise LikenessError(f"identity guidance strength must be ≥ 0, got {self.identity_guidance}")
        if not 0 <= self.guidance_steps <= 20:
            raise LikenessError(f"guidance steps must be between 0 and 20, got {self.guidance_steps}")
        if not 0.0 <= self.fidelity <= 1.0:
            raise LikenessError(f"fidelity w must be between 0 and 1, got {self.fidelity}")
        if self.min_face < SMALLEST_FACE:
            raise LikenessError(f"the smallest face must be at least {SMALLEST_FACE} pixels, got {self.min_face}")
        if not 1 <= self.upscale <= 8:
            raise LikenessError(f"upscale must be between 1 and 8, got {self.upscale}")


@dataclass(frozen=True)
class RestoreRequest:
    """One photo to restore. ``output`` None = return the result without writing a file."""

    input: Path
    output: Path | None = None
    options: RestoreOptions = field(default_factory=RestoreOptions)


@dataclass(frozen=True)
class Progress:
    """A progress message: ``stage`` (read, detect, restore, paste, write), 0..1, text."""

    stage: str
    fraction: float
    text: str = ""


@dataclass
class FaceResult:
    """One detected face. ``restored`` is None for faces the user did not select."""

    index: int
    detection: DetectedFace  # box, score and 5 landmarks in input pixels
    affine: np.ndarray  # (2,3): input image → aligned 512 face
    aligned: np.ndarray  # the aligned input face, uint8 RGB 512²
    restored: np.ndarray | None = None  # restored face after colour fix, uint8 RGB, 512² or larger
    # The crop ``restored`` was made from when larger than ``aligned`` (a face with more detail
    # than the template): it is pasted as a change on the photo, which keeps that detail.
    restored_from: np.ndarray | None = None
    profile: str | None = None  # the person profile this face was restored with (its name)

    @property
    def restored_affine(self) -> np.ndarray:
        """input image → ``restored`` (larger than 512 for a face with more detail than the template)."""
        side = FFHQ_SIZE if self.restored is None else self.restored.shape[0]
        return self.affine if side == FFHQ_SIZE else enlarge_affine(self.affine, side / FFHQ_SIZE)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.detection.box

    @property
    def selected(self) -> bool:
        return self.restored is not None

    @classmethod
    def found(cls, index: int, face: AlignedFace) -> FaceResult:
        """Face ``index`` of a photo (reading order), as found and aligned, not yet restored."""
        return cls(index, face.detection, face.affine, face.crop)


@dataclass
class RestoreResult:
    """The restored photo and what happened on the way."""

    input: Path
    output: Path | None
    image: np.ndarray  # uint8 RGB, upscaled
    faces: list[FaceResult]
    model: str
    device: str
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]
