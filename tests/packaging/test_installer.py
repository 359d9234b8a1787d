"""The installer, end to end: build from a clean clone, install the .deb, run it, remove it.

Slow (minutes) and it installs a system package, so it runs only when asked:
``make installer-test`` (sets ``LIKENESS_INSTALLER_TEST=1``; needs root, dpkg and apt). It builds
the bundle, the .deb and the AppImage from a clone of this checkout's HEAD, then checks what a
user would meet: the desktop entry validates, no library in the bundle is missing, the installed
app passes its self-test offscreen (window included), the launcher in PATH restores a real photo,
the AppImage passes its self-test, and removing the package leaves the user's data alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(os.environ.get("LIKENESS_INSTALLER_TEST") != "1", reason="run with `make installer-test`"),
    pytest.mark.skipif(sys.platform != "linux" or shutil.which("dpkg") is None, reason="builds a .deb"),
    pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() != 0, reason="installs a package: needs root"),
]


def sh(*cmd: str | Path, env: dict | None = None, cwd: Path | None = None, timeout: float = 1800) -> str:
    """Runs a command; on failure the assertion shows its output."""
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def elf_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """packaging/dist of a clean clone of HEAD, with the bundle, the .deb and the AppImage."""
    clone = tmp_path_factory.mktemp("clone") / "likeness"
    sh("git", "clone", "-q", ROOT, clone)
    started = time.perf_counter()
    sh(
        sys.executable if sys.version_info[:2] == (3, 11) else "python3.11",
        "packaging/build.py",
        "--deb",
        "--appimage",
        cwd=clone,
    )
    print(f"\nbuild from a clean clone: {time.perf_counter() - started:.0f} s")
    return clone / "packaging" / "dist"


def test_the_bundle_has_every_library_and_licence(built):
    bundle = built / "likeness"
    missing = []
    for elf in elf_files(bundle):
        # A wheel's vendored library may find a sibling only because its parent loaded it first
        # (scipy.libs' libgfortran and libquadmath): ldd is told the library's own folder too.
        env = {**os.environ, "LD_LIBRARY_PATH": str(elf.parent)}
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env, check=False).stdout
        missing += [f"{elf.relative_to(bundle)}: {line.strip()}" for line in out.splitlines() if "not found" in line]
    assert not missing, "\n".join(missing[:20])
    info = json.loads((bundle / "BUILD.json").read_text())
    assert info["licences"] >= 20
    assert (bundle / "licenses" / "LICENSE-likeness.txt").is_file()
    assert (bundle / "_internal" / "resources" / "models" / "MODEL_CARD.md").is_file()
    assert not (bundle / "_internal" / "torch" / "test").exists()  # excluded: never imported
    print(f"\nbundle {info['bundle_bytes'] / 1e6:.0f} MB")


def test_the_deb_installs_runs_and_leaves_user_data_when_removed(built, tmp_path):
    debs = sorted(built.glob("likeness_*.deb"))
    assert len(debs) == 1
    home = tmp_path / "home"
    models = home / ".local" / "share" / "Likeness" / "models"
    models.mkdir(parents=True)
    (models / "mine.txt").write_text("a model the user installed")
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "LIKENESS_HOME"}}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    # apt resolves the Depends line (Qt's system libraries), then dpkg installs the package.
    sh("apt-get", "install", "-y", "-q", "--no-install-recommends", debs[0].resolve())
    try:
        sh("desktop-file-validate", "/usr/share/applications/likeness.desktop")
        assert Path("/usr/share/icons/hicolor/256x256/apps/likeness.png").is_file()
        out = sh("/opt/likeness/Likeness", "--self-test", env=env, timeout=600)
        print("\n" + out)
        assert "ok   window:" in out and "self-test passed" in out
        photo = shared_path("data", "real_world", "whole_photos", "00.jpg")
        before = photo.read_bytes()
        out_dir = tmp_path / "restored"
        sh("likeness", "restore", photo, "-o", out_dir, env=env, timeout=600)
        assert (out_dir / "00_restored.jpg").stat().st_size > 10_000
        assert photo.read_bytes() == before
    finally:
        sh("dpkg", "-r", "likeness")
    assert not Path("/opt/likeness").exists()
    assert shutil.which("likeness") is None or not shutil.which("likeness").startswith("/usr/bin")
    assert (models / "mine.txt").read_text() == "a model the user installed"


def test_the_appimage_passes_its_self_test(built, tmp_path):
    images = sorted(built.glob("Likeness-*.AppImage"))
    assert len(images) == 1
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.update(QT_QPA_PLATFORM="offscreen", TMPDIR=str(tmp_path))
    out = sh(images[0], "--appimage-extract-and-run", "--self-test", env=env, timeout=900)
    assert "self-test passed" in out
    assert not list(tmp_path.glob("appimage_extracted_*"))  # the extracted copy is cleaned up
