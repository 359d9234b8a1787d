"""Screenshots of the desktop app's main states, offscreen, into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--installed]

States: empty window, a batch at work, the compare view with a face preview, side by side,
the reference panel (and its references being analysed), the model manager, the settings dialog
(Engine page), the light theme, the chosen face large (and with and without its references), and
an out-of-date result.

The app runs for real (photo list, worker thread, face detection, alignment, colour fix,
paste-back). By default the face network is replaced by a stand-in (edge-preserving smoothing
plus sharpening, blended by w) so the pictures do not depend on a model; the status bar says so.
``--installed`` uses the installed model (the bundled likeness-lite): the committed shots are
taken that way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("LIKENESS_SHARED", REPO.parent / "shared"))
STAND_IN = "stand-in (no trained model yet)"


class StandInFaceRestorer:
    """The face network's interface (encode/decode/restore) with a classical filter behind it."""

    name = STAND_IN

    def encode(self, faces):
        return list(faces)

    def decode(self, encoded, w: float):
        import cv2
        import numpy as np

        out = []
        for face in encoded:
            smooth = cv2.bilateralFilter(face, 9, 40, 7)
            blur = cv2.GaussianBlur(smooth, (0, 0), 2.0)
            sharp = cv2.addWeighted(smooth, 1.6, blur, -0.6, 0)
            out.append(np.clip(w * face.astype(np.float32) + (1 - w) * sharp, 0, 255).astype(np.uint8))
        return out

    def restore(self, faces, w: float):
        return self.decode(self.encode(faces), w)

    def moved_to(self, device):
        return self


