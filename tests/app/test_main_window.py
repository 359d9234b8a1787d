"""The real main window, offscreen, with the real engine (tiny random model) in its worker thread."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.imaging import to_array
from app.photos import Status

TIMEOUT = 60000  # generous: the machine is shared with training jobs


def drop(widget, paths) -> None:
    """What a file manager does when the user drops files on ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = widget.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def scanned(window, n: int) -> bool:
    items = window.photos.items()
    return len(items) == n and all(i.scanned for i in items)


def all_status(window, *statuses) -> bool:
    return all(i.status in statuses for i in window.photos.items())


def test_drop_two_photos_restore_both(window, photos, qtbot):
    drop(window, [photos / "00.jpg", photos / "01.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    assert [len(i.faces) for i in window.photos.items()] == [4, 4]
    assert "4 faces" in window.photos.item(0).status_text()
    window.act_run.trigger()
    assert window.overall.isVisibleTo(window)
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    for item in window.photos.items():
        assert item.result is not None and item.result.width() == 2 * item.size[0]
        assert item.status_text().startswith("Done · 4 of 4 faces restored")
    qtbot.waitUntil(lambda: not window.overall.isVisibleTo(window), timeout=TIMEOUT)
    assert "Restored 2 of 2 photos" in window.status_text.text()
    assert "CPU" in window.device_label.text() and "tiny" in window.model_label.text()
    assert window.compare.after is window.current.result  # the compare view shows the result


def test_slider_changes_the_face_preview(window, photos, qtbot):
    window.open_paths([photos / "01.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    view = window.compare
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_center(1).toPoint())
    assert window.current_face == 1
    qtbot.waitUntil(lambda: getattr(window, "last_preview", None) is not None, timeout=TIMEOUT)
    first = window.last_preview
    assert first.face_index == 1 and first.fidelity == pytest.approx(0.5)
    window.controls.fidelity.slider.setValue(100)  # what dragging the slider does
    qtbot.waitUntil(lambda: window.last_preview.fidelity == pytest.approx(1.0), timeout=TIMEOUT)
    after_1, after_05 = to_array(window.last_preview.after), to_array(first.after)
    assert np.abs(after_1.astype(int) - after_05).mean() > 1.0, "a new w must change the restored face"
    assert window.controls.preview.after.image is window.last_preview.after
    assert window.settings.get("fidelity") == pytest.approx(1.0)


def test_excluded_face_is_left_as_the_upscaled_original(window, photos, qtbot):
    from engine.background import BicubicUpscaler
    from engine.imageio import read_image

    window.open_paths([photos / "00.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    view = window.compare
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_badge_center(0).toPoint())
    item = window.current
    assert item.excluded == {0}
    assert "4 faces, 3 chosen" in item.status_text()
    window.act_run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    assert item.result_faces == {1, 2, 3}
    result = to_array(item.result)
    plain = BicubicUpscaler().upscale(read_image(item.path).rgb, 2)
    for face in item.faces:
        x0, y0, x1, y1 = (int(round(v * 2)) for v in face.box)
        region = (slice(y0, y1), slice(x0, x1))
        diff = np.abs(result[region].astype(int) - plain[region]).mean()
        if face.index == 0:
            assert diff < 0.5, f"excluded face changed by {diff:.2f} levels"
        else:
            assert diff > 5, "restored faces must differ from the plain upscale"


def test_cancel_stops_the_batch(window, photos, qtbot, tmp_path):
    import shutil

    many = []
    for k in range(4):
        for p in (photos / "03.jpg", photos / "04.jpg"):  # one face each: quick
            copy = tmp_path / f"copy{k}_{p.name}"
            shutil.copy(p, copy)
            many.append(copy)
    window.open_paths(many)
    qtbot.waitUntil(lambda: scanned(window, len(many)), timeout=TIMEOUT)
    window.act_run.trigger()
    qtbot.waitUntil(lambda: any(i.status == Status.WORKING for i in window.photos.items()), timeout=TIMEOUT)
    assert window.act_cancel.isEnabled()
    window.act_cancel.trigger()
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=TIMEOUT)
    assert all_status(window, Status.DONE, Status.CANCELLED)
    statuses = [i.status for i in window.photos.items()]
    assert statuses.count(Status.CANCELLED) >= len(many) - 2
    assert not window.act_cancel.isEnabled()
    assert "cancelled" in window.status_text.text()
    cancelled = [window.photos.index(r) for r, st in enumerate(statuses) if st == Status.CANCELLED][:2]
    window.list.clearSelection()
    for index in cancelled:  # two of the cancelled photos can be run again
        window.list.selectionModel().select(index, window.list.selectionModel().SelectionFlag.Select)
    window.act_run_selected.trigger()
    qtbot.waitUntil(lambda: all(window.photos.item(i.row()).status == Status.DONE for i in cancelled), timeout=TIMEOUT)


def test_failed_photo_does_not_stop_the_batch(window, photos, qtbot, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    window.open_paths([broken, photos / "04.jpg"])
    qtbot.waitUntil(lambda: window.photos.rowCount() == 2 and window.photos.item(1).scanned, timeout=TIMEOUT)
    window.act_run.trigger()
    qtbot.waitUntil(lambda: window.photos.item(1).status == Status.DONE, timeout=TIMEOUT)
    bad = window.photos.item(0)
    qtbot.waitUntil(lambda: bad.status == Status.FAILED, timeout=TIMEOUT)
    assert "damaged" in bad.message or "not an image" in bad.message
    window.list.setCurrentIndex(window.photos.index(0))
    assert "cannot be shown" in window.compare.placeholder
    assert str(tmp_path) not in bad.message  # the list already names the file


def test_export_keeps_exif_dates_and_orientation(window, photos, qtbot, tmp_path):
    src = Image.open(photos / "04.jpg")
    dated = tmp_path / "dated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif.get_ifd(0x8769)[0x9003] = "1974:08:15 10:20:30"  # DateTimeOriginal
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src.crop((0, 0, 225, 150)).save(dated, exif=exif.tobytes(), icc_profile=icc, quality=92)
    original = dated.read_bytes()
    window.open_paths([dated])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    item = window.current
    assert item.size == (150, 225)  # upright
    window.act_run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    out = tmp_path / "out"
    window.settings.set("naming", "{name}_restored")
    with qtbot.waitSignal(window.engine.exported, timeout=TIMEOUT) as blocker:
        window.export(window.export_targets(False), out)
    path = blocker.args[1]
    assert path == out / "dated_restored.jpg" and path.exists()
    with Image.open(path) as im:
        assert im.size == (300, 450)
        assert im.getexif().get(0x0112, 1) == 1  # pixels upright, orientation reset
        assert im.getexif().get_ifd(0x8769).get(0x9003) == "1974:08:15 10:20:30"
        assert im.info.get("icc_profile") == icc  # colour profile kept
    assert dated.read_bytes() == original
    with qtbot.waitSignal(window.engine.exported, timeout=TIMEOUT) as again:  # never overwrites
        window.export(window.export_targets(False), out)
    assert again.args[1] == out / "dated_restored (2).jpg"
    assert window.act_open_output.isEnabled()
    window.copy_result()
    assert QApplication.clipboard().image().size() == item.result.size()


def test_model_dialog_lists_the_catalogue_and_imports(window, qtbot, tiny_weights):
    window.models_dialog()
    dialog = window.models_window
    qtbot.waitExposed(dialog)
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert {"likeness-lite", "codeformer", "tiny"} <= set(names)
    state = {dialog.table.item(r, 0).text(): dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    assert state["tiny"] == "Installed" and state["codeformer"] == "Not installed"
    dialog.select("codeformer")
    assert "non-commercial" in dialog.details.toPlainText().lower()
    assert dialog.download.isEnabled() and not dialog.cancel.isEnabled()
    dialog.import_path(tiny_weights)  # same name again: refused with a clear message
    qtbot.waitUntil(lambda: "already exists" in dialog.message.text(), timeout=TIMEOUT)
    copy = tiny_weights.with_name("second-tiny.safetensors")
    copy.write_bytes(tiny_weights.read_bytes())
    with qtbot.waitSignal(dialog.models_changed, timeout=TIMEOUT):
        dialog.import_path(copy)
    assert "second-tiny" in [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    models = [window.controls.model.itemData(i) for i in range(window.controls.model.count())]
    assert "second-tiny" in models
    dialog.close()


def test_reference_panel_shows_aligned_references(window, photos, qtbot, tmp_path):
    from app import references

    panel = window.controls.references
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    drop(panel.drop, [photos / "04.jpg", photos / "03.jpg", blank])
    assert len(panel.entries) == 3
    qtbot.waitUntil(lambda: not any(e.analysing for e in panel.entries), timeout=TIMEOUT)
    face4, face3, none = panel.entries
    assert face4.aligned is not None and face4.aligned.size().width() == 512 and face4.error is None
    assert face3.aligned is not None
    assert none.aligned is None and "no face" in none.error.lower() and str(tmp_path) not in none.error
    assert panel.paths() == [photos / "04.jpg", photos / "03.jpg"]
    assert window.base_options().references == (photos / "04.jpg", photos / "03.jpg")
    if not references.available():
        assert references.NOT_AVAILABLE in panel.status.text()
    else:  # the engine's identity check against the face the user clicks
        window.open_paths([photos / "04.jpg"])
        qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
        qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=window.compare.face_center(0).toPoint())
        qtbot.waitUntil(lambda: face4.similarity is not None and face3.similarity is not None, timeout=TIMEOUT)
        assert face4.good and face4.similarity > 0.99  # the very same photo
        assert not face3.good  # someone else: flagged
        assert "1 of 2 references may show someone else" in panel.status.text()
        window.act_run.trigger()  # restored with the references; the odd one out is reported
        qtbot.waitUntil(lambda: all_status(window, Status.DONE, Status.FAILED), timeout=TIMEOUT)
        item = window.photos.item(0)
        assert item.status == Status.DONE, item.message
        assert item.result_options.references == (photos / "04.jpg", photos / "03.jpg")
        assert any("03.jpg" in w for w in item.warnings), item.warnings
    window.settings.set("num_references", 2)
    assert panel.count.value() == 2
    panel.remove(none.id)
    assert len(panel.entries) == 2


def test_results_beyond_the_newest_few_live_on_disk(window, photos, qtbot, tmp_path, monkeypatch):
    """A long batch must not fill memory: older results are read back from disk when needed."""
    import app.main_window as main_window
    from app.jobs import Export

    monkeypatch.setattr(main_window, "KEEP_RESULTS", 1)
    window.open_paths([photos / "03.jpg", photos / "04.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    window.list.setCurrentIndex(window.photos.index(1))
    window.act_run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    first, second = window.photos.items()
    assert first.result is None and first.result_file.exists()  # evicted, on disk
    assert second.result is not None
    window.list.setCurrentIndex(window.photos.index(0))  # showing it reads it back
    qtbot.waitUntil(lambda: window.compare.after is not None and first.result is not None, timeout=TIMEOUT)
    assert window.compare.after.size() == first.result.size()
    assert second.result is None  # the other one made room
    with qtbot.waitSignal(window.engine.job_done, timeout=TIMEOUT, check_params_cb=lambda j: isinstance(j, Export) and j.photo_id == second.id):
        window.export([first, second], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["03_restored.jpg", "04_restored.jpg"]
    files = [first.result_file, second.result_file]
    window.close()
    assert not any(f.exists() for f in files)  # the session's results are removed on exit


def test_save_as_restored_and_the_question_before_closing(window, photos, qtbot, tmp_path, monkeypatch):
    window.settings.set("output_folder", str(tmp_path / "auto"))
    window.settings.set("auto_export", True)
    window.open_paths([photos / "04.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act_run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    item = window.photos.item(0)
    assert item.exported_to == tmp_path / "auto" / "04_restored.jpg" and item.exported_to.exists()
    assert window.unsaved() == []

    window.settings.set("auto_export", False)
    window.controls.fidelity.slider.setValue(80)
    window.act_run.trigger()  # restored again, not saved this time
    qtbot.waitUntil(lambda: all_status(window, Status.DONE) and item.result_fidelity == pytest.approx(0.8),
                    timeout=TIMEOUT)
    assert window.unsaved() == [item]
    window.settings.set("confirm_close", True)
    asked = []
    monkeypatch.setattr(type(window), "_confirm_close", lambda self, n: asked.append(n) or "cancel")
    window.close()
    assert asked == [1] and window.isVisible()  # cancelled: still open, nothing lost
    monkeypatch.setattr(type(window), "_confirm_close", lambda self, n: asked.append(n) or "discard")
    window.close()
    assert asked == [1, 1] and not window.isVisible()


def test_onnx_runtime_backend_across_jobs(window, photos, qtbot):
    """ONNX Runtime (a pybind11 extension, like dlib) made in one job and used in later ones."""
    window.settings.set("backend", "onnx")
    qtbot.waitUntil(lambda: not window.engine.busy and window._engine_info.model == "tiny", timeout=TIMEOUT)
    window.open_paths([photos / "04.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act_run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    window.select_face(0)
    qtbot.waitUntil(lambda: getattr(window, "last_preview", None) is not None, timeout=TIMEOUT)
    window.controls.fidelity.slider.setValue(90)
    qtbot.waitUntil(lambda: window.last_preview.fidelity == pytest.approx(0.9), timeout=TIMEOUT)
