"""Settings declared once: key, type, default, label and help; rows and storage come from that.

Every persistent choice the user makes lives here. ``Settings`` reads and writes them through
``QSettings`` (typed, with the declared default when unset) and emits ``changed(key, value)``;
the settings dialog builds its rows from ``SETTINGS`` and the main window's controls bind to the
same keys, so a control and its saved value never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal


@dataclass(frozen=True)
class Setting:
    """One persistent setting.

    Attributes:
        key: Name in QSettings and in code.
        type: bool, int, float, str or list.
        default: Value when the user never chose one.
        label: Short text in front of the control.
        help: One or two sentences shown as the tooltip and under the row.
        section: Settings dialog page ("" = not shown there, e.g. window state).
        choices: (value, label) pairs for a drop-down, or None.
        minimum, maximum: Range of numbers.
    """

    key: str
    type: type
    default: Any
    label: str
    help: str = ""
    section: str = ""
    choices: tuple[tuple[Any, str], ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


FORMATS = (("same", "Same as the original"), ("jpg", "JPEG"), ("png", "PNG"), ("webp", "WebP"), ("tif", "TIFF"))

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "fidelity",
        float,
        0.5,
        "Likeness (w)",
        "0 rebuilds the whole face, the middle only what the photo lost; 1 keeps the photo's face, cleaned.",
        "Restoration",
        minimum=0.0,
        maximum=1.0,
    ),
    Setting(
        "upscale",
        int,
        2,
        "Output size",
        "Size of the result relative to the original photo.",
        "Restoration",
        choices=((1, "Same size (1×)"), (2, "Twice the size (2×)"), (4, "Four times (4×)")),
    ),
    Setting(
        "only_center_face",
        bool,
        False,
        "Only the centre face",
        "Restore just the face nearest the middle of each photo; leave the others as they are.",
        "Restoration",
    ),
    Setting(
        "color_fix",
        bool,
        True,
        "Keep the original colours",
        "Match each restored face to the colours of the photo, so skin tones do not shift.",
        "Restoration",
    ),
    Setting(
        "num_references",
        int,
        3,
        "References used",
        "How many of the reference photos of this person guide the restoration (1 to 5).",
        "Restoration",
        minimum=1,
        maximum=5,
    ),
    Setting(
        "guidance_steps",
        int,
        2,
        "Pull toward the references",
        "How hard the references pull a badly damaged face toward the person: 0 borrows their "
        "features only, 1 takes about 3× the time, 2 about 4×, 5 about 8×.",
        "Restoration",
        minimum=0,
        maximum=5,
    ),
    Setting(
        "use_profiles",
        bool,
        True,
        "Use person profiles",
        "Restore each face that shows a person you made a profile of (Profiles → Personalise from an "
        "Album…) with that profile; the face's number tag then shows the name.",
        "Restoration",
    ),
    Setting(
        "min_face",
        int,
        32,
        "Smallest face (pixels)",
        "Faces smaller than this are left alone; lower it to find tiny faces in group photos (slower).",
        "Faces",
        minimum=8,
        maximum=512,
    ),
    Setting(
        "detector",
        str,
        "auto",
        "Face detector",
        "Automatic picks the best installed detector. HOG is fastest; RetinaFace finds the most faces.",
        "Faces",
        choices=(("auto", "Automatic"), ("cnn", "dlib CNN"), ("hog", "dlib HOG (fast)"), ("retinaface", "RetinaFace")),
    ),
    Setting(
        "model",
        str,
        "auto",
        "Restoration model",
        "Automatic uses the bundled model, else the official CodeFormer when installed.",
        "Engine",
    ),
    Setting(
        "device",
        str,
        "auto",
        "Device",
        "Automatic uses the graphics card when there is one; the processor otherwise.",
        "Engine",
    ),
    Setting(
        "backend",
        str,
        "auto",
        "Inference engine",
        "Automatic runs ONNX Runtime on the processor (faster there) and PyTorch on graphics cards.",
        "Engine",
        choices=(("auto", "Automatic"), ("torch", "PyTorch"), ("onnx", "ONNX Runtime (processor)")),
    ),
    Setting(
        "background",
        str,
        "likeness-background-x2",  # engine.api.DEFAULT_BACKGROUND (tests/app check they agree)
        "Background upscaler",
        "How the rest of the photo is enlarged: the bundled network (sharper, cleans JPEG blocks; about "
        "2 s per megapixel on a processor), smooth resizing (instant), or an installed upscaler model.",
        "Engine",
    ),
    Setting(
        "output_folder",
        str,
        "",
        "Export folder",
        "Where exported photos go. Empty: a 'restored' folder beside each original.",
        "Export",
    ),
    Setting(
        "naming",
        str,
        "{name}_restored",
        "File name",
        "Pattern for exported files: {name} is the original name, {w} the fidelity, {n} a counter.",
        "Export",
    ),
    Setting("format", str, "same", "Format", "File format of exported photos.", "Export", choices=FORMATS),
    Setting(
        "jpeg_quality",
        int,
        95,
        "JPEG quality",
        "Higher keeps more detail and makes larger files (95 is visually lossless).",
        "Export",
        minimum=50,
        maximum=100,
    ),
    Setting(
        "auto_export",
        bool,
        False,
        "Save each photo as soon as it is restored",
        "Batch work: every result is written to the export folder with the name and format above, "
        "without a separate Export step.",
        "Export",
    ),
    Setting(
        "confirm_close",
        bool,
        True,
        "Ask before closing with unsaved results",
        "Restored photos that were not exported are discarded when Likeness closes.",
        "Export",
    ),
    Setting(
        "theme",
        str,
        "system",
        "Appearance",
        "Light or dark, or follow the system.",
        "Appearance",
        choices=(("system", "Follow the system"), ("light", "Light"), ("dark", "Dark")),
    ),
    Setting("recent_files", list, [], "Recent files"),
    Setting("album_folder", str, "", "Last album folder"),
    Setting("geometry", bytes, b"", "Window geometry"),
    Setting("splitter", bytes, b"", "Panel sizes"),
)

BY_KEY = {s.key: s for s in SETTINGS}
RECENT_LIMIT = 10


def _convert(setting: Setting, value: Any) -> Any:
    """QSettings returns strings from INI files: turn them back into the declared type."""
    if value is None:
        return setting.default
    t = setting.type
    try:
        if t is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if t is list:
            if isinstance(value, str):
                return [value] if value else []
            return list(value)
        if t is bytes:
            return bytes(value.data()) if hasattr(value, "data") else bytes(value)
        return t(value)
    except (TypeError, ValueError):
        return setting.default


class Settings(QObject):
    """Typed access to the declared settings, persisted with QSettings."""

    changed = Signal(str, object)

    def __init__(self, store: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store or QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Likeness", "Likeness")

    def get(self, key: str) -> Any:
        setting = BY_KEY[key]
        value = _convert(setting, self._store.value(key))
        low, high = setting.minimum, setting.maximum
        if low is not None and high is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = max(low, min(high, value))
            value = setting.type(value)
        if setting.choices and value not in [c[0] for c in setting.choices]:
            return setting.default
        return value

    def set(self, key: str, value: Any) -> None:
        setting = BY_KEY[key]
        value = _convert(setting, value)
        if self.get(key) == value and self._store.contains(key):
            return
        self._store.setValue(key, value)
        self.changed.emit(key, value)

    def reset(self, key: str) -> None:
        self.set(key, BY_KEY[key].default)

    def sync(self) -> None:
        self._store.sync()

    def add_recent(self, path: str) -> list[str]:
        recent = [p for p in self.get("recent_files") if p != path]
        recent.insert(0, path)
        self.set("recent_files", recent[:RECENT_LIMIT])
        return self.get("recent_files")

    @property
    def file_name(self) -> str:
        return self._store.fileName()

    @property
    def folder(self) -> Path:
        """The folder of the settings file: the app keeps its session journal here too (``app.journal``)."""
        return Path(self._store.fileName()).parent


def sections() -> list[str]:
    """Settings dialog pages, in declaration order."""
    out: list[str] = []
    for s in SETTINGS:
        if s.section and s.section not in out:
            out.append(s.section)
    return out
