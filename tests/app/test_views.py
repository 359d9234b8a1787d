"""Compare view interaction, command-line opening and notices, on the real window."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.jobs import FaceInfo, RestoreOutcome
from engine.api import RestoreOptions


def photo_view(qtbot, after=True):
    from app.widgets.compare_view import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(800, 500)
    view.show()
    before = QImage(400, 300, QImage.Format.Format_RGB888)
    before.fill(Qt.GlobalColor.darkGray)
    result = QImage(800, 600, QImage.Format.Format_RGB888)
    result.fill(Qt.GlobalColor.lightGray)
    view.set_photo(before, (400, 300), result if after else None)
    view.set_faces([FaceInfo(0, (100, 100, 160, 170), 1.0), FaceInfo(1, (250, 90, 300, 150), 1.0)], set(), None)
    return view


def wheel(view, pos: QPointF, steps: int) -> None:
    event = QWheelEvent(pos, view.mapToGlobal(pos), QPoint(), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)


def test_split_line_drags_and_clicks_select_or_toggle_faces(qtbot):
    view = photo_view(qtbot)
    x = int(view.split_x())
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(x, 40))
    qtbot.mouseMove(view, QPoint(200, 40))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(200, 40))
    assert abs(view.split - 200 / view.width()) < 0.01
    with qtbot.waitSignal(view.face_clicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_center(1).toPoint())
    assert clicked.args == [1]
    with qtbot.waitSignal(view.face_toggled) as toggled:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_badge_center(0).toPoint())
    assert toggled.args == [0]


def test_zoom_and_pan_stay_in_sync_side_by_side(qtbot):
    view = photo_view(qtbot)
    view.set_side_by_side(True)
    left, right = view.panes()
    anchor = view.face_rect(right, view.faces[0]).center()
    scene_before = view.to_scene(right, anchor)
    wheel(view, anchor, 2)
    assert abs(view.scale() - view.fit_scale() * 1.25**2) < 1e-6
    assert (view.to_scene(right, anchor) - scene_before).manhattanLength() < 0.5  # zoom about the cursor
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(600, 250))
    qtbot.mouseMove(view, QPoint(560, 230))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(560, 230))
    a = view.face_rect(left, view.faces[0]).topLeft() - left.topLeft()
    b = view.face_rect(right, view.faces[0]).topLeft() - right.topLeft()
    assert (a - b).manhattanLength() < 1e-6  # the same spot of the photo on both sides
    view.actual_size()
    assert abs(view.zoom_percent() - 100) < 1e-6
    view.fit()
    assert view.scale() == view.fit_scale()


def test_out_of_memory_notice_is_shown(window, tmp_path):
    """The engine falls back to the CPU and says so in RestoreResult.warnings: the window shows it."""
    from app.photos import PhotoItem

    item = PhotoItem(tmp_path / "x.jpg")
    window.photos._items.append(item)
    outcome = RestoreOutcome(item.id, QImage(10, 10, QImage.Format.Format_RGB888), [], "tiny", "CPU (2 threads)",
                             ["cuda ran out of memory: restoration continues on the CPU"], {}, None, RestoreOptions())
    window._on_restored(outcome)
    assert "ran out of memory" in window.status_text.text()
    assert "ran out of memory" in item.status_text()
    assert window.device_label.text() == "Device: CPU (2 threads)"


def test_command_line_paths_are_opened(qtbot, tiny_model, photos):
    """``python -m app PHOTO`` (what "Open with…" runs) opens the window with the photo in the list."""
    from app.__main__ import create_window

    _app, window = create_window(["likeness", str(photos / "04.jpg")])
    qtbot.addWidget(window)
    assert window.isVisible()
    assert [i.path for i in window.photos.items()] == [photos / "04.jpg"]
    qtbot.waitUntil(lambda: window.photos.item(0).scanned, timeout=30000)
    window.close()


def test_without_a_model_the_window_says_how_to_get_one(qtbot, settings, photos, monkeypatch, no_bundled_model):
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow

    settings.set("model", "auto")
    w = MainWindow(settings)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w._engine_info.model_error is not None, timeout=30000)
    assert w.model_label.text() == "Model: none installed"
    assert "Models" in w.status_text.text()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    w.open_paths([photos / "04.jpg"])
    qtbot.waitUntil(lambda: w.photos.item(0).scanned, timeout=30000)  # faces are found without a model
    w.act_run.trigger()
    assert asked and "No face restoration model is installed" in asked[0]
    assert w.photos.item(0).status.name == "READY"
    w.close()


def test_an_unexpected_error_fails_one_photo_and_logs_the_traceback(window, photos, qtbot, monkeypatch, caplog):
    from app.photos import Status
    from app.worker import EngineWorker

    def broken(self, job):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(EngineWorker, "_run_scan", broken)
    window.open_paths([photos / "04.jpg", photos / "03.jpg"])
    qtbot.waitUntil(lambda: all(i.status == Status.FAILED for i in window.photos.items()), timeout=30000)
    assert "Unexpected error (ZeroDivisionError: a bug)" in window.photos.item(0).message
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_reference_panel_says_when_a_face_is_too_damaged_to_check(qtbot, settings, tmp_path):
    """An unsure verdict (good=None) is neither a match nor a 'someone else' alarm."""
    from app.references import Match
    from app.widgets.reference_panel import ReferencePanel

    panel = ReferencePanel(settings)
    qtbot.addWidget(panel)
    a, b = panel.add_paths([tmp_path / "a.jpg", tmp_path / "b.jpg"])
    unsure = Match(0.87, "cannot be confirmed: the face is too damaged to tell who it is", None)
    panel.set_match({a.id: unsure, b.id: unsure})
    assert "too damaged to confirm" in panel.status.text() and "someone else" not in panel.status.text()
    panel.set_match({a.id: Match(0.95, "same person", True), b.id: Match(0.80, "may be a different person", False)})
    assert "1 of 2 references may show someone else" in panel.status.text()
