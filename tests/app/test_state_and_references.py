"""The window as photographers use it (issue 17), on the fake engine: references that belong to a
person, faces found once, and state that says when a result is out of date."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog, QLabel

from app.describe import one_based, stale_reason
from app.dialogs.settings import SettingsDialog
from app.photos import Status
from app.widgets.reference_panel import DIFFERS, MATCH, TILE, ReferenceEntry, ReferenceTile
from engine.api import DEFAULT_BACKGROUND, RestoreOptions
from tests.app.fake_engine import OTHER_FACE, one_face, two_faces
from tests.app.test_main_window import TIMEOUT, all_status, scanned


def click_face(window, qtbot, index: int = 0) -> None:
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=window.compare.face_center(index).toPoint())


def show(window, qtbot, row: int) -> None:
    window.list.setCurrentIndex(window.photos.index(row))
    qtbot.waitUntil(lambda: window.compare.faces == window.photos.item(row).faces, timeout=TIMEOUT)


def test_references_go_only_to_the_photo_of_their_person(window, fake, qtbot, tmp_path):
    panel = window.controls.references
    anna = one_face(tmp_path / "anna.png")
    ben = one_face(tmp_path / "ben.png", OTHER_FACE)
    window.open_paths([anna, ben])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    show(window, qtbot, 0)
    click_face(window, qtbot)  # Anna's face chosen: references added now are hers
    panel.add_paths([one_face(tmp_path / "anna_ref.png")])
    qtbot.waitUntil(lambda: panel.entries[0].good is not None, timeout=TIMEOUT)
    assert panel.entries[0].good and window.session.person.faces == {(window.photos.item(0).id, 0)}
    assert "face 1 of anna.png" in panel.used_for.text()

    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    requests = {r.input.name: r for r in fake.requests}
    assert requests["anna.png"].options.references == (tmp_path / "anna_ref.png",)
    assert requests["ben.png"].options.references == ()  # unrelated: neither the references
    anna_item, ben_item = window.photos.items()
    assert ben_item.warnings == []  # nor warnings about them
    assert anna_item.warnings == ["face 1: clear enough to be restored from the photo itself"]  # numbered from 1


def test_verdicts_follow_the_chosen_face(window, qtbot, tmp_path):
    panel = window.controls.references
    window.open_paths([one_face(tmp_path / "anna.png"), one_face(tmp_path / "ben.png", OTHER_FACE)])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    panel.add_paths([one_face(tmp_path / "anna_ref.png")])  # no face chosen: attached to none
    qtbot.waitUntil(lambda: not panel.entries[0].analysing, timeout=TIMEOUT)
    assert not window.session.person.faces
    entry = panel.entries[0]
    show(window, qtbot, 1)
    click_face(window, qtbot)
    qtbot.waitUntil(lambda: entry.good is not None, timeout=TIMEOUT)
    assert entry.good is False and not window.session.person.faces  # Ben is someone else
    show(window, qtbot, 0)  # another photo: Ben's verdict is gone at once
    assert entry.similarity is None and entry.good is None and panel.status.text() == ""
    click_face(window, qtbot)
    qtbot.waitUntil(lambda: entry.good is not None, timeout=TIMEOUT)
    assert entry.good and window.session.person.faces == {(window.photos.item(0).id, 0)}  # a match: hers


def test_references_are_added_by_button_and_menu(window, qtbot, tmp_path, monkeypatch):
    panel = window.controls.references
    first, second = one_face(tmp_path / "r1.png"), one_face(tmp_path / "r2.png")
    answers = [[str(first)], [str(second)]]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: (answers.pop(0), "")))
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    window.act.add_references.trigger()
    assert [e.path for e in panel.entries] == [first, second]
    assert window.act.add_references in window.menuBar().actions()[0].menu().actions()


def test_restore_all_reuses_the_faces_found_when_the_photos_were_added(window, fake, qtbot, tmp_path):
    window.open_paths([one_face(tmp_path / "a.png"), two_faces(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: scanned(window, 2) and not window.engine.busy, timeout=TIMEOUT)
    assert fake.detections == 2  # one per photo, when added
    show(window, qtbot, 0)
    click_face(window, qtbot)
    qtbot.waitUntil(lambda: window.session.selection.preview is not None, timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    assert fake.detections == 2  # the preview and Restore All found no face again
    window.session.export(window.photos.items(), tmp_path / "out")
    qtbot.waitUntil(
        lambda: len(list((tmp_path / "out").glob("*.png"))) == 2 and not window.engine.busy, timeout=TIMEOUT
    )
    assert fake.detections == 2
    window.settings.set("min_face", 20)  # other detector settings: the faces are found again
    qtbot.waitUntil(lambda: fake.detections == 4 and not window.engine.busy, timeout=TIMEOUT)


def test_an_out_of_date_result_is_marked_and_restored_again_in_one_click(window, qtbot, tmp_path):
    window.open_paths([one_face(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    item = window.photos.item(0)
    assert item.stale == "" and window.banner.isHidden() and window.compare.after_label == "After · w 0.50"
    window.controls.fidelity.slider.setValue(80)
    assert item.stale == "Out of date: made at w 0.50"
    assert "made at w 0.50" in window.photos.data(window.photos.index(0), Qt.ItemDataRole.ToolTipRole)
    assert window.banner.isVisible() and "made at w 0.50" in window.banner.text.text()
    assert window.compare.after_label == "After · w 0.50 · out of date" and window.compare.after_stale
    qtbot.mouseClick(window.banner.button, Qt.MouseButton.LeftButton)  # one click
    qtbot.waitUntil(lambda: all_status(window, Status.DONE) and item.result_fidelity == 0.8, timeout=TIMEOUT)
    assert item.stale == "" and window.banner.isHidden() and not window.compare.after_stale
    window.set_face_included(0, False)
    assert item.stale == "Out of date: face choice changed" and window.banner.isVisible()


def test_stale_reasons_and_face_numbers_in_words():
    made = RestoreOptions(fidelity=0.4, upscale=2)
    assert stale_reason(made, made) == "" and stale_reason(None, made) == ""
    assert stale_reason(made, RestoreOptions(fidelity=0.4, upscale=2, jpeg_quality=80)) == ""  # export only
    now = RestoreOptions(fidelity=0.5, upscale=4, detector="hog")
    assert stale_reason(made, now) == "Out of date: made at w 0.40; made at 2×; settings changed"
    assert one_based("face 0: too damaged; face 11: clear") == "face 1: too damaged; face 12: clear"
    assert one_based("a.jpg: no face found") == "a.jpg: no face found"


def test_match_and_differs_look_different(qtbot):
    def tile(good: bool) -> QImage:
        face = QImage(76, 76, QImage.Format.Format_RGB32)
        face.fill(QColor(128, 128, 128))
        entry = ReferenceEntry(1, Path("r.png"), face, similarity=0.9, good=good, analysing=False)
        widget = ReferenceTile(entry)
        qtbot.addWidget(widget)
        return widget.grab().toImage()

    match, differs = tile(True), tile(False)
    # a badge in the verdict's colour on the face (tick or cross drawn in white over it)
    badge_match, badge_differs = match.pixelColor(12, 19), differs.pixelColor(12, 19)
    assert abs(badge_match.green() - MATCH.green()) < 40 and badge_match.green() > 2 * badge_match.red()
    assert abs(badge_differs.red() - DIFFERS.red()) < 40 and badge_differs.red() > 2 * badge_differs.green()
    assert match != differs
    font = QFont(QApplication.font())
    font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
    font.setBold(True)
    for words in ("match 1.00", "differs 0.87", "unsure 0.55"):  # the tile's caption is not cut off
        assert QFontMetrics(font).horizontalAdvance(words) <= TILE + 8


def test_no_text_is_cut_off_at_the_default_window_size(window, qtbot, tmp_path):
    window.open_paths([one_face(tmp_path / "a_photo_with_a_rather_long_file_name_from_a_camera_0001.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.controls.references.add_paths([one_face(tmp_path / "ref.png")])
    qtbot.waitUntil(lambda: not window.controls.references.entries[0].analysing, timeout=TIMEOUT)
    long = "face choice changed: restore again to apply; the image is damaged or truncated " * 3
    window.status.notify(long, 0)
    qtbot.wait(50)
    assert window.width() <= 1360  # the notice did not widen the window
    assert window.status.text.toolTip() == long and window.status.text.shown_text().endswith("…")
    cut = []
    for label in window.findChildren(QLabel):
        if not label.isVisible() or label.wordWrap() or label is window.status.text or not label.text():
            continue
        if label.textFormat() == Qt.TextFormat.RichText or "<" in label.text():
            continue
        needed = max(label.fontMetrics().horizontalAdvance(line) for line in label.text().split("\n"))
        if needed > label.contentsRect().width() + 1:
            cut.append((label.text(), needed, label.contentsRect().width()))
    assert not cut


def test_the_close_prompt_export_closes_the_window_once_exported(window, qtbot, tmp_path, monkeypatch):
    window.settings.set("output_folder", str(tmp_path / "out"))
    window.open_paths([one_face(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    window.settings.set("confirm_close", True)
    monkeypatch.setattr(type(window), "_confirm_close", lambda self, n: "export")
    monkeypatch.setattr("app.main_window.ExportDialog.exec", lambda self: True)
    window.close()
    assert window.isVisible()  # exporting
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)
    assert (tmp_path / "out" / "a_restored.png").exists()


def test_settings_engine_tab_offers_drop_downs(window, qtbot):
    dialog = SettingsDialog(window.settings, window, window.controls.choices())
    qtbot.addWidget(dialog)
    for key in ("model", "device", "background", "backend", "detector"):
        assert isinstance(dialog.editors[key], QComboBox), key
    background = dialog.editors["background"]
    assert isinstance(background, QComboBox)
    # The app's default is the engine's (the bundled network), and bicubic stays one choice away.
    assert background.currentData() == DEFAULT_BACKGROUND
    assert background.findData("bicubic") >= 0
    device = dialog.editors["device"]
    assert isinstance(device, QComboBox) and device.findData("cpu") >= 0
    device.setCurrentIndex(device.findData("cpu"))
    assert window.settings.get("device") == "cpu"


def test_the_face_comparison_opens_large_and_zooms(window, qtbot, tmp_path):
    window.open_paths([one_face(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    click_face(window, qtbot)
    qtbot.waitUntil(lambda: window.session.selection.preview is not None, timeout=TIMEOUT)
    preview = window.controls.preview
    qtbot.mouseClick(preview.larger, Qt.MouseButton.LeftButton)
    dialog = preview.dialog
    assert dialog is not None and dialog.isVisible() and dialog.width() >= 700
    view = dialog.view
    assert view.before is not None and view.after is not None and "Face 1" in dialog.title.text()
    fitted = view.zoom_percent()
    view.zoom_by(2.0)
    assert view.zoom_percent() == pytest.approx(2 * fitted)
    window.controls.fidelity.slider.setValue(20)  # it follows the slider
    qtbot.waitUntil(lambda: "w 0.20" in dialog.title.text(), timeout=TIMEOUT)
    dialog.close()
