"""Light and dark palettes for the Fusion style, following the system unless the user chose one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

STYLE_SHEET = """
QLabel[hint="true"] { color: palette(placeholder-text); }
QGroupBox { font-weight: 600; margin-top: 14px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
QGroupBox QLabel, QGroupBox QCheckBox, QGroupBox QComboBox, QGroupBox QSpinBox { font-weight: normal; }
QFrame#referenceDrop { border: 1px dashed palette(mid); border-radius: 6px; }
QStatusBar QLabel { padding: 0 6px; }
"""


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        window, base, text, button = QColor(45, 46, 48), QColor(32, 33, 35), QColor(230, 230, 230), QColor(55, 56, 58)
        mid, alternate, placeholder = QColor(78, 80, 83), QColor(52, 53, 56), QColor(160, 160, 160)
        highlight = QColor(42, 110, 200)
    else:
        window, base, text, button = (
            QColor(239, 240, 241),
            QColor(255, 255, 255),
            QColor(30, 30, 30),
            QColor(246, 246, 247),
        )
        mid, alternate, placeholder = QColor(190, 192, 195), QColor(244, 245, 246), QColor(105, 105, 110)
        highlight = QColor(48, 120, 215)
    roles = QPalette.ColorRole
    p.setColor(roles.Window, window)
    p.setColor(roles.WindowText, text)
    p.setColor(roles.Base, base)
    p.setColor(roles.AlternateBase, alternate)
    p.setColor(roles.Text, text)
    p.setColor(roles.Button, button)
    p.setColor(roles.ButtonText, text)
    p.setColor(roles.ToolTipBase, base)
    p.setColor(roles.ToolTipText, text)
    p.setColor(roles.Mid, mid)
    p.setColor(roles.PlaceholderText, placeholder)
    p.setColor(roles.Highlight, highlight)
    p.setColor(roles.HighlightedText, QColor(255, 255, 255))
    p.setColor(roles.Link, highlight.lighter(130) if dark else highlight)
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, placeholder)
    return p


def system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, choice: str = "system") -> None:
    """Fusion with a light or dark palette; ``choice`` is "system", "light" or "dark"."""
    app.setStyle("Fusion")
    dark = system_is_dark() if choice == "system" else choice == "dark"
    app.setPalette(_palette(dark))
    app.setStyleSheet(STYLE_SHEET)


def follow_system(app: QApplication, current_choice) -> None:
    """Re-applies the palette when the system switches between light and dark."""
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app, current_choice()))
