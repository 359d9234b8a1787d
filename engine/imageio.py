"""Reading photos upright and writing results that keep the original's metadata.

A photo is read once into a ``Photo``: 8-bit RGB pixels with the EXIF orientation applied, plus
what the output needs to look and sort like the original (EXIF with dates, ICC profile, grayness,
alpha). Outputs are written atomically beside or away from the original, never over it.

Conversions, chosen so the restoration always sees 8-bit RGB:
- 16-bit grayscale (``I;16``/``I``) is scaled by 1/257, not clipped as Pillow's ``convert`` does;
  16-bit RGB is already reduced to 8 bits by Pillow on open. Float gray (``F``) is read as 0-1
  when it fits, else as 0-255.
- Palette and alpha images: colours are kept unpremultiplied and alpha goes to ``Photo.alpha``;
  PNG, WebP and TIFF outputs get it back (resized), JPEG outputs are composited over white.
- CMYK is converted to sRGB through its embedded profile when there is one (the output then
  carries an sRGB profile), else with Pillow's plain formula.
- EXIF is carried for JPEG, PNG and WebP inputs, where it is a separate block. TIFF inputs keep
  their pixels upright but their tags are not copied (they mix image structure with metadata).
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError, OutputError
from .files import atomic_write

log = logging.getLogger(__name__)

EXIF_HEADER = b"Exif\x00\x00"
ORIENTATION_TAG = 0x0112
EXIF_IFD_TAG = 0x8769  # IFD0's pointer to the Exif sub-IFD
SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
#: JPEGs larger than this (pixels) are written without optimised Huffman tables (see ``_encode``).
OPTIMIZE_JPEG_PIXELS = 40_000_000
GRAY_MODES = {"1", "L", "LA", "La"}  # plus the I* and F modes, converted apart
# A JPEG of a black-and-white photo saved as RGB has channels that differ by a level or two.
GRAY_MEAN_SPREAD, GRAY_PEAK_SPREAD = 1.0, 4.0


@dataclass(frozen=True, eq=False)
class Photo:
    """An upright 8-bit RGB photo and the metadata its output should keep.

    ``exif`` starts with ``b"Exif\\0\\0"`` (Pillow's form) and has Orientation reset to 1 because
    ``rgb`` is already upright. ``alpha`` is HxW uint8 or None.
    """

    rgb: np.ndarray
    is_gray: bool
    exif: bytes | None
    icc: bytes | None
    format: str
    path: Path
    alpha: np.ndarray | None = None
    bits: int = 8  # bits per channel of the file (the pixels here are 8-bit)


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Pillow's image at ``path``; InvalidImageError naming the file and the cause when it cannot
    be read (also for errors while the caller decodes it inside the block).

    Pillow warns about very large images (welcome here) and damaged metadata it skips (the
    pixels are fine): both go to the log, not to the user's terminal.
    """
    if not path.is_file():
        raise InvalidImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InvalidImageError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings(record=True) as notes, Image.open(path) as im:
            warnings.simplefilter("always")
            yield im
    except UnidentifiedImageError:
        raise InvalidImageError(f"{path}: not an image this program can read") from None
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"{path}: the image is too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"{path}: the image is damaged or truncated ({exc})") from None
    for note in notes:
        log.info("%s: %s", path, note.message)


def probe_image(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the image at ``path``, from its header alone; InvalidImageError naming
    the file when it is not an image this program can read (cheap: a batch rejects such files
    before any network loads)."""
    path = Path(path)
    with _opened(path) as im:
        width, height = im.size
    if width < 1 or height < 1:
        raise InvalidImageError(f"{path}: the image has no pixels ({width}×{height})")
    return width, height


def read_image(path: str | os.PathLike) -> Photo:
    """Read ``path`` upright; raise InvalidImageError naming the file and the cause."""
    path = Path(path)
    with _opened(path) as im:
        bits = _bits_per_channel(im)  # before load(), which drops the tile list
        im.load()
        fmt = im.format or path.suffix.lstrip(".").upper()
        exif = _upright_exif(im.info.get("exif"), path)
        icc = im.info.get("icc_profile") or None
        upright = ImageOps.exif_transpose(im)
    rgb, alpha, gray_mode, icc = _to_rgb(upright, icc)
    gray = gray_mode or is_gray_rgb(rgb)
    return Photo(rgb=rgb, is_gray=gray, exif=exif, icc=icc, format=fmt, path=path, alpha=alpha, bits=bits)


def _bits_per_channel(im: Image.Image) -> int:
    """8, or 16 for the 16-bit modes and raw modes Pillow reads (and reduces to 8 bits)."""
    tiles = getattr(im, "tile", None) or []  # set by ImageFile, which every opened image is
    args = tiles[0].args if tiles else ""
    raw = args if isinstance(args, str) else str(args[0]) if isinstance(args, tuple) and args else ""
    if im.mode.startswith("I;16") or "16" in raw:
        return 16
    return 32 if im.mode in ("I", "F") else 8


def is_gray_rgb(rgb: np.ndarray) -> bool:
    """Whether the channels of an RGB image are equal up to JPEG chroma noise."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 1e6)))
    sample = rgb[::step, ::step].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return bool(spread.mean() <= GRAY_MEAN_SPREAD and np.percentile(spread, 99.9) <= GRAY_PEAK_SPREAD)


def _to_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None, bool, bytes | None]:
    """Pixels as (rgb, alpha, was a gray mode, icc that fits rgb)."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(im, dtype=np.float32)
        full = 65535.0 if mode.startswith("I") else (1.0 if values.max() <= 1.0 else 255.0)
        gray8 = np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)
        return np.repeat(gray8[..., None], 3, axis=2), None, True, icc
    if mode == "CMYK":
        if icc:
            srgb = ImageCms.createProfile("sRGB")
            try:
                rgb_im = ImageCms.profileToProfile(
                    im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB"
                )
                return np.asarray(rgb_im).copy(), None, False, ImageCms.ImageCmsProfile(srgb).tobytes()
            except (ImageCms.PyCMSError, OSError) as exc:
                log.warning("CMYK profile unusable (%s); converting without it", exc)
        return np.asarray(im.convert("RGB")).copy(), None, False, None
    has_alpha = "A" in mode or im.has_transparency_data
    rgba = np.asarray(im.convert("RGBA" if has_alpha else "RGB")).copy()
    alpha = rgba[..., 3].copy() if has_alpha else None
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return np.ascontiguousarray(rgba[..., :3]), alpha, mode in GRAY_MODES, icc


def _upright_exif(raw: bytes | None, path: Path) -> bytes | None:
    """EXIF with Orientation set to 1, patched in place so maker notes and offsets stay valid."""
    if not raw:
        return None
    tiff = raw[6:] if raw.startswith(EXIF_HEADER) else raw
    try:
        patched = _set_orientation(bytearray(tiff), 1)
    except (struct.error, ValueError) as exc:
        log.warning("%s: dropping unreadable EXIF (%s)", path, exc)
        return None
    return EXIF_HEADER + bytes(patched)


def _set_orientation(tiff: bytearray, value: int) -> bytearray:
    """Overwrite the Orientation entry of IFD0 in a TIFF-structured EXIF block."""
    return _set_tags(tiff, {ORIENTATION_TAG: value})


def _set_tags(tiff: bytearray, ifd0: dict[int, int], exif: dict[int, int] | None = None) -> bytearray:
    """Overwrite single SHORT/LONG entries of IFD0 and of the Exif sub-IFD in place (tags the
    block lacks are left out, so offsets, maker notes and everything else stay as they were)."""
    order = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    if order is None:
        raise ValueError("no TIFF header")
    (first,) = struct.unpack_from(order + "I", tiff, 4)
    todo = [(first, ifd0)]
    while todo:
        ifd, values = todo.pop()
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack_from(order + "HHI", tiff, entry)
            if tag == EXIF_IFD_TAG and exif and kind == 4:
                todo.append((struct.unpack_from(order + "I", tiff, entry + 8)[0], exif))
            elif tag in values and n == 1 and (kind == 4 or (kind == 3 and values[tag] <= 0xFFFF)):
                struct.pack_into(order + ("H" if kind == 3 else "I"), tiff, entry + 8, values[tag])  # inline
    return tiff


def exif_for_size(exif: bytes | None, width: int, height: int) -> bytes | None:
    """``exif`` with its pixel dimensions (IFD0 ImageWidth/Length, Exif PixelX/YDimension) set to
    the output's size: the restoration is larger than the photo they described."""
    if not exif:
        return exif
    tiff = exif[6:] if exif.startswith(EXIF_HEADER) else exif
    try:
        sizes = {0x0100: width, 0x0101: height}
        patched = _set_tags(bytearray(tiff), sizes, {0xA002: width, 0xA003: height})
    except (struct.error, ValueError):
        return exif
    return EXIF_HEADER + bytes(patched)


def write_image(
    path: str | os.PathLike, rgb: np.ndarray, *, like: Photo | None = None, quality: int = 95, fmt: str | None = None
) -> Path:
    """Write ``rgb`` atomically to ``path`` with ``like``'s EXIF, ICC, grayness and alpha.

    The format comes from ``fmt`` or the suffix (jpg, png, webp, tiff). A file is either complete
    or absent: it is written to a temporary file in the same folder, then renamed. Writing over
    ``like.path`` raises OutputError, so an original can never be replaced by its restoration.
    """
    path = Path(path)
    fmt = (fmt or SUFFIX_FORMATS.get(path.suffix.lower(), "")).upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in set(SUFFIX_FORMATS.values()):
        raise OutputError(f"{path}: unsupported output format (use .jpg, .png, .webp or .tiff)")
    if like is not None and _same_file(path, like.path):
        raise OutputError(f"{path}: refusing to overwrite the original photo; choose another name or folder")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    image, options = _encode(rgb, like, fmt, quality)
    opened = False
    try:
        with atomic_write(path) as f:
            opened = True
            image.save(f, format=fmt, **options)
    except (OSError, ValueError) as exc:
        if not opened:  # the folder cannot be made or written to
            raise OutputError(
                f"{path}: cannot write there ({exc.strerror if isinstance(exc, OSError) else exc})"
            ) from None
        raise OutputError(f"{path}: could not write the image ({exc})") from None
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _encode(rgb: np.ndarray, like: Photo | None, fmt: str, quality: int) -> tuple[Image.Image, dict]:
    """The Pillow image and save options for ``fmt``."""
    icc = like.icc if like else None
    icc_space = _icc_colour_space(icc)
    gray = like is not None and like.is_gray
    if gray and icc_space in (None, "GRAY"):
        image = Image.fromarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), "L")
    elif gray:  # an RGB profile cannot describe a single-channel file: keep three equal channels
        image = Image.fromarray(cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB), "RGB")
    else:
        image = Image.fromarray(rgb, "RGB")
    if icc and icc_space != ("GRAY" if image.mode == "L" else "RGB"):
        icc = None
    alpha = like.alpha if like is not None else None
    if alpha is not None:
        alpha = cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        if fmt in ALPHA_FORMATS:
            image.putalpha(Image.fromarray(alpha, "L"))
        else:
            white = Image.new(image.mode, image.size, "white")
            image = Image.composite(image, white, Image.fromarray(alpha, "L"))
    options: dict = {}
    if icc:
        options["icc_profile"] = icc
    if like is not None and like.exif:
        options["exif"] = exif_for_size(like.exif, rgb.shape[1], rgb.shape[0])
    if fmt == "JPEG":
        # 4:4:4 keeps lip and eye colour edges; optimised Huffman tables hold every coefficient
        # of the image in memory (2 bytes a sample), so very large images go without them.
        optimize = rgb.shape[0] * rgb.shape[1] <= OPTIMIZE_JPEG_PIXELS
        options.update(quality=quality, subsampling=0, optimize=optimize)
    elif fmt == "WEBP":
        options.update(quality=quality, method=4)
    # TIFF stays uncompressed: Pillow writes the EXIF sub-IFD (dates) only without libtiff.
    return image, options


def _icc_colour_space(icc: bytes | None) -> str | None:
    """The data colour space of an ICC profile ("RGB", "GRAY", "CMYK", ...), from its header."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("ascii", "replace").strip()
