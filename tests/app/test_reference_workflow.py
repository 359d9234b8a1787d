"""References as photographers add and use them (issue 17, item 2), on the fake engine: pasted,
used for every face of their person at once, analysed in the background with per-reference
progress, and the chosen face shown with and without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QImage

from app.photos import Status
from app.reference_commands import PASTED_FOLDER, is_pasted, pasted_paths
from tests.app.fake_engine import BACKGROUND, FACE, OTHER_FACE, one_face
from tests.app.test_main_window import TIMEOUT, all_status, scanned
from tests.app.test_state_and_references import click_face, show


def anna_and_ben(path: Path) -> Path:
    """Two people in one photo: Anna (left, the references' person) and Ben (right)."""
    rgb = np.zeros((120, 240, 3), np.uint8)
    rgb[:] = BACKGROUND
    rgb[30:90, 20:80] = FACE
    rgb[30:90, 140:200] = OTHER_FACE
    Image.fromarray(rgb).save(path)
    return path


def test_references_are_pasted_as_files_and_as_an_image(window, qtbot, tmp_path):
    panel, person = window.controls.references, window.session.person
    window.open_paths([one_face(tmp_path / "anna.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    click_face(window, qtbot)  # references pasted now are this face's person's
    files = [one_face(tmp_path / "r1.png"), one_face(tmp_path / "r2.jpg")]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in [*files, tmp_path / "notes.txt"]])
    QGuiApplication.clipboard().setMimeData(mime)
    window.list.setFocus()
    qtbot.keyClick(window.list, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)  # Ctrl+V
    assert [e.path for e in panel.entries] == files
    assert person.faces == {(window.photos.item(0).id, 0)}
    menus = {m.menu().title().replace("&", ""): m.menu() for m in window.menuBar().actions() if m.menu()}
    assert window.act.paste_references in menus["Edit"].actions()
    assert window.act.paste_references in menus["File"].actions()

    image = QImage(str(one_face(tmp_path / "screenshot.png")))  # an image, not a file
    QGuiApplication.clipboard().setImage(image)
    window.act.paste_references.trigger()
    pasted = panel.entries[-1].path
    assert len(panel.entries) == 3 and is_pasted(pasted) and pasted.is_file()
    assert pasted.parent == window.settings.folder / PASTED_FOLDER
    assert not list(pasted.parent.glob(".*partial*"))  # written beside, then renamed
    assert QImage(str(pasted)).convertToFormat(QImage.Format.Format_RGB888) == image.convertToFormat(
        QImage.Format.Format_RGB888
    )
    window.act.paste_references.trigger()  # the same image again: the same file, not a second reference
    assert len(panel.entries) == 3
    qtbot.waitUntil(lambda: panel.left() == 0, timeout=TIMEOUT)
    assert all(e.aligned is not None for e in panel.entries)  # analysed like any other reference
    QGuiApplication.clipboard().setText("not a photo")
    assert window.references.paste() == [] and "no photo" in window.status.text.toolTip()


def test_pasted_paths_without_a_clipboard_photo(tmp_path):
    mime = QMimeData()
    mime.setText("hello")
    assert pasted_paths(mime, tmp_path) == [] and pasted_paths(None, tmp_path) == []


def test_use_for_every_face_of_this_person(window, fake, qtbot, tmp_path):
    panel, person = window.controls.references, window.session.person
    window.open_paths([one_face(tmp_path / "anna.png"), anna_and_ben(tmp_path / "group.png")])
    window.open_paths([one_face(tmp_path / "ben.png", OTHER_FACE)])
    qtbot.waitUntil(lambda: scanned(window, 3) and not window.engine.busy, timeout=TIMEOUT)
    detections = fake.detections
    panel.add_paths([one_face(tmp_path / "anna_ref.png")])  # no face chosen: used for none yet
    qtbot.waitUntil(lambda: panel.left() == 0, timeout=TIMEOUT)
    assert not person.faces
    qtbot.mouseClick(panel.use_everywhere, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(person.faces), timeout=TIMEOUT)
    anna, group, ben = window.photos.items()
    assert person.faces == {(anna.id, 0), (group.id, 0)}  # Anna's faces; Ben's (twice) are not hers
    assert fake.detections == detections  # the faces found when the photos were added
    assert "face 1 of anna.png" in panel.used_for.text() and "face 1 of group.png" in panel.used_for.text()
    assert "match 2 faces in 2 photos" in window.status.text.toolTip()

    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    requests = {r.input.name: r for r in fake.requests}
    assert requests["anna.png"].options.references == requests["group.png"].options.references != ()
    assert requests["ben.png"].options.references == () and ben.warnings == []
    assert window.act.use_everywhere.isEnabled()  # the same action from the Restore menu
    person.faces = frozenset()
    window.act.use_everywhere.trigger()
    qtbot.waitUntil(lambda: person.faces == {(anna.id, 0), (group.id, 0)}, timeout=TIMEOUT)


def test_each_reference_shows_its_analysis_in_the_background(window, fake, qtbot, tmp_path):
    panel = window.controls.references
    fake.analyse_seconds = 0.3
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))  # the window's event loop keeps running
    timer.start(20)
    panel.add_paths([one_face(tmp_path / f"ref{n}.png") for n in range(3)])
    assert [e.analysing and not e.running for e in panel.entries] == [True] * 3  # queued: "waiting…"
    assert panel.analysis.text() == "Analysing references in the background: 3 left."
    qtbot.waitUntil(lambda: panel._tiles and panel._tiles[0].busy, timeout=TIMEOUT)
    first, second, third = panel._tiles
    assert not second.busy and not third.busy  # one after another
    phase = first.phase
    qtbot.waitUntil(lambda: panel._tiles[0].phase != phase or not panel.entries[0].analysing, timeout=TIMEOUT)
    busy = first.grab().toImage()
    waiting = second.grab().toImage()
    assert busy != waiting  # the turning indicator
    qtbot.waitUntil(lambda: "2 left" in panel.analysis.text(), timeout=TIMEOUT)
    assert panel.entries[0].aligned is not None  # done: its face
    qtbot.waitUntil(lambda: panel._tiles[1].busy, timeout=TIMEOUT)  # the next one runs
    qtbot.waitUntil(lambda: "1 left" in panel.analysis.text(), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: panel.left() == 0, timeout=TIMEOUT)
    timer.stop()
    assert panel.analysis.isHidden() and all(e.aligned is not None for e in panel.entries)
    assert not any(t.busy for t in panel._tiles) and not panel._spinner.isActive()
    assert len(ticks) >= 10  # ~0.9 s of analysis: the window was never frozen


