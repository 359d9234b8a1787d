"""After a crash: the session journal (app.journal) and the recovery offered at the next start (app.recovery).

The windows run on the fake engine. A crash is what it leaves on disk: the journal and the kept
results, with no live owner. ``crash`` takes that copy, lets the window close (which cleans up),
and puts the copy back; the last test kills a real ``app.__main__.main`` process with SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from app import recovery
from app.dialogs import recovery as dialog
from app.imaging import load_result, to_array
from app.journal import JOURNAL, RESULTS
from app.photos import Status
from tests.app.conftest import open_window
from tests.app.fake_engine import FakeBackend, one_face, two_faces
from tests.conftest import REPO

TIMEOUT = 20000


def scanned(window, n: int) -> bool:
    return window.photos.rowCount() == n and all(i.scanned for i in window.photos.items())


def sessions(settings):
    return settings.folder / "sessions"


def answer(monkeypatch, choice: str) -> list:
    """The recovery dialog answers ``choice``; returns what it was asked (photos, unexported, references, problems)."""
    asked = []
    monkeypatch.setattr(dialog, "ask", lambda _parent, *counts: asked.append(counts) or choice)
    return asked


def crash(window, tmp_path) -> None:
    """What a crash leaves behind: the journal and the results on disk, their owner gone."""
    journal = window.session.journal
    journal.flush()
    saved = tmp_path / "at-the-crash"
    shutil.copytree(journal.folder, saved)
    window.close()
    assert not journal.folder.exists()  # a clean exit removes it
    shutil.copytree(saved, journal.folder)


def restored_and_queued(qtbot, settings, tmp_path):
    """A window with a.png restored (not exported) and b.png queued (its second face left out);
    returns the window and a's result."""
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    a, b = one_face(tmp_path / "a.png"), two_faces(tmp_path / "b.png")
    window.open_paths([a, b])
    qtbot.waitUntil(lambda: scanned(window, 2), timeout=TIMEOUT)
    first, second = window.photos.items()
    window.session.set_face_included(second, 1, False)
    window.session.run([first])
    qtbot.waitUntil(lambda: first.status == Status.DONE and not window.engine.busy, timeout=TIMEOUT)
    result = to_array(window.session.result_image(first))
    window.session.run([second])
    assert second.status == Status.QUEUED
    return window, result


def test_restore_brings_back_the_photos_their_results_and_the_queue(qtbot, settings, tmp_path, monkeypatch):
    old, result = restored_and_queued(qtbot, settings, tmp_path)
    old_folder = old.session.journal.folder
    old.session.journal.flush()  # the window writes it within half a second; a test does not wait
    journal = json.loads((old_folder / JOURNAL).read_text())
    assert [p["status"] for p in journal["photos"]] == ["done", "queued"]
    assert journal["queue"] == [str(tmp_path / "b.png")] and journal["photos"][1]["excluded"] == [1]
    crash(old, tmp_path)

    asked = answer(monkeypatch, "restore")
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    recovery.offer(window)
    assert asked == [(2, 1, 0, [])]
    a, b = window.photos.items()
    assert (a.name, b.name) == ("a.png", "b.png")
    assert a.status == Status.DONE and a.exported_to is None and a.result_options is not None
    assert np.array_equal(to_array(window.session.result_image(a)), result)  # the very pixels
    assert a.result_file.parent == window.session.journal.results
    assert b.status == Status.QUEUED and b.excluded == {1}
    assert not old_folder.exists()  # taken over: its results moved into this session
    assert "Restored 2 photos and 1 result" in window.status.text.text()
    qtbot.waitUntil(lambda: b.status == Status.DONE and not window.engine.busy, timeout=TIMEOUT)
    assert b.result_faces == {0}  # the queue went on, with the face choice it had
    assert window.session.unsaved() == [a, b]
    window.close()
    assert list(sessions(settings).iterdir()) == []


