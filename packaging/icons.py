"""Writes the application icon for the installers: ``python packaging/icons.py FOLDER``.

``likeness.png`` (512²) and ``likeness-SIZE.png`` for the hicolor theme, ``likeness.ico``
(Windows) and ``likeness.icns`` (macOS), all drawn by ``app.icons.app_icon_image``, so the
installers show the same icon as the running window. Needs Qt (offscreen is enough).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from PySide6.QtCore import QBuffer, QIODevice  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402

from app.icons import app_icon_image  # noqa: E402

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def png_bytes(side: int) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    app_icon_image(side).save(buffer, "PNG")
    return bytes(buffer.data().data())


def main(folder: Path) -> None:
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    folder.mkdir(parents=True, exist_ok=True)
    images = {side: Image.open(io.BytesIO(png_bytes(side))).convert("RGBA") for side in SIZES}
    for side, image in images.items():
        image.save(folder / f"likeness-{side}.png")
    images[512].save(folder / "likeness.png")
    images[256].save(folder / "likeness.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    images[512].save(folder / "likeness.icns")
    print(f"icons in {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