def centre(image: QImage) -> QColor:
    return image.pixelColor(image.width() // 2, image.height() // 2)


def test_the_chosen_face_with_and_without_references_side_by_side(window, qtbot, tmp_path):
    panel, preview = window.controls.references, window.controls.preview
    window.open_paths([one_face(tmp_path / "anna.png"), one_face(tmp_path / "ben.png", OTHER_FACE)])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    show(window, qtbot, 0)
    click_face(window, qtbot)
    panel.add_paths([one_face(tmp_path / "anna_ref.png")])
    qtbot.waitUntil(lambda: panel.left() == 0, timeout=TIMEOUT)
    qtbot.mouseClick(preview.larger, Qt.MouseButton.LeftButton)
    dialog = preview.dialog
    assert dialog is not None and dialog.versions.isHidden()  # not restored with references yet
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: preview.with_refs is not None, timeout=TIMEOUT)
    assert dialog.versions.isVisible() and "restored with references" in preview.title.text()
    before, without, with_refs = (image.image for image in dialog.version_images)
    assert before is not None and without is not None and with_refs is not None
    assert before.size() == without.size() == with_refs.size()  # one framing: they line up
    b, wo, wi = centre(before), centre(without), centre(with_refs)
    assert b != wo and wo != wi  # restored differs from the original; the references changed it
    assert abs(wi.green() - wo.green()) <= 6 and wi.red() < wo.red() - 60  # the fake's tint, in place
    assert [i.caption for i in dialog.version_images] == [
        "Before",
        "Without references · w 0.50",
        "With references · w 0.50",
    ]
    show(window, qtbot, 1)  # Ben: restored without references, so nothing to compare
    pos = window.compare.face_center(0).toPoint() + QPoint(20, 0)  # beside the split line over its centre
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: window.session.selection.preview is not None, timeout=TIMEOUT)
    assert preview.with_refs is None and dialog.versions.isHidden()
    dialog.close()
