"""Reference photos of the person being restored: analysis, identity checks and ranking.

A wrong reference pulls a badly degraded face toward the wrong person (the reference-guided
restoration paper, §4.2), so every reference is checked before it is used: it must contain a
face, it should show the same person as the input face, and the references should agree with
each other. When an album offers many candidates, ``rank_references`` picks the most helpful
ones: sharp, in a pose close to the input's, and consistent with the rest of the album.

Identity decisions use the identity interface (``engine.identity``) with mirror-averaged
embeddings and a threshold fitted on degraded faces of the training identities
(``training.reference_check`` → ``engine/identity/calibration.json``). A face too damaged to
carry its identity gets no verdict either way: a check that guesses at a 20-pixel face raises
false alarms on half the right references and still misses wrong ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import NoFaceFoundError
from .faces.align import FFHQ_SIZE, estimate_affine, warp_face
from .faces.detect import DetectedFace, make_detector
from .imageio import read_image

# Used only while no calibration exists for the embedder (dlib: same ≈ 0.94, different ≈ 0.82).
FALLBACK_THRESHOLDS = {"dlib": 0.90}

MATCH, MISMATCH, UNSURE = "match", "mismatch", "unsure"

# Faces smaller than this (detection box, source pixels) count as too damaged to identify
# whatever their measured sharpness: enlarging a tiny JPEG face puts sharp-looking block and
# interpolation edges into it (a 20 px face measured 3.3, above the calibrated floor). On the
# training identities' pairs (face box ≈ 0.57 of the crop ÷ the preset's downscale) the check's
# best balanced accuracy is 68–76 % under 20 px, 90 % at 24–30 px and ≈ 95 % from 30 px.
MIN_IDENTIFIABLE_FACE = 24.0


@dataclass(frozen=True, eq=False)
class ReferenceFace:
    """One reference photo's main face, aligned to the FFHQ template, with its identity embedding."""

    path: Path
    aligned: np.ndarray  # uint8 RGB, FFHQ_SIZE²
    embedding: np.ndarray  # unit vector of the identity network that analysed it (what guidance steers to)
    verification: np.ndarray  # mean of the photo's and its mirror image's vectors (what the checks compare)
    detection: DetectedFace
    faces_in_photo: int
    sharpness: float  # variance of the Laplacian on the aligned face (higher = sharper)
    yaw: float  # rough head yaw in degrees from the five landmarks (+ = turned to its left)


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


def estimate_yaw(landmarks: np.ndarray) -> float:
    """Yaw in degrees from where the nose tip sits between the eyes (0 = frontal)."""
    left_eye, right_eye, nose = np.asarray(landmarks[0]), np.asarray(landmarks[1]), np.asarray(landmarks[2])
    axis = right_eye - left_eye
    iod = float(np.linalg.norm(axis))
    if iod < 1e-6:
        return 0.0
    # Position of the nose along the eye axis, -1..1 from the left eye to the right eye.
    t = float(np.dot(nose - (left_eye + right_eye) / 2, axis) / (iod * iod / 2))
    return math.degrees(math.asin(max(-1.0, min(1.0, t))))


