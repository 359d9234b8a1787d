"""The path of one photo, as stages: read → find faces → restore → colour → paste → write.

Each stage is a function of plain inputs; ``PhotoRestoration`` runs them in order for one request
with progress, cancel checks and timings. The networks come from ``runtime.Networks``; reference
photos from ``references.ReferenceSet``.

    read       ``imageio.read_image``: orientation, ICC profile, EXIF and grayness kept
    find       ``find_faces``: detect (boxes + 5 landmarks), then align each to the FFHQ 512 template
    restore    ``restore_face``: the face's crop at its detail size through the networks
    colour     ``finish_face``: the restored face takes the input's colours
    paste      ``paste_restored``: the background upscaled, each face pasted back with a soft mask
    write      ``imageio.write_image``: atomic, never over the original
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .background import resize, scaled_size
from .errors import CancelledError, InvalidImageError
from .faces.align import FFHQ_SIZE, affine_scale, enlarge_affine, rescale_affine, warp_face
from .faces.color import match_color, restore_grayness
from .faces.detect import FaceDetector, select_faces
from .faces.find import align_detection, alignable, whole_image_face
from .faces.paste import paste_faces
from .imageio import probe_image, read_image, write_image
from .memory import check_fits
from .profiles.use import ProfileSet
from .references import ReferenceSet
from .runtime.networks import Networks
from .runtime.two_path import detail_side
from .types import FaceResult, Progress, ProgressCallback, RestoreOptions, RestoreRequest, RestoreResult

#: An ``aligned`` input must be a square face crop at least this large (pixels a side); a crop may
#: be off square by this fraction (resized by a viewer or a screenshot).
MIN_ALIGNED_SIDE = 16
ALIGNED_SQUARENESS = 0.05


# -- stages -------------------------------------------------------------------------------------
def find_faces(
    rgb: np.ndarray, detector: FaceDetector, min_face: float, timings: dict[str, float] | None = None
) -> list[FaceResult]:
    """Detected faces in reading order, each with its 512² alignment (no restoration)."""
    start = time.perf_counter()
    detected = alignable(detector.detect(rgb, min_face=min_face))
    aligned_at = time.perf_counter()
    faces = [FaceResult.found(i, align_detection(rgb, face)) for i, face in enumerate(detected)]
    if timings is not None:
        timings["detect"] = timings.get("detect", 0.0) + aligned_at - start
        timings["align"] = timings.get("align", 0.0) + time.perf_counter() - aligned_at
    return faces


def crop_side(face: FaceResult, keep_detail: bool) -> int:
    """The side of ``detail_crop``'s crop, known before any pixel is warped."""
    return detail_side(affine_scale(face.affine)) if keep_detail else FFHQ_SIZE


def detail_crop(rgb: np.ndarray, face: FaceResult, keep_detail: bool) -> np.ndarray:
    """``face.aligned``, or for a face larger in the photo than the 512 template, its aligned crop
    at a size that holds all its detail (``two_path.detail_side``): the fidelity path keeps that
    detail (``keep_detail``), where a 512 crop would have dropped it before any network ran."""
    side = crop_side(face, keep_detail)
    if side == face.aligned.shape[0]:
        return face.aligned
    return warp_face(rgb, enlarge_affine(face.affine, side / FFHQ_SIZE), side)


def finish_face(restored: np.ndarray, aligned: np.ndarray, color_fix: bool = True) -> np.ndarray:
    """The network's face made ready to paste (one place for every restore path): the input's colours."""
    return match_color(restored, aligned) if color_fix else restored


