"""What a form says back: a help line, an error under a field, the outcome of a check.

Each widget derives its colours from the palette (:mod:`runmonitor.ui.theme`) and recolours
when the palette changes; the icons' shapes carry the meaning, never colour alone.
"""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QAccessible, QAccessibleEvent, QFont, QPalette
from PySide6.QtWidgets import QApplication, QHBoxLayout, QLabel, QProgressBar, QWidget

from runmonitor.ui.icons import feedback_icon
from runmonitor.ui.theme import RECOLOUR_EVENTS, muted, tone

__all__ = ["CheckOutcome", "FieldError", "HelpLabel"]


class HelpLabel(QLabel):
    """A small grey line of help under a field (plain text, wrapped)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setText(text)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        self.setFont(font)
        self._recolour()

    def _recolour(self) -> None:
        # Derived from the parent's (or the application's) palette, never from our own
        # already-tinted one, so repeated palette changes do not drift.
        parent = self.parentWidget()
        base = parent.palette() if parent is not None else QApplication.palette(self)
        palette = QPalette(base)
        palette.setColor(QPalette.ColorRole.WindowText, muted(base))
        self.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.ParentChange):
            self._recolour()


class FieldError(QWidget):
    """An error message under a field: warning icon + red text, hidden while there is none.

    The text label is plain text, named "Error: <field>" for assistive technology, and an
    Alert event is sent when a message appears.
    """

    def __init__(self, subject: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.subject = subject
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.icon = QLabel()
        self.icon.setAccessibleName("Error")
        self.icon.setFixedSize(14, 14)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName(f"Error: {subject}" if subject else "Error")
        row.addWidget(self.label, 1)
        self.setAccessibleName(self.label.accessibleName())
        self.hide()
        self._recolour()

    def message(self) -> str:
        return self.label.text() if not self.isHidden() else ""

    def set_message(self, text: str | None) -> None:
        text = text or ""
        appeared = bool(text) and text != self.label.text()
        self.label.setText(text)
        self.label.setAccessibleDescription(text)
        self.setVisible(bool(text))
        if appeared and QAccessible.isActive():
            QAccessible.updateAccessibility(QAccessibleEvent(self.label, QAccessible.Event.Alert))

    def _recolour(self) -> None:
        colour = tone("error", self.palette())
        palette = QPalette(self.label.palette())
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        self.label.setPalette(palette)
        ratio = self.devicePixelRatioF() if self.isVisible() else 1.0
        self.icon.setPixmap(
            feedback_icon("warning", colour, 14, max(ratio, 1.0)).pixmap(QSize(14, 14), ratio)
        )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in RECOLOUR_EVENTS:
            self._recolour()


class CheckOutcome(QWidget):
    """How a check (a test connection, a test command) is going: a busy bar while it runs, then
    a feedback icon and a line of text in the outcome's colour, recoloured with the palette."""

    ICON_NAMES: ClassVar[dict[str, str]] = {"ok": "Success", "signin": "Sign-in needed"}

    def __init__(self, busy_name: str, result_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedSize(70, 10)
        self.busy.setAccessibleName(busy_name)
        self.busy.hide()
        self.icon = QLabel()
        self.icon.setFixedSize(16, 16)
        self.icon.hide()
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName(result_name)
        self.label.hide()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.busy, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.label, 1)
        #: None (nothing shown), "testing", or the shape of the outcome shown ("ok", "failed"…).
        self.shape: str | None = None
        #: The colour kind of the outcome shown ("ok", "warning", "error").
        self.kind: str | None = None

    def start(self, text: str) -> None:
        self.busy.show()
        self.icon.hide()
        self.shape, self.kind = "testing", None
        self.label.setText(text)
        self.label.setPalette(self.palette())
        self.label.show()

    def stop(self) -> None:
        self.busy.hide()

    def show_outcome(self, shape: str, kind: str, text: str) -> None:
        self.shape, self.kind = shape, kind
        colour = tone(kind, self.palette())
        self.icon.setPixmap(feedback_icon(shape, colour, 16, self.devicePixelRatioF()).pixmap(QSize(16, 16)))
        self.icon.setAccessibleName(self.ICON_NAMES.get(shape, "Problem"))
        self.icon.show()
        self._colour_label()
        self.label.setText(text)
        self.label.setAccessibleDescription(text)
        self.label.show()

    def clear(self) -> None:
        self.shape = self.kind = None
        self.icon.hide()
        self.label.hide()

    def _colour_label(self) -> None:
        palette = QPalette(self.palette())
        palette.setColor(QPalette.ColorRole.WindowText, tone(self.kind or "error", self.palette()))
        self.label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in RECOLOUR_EVENTS and self.shape not in (None, "testing"):
            self._colour_label()
