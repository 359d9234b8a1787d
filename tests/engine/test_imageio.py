"""Reading upright with metadata, writing atomically, never over the original."""

from __future__ import annotations

import functools
import os
import stat

import numpy as np
import pytest
from PIL import Image, ImageCms

from engine.errors import InvalidImageError, OutputError
from engine.faces.color import restore_grayness
from engine.imageio import Photo, is_gray_rgb, read_image, write_image

DATE = "2001:02:03 04:05:06"
EXIF_IFD, DATE_ORIGINAL, ORIENTATION = 0x8769, 0x9003, 0x0112


def upright_image() -> np.ndarray:
    """An asymmetric 48x32 picture of flat 8x8 blocks (survives JPEG at quality 100)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((8, 8, 1), np.uint8))


def stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for ``orientation`` (EXIF spec: where row 0 / column 0 are)."""
    return {
        1: lambda u: u,
        2: np.fliplr,
        3: lambda u: np.rot90(u, 2),
        4: np.flipud,
        5: lambda u: u.transpose(1, 0, 2),
        6: lambda u: np.rot90(u, 1),
        7: lambda u: np.fliplr(np.rot90(u, 1)),
        8: lambda u: np.rot90(u, -1),
    }[orientation](upright)


def exif_bytes(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[DATE_ORIGINAL] = DATE
    return exif.tobytes()


@functools.cache
def srgb_icc() -> bytes:
    """Built once: a profile's header holds its creation time, so two builds can differ."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation, fmt):
    upright = upright_image()
    path = tmp_path / f"o{orientation}.{fmt.lower()}"
    stored = np.ascontiguousarray(stored_for(upright, orientation))
    options = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    Image.fromarray(stored).save(path, fmt, exif=exif_bytes(orientation), **options)

    photo = read_image(path)

    assert photo.rgb.shape == upright.shape
    assert np.abs(photo.rgb.astype(int) - upright).max() <= (6 if fmt == "JPEG" else 0)
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif[ORIENTATION] == 1, "the output must not be rotated a second time by viewers"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tiff"])
def test_exif_date_and_icc_survive_read_write(tmp_path, suffix):
    src = tmp_path / "in.jpg"
    Image.fromarray(np.ascontiguousarray(stored_for(upright_image(), 6))).save(
        src, "JPEG", exif=exif_bytes(6), icc_profile=srgb_icc(), quality=95
    )
    photo = read_image(src)
    assert photo.format == "JPEG" and photo.icc == srgb_icc()

    out = write_image(tmp_path / f"out{suffix}", photo.rgb, like=photo)

    with Image.open(out) as im:
        assert im.info.get("icc_profile") == srgb_icc()
        exif = im.getexif()
        assert exif.get(ORIENTATION, 1) == 1
        assert exif.get_ifd(EXIF_IFD).get(DATE_ORIGINAL) == DATE
        assert im.size == (upright_image().shape[1], upright_image().shape[0])


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OutputError, match="disk full"):
        write_image(target, upright_image())
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]

    monkeypatch.undo()
    write_image(target, upright_image())
    assert np.array_equal(read_image(target).rgb, upright_image())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_written_files_get_the_permissions_of_an_ordinary_new_file(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); outputs must not end up private to the user."""
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    out = write_image(tmp_path / "out.jpg", upright_image())
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_refuses_to_overwrite_the_original(tmp_path):
    src = tmp_path / "photo.png"
    Image.fromarray(upright_image()).save(src)
    photo = read_image(src)
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    os.link(src, tmp_path / "hardlink.png")
    for target in (src, tmp_path / "sub" / ".." / "photo.png", tmp_path / "hardlink.png"):
        with pytest.raises(OutputError, match="overwrite the original"):
            write_image(target, photo.rgb, like=photo)
    assert src.read_bytes() == before


def test_unsupported_output_format(tmp_path):
    with pytest.raises(OutputError, match="unsupported output format"):
        write_image(tmp_path / "out.gif", upright_image())


def test_grayscale_round_trip(tmp_path):
    gray = np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (32, 1))
    src = tmp_path / "gray.png"
    Image.fromarray(gray, "L").save(src)
    photo = read_image(src)
    assert photo.is_gray and photo.rgb.shape == (32, 64, 3)
    assert np.array_equal(photo.rgb[..., 0], gray) and np.array_equal(photo.rgb[..., 2], gray)

    tinted = photo.rgb.astype(np.int16) + np.array([6, 0, -6])  # what a network does to gray faces
    tinted = np.clip(tinted, 0, 255).astype(np.uint8)
    regrayed = restore_grayness(tinted, photo.is_gray)
    assert is_gray_rgb(regrayed) and not is_gray_rgb(tinted)
    assert restore_grayness(tinted, False) is tinted

    with Image.open(write_image(tmp_path / "same.png", photo.rgb, like=photo)) as im:
        assert im.mode == "L" and np.array_equal(np.asarray(im), gray)
    for suffix in (".png", ".jpg"):  # the tint moved luminance by about one level
        with Image.open(write_image(tmp_path / f"out{suffix}", regrayed, like=photo)) as im:
            assert im.mode == "L"
            assert np.abs(np.asarray(im).astype(int) - gray).max() <= (3 if suffix == ".jpg" else 2)


