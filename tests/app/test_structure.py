"""The app's structure and its small pure parts: no torch, jobs and messages, properties, settings, names, icons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import REPO


def test_the_app_runs_a_photo_through_without_loading_torch(tmp_path):
    """Every app module, and the window restoring a photo, load no torch: only the engine behind
    the worker does (the real one imports it in the worker thread, at first use)."""
    code = f"""
import pkgutil, sys, importlib, time
import app
for module in pkgutil.walk_packages(app.__path__, "app."):
    importlib.import_module(module.name)
from PySide6.QtWidgets import QApplication
from pathlib import Path
qt = QApplication([])
from app.main_window import MainWindow
from app.photos import Status
from tests.app.fake_engine import FakeBackend, one_face
window = MainWindow(backend=FakeBackend())
window.settings.set("confirm_close", False)
window.open_paths([one_face(Path({str(tmp_path)!r}) / "a.png")])
end = time.monotonic() + 60
while not window.photos.item(0).scanned and time.monotonic() < end:
    qt.processEvents()
window.run_batch()
while window.photos.item(0).status != Status.DONE and time.monotonic() < end:
    qt.processEvents()
assert window.photos.item(0).status == Status.DONE, window.photos.item(0).status
window.close()
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_every_job_has_a_handler_and_every_message_a_signal(qtbot):
    from app import jobs
    from app.client import EngineClient
    from tests.app.fake_engine import FakeBackend

    client = EngineClient(backend=FakeBackend())
    try:
        job_types = {c for c in vars(jobs).values() if isinstance(c, type) and issubclass(c, jobs.Job)}
        runnable = job_types - {jobs.Job, jobs.PhotoJob}
        assert set(client.worker._handlers) == runnable
        message_types = {c for c in vars(jobs).values() if isinstance(c, type) and issubclass(c, jobs.Message)}
        assert set(client.routes) == message_types - {jobs.Message}
        assert len(set(map(id, client.routes.values()))) == len(client.routes)  # one signal per type
    finally:
        client.shutdown()


def test_observable_properties_emit_on_change_only(qtbot):
    from PySide6.QtCore import QObject, Signal

    from app.observable import Property

    class Model(QObject):
        face_changed = Signal(object)
        face = Property[int | None](None)

    model, seen = Model(), []
    model.face_changed.connect(seen.append)
    model.face = 2
    model.face = 2
    model.face = None
    assert seen == [2, None] and model.face is None and Model().face is None
    with pytest.raises((TypeError, RuntimeError)) as raised:  # Python 3.11 wraps __set_name__'s error

        class Broken(QObject):
            size = Property(0)

    assert "needs a signal size_changed" in str(raised.value) + str(raised.value.__cause__)


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


def test_references_go_into_the_options_and_checks_keep_their_order():
    from app import references
    from engine.api import RestoreOptions
    from tests.app.fake_engine import FakeBackend, FakeCheck

    changed = references.with_references(RestoreOptions(), [Path("a.jpg")], 2, guidance_steps=3)
    assert changed.references == (Path("a.jpg"),) and changed.num_references == 2 and changed.guidance_steps == 3
    assert references.with_references(RestoreOptions(), [], 5).references == ()

    face = np.full((8, 8, 3), 250, np.uint8)
    other = np.full((8, 8, 3), 200, np.uint8)
    refs = [
        references.Reference(Path("same.jpg"), SimpleNamespace(aligned=face), None),
        references.Reference(Path("none.jpg"), None, "no face found"),
        references.Reference(Path("other.jpg"), SimpleNamespace(aligned=other), None),
    ]
    same, none, different = references.match_each(refs, face, FakeBackend().check_against)
    assert (same.similarity, same.good, same.verdict) == (1.0, True, "same person")
    assert none == references.Match(None, references.NOT_AVAILABLE)
    assert different.good is False and different.similarity == 0.0
    unsure = references.match_each(refs[:1], face, lambda *a, **k: [FakeCheck(0.7, 0.6, "unsure")])
    assert unsure[0].good is None and "too damaged" in unsure[0].verdict
