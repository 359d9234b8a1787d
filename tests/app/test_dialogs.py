"""Model manager download (progress, cancel, resume) against a local server; about box; export dialog."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from engine.api import ModelRecord, ModelStore

PAYLOAD = bytes(range(256)) * (4 * 4096)  # 4 MiB


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD in small pieces with pauses (a slow connection), honouring Range."""

    def do_GET(self):  # noqa: N802
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.end_headers()
        try:
            for i in range(0, len(body), 128 * 1024):
                self.wfile.write(body[i : i + 128 * 1024])
                time.sleep(0.02)  # server side: the test itself waits on signals only
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/demo.bin"
    httpd.shutdown()


def test_download_shows_progress_cancels_and_resumes(qtbot, tmp_path, server):
    from app.dialogs.models import ModelDialog

    record = ModelRecord(
        id="demo-upscaler",
        file="demo.bin",
        kind="upscaler",
        arch="demo",
        purpose="A test file.",
        licence="MIT",
        url=server,
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
    )
    store = ModelStore(tmp_path / "models", catalogue={record.id: record}, bundled_dir=tmp_path / "bundled")
    dialog = ModelDialog(store)
    qtbot.addWidget(dialog)
    dialog.select("demo-upscaler")
    assert dialog.table.item(0, 2).text() == "Not installed" and dialog.download.isEnabled()
    dialog.download.click()
    qtbot.waitUntil(lambda: dialog.progress.maximum() == 1000 and dialog.progress.value() > 0, timeout=20000)
    assert dialog.cancel.isEnabled() and not dialog.download.isEnabled()
    dialog.cancel.click()
    qtbot.waitUntil(lambda: "cancelled" in dialog.message.text(), timeout=20000)
    assert not store.is_installed("demo-upscaler")
    assert (tmp_path / "models" / "demo.bin.part").exists()  # kept: the next download resumes
    with qtbot.waitSignal(dialog.models_changed, timeout=30000):
        dialog.download.click()
    assert store.is_installed("demo-upscaler")
    assert dialog.table.item(0, 2).text() == "Installed" and dialog.remove_button.isEnabled()
    dialog.close()


def test_about_box_names_versions_and_model_licences(qtbot, tmp_path):
    from app.dialogs.about import AboutDialog

    dialog = AboutDialog(ModelStore(tmp_path / "models"))
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "PySide6" in text and "torch" in text and "Python" in text
    assert "S-Lab License" in text and "codeformer" in text


def test_export_dialog_checks_the_name_pattern(qtbot):
    from app.dialogs.export import ExportDialog
    from app.settings import Settings

    s = Settings()
    dialog = ExportDialog(s, 0, 3)
    qtbot.addWidget(dialog)
    assert dialog.everything.isChecked() and not dialog.only_selected.isEnabled()
    dialog.naming.setText("{title}")
    assert not dialog.export_button.isEnabled() and "{title}" in dialog.problem.text()
    dialog.naming.setText("{name}_w{w}")
    dialog.format.setCurrentIndex(dialog.format.findData("png"))
    dialog.accept()
    assert s.get("naming") == "{name}_w{w}" and s.get("format") == "png"


def test_the_models_dialog_tells_the_truth_about_each_model(qtbot, tmp_path):
    """A bundled non-commercial model ships with the app; a downloaded one does not (issue 17)."""
    from app.dialogs.models import ModelDialog

    common = {"kind": "restoration", "arch": "codeformer", "purpose": "Test.", "licence": "CelebA", "size": 1}
    bundled = ModelRecord(id="lite", file="lite.bin", bundled=True, non_commercial=True, **common)
    other = ModelRecord(id="other", file="other.bin", url="http://x", non_commercial=True, **common)
    store = ModelStore(tmp_path / "models", catalogue={"lite": bundled, "other": other}, bundled_dir=tmp_path)
    (tmp_path / "lite.bin").write_bytes(b"x")
    dialog = ModelDialog(store)
    qtbot.addWidget(dialog)
    dialog.select("lite")
    text = dialog.details.toPlainText()
    assert "ships with Likeness" in text and "not shipped" not in text and "never bundled" not in text
    dialog.select("other")
    assert "not shipped with Likeness" in dialog.details.toPlainText()
    dialog.close()  # ends the dialog's download thread


def test_about_names_the_bundled_licences_only_in_an_installed_app(tmp_path, monkeypatch):
    import sys

    from app.dialogs.about import third_party_note

    assert third_party_note() == ""  # a development install has no bundle folder
    (tmp_path / "licenses").mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "Likeness"))
    assert str(tmp_path / "licenses") in third_party_note()
