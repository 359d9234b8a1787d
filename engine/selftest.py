"""``likeness --self-test``: is this installation whole? Works the same in a checkout and in the bundle.

It prints what the installation is made of (versions, devices, ONNX Runtime's providers, where
models and user data live), then restores the bundled sample photo headless with the installed
default model and checks the result: the same size as the photo, the face changed, everything
away from the face untouched. The sample (``resources/self-test/face.jpg``) is a face drawn by
``scripts/make_self_test_sample.py`` rather than a photo of anyone, so it can ship with the app.

Exit status 0 when every check passes, 1 otherwise; each failure is one line naming the check.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from .devices import available_devices
from .errors import LikenessError
from .imageio import read_image
from .models.store import BUNDLED_DIR, ModelStore
from .types import RestoreOptions, RestoreRequest
from .userdata import data_root

SAMPLE = BUNDLED_DIR.parent / "self-test" / "face.jpg"
#: Distributions whose versions the report names (a missing one reads "not installed").
DISTRIBUTIONS = (
    "torch",
    "onnxruntime",
    "onnxruntime-gpu",
    "numpy",
    "opencv-python-headless",
    "dlib-bin",
    "PySide6-Essentials",
    "spandrel",
)
#: The face's region must change by at least this mean (levels): the network ran and was pasted.
MIN_FACE_CHANGE = 0.5
#: Away from the face, this share of pixels must stay within 1 level of the photo.
MIN_UNTOUCHED = 0.995


@dataclass
class SelfTest:
    """The checks' outcomes, in order; ``ok`` when none failed."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.lines.append(f"  {'ok  ' if passed else 'FAIL'} {name}: {detail}")
        if not passed:
            self.failures.append(f"{name}: {detail}")


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> list[str]:
    """Versions, devices, ONNX Runtime's providers and the folders this installation uses."""
    frozen = getattr(sys, "frozen", False)
    where = f"bundle {Path(sys.executable).parent}" if frozen else f"Python environment {sys.prefix}"
    lines = [
        f"Likeness {_own_version()} on Python {platform.python_version()} ({platform.system()} {platform.machine()})",
        f"  installation: {where}",
    ]
    lines += [f"  {dist:24} {version(dist)}" for dist in DISTRIBUTIONS]
    try:
        import onnxruntime

        providers = ", ".join(onnxruntime.get_available_providers())
    except ImportError:
        providers = "ONNX Runtime not installed (networks run in PyTorch)"
    lines.append(f"  ONNX Runtime providers  {providers}")
    lines.append("  devices: " + "; ".join(f"{name} ({label})" for name, label in available_devices()))
    lines.append(f"  models: {BUNDLED_DIR} (bundled), {ModelStore().root} (installed)")
    lines.append(f"  user data: {data_root()}")
    return lines


def _own_version() -> str:
    own = version("likeness")
    return own if own != "not installed" else "(bundled)"


def one_onnxruntime(result: SelfTest) -> None:
    """Both ONNX Runtime packages in one environment share a module: one silently loses (CUDA)."""
    both = version("onnxruntime") != "not installed" and version("onnxruntime-gpu") != "not installed"
    detail = (
        "onnxruntime and onnxruntime-gpu are both installed; uninstall both, then install one"
        if both
        else "one package"
    )
    result.check("ONNX Runtime", not both, detail)


def restore_sample(result: SelfTest, device: str = "auto") -> None:
    """The sample photo through the whole pipeline, the output written and read back."""
    # PyTorch loads here, after the description: a broken torch still gets a report.
    from .restorer import Restorer

    if not SAMPLE.is_file():
        result.check("sample photo", False, f"{SAMPLE} is missing from this installation")
        return
    before = read_image(SAMPLE).rgb
    options = RestoreOptions(upscale=1, detector="auto")
    with tempfile.TemporaryDirectory(prefix="likeness-self-test-") as folder:
        out = Path(folder) / "restored.png"
        started = time.perf_counter()
        restored = Restorer(device=device).restore(RestoreRequest(SAMPLE, out, options))
        seconds = time.perf_counter() - started
        after = read_image(out).rgb if out.is_file() else None
    result.check("model", True, f"{restored.model} on {restored.device}, {seconds:.1f} s")
    result.check("output written", after is not None, str(out.name) if after is not None else "no file was written")
    if after is None:
        return
    size = f"{after.shape[1]}×{after.shape[0]}, photo {before.shape[1]}×{before.shape[0]}"
    result.check("size", after.shape == before.shape, size)
    if after.shape != before.shape:
        return
    faces = [f for f in restored.faces if f.restored is not None]
    result.check("face found and restored", len(faces) == 1, f"{len(faces)} of {len(restored.faces)} faces")
    if len(faces) != 1:
        return
    face_changed, untouched = changes(before, after, faces[0].detection.box)
    result.check("face changed", face_changed >= MIN_FACE_CHANGE, f"mean change {face_changed:.2f} levels in the face")
    result.check(
        "rest of the photo untouched",
        untouched >= MIN_UNTOUCHED,
        f"{untouched:.2%} of the pixels away from the face within 1 level",
    )


def changes(before: np.ndarray, after: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """(mean change inside the face box, share of pixels unchanged outside the box grown 2×)."""
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inner = diff[max(y0, 0) : y1, max(x0, 0) : x1]
    cx, cy, half_w, half_h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)
    far = np.ones(diff.shape[:2], bool)
    far[max(int(cy - half_h), 0) : int(cy + half_h), max(int(cx - half_w), 0) : int(cx + half_w)] = False
    untouched = float((diff.max(axis=2)[far] <= 1).mean()) if far.any() else 1.0
    return float(inner.mean()) if inner.size else 0.0, untouched


def run_self_test(device: str = "auto", extra: Callable[[SelfTest], None] | None = None, out=None) -> int:
    """The whole self-test; ``extra`` adds checks (the app adds its window). Returns the exit status."""
    out = out or sys.stdout
    result = SelfTest()
    for line in describe():
        print(line, file=out)
    print("checks:", file=out)
    one_onnxruntime(result)
    try:
        restore_sample(result, device)
    except LikenessError as err:
        result.check("restoration", False, str(err))
    except Exception as err:  # a self-test reports what broke instead of a traceback
        result.check("restoration", False, f"{type(err).__name__}: {err}")
    if extra is not None:
        extra(result)
    for line in result.lines:
        print(line, file=out)
    print("self-test passed" if result.ok else f"self-test FAILED ({len(result.failures)} checks)", file=out)
    return 0 if result.ok else 1
