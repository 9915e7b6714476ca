"""The palette module: light and dark palettes that follow the desktop, and the colours
widgets derive from them.

The window uses Qt's Fusion style everywhere (it looks the same on every desktop and draws
both schemes well). With the "system" appearance the palette follows
``QStyleHints.colorScheme()`` and changes when the desktop switches; "light" and "dark" pin
one. Widgets that paint their own colours (banners, status icons, form feedback) recolour
on the ApplicationPaletteChange event this causes (:data:`RECOLOUR_EVENTS`).

:func:`is_dark_palette` is the one answer to "is this palette dark"; :func:`tone` (the
error/warning/ok/info text colours), :func:`muted` (secondary text) and :func:`blend` (a tint
between two colours) are the colours several widgets share.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

log = logging.getLogger(__name__)

APPEARANCES = ("system", "light", "dark")

Role = QPalette.ColorRole
Group = QPalette.ColorGroup

#: Events after which derived colours are computed again (light/dark switch, reparenting).
RECOLOUR_EVENTS = (
    QEvent.Type.PaletteChange,
    QEvent.Type.ApplicationPaletteChange,
    QEvent.Type.StyleChange,
    QEvent.Type.ParentChange,
)

_TONES = {
    # kind: (on a light background, on a dark background); each at least 4.5:1 against the window.
    "error": ("#b3261e", "#ff8a80"),
    "warning": ("#8a5300", "#ffcc66"),
    "ok": ("#1b7a3a", "#7ddc8f"),
    "info": ("#0b5394", "#8ab4f8"),
}


def is_dark_palette(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (default: the application's) has a dark window background."""
    if palette is None:
        palette = QGuiApplication.palette()
    return palette.color(Role.Window).lightness() < 128


def tone(kind: str, palette: QPalette) -> QColor:
    """The status colour for ``kind`` (error, warning, ok, info) readable on ``palette``'s window."""
    light, dark = _TONES.get(kind, _TONES["info"])
    return QColor(dark if is_dark_palette(palette) else light)


def blend(colour: QColor, towards: QColor, k: float) -> QColor:
    """``colour`` moved the fraction ``k`` of the way towards ``towards`` (RGB, opaque)."""
    return QColor(
        round(colour.red() * (1 - k) + towards.red() * k),
        round(colour.green() * (1 - k) + towards.green() * k),
        round(colour.blue() * (1 - k) + towards.blue() * k),
    )


def muted(palette: QPalette) -> QColor:
    """Secondary text: window text blended a third of the way towards the window colour."""
    return blend(palette.color(Role.WindowText), palette.color(Role.Window), 0.35)


def light_palette() -> QPalette:
    style = QStyleFactory.create("Fusion")
    return style.standardPalette() if style is not None else QPalette()


def dark_palette() -> QPalette:
    """A dark palette with enough contrast for text (WCAG AA on every text role)."""
    palette = QPalette()
    colours = {
        Role.Window: "#2b2d30",
        Role.WindowText: "#e8e8e8",
        Role.Base: "#1e1f22",
        Role.AlternateBase: "#26282b",
        Role.ToolTipBase: "#3a3d41",
        Role.ToolTipText: "#f0f0f0",
        Role.PlaceholderText: "#9a9da3",
        Role.Text: "#e8e8e8",
        Role.Button: "#34373b",
        Role.ButtonText: "#e8e8e8",
        Role.BrightText: "#ff6b6b",
        Role.Light: "#4a4d52",
        Role.Midlight: "#3d4045",
        Role.Mid: "#4f5257",
        Role.Dark: "#1a1b1e",
        Role.Shadow: "#0d0d0f",
        Role.Highlight: "#3d7bd9",
        Role.HighlightedText: "#ffffff",
        Role.Link: "#7fb2ff",
        Role.LinkVisited: "#c39bff",
    }
    for role, value in colours.items():
        palette.setColor(role, QColor(value))
    disabled = {
        Role.WindowText: "#7c7f85",
        Role.Text: "#7c7f85",
        Role.ButtonText: "#7c7f85",
        Role.Base: "#26282b",
        Role.Highlight: "#4a4d52",
        Role.HighlightedText: "#b0b3b8",
    }
    for role, value in disabled.items():
        palette.setColor(Group.Disabled, role, QColor(value))
    return palette


def app_instance() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        raise RuntimeError("no QApplication: create the application before the window")
    return app


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark


class Theme(QObject):
    """Applies the appearance preference to the application and follows the desktop."""

    def __init__(self, app: QApplication, appearance: str = "system", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.appearance = appearance if appearance in APPEARANCES else "system"
        self.dark = False
        hints = QGuiApplication.styleHints()
        if hints is not None:
            hints.colorSchemeChanged.connect(self._scheme_changed)
        self.apply()

    def set_appearance(self, appearance: str) -> None:
        if appearance not in APPEARANCES:
            raise ValueError(f"appearance must be one of {', '.join(APPEARANCES)}")
        self.appearance = appearance
        self.apply()

    def wants_dark(self, scheme: Qt.ColorScheme | None = None) -> bool:
        if self.appearance == "dark":
            return True
        if self.appearance == "light":
            return False
        if scheme is None:
            return system_is_dark()
        return scheme == Qt.ColorScheme.Dark

    def apply(self, scheme: Qt.ColorScheme | None = None) -> None:
        dark = self.wants_dark(scheme)
        self.dark = dark
        self.app.setPalette(dark_palette() if dark else light_palette())
        log.debug("palette: %s (appearance %s)", "dark" if dark else "light", self.appearance)

    def _scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        if self.appearance == "system":
            self.apply(scheme)
