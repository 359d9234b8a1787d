"""The app's layering and its small pure parts: no torch in app/, settings, export names, icons."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

APP = REPO / "app"


def test_no_app_module_imports_torch():
    offenders = []
    for path in APP.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"\s*(import torch\b|from torch\b)", line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "app/ must talk to the engine through engine.api only:\n" + "\n".join(offenders)


def test_opening_the_window_does_not_load_torch():
    """The GUI thread never imports torch: only the worker thread does, lazily."""
    code = (
        "import sys, app.__main__, app.main_window, app.worker, app.dialogs.models, app.dialogs.about, "
        "app.dialogs.export, app.dialogs.settings, app.references\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_settings_persist_with_declared_types_and_defaults(private_settings):
    from app.settings import SETTINGS, Settings

    s = Settings()
    assert s.get("fidelity") == 0.5 and s.get("upscale") == 2 and s.get("only_center_face") is False
    s.set("fidelity", 0.8)
    s.set("only_center_face", True)
    s.set("upscale", 3)  # not a declared choice: reads back as the default
    s.add_recent("/a.jpg")
    s.add_recent("/b.jpg")
    s.add_recent("/a.jpg")
    s.sync()
    again = Settings()
    assert again.get("fidelity") == pytest.approx(0.8)
    assert again.get("only_center_face") is True
    assert again.get("upscale") == 2
    assert again.get("recent_files") == ["/a.jpg", "/b.jpg"]
    for setting in SETTINGS:
        assert setting.label, setting.key
        assert isinstance(again.get(setting.key), setting.type), setting.key


def test_settings_dialog_has_a_row_for_every_declared_setting(qtbot):
    from app.dialogs.settings import SettingsDialog
    from app.settings import SETTINGS, Settings

    s = Settings()
    dialog = SettingsDialog(s)
    qtbot.addWidget(dialog)
    assert set(dialog.editors) == {x.key for x in SETTINGS if x.section}
    dialog.editors["jpeg_quality"].setValue(80)
    assert s.get("jpeg_quality") == 80


def test_export_names_never_overwrite(tmp_path):
    from app.export import check_pattern, output_path

    src = tmp_path / "photo.JPG"
    src.write_bytes(b"x")
    assert output_path(src, tmp_path, "{name}", "same", 0.5, 1) != src  # the original itself is taken
    taken: set[Path] = set()
    a = output_path(src, tmp_path / "out", "{name}_w{w}", "png", 0.5, 1, taken)
    b = output_path(src, tmp_path / "out", "{name}_w{w}", "png", 0.5, 2, taken)
    assert a.name == "photo_w0.50.png" and b.name == "photo_w0.50 (2).png"
    assert output_path(src, None, "{name}_restored", "same", 0.5, 1).parent == tmp_path / "restored"
    assert check_pattern("{nmae}") and check_pattern("a/b") and check_pattern("{name}_{n}") is None


def test_vector_icons_draw_at_any_scale(qtbot):
    from PySide6.QtCore import QSize

    from app.icons import ICONS, icon

    for name in ICONS:
        pixmap = icon(name).pixmap(QSize(24, 24), 2.0)
        assert pixmap.devicePixelRatio() == 2.0 and pixmap.width() == 48
        image = pixmap.toImage()
        assert any(image.pixelColor(x, y).alpha() > 0 for x in range(48) for y in range(48)), name


def test_reference_adapter_degrades_until_the_engine_has_references():
    from app import references
    from engine.api import RestoreOptions

    options = RestoreOptions()
    changed = references.with_references(options, [Path("a.jpg")], 2, guidance_steps=3)
    if not references.supports_option("references"):
        assert changed == options
    else:
        assert changed.references == (Path("a.jpg"),) and changed.num_references == 2 and changed.guidance_steps == 3
    if not references.available():
        assert references.match([], None).verdict == references.NOT_AVAILABLE


def test_process_detector_gives_the_engines_detections():
    """The helper-process detector (used for dlib's CNN, which holds the GIL) matches in-thread results."""
    from app.detector_process import ProcessDetector
    from engine.faces.detect import make_detector
    from engine.imageio import read_image
    from tests.conftest import shared_path

    rgb = read_image(shared_path("data", "real_world", "whole_photos", "04.jpg")).rgb
    helper = ProcessDetector("hog")  # same code path as "cnn", a fraction of the time
    try:
        remote = helper.detect(rgb, min_face=32)
        reference = helper.analyse_reference(shared_path("data", "real_world", "whole_photos", "04.jpg"))
    finally:
        helper.close()
    local = make_detector("hog").detect(rgb, min_face=32)
    assert [f.box for f in remote] == [f.box for f in local] and len(remote) == 1
    assert reference.aligned.shape == (512, 512, 3) and reference.embedding.ndim == 1
    assert reference.detection.box == local[0].box
