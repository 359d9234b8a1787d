"""Builds the Likeness application bundle: ``python3.11 packaging/build.py`` (or ``make installer``).

    python3.11 packaging/build.py [--torch cpu|cuda] [--deb] [--appimage] [--skip-venv]

1. A build environment of its own (``packaging/build/venv-<torch>``), never the development
   ``.venv``: the project's dependencies without the test tools, PyInstaller pinned, and the
   torch the variant asks for:
   - ``cpu`` (the default): PyTorch's CPU build. The pinned wheel of ``pyproject.toml`` is a CUDA
     build whose ``libtorch_cpu.so`` itself needs ``libcudart`` and ``libcupti``, and whose
     ``libtorch_python.so`` needs ``libtorch_cuda.so`` and through it cuBLAS, cuDNN, NCCL, cuFFT,
     cuSPARSE…: a machine without a GPU still has to carry 3.2 GB of CUDA libraries just to
     import it. The CPU build needs none of them (docs/installer.md has the sizes). It comes from
     a local ``torch-*+cpu`` wheel on pip's find-links when there is one, else from PyTorch's CPU
     index at the pinned version.
   - ``cuda``: the pinned CUDA wheel and onnxruntime-gpu (never beside onnxruntime).
2. The icons, drawn by the app's own icon code (PNG, ICO, ICNS).
3. PyInstaller with ``packaging/likeness.spec``: a one-folder bundle in
   ``packaging/dist/likeness/`` with two executables sharing one folder, ``Likeness`` (the app,
   no console window) and ``likeness-cli`` (the command line), every third-party licence in
   ``licenses/``, and a ``BUILD.json`` of what went in.
4. ``--deb`` / ``--appimage``: the Linux packages from that folder (``packaging/linux/``).

Nothing is downloaded that this machine's registries do not serve; a second run reuses the
environment (``--skip-venv`` skips even checking it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "packaging"
BUILD = HERE / "build"
DIST = HERE / "dist"
PYINSTALLER = ("pyinstaller==6.22.3", "pyinstaller-hooks-contrib==2026.9")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Requirements installed apart (torch, by variant) or not at all: torchvision, and facexlib's
#: filterpy and numba, serve only the optional RetinaFace detector, which needs downloaded weights.
NOT_BUNDLED = {"torch", "torchvision", "filterpy", "numba"}
#: Installed without their declared dependencies, which would pull in torchvision and with it the
#: CUDA torch; their real needs are listed beside them.
NO_DEPS = {"spandrel": ("einops", "typing_extensions")}


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(*cmd: str | Path, **kw) -> None:
    log(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pinned(name: str) -> str:
    """The requirement ``pyproject.toml`` pins for ``name`` (``torch==2.14.1``)."""
    for req in project()["dependencies"]:
        if re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower() == name:
            return req
    raise SystemExit(f"pyproject.toml has no requirement for {name}")


def find_links() -> list[Path]:
    """pip's find-links folders on this machine (where a local CPU torch wheel may lie)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    folders = []
    for line in out.splitlines():
        if "find-links" in line:
            folders += [Path(p) for p in line.split("=", 1)[1].strip("'\" ").split()]
    return [f for f in folders if f.is_dir()]


def torch_requirement(variant: str) -> list[str]:
    """pip arguments that install the variant's torch."""
    if variant == "cuda" or sys.platform == "darwin":  # PyPI's macOS wheels are the CPU (+MPS) build
        return [pinned("torch")]
    version = pinned("torch").split("==")[1]
    local = sorted(w for folder in find_links() for w in folder.glob("torch-*+cpu-cp311-*.whl"))
    exact = [w for w in local if w.name.startswith(f"torch-{version}+cpu")]
    if exact or local:
        wheel = (exact or local)[-1]
        if not exact:
            log(f"no local CPU wheel of torch {version}; using {wheel.name} (same API; the self-test checks it)")
        return [str(wheel)]
    return [f"torch=={version}+cpu", "--index-url", TORCH_CPU_INDEX]