def restore_face(
    nets: Networks,
    rgb: np.ndarray,
    face: FaceResult,
    options: RestoreOptions,
    references: ReferenceSet | None,
    warnings: list[str],
    profiles: ProfileSet | None = None,
) -> None:
    """Restores ``face`` in place: ``restored`` (colours fixed) and, for a face with more detail
    than the template, ``restored_from``, the crop it was made from. A face that shows a
    profile's person is restored with that profile (``profile`` names it), before references."""
    detail = detail_crop(rgb, face, keep_detail=nets.fidelity_model is not None)
    face.restored_from = None if detail is face.aligned else detail

    def plain(crop: np.ndarray) -> np.ndarray:
        return finish_face(nets.restore([crop], options.fidelity)[0], crop, options.color_fix)

    def finish_guided(crop: np.ndarray, generative: np.ndarray) -> np.ndarray:
        mixed = nets.mix_with_fidelity_path([crop], [generative], options.fidelity)[0]
        return finish_face(mixed, crop, options.color_fix)

    def colour(restored: np.ndarray, crop: np.ndarray) -> np.ndarray:
        return finish_face(restored, crop, options.color_fix)

    if profiles:
        personal = profiles.restore(
            face.index,
            face.aligned,
            face.detection,
            detail,
            options.fidelity,
            nets,
            plain,
            finish_guided,
            colour,
            warnings,
        )
        if personal is not None:
            face.restored, face.profile = personal
            return
    if references:
        face.restored = references.restore(
            face.index,
            face.aligned,
            face.detection,
            detail,
            options.fidelity,
            nets.torch_restorer,
            plain,
            finish_guided,
            warnings,
        )
    else:
        face.restored = plain(detail)


def paste_restored(
    background: np.ndarray, photo_shape: tuple[int, ...], faces: list[FaceResult], masks: list[np.ndarray] | None
) -> np.ndarray:
    """The selected faces pasted onto ``background`` (the photo upscaled), each with a soft mask."""
    selected = [f for f in faces if f.restored is not None]
    if not selected:
        return background
    scale = (background.shape[1] / photo_shape[1], background.shape[0] / photo_shape[0])
    pasted = [(f.restored, rescale_affine(f.restored_affine, scale)) for f in selected if f.restored is not None]
    return paste_faces(background, pasted, masks=masks, sources=[f.restored_from for f in selected], inplace=True)


