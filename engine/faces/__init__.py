"""The whole-photo face pipeline around the restoration network.

detect (boxes + 5 landmarks) -> ``estimate_affine`` -> ``warp_face`` (512 FFHQ crop) -> restore
-> ``match_color`` -> ``paste_faces`` onto the upscaled background (``rescale_affine`` moves the
affine to background pixels) -> ``restore_grayness`` for gray photos.
"""

from .align import (
    FFHQ_SIZE,
    FFHQ_TEMPLATE_512,
    aligned_affine,
    estimate_affine,
    invert_affine,
    rescale_affine,
    warp_face,
)
from .color import match_color, restore_grayness
from .detect import DEFAULT_MIN_FACE, DetectedFace, FaceDetector, make_detector, select_faces
from .paste import face_mask, paste_faces

__all__ = [
    "DEFAULT_MIN_FACE",
    "FFHQ_SIZE",
    "FFHQ_TEMPLATE_512",
    "DetectedFace",
    "FaceDetector",
    "aligned_affine",
    "estimate_affine",
    "face_mask",
    "invert_affine",
    "make_detector",
    "match_color",
    "paste_faces",
    "rescale_affine",
    "restore_grayness",
    "select_faces",
    "warp_face",
]