def venv_python(variant: str) -> Path:
    venv = BUILD / f"venv-{variant}"
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def build_env(variant: str) -> Path:
    """The variant's build environment, created or brought up to date; returns its python."""
    venv = BUILD / f"venv-{variant}"
    python = venv_python(variant)
    stamp = venv / ".likeness-build"
    meta = project()
    wanted = json.dumps([meta["dependencies"], meta["version"], variant, PYINSTALLER])
    if stamp.is_file() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        run(sys.executable, "-m", "venv", venv)
    pip = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    run(*pip, "install", *torch_requirement(variant))
    deps, apart = [], []
    for req in meta["dependencies"]:
        name = re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower()
        if name in NO_DEPS:
            apart.append(req)
            deps += NO_DEPS[name]
        elif name not in NOT_BUNDLED:
            deps.append(req)
    ort = meta["optional-dependencies"]["gpu" if variant == "cuda" else "cpu"]
    run(*pip, "install", *deps, *ort, *PYINSTALLER)
    run(*pip, "install", "--no-deps", *apart)
    # The project's own metadata (its version, for About and --self-test); PyInstaller still takes
    # the sources from the checkout (the spec puts it first on the path).
    run(*pip, "install", "--no-deps", "--no-build-isolation", ROOT)
    stamp.write_text(wanted)
    return python


def make_icons(python: Path) -> Path:
    folder = BUILD / "icons"
    run(python, HERE / "icons.py", folder, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    return folder


def bundle(python: Path, variant: str) -> Path:
    """PyInstaller → ``packaging/dist/likeness``; returns that folder."""
    target = DIST / "likeness"
    env = {**os.environ, "LIKENESS_BUILD_VARIANT": variant, "LIKENESS_ICONS": str(BUILD / "icons")}
    run(
        python,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        DIST,
        "--workpath",
        BUILD / "work",
        HERE / "likeness.spec",
        env=env,
        cwd=ROOT,
    )
    return target


def collect_licences(python: Path, target: Path) -> int:
    """Every installed distribution's licence files, Python's, the project's and the models'."""
    script = """
import json, sys
from importlib import metadata
out = []
for dist in metadata.distributions():
    files = [str(dist.locate_file(f)) for f in (dist.files or [])
             if any(k in f.name.upper() for k in ("LICEN", "COPYING", "NOTICE", "AUTHORS"))]
    licence = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
    out.append({"name": dist.metadata["Name"], "version": dist.version, "licence": licence, "files": files})
print(json.dumps(out))
"""
    dists = json.loads(subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout)
    folder = target / "licenses"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    index = []
    for d in sorted(dists, key=lambda d: d["name"].lower()):
        own = folder / d["name"]
        for f in d["files"]:
            if Path(f).is_file():
                own.mkdir(exist_ok=True)
                shutil.copy2(f, own / Path(f).name)
        first = (d["licence"] or "").splitlines()[0][:80] if d["licence"] else "see files"
        index.append(f"{d['name']} {d['version']}: {first}")
    stdlib = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    python_licence = Path(sys.base_prefix) / "lib" / stdlib / "LICENSE.txt"
    if python_licence.is_file():
        (folder / "Python").mkdir(exist_ok=True)
        shutil.copy2(python_licence, folder / "Python" / "LICENSE.txt")
        index.append(f"Python {platform.python_version()}: PSF License")
    shutil.copy2(ROOT / "LICENSE", folder / "LICENSE-likeness.txt")
    for extra in (ROOT / "resources" / "models").glob("LICENSE*"):
        shutil.copy2(extra, folder / extra.name)
    (folder / "INDEX.txt").write_text("\n".join(index) + "\n")
    return len(index)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--deb", action="store_true", help="also build the .deb (Linux)")
    parser.add_argument("--appimage", action="store_true", help="also build the AppImage (Linux)")
    parser.add_argument("--skip-venv", action="store_true", help="reuse the build environment as it is")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    BUILD.mkdir(parents=True, exist_ok=True)
    python = venv_python(args.torch)
    if not (args.skip_venv and python.exists()):
        python = build_env(args.torch)
    env_s = time.perf_counter() - started
    make_icons(python)
    target = bundle(python, args.torch)
    licences = collect_licences(python, target)
    info = {
        "variant": args.torch,
        "version": project()["version"],
        "python": platform.python_version(),
        "bundle_bytes": folder_size(target),
        "licences": licences,
        "build_env_s": round(env_s, 1),
        "build_s": round(time.perf_counter() - started, 1),
    }
    (target / "BUILD.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"bundle {target}: {info['bundle_bytes'] / 1e6:.0f} MB, {licences} licences, {info['build_s']:.0f} s")
    if args.deb:
        run("bash", HERE / "linux" / "make_deb.sh", target, project()["version"], DIST)
    if args.appimage:
        run("bash", HERE / "linux" / "make_appimage.sh", target, project()["version"], DIST)
    return 0


if __name__ == "__main__":
    sys.exit(main())