def face_sharpness(aligned: np.ndarray) -> float:
    """Variance of the Laplacian inside the central face region (hair and background excluded).

    Measured at the engine's 512² alignment, so a small face (upscaled to 512) mostly reads as
    soft as a blurred one: both carry little identity (but see MIN_IDENTIFIABLE_FACE).
    """
    if aligned.shape[0] != FFHQ_SIZE:
        aligned = cv2.resize(aligned, (FFHQ_SIZE, FFHQ_SIZE), interpolation=cv2.INTER_CUBIC)
    s = aligned.shape[0]
    core = aligned[s // 4: 3 * s // 4, s // 4: 3 * s // 4]
    gray = cv2.cvtColor(core, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def identity_threshold(embedder) -> float:
    """The reference-check threshold measured for this embedder (see training.reference_check)."""
    value = embedder.reference_threshold
    if value is None:
        value = FALLBACK_THRESHOLDS.get(embedder.name, 0.5)
    return float(value)


def verification_embeddings(faces: Sequence[np.ndarray], embedder) -> np.ndarray:
    """Unit identity vectors averaged over each aligned face and its mirror image.

    Steadier than one view for yes/no decisions: on held-out sharp faces dlib's best balanced
    accuracy for (input, reference) pairs rises from 93.8 % to 95.2 % (more shifts and scales
    add nothing further).
    """
    return _embedded_with_mirror(faces, embedder)[1]


def _embedded_with_mirror(faces: Sequence[np.ndarray], embedder) -> tuple[np.ndarray, np.ndarray]:
    """(each face's own vectors, vectors averaged with the mirror image), from one network pass."""
    views = list(faces) + [np.ascontiguousarray(f[:, ::-1]) for f in faces]
    emb = embedder.embed_images(views)
    mean = emb[: len(faces)] + emb[len(faces):]
    return emb[: len(faces)], mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def _analysed(path: Path, aligned: np.ndarray, detection: DetectedFace, faces_in_photo: int, yaw: float,
              embedder) -> ReferenceFace:
    (embedding,), (verification,) = _embedded_with_mirror([aligned], embedder)
    return ReferenceFace(path, aligned, embedding, verification, detection, faces_in_photo, face_sharpness(aligned), yaw)


def analyse_reference(path: str | Path, *, embedder=None, detector: str = "auto", min_face: float = 32) -> ReferenceFace:
    """Read a reference photo, find its main (largest) face, align and embed it.

    Raises InvalidImageError for unreadable files and NoFaceFoundError (naming the file) when no
    face is found, so the GUI can show the reason next to the thumbnail.
    """
    from .identity import make_embedder

    path = Path(path)
    rgb = read_image(path).rgb
    faces = make_detector(detector).detect(rgb, min_face=min_face)
    if not faces:
        raise NoFaceFoundError(f"{path}: no face found; a reference must show the person's face")
    face = max(faces, key=lambda f: f.size)
    aligned = warp_face(rgb, estimate_affine(face.landmarks, FFHQ_SIZE), FFHQ_SIZE)
    return _analysed(path, aligned, face, len(faces), estimate_yaw(face.landmarks), embedder or make_embedder())


def reference_from_aligned(aligned: np.ndarray, *, embedder=None, path: str | Path = "") -> ReferenceFace:
    """A reference from an already aligned face (tests, evaluation sets, album caches)."""
    from .faces.align import face_template
    from .identity import make_embedder

    size = aligned.shape[0]
    landmarks = face_template(size).astype(np.float32)
    det = DetectedFace((0.0, 0.0, float(size), float(size)), 1.0, landmarks)
    return _analysed(Path(path), aligned, det, 1, 0.0, embedder or make_embedder())


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


def check_against(face_aligned: np.ndarray, references: Sequence[ReferenceFace], *, embedder=None,
                  face_size: float | None = None) -> list[ReferenceCheck]:
    """Each reference's identity match with the (unrestored) input face; UNSURE when the face
    is too damaged for any identity check (below the calibrated sharpness, or ``face_size``
    under MIN_IDENTIFIABLE_FACE)."""
    from .identity import make_embedder

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
    from .identity import make_embedder

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


def rank_references(candidates: Sequence[ReferenceFace], input_yaw: float = 0.0, count: int = 5) -> list[ReferenceFace]:
    """The ``count`` most helpful references: consistent identity first, then sharpness and pose.

    Score = consistency rank (0..1, cosine to the mean of the other candidates) + 0.5 × sharpness
    rank (0..1) + 0.5 × pose closeness (1 at equal yaw, 0 at 90° apart). Ranks, not raw values,
    so that no criterion wins by its units: with raw cosines (spread ≈ 0.05) the sharpest photo
    always won, and on severe faces of training identities the most consistent reference
    restores better (one reference, guidance and prior: evaluator IDS 0.560 consistency-first,
    0.538 sharpest-first, 0.528 random). Candidates that fail the consistency check go last
    whatever their sharpness.
    """
    if not candidates:
        return []
    checks = check_consistency(candidates)

    def rank(values: Sequence[float]) -> np.ndarray:
        return np.argsort(np.argsort(values)) / max(len(values) - 1, 1)

    consistency = rank([c.similarity for c in checks])
    sharpness = rank([c.sharpness for c in candidates])
    scores = []
    for i, (ref, chk) in enumerate(zip(candidates, checks)):
        pose = max(0.0, 1.0 - abs(ref.yaw - input_yaw) / 90.0)
        scores.append((chk.matches, consistency[i] + 0.5 * sharpness[i] + 0.5 * pose, -i))
    ranked = sorted(range(len(candidates)), key=lambda i: scores[i], reverse=True)
    return [candidates[i] for i in ranked[:count]]
