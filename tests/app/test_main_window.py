"""The real main window, offscreen, on the fake engine (tests/app/fake_engine.py): no torch, no ../shared.

The window, the session, the queue and the worker thread are the app's own; only the engine
behind the worker is fake, so these tests check what the window does with the engine's answers.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from app import jobs
from app.imaging import to_array
from app.photos import Status
from tests.app.fake_engine import OTHER_FACE, FakeBackend, make_photo, one_face, restore_face, two_faces

TIMEOUT = 20000


def drop(widget, paths) -> None:
    """What a file manager does when the user drops files on ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = widget.rect().center()
    copy, left, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos, copy, mime, left, none)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(QPointF(pos), copy, mime, left, none))


def scanned(window, n: int) -> bool:
    items = window.photos.items()
    return len(items) == n and all(i.scanned for i in items)


def all_status(window, *statuses) -> bool:
    """Every photo in one of ``statuses``, and the engine idle (the last job's JobDone has come)."""
    return not window.engine.busy and all(i.status in statuses for i in window.photos.items())


def test_drop_two_photos_restore_both(window, tmp_path, qtbot):
    drop(window, [two_faces(tmp_path / "a.png"), one_face(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    assert [len(i.faces) for i in window.photos.items()] == [2, 1]
    assert window.photos.item(0).faces[1].box == (140.0, 30.0, 200.0, 90.0)
    assert "2 faces" in window.photos.item(0).status_text()
    window.act.run.trigger()
    assert window.status.overall.isVisibleTo(window)
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    for item in window.photos.items():
        assert item.size is not None and item.result is not None and item.result.width() == 2 * item.size[0]
    assert window.photos.item(0).status_text().startswith("Done · 2 of 2 faces restored")
    qtbot.waitUntil(lambda: not window.status.overall.isVisibleTo(window), timeout=TIMEOUT)
    assert "Restored 2 of 2 photos" in window.status.text.text()
    assert window.status.device.text() == "Device: CPU (fake)" and window.status.model.text() == "Model: tiny"
    assert window.compare.after is window.current.result  # the compare view shows the result


def test_slider_changes_the_face_preview_and_decodes_only(window, fake, tmp_path, qtbot):
    window.open_paths([two_faces(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    view, selection = window.compare, window.session.selection
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_center(1).toPoint())
    assert window.current_face == 1
    qtbot.waitUntil(lambda: selection.preview is not None, timeout=TIMEOUT)
    first = selection.preview
    assert first.face_index == 1 and first.fidelity == pytest.approx(0.5)
    window.controls.fidelity.slider.setValue(100)  # what dragging the slider does
    qtbot.waitUntil(lambda: selection.preview.fidelity == pytest.approx(1.0), timeout=TIMEOUT)
    before, after = to_array(selection.preview.before), to_array(selection.preview.after)
    assert np.array_equal(after, restore_face(before, 1.0))
    assert np.array_equal(to_array(first.after), restore_face(before, 0.5))
    assert fake.encodes == 1  # the second w decoded the same encoding
    assert window.controls.preview.after.image is selection.preview.after
    assert window.settings.get("fidelity") == pytest.approx(1.0)


def test_excluded_face_is_left_as_it_was(window, tmp_path, qtbot):
    window.open_paths([two_faces(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    view = window.compare
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_badge_center(0).toPoint())
    item = window.current
    assert item.excluded == {0}
    assert "2 faces, 1 chosen" in item.status_text()
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    assert item.result_faces == {1} and item.result_options.faces == (1,)
    result = to_array(item.result)
    assert (result[60:180, 40:160] == 250).all()  # face 0, upscaled, untouched
    assert (result[60:180, 280:400] > 250).all()  # face 1, restored (lighter)


def test_cancel_stops_the_batch(qtbot, settings, tmp_path):
    from tests.app.conftest import open_window

    window = open_window(qtbot, settings, FakeBackend(face_seconds=0.05))
    many = [one_face(tmp_path / f"p{k}.png") for k in range(8)]
    window.open_paths(many)
    qtbot.waitUntil(lambda: scanned(window, len(many)), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: any(i.status == Status.WORKING for i in window.photos.items()), timeout=TIMEOUT)
    assert window.act.cancel.isEnabled()
    window.act.cancel.trigger()
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=TIMEOUT)
    assert all_status(window, Status.DONE, Status.CANCELLED)
    statuses = [i.status for i in window.photos.items()]
    assert statuses.count(Status.CANCELLED) >= len(many) - 2
    assert not window.act.cancel.isEnabled()
    assert "cancelled" in window.status.text.text()
    cancelled = [window.photos.index(r) for r, st in enumerate(statuses) if st == Status.CANCELLED][:2]
    window.list.clearSelection()
    for index in cancelled:  # two of the cancelled photos can be run again
        window.list.selectionModel().select(index, window.list.selectionModel().SelectionFlag.Select)
    window.act.run_selected.trigger()
    qtbot.waitUntil(lambda: all(window.photos.item(i.row()).status == Status.DONE for i in cancelled), timeout=TIMEOUT)
    window.close()


def test_failed_photo_does_not_stop_the_batch(window, qtbot, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    window.open_paths([broken, one_face(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: window.photos.rowCount() == 2 and window.photos.item(1).scanned, timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: window.photos.item(1).status == Status.DONE, timeout=TIMEOUT)
    bad = window.photos.item(0)
    qtbot.waitUntil(lambda: bad.status == Status.FAILED, timeout=TIMEOUT)
    assert "damaged" in bad.message or "not an image" in bad.message
    window.list.setCurrentIndex(window.photos.index(0))
    assert "cannot be shown" in window.compare.placeholder
    assert str(tmp_path) not in bad.message  # the list already names the file
    assert "1 failed" in window.status.text.text()


def test_export_keeps_exif_dates_and_orientation(window, qtbot, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif.get_ifd(0x8769)[0x9003] = "1974:08:15 10:20:30"  # DateTimeOriginal
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    dated = make_photo(tmp_path / "dated.jpg", (150, 100), [(40, 20, 60)], exif=exif.tobytes(), icc_profile=icc)
    original = dated.read_bytes()
    window.open_paths([dated])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    item = window.current
    assert item.size == (100, 150)  # upright
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    out = tmp_path / "out"
    window.settings.set("naming", "{name}_restored")
    with qtbot.waitSignal(window.engine.exported, timeout=TIMEOUT) as blocker:
        window.session.export(window.export_targets(False), out)
    path = blocker.args[0].path
    assert path == out / "dated_restored.jpg" and path.exists()
    with Image.open(path) as im:
        assert im.size == (200, 300)
        assert im.getexif().get(0x0112, 1) == 1  # pixels upright, orientation reset
        assert im.getexif().get_ifd(0x8769).get(0x9003) == "1974:08:15 10:20:30"
        assert im.info.get("icc_profile") == icc  # colour profile kept
    assert dated.read_bytes() == original
    with qtbot.waitSignal(window.engine.exported, timeout=TIMEOUT) as again:  # never overwrites
        window.session.export(window.export_targets(False), out)
    assert again.args[0].path == out / "dated_restored (2).jpg"
    qtbot.waitUntil(lambda: "Exported 1 photo to" in window.status.text.text(), timeout=TIMEOUT)
    assert window.act.open_output.isEnabled()
    window.copy_result()
    assert QApplication.clipboard().image().size() == item.result.size()


def test_references_are_analysed_checked_and_used(window, qtbot, tmp_path):
    panel = window.controls.references
    same, other = one_face(tmp_path / "same.png"), one_face(tmp_path / "other.png", OTHER_FACE)
    blank = make_photo(tmp_path / "blank.png", (200, 200))
    drop(panel.drop, [same, other, blank])
    assert len(panel.entries) == 3
    qtbot.waitUntil(lambda: not any(e.analysing for e in panel.entries), timeout=TIMEOUT)
    face_same, face_other, none = panel.entries
    assert face_same.aligned is not None and face_same.error is None and face_other.aligned is not None
    assert none.aligned is None and "no face" in none.error.lower() and str(tmp_path) not in none.error
    assert panel.paths() == [same, other]
    assert window.session.base_options().references == ()  # references go only to their person's photos
    window.open_paths([two_faces(tmp_path / "photo.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=window.compare.face_center(0).toPoint())
    qtbot.waitUntil(lambda: face_same.similarity is not None and face_other.similarity is not None, timeout=TIMEOUT)
    assert face_same.good and face_same.similarity == pytest.approx(1.0)
    assert not face_other.good  # someone else: flagged
    assert "1 of 2 references may show someone else" in panel.status.text()
    assert not window.session.person.faces  # not every reference matched: the user decides
    assert panel.use.isEnabled() and "face 1 of photo.png" in panel.use.text()
    panel.use.setChecked(True)
    assert window.session.person.faces == {(window.photos.item(0).id, 0)}
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    assert window.photos.item(0).result_options.references == (same, other)
    window.settings.set("num_references", 2)
    assert panel.count.value() == 2 and window.session.options_for(window.photos.item(0)).num_references == 2
    panel.remove(none.id)
    assert len(panel.entries) == 2


def test_results_beyond_the_newest_few_live_on_disk(window, qtbot, tmp_path):
    """A long batch must not fill memory: older results are read back from disk when needed."""
    window.session.results.keep_count = 1
    window.open_paths([one_face(tmp_path / "a.png"), one_face(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    window.list.setCurrentIndex(window.photos.index(1))
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    first, second = window.photos.items()
    assert first.result is None and first.result_file.exists()  # evicted, on disk
    assert second.result is not None
    window.list.setCurrentIndex(window.photos.index(0))  # showing it reads it back
    qtbot.waitUntil(lambda: window.compare.after is not None and first.result is not None, timeout=TIMEOUT)
    assert window.compare.after.size() == first.result.size()
    assert second.result is None  # the other one made room

    def second_exported(m):
        return isinstance(m.job, jobs.Export) and m.job.photo_id == second.id

    with qtbot.waitSignal(window.engine.job_done, timeout=TIMEOUT, check_params_cb=second_exported):
        window.session.export([first, second], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_restored.png", "b_restored.png"]
    files = [first.result_file, second.result_file]
    window.close()
    assert not any(f.exists() for f in files)  # the session's results are removed on exit


def test_save_as_restored_and_the_question_before_closing(window, qtbot, tmp_path, monkeypatch):
    window.settings.set("output_folder", str(tmp_path / "auto"))
    window.settings.set("auto_export", True)
    window.open_paths([one_face(tmp_path / "a.jpg")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    item = window.photos.item(0)
    assert item.exported_to == tmp_path / "auto" / "a_restored.jpg" and item.exported_to.exists()
    assert window.session.unsaved() == []

    window.settings.set("auto_export", False)
    window.controls.fidelity.slider.setValue(80)
    assert window.session.stale() == [item]
    window.act.run.trigger()  # restored again, not saved this time
    qtbot.waitUntil(
        lambda: all_status(window, Status.DONE) and item.result_fidelity == pytest.approx(0.8), timeout=TIMEOUT
    )
    assert window.session.unsaved() == [item]
    window.settings.set("confirm_close", True)
    asked = []
    monkeypatch.setattr(type(window), "_confirm_close", lambda self, n: asked.append(n) or "cancel")
    window.close()
    assert asked == [1] and window.isVisible()  # cancelled: still open, nothing lost
    monkeypatch.setattr(type(window), "_confirm_close", lambda self, n: asked.append(n) or "discard")
    window.close()
    assert asked == [1, 1] and not window.isVisible()


def test_out_of_memory_notice_and_device_fallback_are_shown(qtbot, settings, tmp_path):
    """The engine falls back to the CPU and says so in RestoreResult.warnings: the window shows it."""
    from tests.app.conftest import open_window

    settings.set("device", "cuda")
    oom = "cuda ran out of memory: restoration continues on the CPU"
    backend = FakeBackend(devices=(("cpu", "CPU (2 threads)"), ("cuda", "GPU")), out_of_memory=True, warnings=(oom,))
    window = open_window(qtbot, settings, backend)
    assert window.status.device.text() == "Device: GPU"
    window.open_paths([one_face(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    assert "ran out of memory" in window.photos.item(0).status_text()
    qtbot.waitUntil(lambda: window.status.device.text() == "Device: CPU (2 threads)", timeout=TIMEOUT)
    window.close()


def test_an_unusable_device_falls_back_to_the_automatic_choice(qtbot, settings):
    from tests.app.conftest import open_window

    settings.set("device", "cuda")
    window = open_window(qtbot, settings, FakeBackend(model="tiny", bad_devices=("cuda",)))
    assert window.session.engine_state.info.model == "tiny" and window.status.device.text() == "Device: CPU (fake)"
    window.close()


def test_command_line_paths_are_opened(qtbot, tmp_path):
    """``python -m app PHOTO`` (what "Open with…" runs) opens the window with the photo in the list."""
    from app.__main__ import create_window

    photo = one_face(tmp_path / "a.png")
    _app, window = create_window(["likeness", str(photo)], backend=FakeBackend())
    qtbot.addWidget(window)
    assert window.isVisible()
    assert [i.path for i in window.photos.items()] == [photo]
    qtbot.waitUntil(lambda: window.photos.item(0).scanned, timeout=TIMEOUT)
    window.close()


def test_without_a_model_the_window_says_how_to_get_one(qtbot, settings, tmp_path, monkeypatch):
    from tests.app.conftest import open_window

    settings.set("model", "auto")
    w = open_window(qtbot, settings, FakeBackend(model=None))
    qtbot.waitUntil(lambda: w.session.engine_state.info.model_error is not None, timeout=TIMEOUT)
    assert w.status.model.text() == "Model: none installed"
    assert "Models" in w.status.text.text()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    w.open_paths([one_face(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: w.photos.item(0).scanned, timeout=TIMEOUT)  # faces are found without a model
    w.act.run.trigger()
    assert asked and "No face restoration model is installed" in asked[0]
    assert w.photos.item(0).status == Status.READY
    w.close()


def test_an_unexpected_error_fails_one_photo_and_logs_the_traceback(window, fake, tmp_path, qtbot, caplog):
    fake.bug = ZeroDivisionError("a bug")
    window.open_paths([one_face(tmp_path / "a.png"), one_face(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: all(i.status == Status.FAILED for i in window.photos.items()), timeout=TIMEOUT)
    assert "Unexpected error (ZeroDivisionError: a bug)" in window.photos.item(0).message
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_new_detector_settings_count_the_faces_again(window, tmp_path, qtbot):
    path = make_photo(tmp_path / "a.png", (240, 120), [(20, 30, 60), (140, 30, 40)])
    window.open_paths([path])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    assert len(window.current.faces) == 2
    window.settings.set("min_face", 50)
    qtbot.waitUntil(lambda: len(window.current.faces) == 1, timeout=TIMEOUT)


def test_removing_photos_forgets_them_and_their_results(window, tmp_path, qtbot):
    window.open_paths([one_face(tmp_path / "a.png"), one_face(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    first = window.photos.item(0)
    window.list.setCurrentIndex(window.photos.index(0))
    window.list.selectionModel().select(window.photos.index(0), window.list.selectionModel().SelectionFlag.Select)
    window.act.remove.trigger()
    assert [i.name for i in window.photos.items()] == ["b.png"]
    assert first.result_file is not None and not first.result_file.exists()
    assert window.current is not first


def test_gil_bound_detectors_are_served_by_helper_processes(window, fake, qtbot):
    """The worker gives each detector the engine names to a helper process (started at first use)."""
    from app.detector_process import ProcessDetector

    fake.gil_bound = ("cnn", "auto")
    window.settings.set("backend", "onnx")  # a new engine
    qtbot.waitUntil(lambda: len(fake.restorers) == 2, timeout=TIMEOUT)
    restorer = fake.restorers[-1]
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=TIMEOUT)
    helpers = [restorer.detector(name) for name in ("cnn", "auto", "hog")]
    assert [isinstance(h, ProcessDetector) for h in helpers] == [True, True, False]
    assert [h._process for h in helpers[:2]] == [None, None]  # nothing started: "hog" is the setting


def test_photos_added_twice_or_missing_are_reported(window, tmp_path, qtbot):
    path = one_face(tmp_path / "a.png")
    window.open_paths([path])
    assert window.status.text.text() == "Added 1 photo."
    window.open_paths([path])
    assert window.status.text.text().startswith("No new photos")
    window.open_paths([tmp_path / "gone.png"])
    assert window.status.text.text().startswith("Not found:")
    assert window.settings.get("recent_files")[0] == str(path)
    assert window.recent_menu.actions()[0].text() == str(path)
