"""The compare view and the reference panel on their own: interaction and what they say."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.jobs import FaceInfo


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
    event = QWheelEvent(
        pos,
        view.mapToGlobal(pos),
        QPoint(),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
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
