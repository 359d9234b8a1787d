"""Before Qt starts: are the system libraries of its X11 platform plugin there?

Qt aborts (exit 134, a message naming one library) when its xcb plugin cannot load, and
installing the library it names is often not enough. This check reads the whole list,
``scripts/qt_system_packages.txt`` (library soname and Debian package per line, shared with the
README and packaging), and names every missing package and the command that installs them, in
one line. It imports no Qt. ``python -m app.system_check`` exits 1 when something is missing;
``python -m app`` runs it too before it creates the application.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

PACKAGE_LIST = Path(__file__).resolve().parent.parent / "scripts" / "qt_system_packages.txt"


def read_list(path: Path = PACKAGE_LIST) -> list[tuple[str, str]]:
    """(library soname, Debian package) pairs of the list file; empty when the file is not there."""
    if not path.is_file():
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            soname, package = line.split()
            pairs.append((soname, package))
    return pairs


def uses_xcb(environ: dict[str, str] | os._Environ[str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will start on its X11 (xcb) platform plugin in this environment."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY")


def ldconfig_libraries() -> set[str] | None:
    """Sonames the dynamic loader's cache knows, with those in LD_LIBRARY_PATH; None without ldconfig."""
    ldconfig = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if Path(p).exists()), None
    )
    if ldconfig is None:
        return None
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    for folder in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if folder and Path(folder).is_dir():
            names |= {p.name for p in Path(folder).iterdir()}
    return names


def loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_packages(pairs: Iterable[tuple[str, str]], available: Callable[[str], bool]) -> list[tuple[str, str]]:
    """The (soname, package) pairs whose library is not ``available``, each package once."""
    missing, seen = [], set()
    for soname, package in pairs:
        if not available(soname) and package not in seen:
            seen.add(package)
            missing.append((soname, package))
    return missing


def message(missing: list[tuple[str, str]]) -> str:
    """One line: what is missing and the command that installs it."""
    packages = " ".join(p for _, p in missing)
    libraries = ", ".join(s for s, _ in missing)
    return (
        f"Likeness cannot open its window: Qt's X11 platform needs system libraries that are missing "
        f"({libraries}). Install them with: sudo apt-get install {packages}"
    )


def display_error(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """Why the X display cannot be reached (libxcb's own connection test), or None when it can."""
    try:
        xcb = ctypes.CDLL(ctypes.util.find_library("xcb") or "libxcb.so.1")
    except OSError:
        return None  # reported as a missing library instead
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    display = environ.get("DISPLAY", "")
    connection = xcb.xcb_connect(display.encode() or None, None)
    try:
        if xcb.xcb_connection_has_error(connection):
            return f"Likeness cannot open its window: the X display {display!r} cannot be reached (check DISPLAY)."
    finally:
        xcb.xcb_disconnect(connection)
    return None


def check(environ: dict[str, str] | os._Environ[str] = os.environ, path: Path = PACKAGE_LIST) -> str | None:
    """None when Qt can start here; else the one line to show instead of Qt's abort."""
    if not uses_xcb(environ):
        return None
    known = ldconfig_libraries()
    available = loadable if known is None else (lambda soname: soname in known or loadable(soname))
    missing = missing_packages(read_list(path), available)
    if missing:
        return message(missing)
    return display_error(environ)


def main() -> int:
    problem = check()
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