def test_discard_leaves_an_empty_window_and_removes_the_journal_and_results(qtbot, settings, tmp_path, monkeypatch):
    old, _ = restored_and_queued(qtbot, settings, tmp_path)
    old_folder = old.session.journal.folder
    crash(old, tmp_path)
    assert list((old_folder / RESULTS).glob("*.npy"))
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    asked = answer(monkeypatch, "later")  # the box closed without an answer: asked again next time
    recovery.offer(window)
    assert window.photos.rowCount() == 0 and (old_folder / JOURNAL).exists()
    asked = answer(monkeypatch, "discard")
    recovery.offer(window)
    assert len(asked) == 1 and not old_folder.exists()
    assert window.photos.rowCount() == 0 and window.controls.references.entries == []
    own = window.session.journal.folder
    assert sorted(p.name for p in sessions(settings).iterdir()) == [own.name, own.name + ".lock"]
    window.close()
    assert list(sessions(settings).iterdir()) == []


def test_a_clean_exit_leaves_no_journal_and_no_results(qtbot, settings, tmp_path, monkeypatch):
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    window.open_paths([one_face(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: scanned(window, 1), timeout=TIMEOUT)
    window.run_batch()
    qtbot.waitUntil(lambda: window.photos.item(0).status == Status.DONE, timeout=TIMEOUT)
    journal = window.session.journal
    qtbot.waitUntil(lambda: "done" in (journal.file.read_text() if journal.file.exists() else ""), timeout=TIMEOUT)
    assert list(journal.results.glob("*.npy")) == [window.photos.item(0).result_file]
    other = open_window(qtbot, settings, FakeBackend(model="tiny"))  # a second instance
    assert (
        recovery.find(sessions(settings), other.session.journal.folder).sessions == []
    )  # a live window's is not offered
    other.close()

    settings.set("confirm_close", True)  # closed after the question, as a user does
    monkeypatch.setattr(type(window), "_confirm_close", lambda _self, _n: "discard")
    window.close()
    assert not window.isVisible()
    assert list(sessions(settings).iterdir()) == []


def test_a_photo_gone_since_the_crash_is_named_and_the_rest_restored(qtbot, settings, tmp_path, monkeypatch):
    old, result = restored_and_queued(qtbot, settings, tmp_path)
    crash(old, tmp_path)
    (tmp_path / "b.png").unlink()
    asked = answer(monkeypatch, "restore")
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    recovery.offer(window)
    (photos, unexported, references, problems) = asked[0]
    assert (photos, unexported, references) == (2, 1, 0)
    assert problems == [f"b.png (the photo is not in {tmp_path} any more)"]
    assert [i.name for i in window.photos.items()] == ["a.png"]
    assert np.array_equal(to_array(window.session.result_image(window.photos.item(0))), result)
    assert "Not restored: b.png" in window.status.text.text()
    window.close()


def test_references_and_their_faces_come_back_and_a_lost_result_is_said(qtbot, settings, tmp_path, monkeypatch):
    old = open_window(qtbot, settings, FakeBackend(model="tiny"))
    old.open_paths([one_face(tmp_path / "a.png"), two_faces(tmp_path / "b.png")])
    ref = one_face(tmp_path / "ref.png")
    old.controls.references.add_paths([ref])
    qtbot.waitUntil(lambda: scanned(old, 2) and old.controls.references.paths() == [ref], timeout=TIMEOUT)
    first, second = old.photos.items()
    old.session.person.attach(second.id, 0)
    old.session.run([first])
    qtbot.waitUntil(lambda: first.status == Status.DONE and not old.engine.busy, timeout=TIMEOUT)
    old.session.run([second])
    journal = old.session.journal
    crash(old, tmp_path)
    for kept in (journal.folder / RESULTS).glob("*.npy"):
        kept.unlink()

    asked = answer(monkeypatch, "restore")
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    recovery.offer(window)
    assert asked[0][2:] == (1, ["the restored a.png (its result file is missing)"])
    a, b = window.photos.items()
    assert not a.has_result and a.message == recovery.RESULT_LOST
    assert window.controls.references.all_paths() == [ref]
    assert window.session.person.faces == {(b.id, 0)}
    qtbot.waitUntil(lambda: b.status == Status.DONE and not window.engine.busy, timeout=TIMEOUT)
    assert b.result_options is not None and b.result_options.references == (ref,)  # queued again, with them
    window.close()


def test_the_photo_being_restored_is_not_queued_again_and_a_damaged_journal_is_said(
    qtbot, settings, tmp_path, monkeypatch
):
    """A journal as app.journal documents it: the photo being restored may be what closed Likeness."""
    a = one_face(tmp_path / "a.png")
    record = {"path": str(a), "status": "working", "message": "Restoring face 1", "excluded": []}
    left = sessions(settings) / "20250101-000000-1-abcdef"
    (left / RESULTS).mkdir(parents=True)
    journal = {"version": 1, "photos": [record], "queue": [str(a)], "references": [], "reference_faces": []}
    (left / JOURNAL).write_text(json.dumps(journal))
    damaged = sessions(settings) / "20250101-000001-2-abcdef"
    damaged.mkdir()
    (damaged / JOURNAL).write_text('{"version": 1, "photos": [')
    asked = answer(monkeypatch, "restore")
    window = open_window(qtbot, settings, FakeBackend(model="tiny"))
    recovery.offer(window)
    assert asked == [(1, 0, 0, ["another session (its record could not be read)"])]
    assert "Not queued again: a.png" in window.status.text.text()
    item = window.photos.item(0)
    qtbot.waitUntil(lambda: scanned(window, 1) and not window.engine.busy, timeout=TIMEOUT)
    assert item.status == Status.READY and item.message == recovery.CLOSED_WHILE_RESTORING
    own = window.session.journal.folder
    assert sorted(p.name for p in sessions(settings).iterdir()) == [own.name, own.name + ".lock"]
    window.close()


def test_command_line_photos_still_get_the_offer(qtbot, settings, tmp_path, monkeypatch):
    from app.__main__ import create_window

    old, _ = restored_and_queued(qtbot, settings, tmp_path)
    crash(old, tmp_path)
    asked = answer(monkeypatch, "restore")
    c = one_face(tmp_path / "c.png")
    _app, window = create_window(["likeness", str(c), str(tmp_path / "a.png")], backend=FakeBackend(model="tiny"))
    qtbot.addWidget(window)
    assert len(asked) == 1
    assert [i.name for i in window.photos.items()] == ["a.png", "b.png", "c.png"]
    assert window.photos.item(0).status == Status.DONE
    window.close()


KILLED_APP = """
import sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[1])
qt = QApplication(sys.argv[:1])
from app.__main__ import main
from app.main_window import MainWindow
from tests.app.fake_engine import FakeBackend


def restore_all_once_scanned():
    for window in qt.topLevelWidgets():
        if isinstance(window, MainWindow) and window.photos.rowCount() and window.photos.item(0).scanned:
            timer.stop()
            window.run_batch()


timer = QTimer()
timer.timeout.connect(restore_all_once_scanned)
timer.start(50)
sys.exit(main(["likeness", sys.argv[2]], backend=FakeBackend(model="tiny")))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_app_is_offered_at_the_next_start(qtbot, private_settings, tmp_path, monkeypatch):
    """``main`` on the fake engine restores a photo and is killed with SIGKILL; the next start offers it."""
    from app.__main__ import create_window
    from app.settings import Settings

    photo = one_face(tmp_path / "a.png")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_STATE_HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path),
    }
    command = [sys.executable, "-c", KILLED_APP, str(private_settings), str(photo)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    root = sessions(Settings())
    deadline = time.monotonic() + 50
    journal = None
    try:
        while journal is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            for file in root.glob(f"*/{JOURNAL}"):
                data = json.loads(file.read_text())
                if data["photos"] and data["photos"][0]["status"] == "done":
                    journal = (file, data)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
    assert journal is not None, stderr
    file, data = journal
    result = load_result(file.parent / data["photos"][0]["result"])
    assert list(root.glob("*.lock"))  # the dead owner's lock is still there

    asked = answer(monkeypatch, "restore")
    _app, window = create_window(["likeness", str(photo)], backend=FakeBackend(model="tiny"))
    qtbot.addWidget(window)
    assert asked == [(1, 1, 0, [])]
    item = window.photos.item(0)
    assert window.photos.rowCount() == 1 and item.status == Status.DONE
    assert np.array_equal(load_result(item.result_file), result)
    window.settings.set("confirm_close", False)
    window.close()
    assert list(root.iterdir()) == []
