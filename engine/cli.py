"""``likeness``: the command line, mirroring what the GUI does.

    likeness restore INPUT... [-o OUT] [--w 0.5] [--aligned] [--upscale 2] [--model NAME]
                     [--device auto|cpu|cuda] [--faces 0,2] [--only-center-face]
    likeness models list | install NAME | import FILE [--name NAME] | remove NAME
    likeness info
    likeness samples [-o OUT]      restore the sample photos, writing before/after images

Errors are one line on stderr; the exit status is 0 when every photo was restored, 1 when some
failed (the others are still written), 2 for a usage error or nothing to do.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import platform
import signal
import sys
import threading
import warnings
from pathlib import Path

from tqdm import tqdm

from . import api
from .album import commands as album_commands
from .api import DEFAULT_BACKGROUND, LikenessError, ModelStore, RestoreOptions, RestoreRequest
from .imageio import probe_image
from .memory import check_fits
from .outputs import OUTPUT_FORMATS, check_output_folders, is_output_name, plan_outputs
from .profiles import commands as profile_commands
from .selftest import run_self_test
from .selftest import version as installed_version

#: What folders are searched for (Pillow reads them all; outputs of formats it cannot write are PNG).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
REPO = Path(__file__).resolve().parents[1]
DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def _fail(message: str) -> None:
    print(f"likeness: error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"likeness: warning: {message}", file=sys.stderr)


def collect_inputs(paths: list[Path]) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """(photo, folder it was given under) pairs, folders walked; problems; notices.

    Files produced by an earlier run (``*_restored.*``, ``*_restored-N.*``) are skipped when walking folders; other
    files that are not photos are counted in a notice.
    """
    found: list[tuple[Path, Path]] = []
    problems: list[str] = []
    notices: list[str] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            photos = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and not is_output_name(p)]
            others = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
            if others:
                kinds = sorted({p.suffix.lower() or "(no suffix)" for p in others})
                notices.append(f"{path}: {len(others)} files that are not photos skipped ({', '.join(kinds[:6])})")
            if not photos:
                problems.append(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found += [(p, path) for p in photos]
        elif path.is_file():
            found.append((path, path.parent))
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems, notices


def reference_photos(paths: list[Path]) -> list[Path]:
    """``--ref`` arguments with folders expanded to the photos in them; LikenessError for a missing one."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise LikenessError(f"{path}: reference photo not found")
    return out


def _parse_faces(text: str) -> tuple[int, ...]:
    try:
        indices = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--faces takes comma-separated indices like 0,2; got {text!r}") from None
    if not indices or min(indices) < 0:
        raise argparse.ArgumentTypeError(f"--faces takes indices >= 0; got {text!r}")
    return indices


def _fidelity(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"--w must be between 0 and 1; got {text}")
    return value


def cmd_restore(args: argparse.Namespace) -> int:
    """Everything that can be checked is checked before PyTorch loads: options, model name,
    device name, output folders and names, and whether each input is an image at all."""
    try:
        options = restore_options(args)
        if args.model != "auto":
            ModelStore().get(args.model)  # LikenessError naming the known models
        if args.device not in DEVICE_NAMES and not args.device.startswith("cuda:"):
            raise LikenessError(f"unknown device {args.device!r}; choose one of {', '.join(DEVICE_NAMES)} or cuda:N")
        check_profile(options)
    except LikenessError as err:
        _fail(str(err))
        return 2
    photos, problems, notices = collect_inputs(args.inputs)
    for problem in problems:
        _fail(problem)
    for notice in notices:
        _warn(notice)
    readable = []
    for photo, root in photos:
        try:
            check_fits(str(photo), *probe_image(photo), options.upscale)
            readable.append((photo, root))
        except LikenessError as err:
            problems.append(str(err))
            _fail(str(err))
    if not readable:
        _fail("nothing to restore")
        return 2 if not photos else 1
    try:
        plans = plan_outputs(readable, args.output, fmt=args.format, overwrite=args.overwrite, resume=args.resume)
        check_output_folders(plans)
    except LikenessError as err:
        _fail(str(err))
        return 2
    todo = [p for p in plans if p.output is not None]
    for plan in plans:
        if plan.notice and not (args.quiet and plan.output is None):
            _warn(f"{plan.photo}: {plan.notice}")
    if not todo:
        return 1 if problems else 0
    restorer = api.Restorer(model=args.model, device=args.device, backend=args.backend)  # loads torch
    restorer.status()  # fail once, before the batch, when no model is installed
    failed = len(problems)
    bar = tqdm(todo, unit="photo", disable=len(todo) < 2 or args.quiet, file=sys.stderr)
    for plan in bar:
        bar.set_postfix_str(plan.photo.name)
        try:
            result = restorer.restore(RestoreRequest(plan.photo, plan.output, options))
        except LikenessError as err:
            failed += 1
            bar.clear()
            _fail(str(err))
            continue
        for warning in result.warnings:
            _warn(warning)
        if not args.quiet:
            restored = sum(f.selected for f in result.faces)
            personal = "".join(f", face {f.index} as {f.profile}" for f in result.faces if f.profile)
            bar.write(
                f"{plan.photo} -> {plan.output}  ({restored} of {len(result.faces)} faces, "
                f"{result.model} on {result.device}{personal})"
            )
    return 1 if failed else 0