# -- one photo ----------------------------------------------------------------------------------
@dataclass
class PhotoRestoration:
    """One request through the stages, reporting progress and stopping at the next check once cancelled."""

    nets: Networks
    request: RestoreRequest
    references: ReferenceSet | None = None
    profiles: ProfileSet | None = None
    progress: ProgressCallback | None = None
    cancel: threading.Event | None = None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def report(self, stage: str, fraction: float, text: str) -> None:
        if self.progress is not None:
            self.progress(Progress(stage, fraction, text))

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise CancelledError(f"{self.request.input}: cancelled")

    def upscale_progress(self, fraction: float) -> None:
        """After each tile of the background: cancel there, and move the bar from 0.8 to 0.9."""
        self.check_cancel()
        self.report("upscale", round(0.8 + 0.1 * fraction, 4), "Enlarging the background")

    def timed(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - start
        return now

    def run(self, prepare_references=None, prepare_profiles=None) -> RestoreResult:
        """Restores the photo; writes ``request.output`` atomically when given.

        ``prepare_references``: called after the read, with the warnings list, to get the
        request's ``ReferenceSet`` (the caller caches analysed references across photos);
        ``prepare_profiles``: likewise for its ``ProfileSet``.
        """
        request, opts = self.request, self.request.options
        device_before = self.nets.device
        t = time.perf_counter()
        self.report("read", 0.0, f"Reading {request.input.name}")
        check_fits(request.input.name, *probe_image(request.input), opts.upscale)
        photo = read_image(request.input)
        if photo.bits > 8:
            self.warnings.append(f"{request.input.name}: a {photo.bits}-bit photo; the result has 8 bits per channel")
        t = self.timed("read", t)
        self.check_cancel()
        if prepare_references is not None:
            self.references = prepare_references(self.warnings)
        if prepare_profiles is not None:
            self.profiles = prepare_profiles(self.warnings)
        self.timed("references", t)
        if opts.aligned:
            image, faces = self.restore_aligned(photo.rgb)
        else:
            image, faces = self.restore_photo(photo.rgb)
        photo = replace(photo, rgb=np.empty((0, 0, 3), np.uint8))  # its pixels are done with: free them
        image = restore_grayness(image, photo.is_gray)
        if self.nets.device != device_before:
            self.warnings.append(f"{device_before} ran out of memory: restoration continues on the CPU")
        output = None
        if request.output is not None:
            self.check_cancel()
            self.report("write", 0.95, f"Writing {request.output.name}")
            t = time.perf_counter()
            write_image(request.output, image, like=photo, quality=opts.jpeg_quality)
            output = request.output
            self.timed("write", t)
        self.report("done", 1.0, "Done")
        return RestoreResult(
            request.input,
            output,
            image,
            faces,
            self.nets.model_name,
            self.nets.describe_device(),
            self.timings,
            self.warnings,
        )

    def note_unused_references(self) -> None:
        """One line when the references matched none of the restored faces (they show someone else),
        or a named profile matched none."""
        if self.profiles:
            self.profiles.note_unused(self.request.input.name, self.warnings)
        if self.references and not self.references.used:
            self.warnings.append(
                f"{self.request.input.name}: the references show someone other than the faces in this photo; "
                "they were not used"
            )

    def restore_in_batches(self, rgb: np.ndarray, chosen: list[FaceResult]) -> None:
        """Faces with no references or profile, restored in place through the network in batches of
        equal crop size (``Networks.face_batch``: what a GPU holds at once, one face on the CPU).
        Each batch's crops are made when it runs, so large faces are not all held at once."""
        opts = self.request.options
        keep_detail = self.nets.fidelity_model is not None
        by_side: dict[int, list[FaceResult]] = {}
        for face in chosen:
            by_side.setdefault(crop_side(face, keep_detail), []).append(face)
        done = 0
        for side, members in by_side.items():
            size = self.nets.face_batch(side)
            for start in range(0, len(members), size):
                batch = members[start : start + size]
                self.check_cancel()
                first, last = done + 1, done + len(batch)
                which = f"face {first}" if first == last else f"faces {first}–{last}"
                self.report("restore", 0.1 + 0.7 * done / len(chosen), f"Restoring {which} of {len(chosen)}")
                crops = [detail_crop(rgb, face, keep_detail) for face in batch]
                restored = self.nets.restore(crops, opts.fidelity)
                for face, crop, out in zip(batch, crops, restored, strict=True):
                    face.restored_from = None if crop is face.aligned else crop
                    face.restored = finish_face(out, crop, opts.color_fix)
                done += len(batch)

    def restore_photo(self, rgb: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        """A whole photo: find, restore the chosen faces, upscale the background and paste."""
        opts = self.request.options
        self.report("detect", 0.05, "Finding faces")
        faces = find_faces(rgb, self.nets.detector(opts.detector), opts.min_face, self.timings)
        t = time.perf_counter()
        chosen = select_faces(
            [f.detection for f in faces],
            rgb.shape,
            indices=opts.faces,
            only_center=opts.only_center_face,
            min_size=opts.min_face,
        )
        if not faces:
            self.warnings.append(f"{self.request.input.name}: no face found; the photo was only upscaled")
        if self.references or self.profiles:  # each face decides its own path: one at a time
            for n, (index, _) in enumerate(chosen):
                self.check_cancel()
                self.report("restore", 0.1 + 0.7 * n / max(1, len(chosen)), f"Restoring face {n + 1} of {len(chosen)}")
                restore_face(self.nets, rgb, faces[index], opts, self.references, self.warnings, self.profiles)
                t = self.timed("network", t)
        else:
            self.restore_in_batches(rgb, [faces[index] for index, _ in chosen])
            t = self.timed("network", t)
        if chosen:
            self.note_unused_references()
        self.check_cancel()
        self.report("upscale", 0.8, "Enlarging the background")
        background = self.nets.upscaler(opts.background).upscale(rgb, opts.upscale, progress=self.upscale_progress)
        t = self.timed("upscale", t)
        self.report("paste", 0.9, "Blending faces into the photo")
        restored = [f.restored for f in faces if f.restored is not None]
        image = paste_restored(background, rgb.shape, faces, self.nets.face_masks(restored) if restored else None)
        self.timed("paste", t)
        return image, faces

    def restore_aligned(self, rgb: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        """An already-aligned face (any square size): restored whole at upscale × its size."""
        t = time.perf_counter()
        height, width = rgb.shape[:2]
        name = self.request.input.name
        if min(height, width) < MIN_ALIGNED_SIDE:
            raise InvalidImageError(f"{name}: {width}×{height} is too small to be an aligned face")
        if abs(height - width) > ALIGNED_SQUARENESS * max(height, width):
            raise InvalidImageError(
                f"{name}: {width}×{height} is not an aligned face (those are square); drop --aligned to find the faces"
            )
        face = FaceResult.found(0, whole_image_face(rgb))
        restore_face(self.nets, rgb, face, self.request.options, self.references, self.warnings, self.profiles)
        self.note_unused_references()
        self.timings["network"] = time.perf_counter() - t
        assert face.restored is not None
        return resize(face.restored, scaled_size(rgb.shape, self.request.options.upscale)), [face]
