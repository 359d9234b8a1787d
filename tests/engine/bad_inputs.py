"""A corpus of bad and unusual inputs, and a driver that runs each through the CLI and the engine.

``make_corpus(root)`` writes the files and returns the cases; ``python -m tests.engine.bad_inputs
ROOT CASES.json RESULTS.json PROGRESS`` runs every case in one process (one PyTorch import) and
writes what happened.
A native crash kills the driver, so the test that starts it names the case that was running.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import sys
import traceback
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

USAGE, FAILED, OK = 2, 1, 0


@dataclass
class Case:
    """One CLI invocation: ``args`` after ``likeness``; the exit codes allowed; text stderr must
    contain (the file's name and the cause); the outputs it may create (relative to the corpus)."""

    name: str
    args: list[str]
    rc: tuple[int, ...]
    says: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    engine: bool = False  # also restore ``args[1]`` through engine.api


def _photo(seed: int = 0, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A small smooth RGB picture (no face: detection finds nothing and the photo is upscaled)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def _save(path: Path, rgb: np.ndarray, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **params)
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid 1×1 PNG whose header is rewritten to claim ``width``×``height`` (its data is short)."""
    data = bytearray(cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR: signature 8 + length 4 + type 4
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _exif_jpeg(path: Path, orientation: int) -> Path:
    im = Image.fromarray(_photo(orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x9003] = "1987:06:05 04:03:02"  # DateTimeOriginal
    im.save(path, exif=exif.tobytes())
    return path


def make_corpus(root: Path) -> list[Case]:
    """Writes the corpus under ``root`` and returns its cases (over 60)."""
    root.mkdir(parents=True, exist_ok=True)
    r = root
    cases: list[Case] = []

    def restore(name: str, files: list[Path | str], rc, says=(), outputs=(), extra=(), env=None, engine=False):
        cases.append(
            Case(name, ["restore", *map(str, files), *extra], rc, list(says), list(outputs), env or {}, engine)
        )

    # -- files that are not images, or broken ones: one line naming the file and the cause
    (r / "empty.jpg").write_bytes(b"")
    restore("empty file", [r / "empty.jpg"], (FAILED,), ["empty.jpg", "empty"], engine=True)
    good = cv2.imencode(".jpg", _photo()[..., ::-1])[1].tobytes()
    (r / "truncated.jpg").write_bytes(good[: len(good) // 3])
    restore("truncated JPEG", [r / "truncated.jpg"], (FAILED,), ["truncated.jpg", "damaged or truncated"], engine=True)
    png = cv2.imencode(".png", _photo()[..., ::-1])[1].tobytes()
    (r / "truncated.png").write_bytes(png[: len(png) // 2])
    restore("truncated PNG", [r / "truncated.png"], (FAILED,), ["truncated.png", "damaged or truncated"], engine=True)
    (r / "noise.jpg").write_bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    restore("random bytes", [r / "noise.jpg"], (FAILED,), ["noise.jpg", "not an image"], engine=True)
    (r / "text.png").write_text("not a picture\n")
    restore("text file", [r / "text.png"], (FAILED,), ["text.png", "not an image"], engine=True)
    (r / "page.jpg").write_text("<html><body>404</body></html>")
    restore("HTML page", [r / "page.jpg"], (FAILED,), ["page.jpg", "not an image"], engine=True)
    _png_claiming(r / "bomb.png", 15000, 15000)
    restore("huge header, no data", [r / "bomb.png"], (FAILED,), ["bomb.png", "too large"], engine=True)
    _png_claiming(r / "header-only.png", 640, 480)
    restore("header, no data", [r / "header-only.png"], (FAILED,), ["header-only.png", "truncated"], engine=True)
    restore("missing file", [r / "nowhere.jpg"], (USAGE,), ["nowhere.jpg", "no such file"])

    # -- tiny and extreme shapes: the default detector must not crash
    for h, w in [(1, 1), (2, 2), (3, 3), (1, 100), (100, 1), (1, 500), (1, 2000), (2, 500), (8, 8), (31, 31)]:
        name = f"tiny-{w}x{h}.png"
        _save(r / name, np.full((h, w, 3), 128, np.uint8))
        restore(f"{w}×{h} image", [r / name], (OK,), [name, "no face"], [f"tiny-{w}x{h}_restored.png"], engine=True)
    _save(r / "strip.png", _photo(2, (40, 8000)))
    restore("40×8000 strip", [r / "strip.png"], (OK,), ["strip.png"], ["strip_restored.png"], engine=True)

    # -- unusual but valid formats and modes: restored, metadata kept
    for o in range(1, 9):
        _exif_jpeg(r / f"orient{o}.jpg", o)
        restore(f"EXIF orientation {o}", [r / f"orient{o}.jpg"], (OK,), [], [f"orient{o}_restored.jpg"], engine=o == 6)
    Image.fromarray(_photo(3)).convert("CMYK").save(r / "cmyk.jpg")
    restore("CMYK JPEG", [r / "cmyk.jpg"], (OK,), [], ["cmyk_restored.jpg"], engine=True)
    Image.fromarray(_photo(4)[..., 0].astype(np.uint16) * 257).save(r / "gray16.png")
    restore("16-bit gray PNG", [r / "gray16.png"], (OK,), ["gray16.png", "16-bit"], ["gray16_restored.png"])
    cv2.imwrite(str(r / "rgb16.png"), _photo(5).astype(np.uint16) * 257)
    restore("16-bit RGB PNG", [r / "rgb16.png"], (OK,), ["rgb16.png", "16-bit"], ["rgb16_restored.png"])
    Image.fromarray(_photo(6)).convert("P", palette=Image.Palette.ADAPTIVE).save(r / "palette.png")
    restore("palette PNG", [r / "palette.png"], (OK,), [], ["palette_restored.png"], engine=True)
    rgba = np.dstack([_photo(7), np.linspace(0, 255, 128, dtype=np.uint8)[None, :].repeat(96, 0)])
    _save(r / "alpha.png", rgba)
    restore("RGBA PNG", [r / "alpha.png"], (OK,), [], ["alpha_restored.png"], engine=True)
    Image.fromarray(_photo(8)).convert("LA").save(r / "gray-alpha.png")
    restore("gray + alpha PNG", [r / "gray-alpha.png"], (OK,), [], ["gray-alpha_restored.png"])
    Image.fromarray(_photo(9)).convert("L").save(r / "gray.jpg")
    restore("grayscale JPEG", [r / "gray.jpg"], (OK,), [], ["gray_restored.jpg"])
    _save(r / "photo.bmp", _photo(10))
    restore("BMP input", [r / "photo.bmp"], (OK,), ["BMP cannot be written"], ["photo_restored.png"], engine=True)
    _save(r / "clip.gif", _photo(11))
    restore("GIF input", [r / "clip.gif"], (OK,), ["GIF cannot be written"], ["clip_restored.png"])
    frames = [Image.fromarray(_photo(s)) for s in (12, 13)]
    frames[0].save(r / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    restore("animated GIF", [r / "anim.gif"], (OK,), [], ["anim_restored.png"])
    _save(r / "photo.tif", _photo(14))
    restore("TIFF", [r / "photo.tif"], (OK,), [], ["photo_restored.tif"])
    _save(r / "photo.webp", _photo(15))
    restore("WEBP", [r / "photo.webp"], (OK,), [], ["photo_restored.webp"])
    _save(r / "UPPER.JPG", _photo(16), format="JPEG")
    restore("upper-case suffix", [r / "UPPER.JPG"], (OK,), [], ["UPPER_restored.JPG"])
    _save(r / "фото 1.jpg", _photo(17))
    restore("unicode name with a space", [r / "фото 1.jpg"], (OK,), [], ["фото 1_restored.jpg"])
    _save(r / "-dash.jpg", _photo(18))
    cases.append(Case("name starting with -", ["restore", "-dash.jpg"], (USAGE,), ["-dash.jpg", "./-dash.jpg"]))
    _save(r / "target.jpg", _photo(19))
    (r / "link.jpg").symlink_to(r / "target.jpg")
    restore("symbolic link", [r / "link.jpg"], (OK,), [], ["link_restored.jpg"])
    (r / "dangling.jpg").symlink_to(r / "gone.jpg")
    restore("dangling link", [r / "dangling.jpg"], (USAGE,), ["dangling.jpg", "no such file"])
    _save(r / "png-named.jpg", _photo(20), format="PNG")
    restore("PNG named .jpg", [r / "png-named.jpg"], (OK,), [], ["png-named_restored.jpg"])

    # -- folders
    (r / "empty-dir").mkdir()
    restore("empty folder", [r / "empty-dir"], (USAGE,), ["empty-dir", "no images"])
    mixed = r / "mixed"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("x")
    (mixed / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic")
    _save(mixed / "one.jpg", _photo(21))
    restore(
        "folder with non-photos", [mixed], (OK,), ["2 files that are not photos", ".heic"], ["mixed/one_restored.jpg"]
    )

    # -- never overwrite: inputs, other outputs, existing files
    pair = r / "pair"
    _save(pair / "a.jpg", _photo(22))
    _save(pair / "a_restored.jpg", _photo(23))
    restore(
        "an input named like an output",
        [pair / "a.jpg", pair / "a_restored.jpg"],
        (OK,),
        ["a_restored.jpg is one of the inputs", "a_restored-2.jpg"],
        ["pair/a_restored-2.jpg", "pair/a_restored_restored.jpg"],
    )
    _save(r / "same1" / "a.jpg", _photo(24))
    _save(r / "same2" / "a.jpg", _photo(25))
    restore(
        "two inputs, one output name",
        [r / "same1" / "a.jpg", r / "same2" / "a.jpg"],
        (OK,),
        ["another output of this run", "a_restored-2.jpg"],
        ["out-same/a_restored.jpg", "out-same/a_restored-2.jpg"],
        ["-o", str(r / "out-same")],
    )
    _save(r / "again" / "b.jpg", _photo(26))
    _save(r / "again" / "b_restored.jpg", _photo(27))
    restore(
        "an existing output of the user's",
        [r / "again" / "b.jpg"],
        (OK,),
        ["already exists", "b_restored-2.jpg"],
        ["again/b_restored-2.jpg"],
    )
    _save(r / "resume" / "c.jpg", _photo(28))
    _save(r / "resume" / "c_restored.jpg", _photo(29))
    restore("resume skips what is done", [r / "resume" / "c.jpg"], (OK,), [], [], ["--resume"])
    _save(r / "replace" / "d.jpg", _photo(30))
    _save(r / "replace" / "d_restored.jpg", _photo(31))
    restore("overwrite is asked for", [r / "replace" / "d.jpg"], (OK,), [], ["replace/d_restored.jpg"], ["--overwrite"])
    _save(r / "fmt.png", _photo(32))
    restore("output format option", [r / "fmt.png"], (OK,), [], ["fmt_restored.jpg"], ["--format", "jpg"])

    # -- output locations, checked before any work
    (r / "a-file").write_text("x")
    restore("-o is a file", [r / "target.jpg"], (USAGE,), ["a-file", "not a folder"], [], ["-o", str(r / "a-file")])
    restore(
        "-o below a file", [r / "target.jpg"], (USAGE,), ["a-file", "not a folder"], [], ["-o", str(r / "a-file" / "x")]
    )

    # -- options out of range: usage errors (exit 2), before any work
    bad_options = [
        (["--upscale", "0"], "upscale"),
        (["--upscale", "100"], "upscale"),
        (["--num-refs", "0"], "references"),
        (["--num-refs", "9"], "references"),
        (["--guidance", "-1"], "guidance"),
        (["--guidance-steps", "50"], "guidance steps"),
        (["--device", "foo"], "foo"),
        (["--model", "nonexistent"], "nonexistent"),
        (["--min-face", "-5"], "smallest face"),
        (["--w", "2"], "--w"),
        (["--faces", "x"], "--faces"),
        (["--format", "gif"], "--format"),
        (["--ref", str(r / "no-ref.jpg")], "no-ref.jpg"),
    ]
    for extra, says in bad_options:
        restore(f"option {' '.join(extra[:2])}", [r / "target.jpg"], (USAGE,), [says], [], extra)
    refs = r / "refs"
    _save(refs / "r1.jpg", _photo(33))
    restore("--ref takes a folder", [r / "target.jpg"], (OK,), [], ["target_restored.jpg"], ["--ref", str(refs)])
    restore("--faces beyond the faces found", [r / "target.jpg"], (FAILED,), ["face number 3"], [], ["--faces", "3"])

    # -- --aligned with inputs that are not aligned faces
    restore("--aligned 1×1", [r / "tiny-1x1.png"], (FAILED,), ["tiny-1x1.png", "too small"], [], ["--aligned"])
    _save(r / "wide.jpg", _photo(34, (310, 491)))
    restore(
        "--aligned on a whole photo",
        [r / "wide.jpg"],
        (FAILED,),
        ["wide.jpg", "not an aligned face"],
        [],
        ["--aligned"],
    )

    # -- the environment
    (r / "home-file").write_text("x")
    for argv in (["info"], ["models", "list"], ["models", "import", str(r / "target.jpg")]):
        cases.append(
            Case(
                f"LIKENESS_HOME is a file: {argv[-1]}",
                argv,
                (FAILED,),
                ["home-file", "not a folder"],
                env={"LIKENESS_HOME": str(r / "home-file")},
            )
        )
    (r / "not-a-model.pth").write_bytes(b"hello")
    cases.append(
        Case(
            "import of a file that is no model",
            ["models", "import", str(r / "not-a-model.pth")],
            (FAILED,),
            ["not-a-model.pth", "is not a model"],
        )
    )
    return cases


def run(root: Path, cases_file: Path, results: Path, progress: Path) -> None:
    """Every case of ``cases_file`` (made by ``make_corpus(root)``) through ``engine.cli.main``,
    and the image cases through ``engine.api`` too."""
    from engine import api
    from engine.cli import main

    cases = [Case(**{**c, "rc": tuple(c["rc"])}) for c in json.loads(cases_file.read_text())]
    out = []
    restorer = None
    os.chdir(root)
    for case in cases:
        progress.write_text(case.name)
        saved = {k: os.environ.get(k) for k in case.env}
        os.environ.update(case.env)
        stderr = io.StringIO()
        rc, crash = None, None
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                try:
                    rc = main(case.args)
                except SystemExit as exit_:  # argparse's usage errors
                    rc = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:
            crash = traceback.format_exc()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        engine_error = None
        if case.engine:
            restorer = restorer or api.Restorer()
            try:
                restorer.restore(api.RestoreRequest(Path(case.args[1])))
            except api.LikenessError:
                pass
            except BaseException:
                engine_error = traceback.format_exc()
        out.append(
            {**asdict(case), "got": rc, "stderr": stderr.getvalue(), "crash": crash, "engine_error": engine_error}
        )
    results.write_text(json.dumps(out, ensure_ascii=False, indent=1))
    progress.write_text("done")


if __name__ == "__main__":
    run(*(Path(a) for a in sys.argv[1:5]))