def restore_options(args: argparse.Namespace) -> RestoreOptions:
    """The request's options from the command line (LikenessError for a value out of range)."""
    return RestoreOptions(
        fidelity=args.w,
        upscale=args.upscale,
        faces=args.faces,
        only_center_face=args.only_center_face,
        aligned=args.aligned,
        min_face=args.min_face,
        color_fix=not args.no_color_fix,
        background=args.background,
        detector=args.detector,
        references=tuple(reference_photos(args.ref)),
        num_references=args.num_refs,
        identity_guidance=args.guidance,
        guidance_steps=args.guidance_steps,
        profile=args.profile,
    )


def check_profile(options: RestoreOptions) -> None:
    """A named profile must exist (ProfileError naming the profiles there are); "auto" needs none."""
    if options.profile not in (None, "auto"):
        api.ProfileStore().get(options.profile)


def cmd_models(args: argparse.Namespace) -> int:
    store = ModelStore()
    if args.action == "list":
        rows = [("NAME", "KIND", "STATE", "SIZE", "LICENCE")]
        for r in store.records():
            state = "installed" if store.is_installed(r.id) else ("bundled, missing" if r.bundled else "not installed")
            size = f"{r.size / 1e6:.0f} MB" if r.size else "?"
            licence = r.licence
            if r.non_commercial and "non-commercial" not in licence.lower():
                licence += "  [non-commercial]"
            rows.append((r.id, r.kind, state, size, licence))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
        print(f"\nmodels folder: {store.root}")
        return 0
    if args.action == "install":
        record = store.get(args.name)
        if record.non_commercial:
            print(f"note: {record.id} is licensed for non-commercial use only ({record.licence}).", file=sys.stderr)
        with tqdm(total=record.size, unit="B", unit_scale=True, desc=record.id, file=sys.stderr) as bar:

            def progress(done: int, total: int | None) -> None:
                bar.total = total or bar.total
                bar.update(done - bar.n)

            path = store.install(args.name, progress=progress, url=args.url)
        print(f"installed {record.id} at {path}")
        return 0
    if args.action == "import":
        record = store.import_file(args.file, name=args.name)
        print(f"imported {args.file} as {record.id} ({record.kind}, {record.arch})")
        return 0
    if args.action == "remove":
        store.remove(args.name)
        print(f"removed {args.name}")
        return 0
    raise AssertionError(args.action)


def cmd_info(args: argparse.Namespace) -> int:
    system = f"{platform.system()} {platform.machine()}"
    print(f"Likeness {_version()} on Python {platform.python_version()} ({system})")
    for dist in (
        "torch",
        "torchvision",
        "onnxruntime",
        "opencv-python-headless",
        "dlib-bin",
        "facexlib",
        "spandrel",
        "PySide6-Essentials",
    ):
        print(f"  {dist:24} {installed_version(dist)}")
    print("devices:")
    for device, label in api.available_devices():
        print(f"  {device:8} {label}")
    store = ModelStore()
    installed = [r.id for r in store.records() if store.is_installed(r.id)]
    print(f"installed models: {', '.join(installed) or 'none'}  ({store.root})")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """A folder tree into another, resumable after any kill (``engine.batch``)."""
    from .batch import run_batch

    try:
        options = restore_options(args)
        check_profile(options)
        if not args.src.is_dir():
            raise LikenessError(f"{args.src}: not a folder")
        if args.dst.exists() and not args.dst.is_dir():
            raise LikenessError(f"{args.dst}: is a file, not a folder")
    except LikenessError as err:
        _fail(str(err))
        return 2
    photos, problems, notices = collect_inputs([args.src])
    for message in problems:
        _fail(message)
    for message in notices:
        _warn(message)
    if not photos:
        return 2
    restorer_args = {"model": args.model, "device": args.device, "backend": args.backend}
    summary = run_batch(
        photos, args.dst, options, restorer_args, fmt=args.format, quiet=args.quiet, ray=args.ray, workers=args.workers
    )
    if not args.quiet:
        print(
            f"{summary.done} photos restored in {summary.seconds:.1f} s ({summary.photos_per_second:.2f} photos/s); "
            f"{summary.skipped} already done; {summary.failed} failed",
            file=sys.stderr,
        )
    return 1 if summary.failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench

    return bench(args.json, device=args.device, official=not args.no_official)