def test_rgb_file_with_equal_channels_counts_as_gray(tmp_path):
    gray = np.repeat(upright_image()[..., :1], 3, axis=2)
    Image.fromarray(gray).save(tmp_path / "g.jpg", quality=90)
    Image.fromarray(upright_image()).save(tmp_path / "c.jpg", quality=90)
    assert read_image(tmp_path / "g.jpg").is_gray
    assert not read_image(tmp_path / "c.jpg").is_gray


def test_gray_photo_with_rgb_profile_stays_three_channel(tmp_path):
    """A single-channel file cannot carry an RGB profile, so the output keeps 3 equal channels."""
    src = tmp_path / "g.png"
    Image.fromarray(np.repeat(upright_image()[..., :1], 3, axis=2)).save(src, icc_profile=srgb_icc())
    photo = read_image(src)
    assert photo.is_gray
    out = write_image(tmp_path / "out.png", photo.rgb, like=photo)
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.info["icc_profile"] == srgb_icc()


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    photo = read_image(path)
    assert photo.is_gray
    assert photo.rgb[0, :, 0].tolist() == [0, 1, 128, 255]

    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "float.tiff")
    assert read_image(tmp_path / "float.tiff").rgb[0, :, 1].tolist() == [0, 128, 255]


def test_alpha_is_kept_for_png_and_flattened_on_white_for_jpeg(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 8:, 3] = 255
    src = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(src)
    photo = read_image(src)
    assert photo.alpha is not None and photo.rgb[0, 0].tolist() == [200, 0, 0]

    up = np.repeat(np.repeat(photo.rgb, 2, 0), 2, 1)
    with Image.open(write_image(tmp_path / "o.png", up, like=photo)) as im:
        assert im.mode == "RGBA" and im.size == (32, 32)
        alpha = np.asarray(im)[..., 3]
        assert alpha[:, :14].max() == 0 and alpha[:, 18:].min() == 255
    with Image.open(write_image(tmp_path / "o.jpg", up, like=photo)) as im:
        pixels = np.asarray(im).astype(int)
        assert np.abs(pixels[0, 0] - [255, 255, 255]).max() <= 3
        assert np.abs(pixels[0, 31] - [200, 0, 0]).max() <= 6


def test_palette_and_cmyk_inputs(tmp_path):
    Image.fromarray(upright_image()).convert("P").save(tmp_path / "p.png")
    Image.fromarray(upright_image()).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    assert read_image(tmp_path / "p.png").rgb.shape == (32, 48, 3)
    cmyk = read_image(tmp_path / "c.jpg")
    assert cmyk.rgb.shape == (32, 48, 3)
    assert np.abs(cmyk.rgb.astype(int) - upright_image()).mean() < 4
    # An RGB profile on CMYK data cannot convert: plain conversion, no mismatched profile kept.
    Image.fromarray(upright_image()).convert("CMYK").save(tmp_path / "c2.jpg", quality=100, icc_profile=srgb_icc())
    mislabeled = read_image(tmp_path / "c2.jpg")
    assert mislabeled.icc is None and np.array_equal(mislabeled.rgb, cmyk.rgb)


@pytest.mark.parametrize("case", ["missing", "empty", "not an image", "truncated"])
def test_bad_input_raises_invalid_image_naming_file_and_cause(tmp_path, case):
    path = tmp_path / f"{case.replace(' ', '_')}.jpg"
    if case == "empty":
        path.touch()
    elif case == "not an image":
        path.write_text("hello, I am text")
    elif case == "truncated":
        Image.fromarray(np.kron(upright_image(), np.ones((8, 8, 1), np.uint8))).save(path, quality=95)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    cause = {"missing": "not found", "empty": "empty", "not an image": "not an image", "truncated": "truncated"}[case]
    with pytest.raises(InvalidImageError, match=cause) as err:
        read_image(path)
    assert path.name in str(err.value)


def test_photo_is_frozen(tmp_path):
    Image.fromarray(upright_image()).save(tmp_path / "x.png")
    photo = read_image(tmp_path / "x.png")
    assert isinstance(photo, Photo) and photo.path == tmp_path / "x.png" and photo.format == "PNG"
    with pytest.raises(AttributeError):
        photo.is_gray = True  # type: ignore[misc]


def test_the_output_exif_gives_the_output_size(tmp_path):
    """A ×2 result whose EXIF still said the photo's size confused viewers and catalogues."""
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x0100], exif[0x0101] = 64, 48  # IFD0 ImageWidth, ImageLength
    exif.get_ifd(0x8769)[0xA002] = 64  # PixelXDimension
    exif.get_ifd(0x8769)[0xA003] = 48
    exif.get_ifd(0x8769)[0x9003] = "1999:12:31 23:59:59"
    src = tmp_path / "in.jpg"
    Image.new("RGB", (64, 48), (90, 120, 150)).save(src, exif=exif.tobytes())
    out = write_image(tmp_path / "out.jpg", np.zeros((96, 128, 3), np.uint8), like=read_image(src))
    written = Image.open(out).getexif()
    assert (written[0x0100], written[0x0101]) == (128, 96)
    sub = written.get_ifd(0x8769)
    assert (sub[0xA002], sub[0xA003]) == (128, 96)
    assert sub[0x9003] == "1999:12:31 23:59:59"  # the date is kept
