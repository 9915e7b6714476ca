"""In-window banners for background problems (never modal dialogs)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from runmonitor.ui.theme import is_dark_palette

_LEVEL_COLOURS = {
    "error": ("#fde7e9", "#7a1420", "#5c1a22", "#ffd7dc"),
    "warning": ("#fff4ce", "#5c4400", "#4d3d0f", "#ffe9a8"),
    "info": ("#e5f1fb", "#0b3f6b", "#163a59", "#d6ebff"),
}
_LEVEL_SIGNS = {"error": "✖", "warning": "⚠", "info": "ℹ"}


class Banner(QFrame):
    """One message with an optional set of action buttons and a close button."""

    closed = Signal()

    def __init__(
        self,
        key: str,
        level: str,
        text: str,
        actions: list[tuple[str, Callable[[], None]]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.key = key
        self.level = level if level in _LEVEL_COLOURS else "info"
        self.setObjectName("banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"{self.level} message")
        self.dark: bool | None = None
        self.recolour()
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        sign = QLabel(_LEVEL_SIGNS[self.level])
        sign.setAccessibleName(self.level)
        row.addWidget(sign)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setText(text)
        self.label.setAccessibleName(text)
        row.addWidget(self.label, 1)
        for title, callback in actions or []:
            button = QPushButton(title)
            button.setAccessibleName(title)
            button.clicked.connect(callback)
            row.addWidget(button)
        close = QPushButton("Dismiss")
        close.setAccessibleName("Dismiss this message")
        close.clicked.connect(self._close)
        row.addWidget(close)

    def recolour(self) -> None:
        """Take the light or dark colours of the application palette (a style sheet keeps a
        banner from seeing palette changes itself: its area tells it)."""
        dark = is_dark_palette()
        light_bg, light_fg, dark_bg, dark_fg = _LEVEL_COLOURS[self.level]
        bg, fg = (dark_bg, dark_fg) if dark else (light_bg, light_fg)
        if dark == self.dark:
            return
        self.dark = dark
        self.setStyleSheet(
            f"QFrame#banner {{ background: {bg}; border-radius: 4px; }} "
            f"QFrame#banner QLabel {{ color: {fg}; }}"
        )

    def set_text(self, text: str) -> None:
        self.label.setText(text)
        self.label.setAccessibleName(text)

    def _close(self) -> None:
        self.closed.emit()


class BannerArea(QWidget):
    """A stack of banners; one per key, so a repeated problem updates instead of piling up."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Messages")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 8, 0)
        self._layout.setSpacing(4)
        self._banners: dict[str, Banner] = {}
        self.setVisible(False)

    def show_message(
        self,
        key: str,
        level: str,
        text: str,
        actions: list[tuple[str, Callable[[], None]]] | None = None,
    ) -> Banner:
        existing = self._banners.get(key)
        if existing is not None and existing.level == level and not actions:
            existing.set_text(text)
            return existing
        if existing is not None:
            self.dismiss(key)
        banner = Banner(key, level, text, actions, self)
        banner.closed.connect(lambda: self.dismiss(key))
        self._banners[key] = banner
        self._layout.addWidget(banner)
        self.setVisible(True)
        return banner

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            for banner in self._banners.values():
                banner.recolour()

    def dismiss(self, key: str) -> None:
        banner = self._banners.pop(key, None)
        if banner is not None:
            banner.setParent(None)
            banner.deleteLater()
        self.setVisible(bool(self._banners))

    def keys(self) -> list[str]:
        return list(self._banners)

    def text_of(self, key: str) -> str | None:
        banner = self._banners.get(key)
        return banner.label.text() if banner else None
