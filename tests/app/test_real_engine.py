"""End to end: the window on the real engine (a tiny random CodeFormer) and the shared sample photos.

These are the few GUI tests that need torch, the real networks and ../shared; everything else
runs on the fake engine (tests/app/fake_engine.py).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from app.imaging import to_array
from app.photos import Status
from tests.app.conftest import TIMEOUT
from tests.app.test_main_window import all_status, drop, scanned

pytestmark = [pytest.mark.real_engine, pytest.mark.shared, pytest.mark.slow]


def test_restore_two_photos_and_preview_a_face(real_window, photos, qtbot):
    window = real_window
    drop(window, [photos / "00.jpg", photos / "01.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    assert [len(i.faces) for i in window.photos.items()] == [4, 4]
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    for item in window.photos.items():
        assert item.result is not None and item.result.width() == 2 * item.size[0]
        assert item.status_text().startswith("Done · 4 of 4 faces restored")
    assert "Restored 2 of 2 photos" in window.status.text.text()
    assert "CPU" in window.status.device.text() and "tiny" in window.status.model.text()

    selection = window.session.selection
    window.list.setCurrentIndex(window.photos.index(1))
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=window.compare.face_center(1).toPoint())
    qtbot.waitUntil(lambda: selection.preview is not None, timeout=TIMEOUT)
    first = selection.preview
    assert first.face_index == 1 and first.fidelity == pytest.approx(0.5)
    window.controls.fidelity.slider.setValue(100)
    qtbot.waitUntil(lambda: selection.preview.fidelity == pytest.approx(1.0), timeout=TIMEOUT)
    after_1, after_05 = to_array(selection.preview.after), to_array(first.after)
    assert np.abs(after_1.astype(int) - after_05).mean() > 1.0, "a new w must change the restored face"


def test_excluded_face_is_left_as_the_upscaled_original(real_window, photos, qtbot):
    from engine.api import DEFAULT_BACKGROUND, ModelStore, read_image
    from engine.background import EsrganUpscaler

    window = real_window
    window.open_paths([photos / "00.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=window.compare.face_badge_center(0).toPoint())
    item = window.current
    assert item.excluded == {0}
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    assert item.result_faces == {1, 2, 3}
    result = to_array(item.result)
    # The app's default background is the engine's: the bundled network, JPEG grid evened first.
    background = EsrganUpscaler({2: ModelStore().path(DEFAULT_BACKGROUND)}, deblock=True)
    plain = background.upscale(read_image(item.path).rgb, 2)
    for face in item.faces:
        x0, y0, x1, y1 = (int(round(v * 2)) for v in face.box)
        diff = np.abs(result[y0:y1, x0:x1].astype(int) - plain[y0:y1, x0:x1]).mean()
        if face.index == 0:
            assert diff < 0.5, f"excluded face changed by {diff:.2f} levels"
        else:
            assert diff > 5, "restored faces must differ from the plain upscale"


def test_references_with_the_engines_identity_check(real_window, photos, qtbot, tmp_path):
    window = real_window
    panel = window.controls.references
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    drop(panel.drop, [photos / "04.jpg", photos / "03.jpg", blank])
    qtbot.waitUntil(lambda: not any(e.analysing for e in panel.entries), timeout=TIMEOUT)
    face4, face3, none = panel.entries
    assert face4.aligned is not None and face4.aligned.size().width() == 512 and face4.error is None
    assert none.aligned is None and "no face" in none.error.lower() and str(tmp_path) not in none.error
    window.open_paths([photos / "04.jpg", photos / "01.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    qtbot.mouseClick(window.compare, Qt.MouseButton.LeftButton, pos=window.compare.face_center(0).toPoint())
    qtbot.waitUntil(lambda: face4.similarity is not None and face3.similarity is not None, timeout=TIMEOUT)
    assert face4.good and face4.similarity > 0.99  # the very same photo
    assert not face3.good  # someone else: flagged
    assert "1 of 2 references may show someone else" in panel.status.text()
    panel.use.setChecked(True)  # not every reference matched: the user says they are this face's
    window.act.run.trigger()  # restored with the references; the odd one out is reported
    qtbot.waitUntil(lambda: all_status(window, Status.DONE, Status.FAILED), timeout=TIMEOUT)
    item, other = window.photos.items()
    assert item.status == Status.DONE, item.message
    assert item.result_options.references == (photos / "04.jpg", photos / "03.jpg")
    assert any("03.jpg" in w for w in item.warnings), item.warnings
    assert other.status == Status.DONE and other.result_options.references == ()  # another person's photo
    assert not any("reference" in w for w in other.warnings), other.warnings


def test_three_references_analyse_one_after_another_and_find_their_person(real_window, photos, qtbot):
    window = real_window
    panel, person = window.controls.references, window.session.person
    window.open_paths([photos / "04.jpg", photos / "01.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 2) and not window.engine.busy, timeout=TIMEOUT)
    start = time.perf_counter()
    panel.add_paths([photos / "04.jpg", photos / "03.jpg", photos / "00.jpg"])
    qtbot.waitUntil(lambda: any(t.busy for t in panel._tiles), timeout=TIMEOUT)
    assert "3 left" in panel.analysis.text()
    qtbot.waitUntil(lambda: panel.left() == 0, timeout=3 * TIMEOUT)
    logging.getLogger(__name__).info("analysed 3 references in %.1f s", time.perf_counter() - start)
    assert panel.entries[0].aligned is not None and panel.analysis.isHidden()
    for other in panel.entries[1:]:  # other people: the photo of 04 is checked against its own reference
        panel.remove(other.id)
    window.act.use_everywhere.trigger()
    grandma = window.photos.item(0)
    qtbot.waitUntil(lambda: (grandma.id, 0) in person.faces, timeout=TIMEOUT)


def test_onnx_runtime_backend_across_jobs(real_window, photos, qtbot):
    """ONNX Runtime (a pybind11 extension, like dlib) made in one job and used in later ones."""
    window = real_window
    window.settings.set("backend", "onnx")
    qtbot.waitUntil(
        lambda: not window.engine.busy and window.session.engine_state.info.model == "tiny", timeout=TIMEOUT
    )
    window.open_paths([photos / "04.jpg"])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.act.run.trigger()
    qtbot.waitUntil(lambda: all_status(window, Status.DONE), timeout=TIMEOUT)
    window.select_face(0)
    selection = window.session.selection
    qtbot.waitUntil(lambda: selection.preview is not None, timeout=TIMEOUT)
    window.controls.fidelity.slider.setValue(90)
    qtbot.waitUntil(lambda: selection.preview.fidelity == pytest.approx(0.9), timeout=TIMEOUT)


def test_model_dialog_lists_the_catalogue_and_imports(real_window, qtbot, tiny_weights):
    window = real_window
    window.models_dialog()
    dialog = window.models_window
    assert dialog is not None
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


def test_process_detector_gives_the_engines_detections():
    """The helper-process detector (used for dlib's CNN, which holds the GIL) matches in-thread results."""
    from app.detector_process import ProcessDetector
    from engine.api import make_detector, read_image
    from tests.conftest import shared_path

    path = shared_path("data", "real_world", "whole_photos", "04.jpg")
    rgb = read_image(path).rgb
    helper = ProcessDetector("hog")  # same code path as "cnn", a fraction of the time
    try:
        remote = helper.detect(rgb, min_face=32)
        reference = helper.analyse_reference(path)
    finally:
        helper.close()
    local = make_detector("hog").detect(rgb, min_face=32)
    assert [f.box for f in remote] == [f.box for f in local] and len(remote) == 1
    assert reference.aligned.shape == (512, 512, 3) and reference.embedding.ndim == 1
    assert reference.detection.box == local[0].box
