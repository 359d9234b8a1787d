"""``app.system_check``: before Qt starts, the missing X11 libraries in one line, never Qt's abort."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app import system_check


def test_missing_libraries_are_named_with_their_packages_and_the_command(tmp_path):
    listing = tmp_path / "packages.txt"
    listing.write_text(
        "# comment\nlibc.so.6 libc6\nlibxcb-icccm.so.4 libxcb-icccm4  # icccm\n"
        "libnot-there.so.9 libnot-there9\nlibnot-there-either.so.1 libnot-there9\n"
    )
    pairs = system_check.read_list(listing)
    assert pairs[0] == ("libc.so.6", "libc6") and len(pairs) == 4
    missing = system_check.missing_packages(pairs, lambda soname: soname == "libc.so.6")
    assert [p for _, p in missing] == ["libxcb-icccm4", "libnot-there9"]  # each package once
    line = system_check.message(missing)
    assert "\n" not in line
    assert line.endswith("sudo apt-get install libxcb-icccm4 libnot-there9")
    assert "libxcb-icccm.so.4" in line

    problem = system_check.check({"DISPLAY": ":99"}, listing)  # the real loader: libnot-there is missing
    assert problem is not None and "libnot-there9" in problem and "libc6" not in problem
    assert system_check.check({"QT_QPA_PLATFORM": "offscreen"}, listing) is None


def test_only_the_x11_platform_is_checked():
    uses = system_check.uses_xcb
    assert uses({"DISPLAY": ":0"}, "linux")
    assert not uses({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux")  # Qt takes Wayland
    assert uses({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "linux")
    assert not uses({"DISPLAY": ":0"}, "darwin")
    assert not uses({}, "linux")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_the_list_names_every_system_library_of_the_xcb_plugin():
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", *(qt / "lib").glob("libQt6XcbQpa.so.*")]
    needed = set()
    for f in files:
        out = subprocess.run(["objdump", "-p", str(f)], capture_output=True, text=True, check=True).stdout
        needed |= {line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")}
    base = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libz.so.1", "libzstd.so.1"}
    listed = {soname for soname, _ in system_check.read_list()}
    unlisted = {n for n in needed - base - listed if not n.startswith(("libQt6", "libicu"))}
    assert not unlisted, f"add to scripts/qt_system_packages.txt: {sorted(unlisted)}"
