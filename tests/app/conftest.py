"""Headless Qt for the app tests: offscreen platform, private QSettings, a fake or a tiny real engine.

Most tests run the window against ``fake_engine.FakeBackend`` (no torch, no ../shared): the
``window`` fixture. Tests marked ``real_engine`` run it against the real engine with a tiny
random CodeFormer imported into the private LIKENESS_HOME (see tests/conftest.py): the
``real_window`` fixture, on the shared sample photos.
"""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

import pytest
from PySide6.QtCore import QSettings

from tests.app.fake_engine import FakeBackend
from tests.conftest import shared_path

WHOLE_PHOTOS = ("data", "real_world", "whole_photos")
TIMEOUT = 60000  # generous for the real engine: the machine is shared with training jobs


def pytest_configure(config):
    config.addinivalue_line("markers", "real_engine: runs the real engine (torch, a tiny random model, ../shared)")


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """QSettings in a temporary folder, so tests never read or write the user's settings."""
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def settings():
    from app.settings import Settings

    s = Settings()
    s.set("detector", "hog")  # fast; finds the faces of the shared photos
    s.set("backend", "torch")  # no ONNX export per test
    s.set("confirm_close", False)  # no modal question when a test closes the window
    s.set("model", "tiny")  # the tiny random model, not the bundled one (seconds per face saved)
    return s


@pytest.fixture
def fake():
    return FakeBackend(model="tiny")


def open_window(qtbot, settings, backend=None):
    from app.main_window import MainWindow

    w = MainWindow(settings, backend=backend)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.session.engine_state.info.devices != (), timeout=TIMEOUT)  # the engine reported
    return w


@pytest.fixture
def window(qtbot, settings, fake):
    """The main window on the fake engine."""
    w = open_window(qtbot, settings, fake)
    yield w
    w.close()


# -- the real engine ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    import torch

    from engine.nets.codeformer import TINY, CodeFormer, save_codeformer

    torch.set_num_threads(1)  # the engine thread shares 2 cores with the GUI and other jobs
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    torch.manual_seed(0)
    save_codeformer(CodeFormer(TINY), path)
    return path


@pytest.fixture
def tiny_model(private_home, tiny_weights):
    """The tiny network imported as the only restoration model of the private store."""
    from engine.api import ModelStore

    store = ModelStore()
    store.import_file(tiny_weights, name="tiny")
    return store


@pytest.fixture
def real_window(qtbot, tiny_model, settings):
    """The main window on the real engine (the tiny random model)."""
    w = open_window(qtbot, settings)
    yield w
    w.close()


@pytest.fixture
def photos(tmp_path):
    """Copies of the shared whole photos (the tests may write beside them)."""
    src = shared_path(*WHOLE_PHOTOS)
    dst = tmp_path / "photos"
    dst.mkdir()
    for p in sorted(src.glob("*.jpg")):
        shutil.copy(p, dst / p.name)
    return dst
