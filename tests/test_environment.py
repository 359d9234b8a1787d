"""The installed environment: one OpenCV (headless), and it coexists with PySide6.

Layering (who may import what) is checked from the import graph in ``test_architecture``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest


def test_exactly_one_opencv_and_it_is_headless():
    names = {d.metadata["Name"].lower() for d in metadata.distributions()}
    opencvs = sorted(n for n in names if n.startswith("opencv"))
    assert opencvs == ["opencv-python-headless"], opencvs


def test_cv2_after_pyside6_lets_a_qapplication_start():
    """The GUI build of OpenCV ships its own Qt plugins, which break PySide6 when loaded second."""
    pytest.importorskip("PySide6")
    code = (
        "import PySide6\n"
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "import cv2, facexlib\n"
        "app = QApplication([])\n"
        "label = QLabel('ok'); label.show(); app.processEvents()\n"
        "print('platform', app.platformName(), 'cv2', cv2.__version__)\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "platform offscreen" in proc.stdout