def stand_in_backend():
    """The app's engine backend, making Restorers whose face network is the stand-in."""
    from app.backend import ApiBackend

    class StandInBackend(ApiBackend):
        def restorer(self, config):
            r = super().restorer(config)
            r.networks._model_name = STAND_IN
            r.networks.face_restorer = StandInFaceRestorer()
            return r

    return StandInBackend()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--installed", action="store_true", help="use the installed restoration model")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio of the shots (2 = high-DPI)")
    args = parser.parse_args()
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    work = Path(tempfile.mkdtemp(prefix="likeness-shots-"))
    if not args.installed:
        os.environ["LIKENESS_HOME"] = str(work / "home")
    source = SHARED / "data" / "real_world" / "whole_photos"
    if not source.is_dir():
        print(f"needs {source}", file=sys.stderr)
        return 2
    photos = work / "Family album"
    photos.mkdir()
    names = {
        "00.jpg": "Reunion 1998.jpg",
        "01.jpg": "Band photo.jpg",
        "03.jpg": "Portrait garden.jpg",
        "04.jpg": "Grandma.jpg",
    }
    for src, dst in names.items():
        shutil.copy(source / src, photos / dst)
    refs = work / "References"
    refs.mkdir()
    shutil.copy(source / "04.jpg", refs / "Grandma 1975.jpg")
    shutil.copy(source / "03.jpg", refs / "Portrait 1980.jpg")

    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("Likeness")
    QCoreApplication.setApplicationName("Likeness-screenshots")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication(sys.argv[:1])

    from app.main_window import MainWindow
    from app.photos import Status
    from app.settings import Settings
    from app.theme import apply_theme

    settings = Settings()
    settings.set("detector", "hog")
    settings.set("backend", "torch")
    settings.set("confirm_close", False)  # results are discarded on purpose here
    apply_theme(app, "dark")
    window = MainWindow(settings, backend=None if args.installed else stand_in_backend())
    window.resize(1440, 900)
    window.show()
    args.out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    def spin(condition, timeout_s: float = 120) -> None:
        end = time.perf_counter() + timeout_s
        while not condition():
            if time.perf_counter() > end:
                raise TimeoutError("the app did not reach the state to capture")
            app.processEvents()
            time.sleep(0.005)

    def settle() -> None:
        for _ in range(5):
            app.processEvents()
            time.sleep(0.01)

    def shoot(widget, name: str) -> None:
        settle()
        path = args.out / f"{name}.png"
        widget.grab().save(str(path))
        shots.append(path)

    spin(lambda: window.session.engine_state.info.device_label != "")
    shoot(window, "01-empty")

    # a batch at work: capture while the second photo is being restored
    window.open_paths([photos])
    spin(lambda: all(i.scanned for i in window.photos.items()))
    captured = []

    def on_progress(message):
        item = window.photos.by_id(getattr(message.job, "photo_id", -1))
        text = message.text
        if not captured and item is not None and item.name == names["01.jpg"] and text.startswith("Restoring face 2"):
            window.list.setCurrentIndex(window.photos.index(window.photos.row_of(window.photos.items()[0])))
            shoot(window, "02-working")
            captured.append(True)

    window.engine.progress.connect(on_progress)
    window.list.setCurrentIndex(window.photos.index(0))
    window.toggle_face(3)  # face 4 of the band photo stays as it is (red, dashed)
    window.run_batch()
    spin(lambda: all(i.status == Status.DONE for i in window.photos.items()))
    window.engine.progress.disconnect(on_progress)

    # compare view with a face chosen and its live preview; one face excluded
    window.list.setCurrentIndex(window.photos.index(0))
    window.select_face(1)
    spin(lambda: (p := window.session.selection.preview) is not None and p.face_index == 1)
    window.compare.split = 0.52
    shoot(window, "03-compare")

    window.set_side_by_side(True)
    window.compare.set_scale(window.compare.fit_scale() * 1.5)
    shoot(window, "04-side-by-side")
    window.set_side_by_side(False)
    window.compare.fit()

    # references: two photos dropped on the panel, checked against the chosen face
    grandma = next(i for i in window.photos.items() if i.name == names["04.jpg"])
    window.list.setCurrentIndex(window.photos.index(window.photos.row_of(grandma)))
    window.select_face(0)
    panel = window.controls.references
    panel.add_paths([refs / "Grandma 1975.jpg", refs / "Portrait 1980.jpg"])
    spin(lambda: any(e.running for e in panel.entries))
    window.controls_scroll.ensureWidgetVisible(panel)
    shoot(panel, "11-references-analysing")  # per-reference progress: one analysing, one waiting
    spin(lambda: not any(e.analysing for e in panel.entries))
    window.session.request_match()
    spin(
        lambda: (
            all(e.similarity is not None for e in panel.entries if e.aligned is not None)
            or "not available" in panel.status.text()
        ),
        180,
    )
    spin(lambda: (p := window.session.selection.preview) is not None and p.photo_id == window.current.id)
    window.controls_scroll.ensureWidgetVisible(panel)
    shoot(window, "05-references")  # they belong to this face now: its result is out of date

    # the chosen face large, zoomable
    preview = window.controls.preview
    preview.open_larger()
    spin(lambda: preview.dialog is not None and preview.dialog.view.after is not None)
    assert preview.dialog is not None
    preview.dialog.view.zoom_by(1.6)
    shoot(preview.dialog, "09-face-larger")

    # restored with the references: before / without / with them, side by side
    window.run_selected()
    spin(lambda: grandma.status == Status.DONE and not grandma.stale, 600)
    window.select_face(0)
    spin(lambda: preview.with_refs is not None and preview.dialog is not None and preview.dialog.versions.isVisible())
    preview.dialog.view.fit()
    shoot(preview.dialog, "12-with-and-without-references")
    preview.dialog.close()

    # a result made at another w: marked in the list and over the view, one click re-renders it
    window.list.setCurrentIndex(window.photos.index(0))
    window.controls.fidelity.set_value(0.7)
    window.controls_scroll.verticalScrollBar().setValue(0)
    shoot(window, "10-out-of-date")
    window.controls.fidelity.set_value(0.5)

    # the model manager
    window.models_dialog()
    dialog = window.models_window
    dialog.resize(940, 580)
    dialog.select("codeformer")
    shoot(dialog, "06-models")
    dialog.close()

    from PySide6.QtWidgets import QTabWidget

    from app.dialogs.settings import SettingsDialog

    settings_dialog = SettingsDialog(settings, window, window.controls.choices())
    tabs = settings_dialog.findChild(QTabWidget)
    if tabs is not None:  # the Engine page: drop-downs of what is installed
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Engine"))
    settings_dialog.show()
    shoot(settings_dialog, "07-settings")
    settings_dialog.close()

    apply_theme(app, "light")
    window.controls_scroll.verticalScrollBar().setValue(0)
    window.list.setCurrentIndex(window.photos.index(0))
    window.select_face(2)
    spin(lambda: (p := window.session.selection.preview) is not None and p.photo_id == window.current.id)
    shoot(window, "08-light-theme")

    window.close()
    shutil.rmtree(work, ignore_errors=True)
    for path in shots:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
