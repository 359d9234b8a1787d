"""Pasting restored faces back into the (upscaled) photo without seams or halos.

Each face is warped back with the inverse of its alignment affine and blended through a soft mask
built in the face crop, so the feather scales with the face: at 512 px it is 0 for the outer
32 px (1/16 of the side, which also hides the interpolated crop edge), rises smoothly over the
next 32 and is 1 inside. The transition lies in hair and background, away from the features.
Blending is a convex combination and the warp back never overshoots at the mask edge, so there is
no halo; only the region the face covers is warped, so big photos stay cheap.
"""

from __future__ import annotations

import cv2
import numpy as np

from .align import invert_affine, warp

BORDER_FRACTION = 1 / 16  # zero band at the crop border; the ramp after it is as wide
PARSING_BLUR_FRACTION = 0.03  # facexlib blurs its parsing mask with sigma ~15.6 px at 512


def face_mask(size: int, parsing: np.ndarray | None = None) -> np.ndarray:
    """Feathered float32 (size, size) mask in [0, 1], exactly 0 on the crop border.

    ``parsing`` is an optional hard face-region mask (1 = skin and features) from
    ``FaceParser.face_region``; it is softened and limited to the square feather, so only the face
    itself is replaced and hair stays from the background.
    """
    border = max(1, round(size * BORDER_FRACTION))
    square = np.zeros((size, size), np.float32)
    square[border : size - border, border : size - border] = 1.0
    radius = border - 1  # a kernel this wide cannot carry any weight onto the outermost pixel
    sigma = max(border / 2.5, 0.5)
    mask = cv2.GaussianBlur(square, (2 * radius + 1, 2 * radius + 1), sigma) if radius > 0 else square
    if parsing is not None:
        region = cv2.resize(parsing.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        mask *= cv2.GaussianBlur(region, (0, 0), size * PARSING_BLUR_FRACTION)
    return np.clip(mask, 0.0, 1.0)


def paste_faces(
    background: np.ndarray,
    faces: list[tuple[np.ndarray, np.ndarray]],
    *,
    masks: list[np.ndarray] | None = None,
    sources: list[np.ndarray | None] | None = None,
    inplace: bool = False,
) -> np.ndarray:
    """``background`` (HxWx3 uint8, already upscaled) with each restored face blended in.

    ``faces`` holds (face, affine) pairs: a uint8 RGB size x size face and its face <- image
    affine in background pixels (``rescale_affine`` converts one found on the input). ``masks``
    overrides ``face_mask(size)`` per face. Later faces win where faces overlap.

    ``sources``: per face, None or the crop the face was restored from. Given one, only the
    *change* the restoration made is warped back and added to the background: a face as large
    as its crop (a large face restored at its detail size) would otherwise lose fine detail to
    the two resamplings, photo → crop → photo, wherever the restoration kept the photo as it was.

    ``inplace`` blends into ``background`` itself (a large output is not held twice).
    """
    if masks is not None and len(masks) != len(faces):
        raise ValueError(f"{len(masks)} masks for {len(faces)} faces")
    if sources is not None and len(sources) != len(faces):
        raise ValueError(f"{len(sources)} sources for {len(faces)} faces")
    out = background if inplace else background.copy()
    height, width = out.shape[:2]
    for k, (face, affine) in enumerate(faces):
        size = face.shape[0]
        mask = masks[k] if masks is not None else face_mask(size)
        to_image = invert_affine(affine)
        corners = np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1], [-0.5, size - 0.5, 1], [size - 0.5, size - 0.5, 1]])
        mapped = corners @ to_image.T
        x0, y0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int) - 1, 0)
        x1 = min(int(np.ceil(mapped[:, 0].max())) + 2, width)
        y1 = min(int(np.ceil(mapped[:, 1].max())) + 2, height)
        if x1 <= x0 or y1 <= y0:
            continue
        to_roi = to_image.copy()
        to_roi[:, 2] -= (x0, y0)
        dsize = (x1 - x0, y1 - y0)
        alpha = warp(mask, to_roi, dsize, border=cv2.BORDER_CONSTANT, flags=cv2.INTER_LINEAR)
        alpha = np.clip(alpha, 0.0, 1.0)[..., None]
        roi = out[y0:y1, x0:x1].astype(np.float32)
        source = sources[k] if sources is not None else None
        if source is not None:
            change = face.astype(np.float32) - source.astype(np.float32)
            blended = roi + alpha * warp(change, to_roi, dsize, border=cv2.BORDER_REPLICATE)
        else:
            warped = warp(face, to_roi, dsize, border=cv2.BORDER_REPLICATE).astype(np.float32)
            blended = alpha * warped + (1.0 - alpha) * roi
        out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