def cmd_samples(args: argparse.Namespace) -> int:
    from .samples import run_samples

    return run_samples(args.output, model=args.model, device=args.device)


# Subcommands implemented by the training package, which builds on the engine: the engine only
# names them, and imports the module (whose ``main(argv)`` parses the rest) when one is used.
EXTERNAL_COMMANDS = {
    "eval": ("training.evaluate", "score models and baselines on paired face sets; Markdown + JSON report"),
    "train": ("training.cli", "train a restoration model stage (see `likeness train --help`)"),
}


def cmd_external(args: argparse.Namespace) -> int:
    module_name = EXTERNAL_COMMANDS[args.command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise LikenessError(
                f"`likeness {args.command}` needs the training package ({module_name}), which this installation lacks"
            ) from exc
        raise
    return module.main(args.rest)


def _version() -> str:
    own = installed_version("likeness")
    return "(not installed)" if own == "not installed" else own  # a checkout run without installing it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="likeness", description="Restore faces in old photos, keeping each person recognisable."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    parser.add_argument("--version", action="version", version=f"likeness {_version()}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation: versions, devices, and a restoration of the bundled sample; exit 0 or 1",
    )
    sub = parser.add_subparsers(dest="command", required=False, metavar="COMMAND")

    r = sub.add_parser("restore", help="restore the faces in photos (files or folders)")
    r.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    r.add_argument("-o", "--output", type=Path, help="output folder (default: beside each photo, as NAME_restored.EXT)")
    r.add_argument(
        "--w",
        type=_fidelity,
        default=0.5,
        help="fidelity 0..1: 0 = the face rebuilt (cleaner, more generated); 0.5 = each part rebuilt as far "
        "as it is damaged; 1 = the photo's own face, cleaned (default 0.5)",
    )
    r.add_argument("--aligned", action="store_true", help="inputs are faces already aligned to the FFHQ template")
    r.add_argument("--upscale", type=int, default=2, help="output size relative to the input (default 2)")
    r.add_argument("--model", default="auto", help="restoration model name (see `likeness models list`)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    r.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnx"],
        help="inference engine (auto: ONNX Runtime on the CPU, torch on GPUs)",
    )
    r.add_argument(
        "--faces", type=_parse_faces, help="restore only these faces, numbered left to right from 0, e.g. 0,2"
    )
    r.add_argument("--only-center-face", action="store_true", help="restore only the face nearest the centre")
    r.add_argument(
        "--min-face",
        type=int,
        default=32,
        help="ignore faces smaller than this many pixels (default 32; smaller finds tinier faces, slower)",
    )
    r.add_argument("--no-color-fix", action="store_true", help="keep the network's colours instead of the input's")
    r.add_argument(
        "--background",
        default=DEFAULT_BACKGROUND,
        help=f"how the rest of the photo is enlarged: {DEFAULT_BACKGROUND} (default; bundled), bicubic, "
        "or another installed upscaler model",
    )
    r.add_argument("--detector", default="auto", choices=["auto", "cnn", "hog", "retinaface"], help="face detector")
    r.add_argument(
        "--ref",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="photos of the same person to restore toward (1-5 are used per face)",
    )
    r.add_argument(
        "--num-refs", type=int, default=5, help="how many of the references to use, best-ranked first (1-5, default 5)"
    )
    r.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="identity guidance strength toward the references (default 1 with --ref; 0 = off: the references "
        "are only checked)",
    )
    r.add_argument(
        "--guidance-steps",
        type=int,
        default=2,
        help="identity guidance steps (each about one decoder pass and back; default 2; 0 = badly damaged "
        "faces only borrow the references' codes and features)",
    )
    r.add_argument(
        "--profile",
        metavar="NAME|auto",
        help="restore each face that shows a profile's person with that profile (its adapter and references; "
        "see `likeness profile`): NAME for one profile, auto for whichever matches; other faces as usual",
    )
    r.add_argument(
        "--format",
        default="same",
        choices=OUTPUT_FORMATS,
        help="output format (default: the input's, or PNG for inputs whose format cannot be written)",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (never an input); without it a taken name gets a number",
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="skip photos whose output already exists (finish a batch that was stopped)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    r.set_defaults(func=cmd_restore)

    m = sub.add_parser("models", help="list, install or import models")
    msub = m.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="every known model and whether it is installed")
    inst = msub.add_parser("install", help="download a catalogued model (verified by sha256)")
    inst.add_argument("name")
    inst.add_argument("--url", help="download from this mirror instead of the official address")
    imp = msub.add_parser("import", help="add a local weights file to the store")
    imp.add_argument("file", type=Path)
    imp.add_argument("--name", help="name to use (default: from the file name)")
    rem = msub.add_parser("remove", help="delete an installed or imported model")
    rem.add_argument("name")
    m.set_defaults(func=cmd_models)

    i = sub.add_parser("info", help="versions, devices and installed models")
    i.set_defaults(func=cmd_info)

    ba = sub.add_parser("batch", help="restore a folder tree into another, resumable: run it again after any stop")
    ba.add_argument("src", type=Path, metavar="SRC")
    ba.add_argument("dst", type=Path, metavar="DST")
    ba.add_argument("--w", type=_fidelity, default=0.5, help="fidelity 0..1 (as for restore)")
    ba.add_argument("--upscale", type=int, default=2)
    ba.add_argument("--model", default="auto")
    ba.add_argument("--device", default="auto")
    ba.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    ba.add_argument("--detector", default="auto", choices=["auto", "cnn", "hog", "retinaface"])
    ba.add_argument("--min-face", type=int, default=32)
    ba.add_argument("--format", default="same", choices=OUTPUT_FORMATS)
    ba.add_argument("--profile", metavar="NAME|auto", help="person profiles to use (as for restore)")
    ba.add_argument(
        "--ray",
        metavar="local|auto|ADDRESS",
        help="restore on a Ray cluster: local (start one here), auto (the running one) or its address",
    )
    ba.add_argument("--workers", type=int, default=2, help="Ray workers, each holding its own networks (default 2)")
    ba.add_argument("-q", "--quiet", action="store_true")
    ba.set_defaults(
        func=cmd_batch,
        faces=None,
        only_center_face=False,
        aligned=False,
        no_color_fix=False,
        background=DEFAULT_BACKGROUND,
        ref=[],
        num_refs=5,
        guidance=None,
        guidance_steps=2,
    )

    b = sub.add_parser("bench", help="measure this machine: peak GFLOP/s, ms per face, slider, whole photo, detection")
    b.add_argument("--json", action="store_true", help="one JSON object on one line")
    b.add_argument("--device", default="auto")
    b.add_argument("--no-official", action="store_true", help="skip the official network (about a minute on a CPU)")
    b.set_defaults(func=cmd_bench)

    s = sub.add_parser("samples", help="restore the sample photos and write before/after images")
    s.add_argument("-o", "--output", type=Path, default=Path("out/samples"))
    s.add_argument("--model", default="auto")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=cmd_samples)

    album_commands.add_parser(sub)
    profile_commands.add_parser(sub)

    for name, (_, help_text) in EXTERNAL_COMMANDS.items():
        e = sub.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
        e.add_argument("rest", nargs=argparse.REMAINDER)
        e.set_defaults(func=cmd_external)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dashed = _dashed_file(argv)
    if dashed is not None:
        _fail(f"{dashed}: a file whose name starts with '-' reads as an option; write ./{dashed} or put -- before it")
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None and not args.self_test:
        parser.error("a command is required (or --self-test)")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    warnings.showwarning = _one_line_warning
    # A polite kill (SIGTERM) unwinds like Ctrl-C, so no half-written file is left behind.
    previous = signal.signal(signal.SIGTERM, _terminate) if _in_main_thread() else None
    try:
        if args.command is None:
            return run_self_test()
        return args.func(args)
    except LikenessError as err:
        _fail(str(err))
        return 1
    except OSError as err:  # the file system said no (a full disk, a folder that vanished)
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}")
        return 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dashed_file(argv: list[str]) -> str | None:
    """The first argument before ``--`` that names an existing file but starts with '-'."""
    for arg in argv:
        if arg == "--":
            return None
        if arg.startswith("-") and len(arg) > 1 and Path(arg).is_file():
            return arg
    return None


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings (Pillow's very large image, torch's pickle notes) as one line on stderr."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    logging.getLogger("likeness").debug("%s:%s: %s", filename, lineno, message)
    _warn(text)


if __name__ == "__main__":
    sys.exit(main())
