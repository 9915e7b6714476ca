"""Preferences: appearance, history, polling and notification defaults, where secrets live.

Forms are generated from the settings models (the same validation as the settings file).
Nothing is changed until every page is valid; a refused value is shown beside its field
and its page is brought to the front.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from runmonitor.core.profiles import NotificationPrefs, Settings
from runmonitor.core.schedule import PollSchedule
from runmonitor.ui.forms import ModelForm, errors_by_path
from runmonitor.ui.runs_view import spawn

#: Applies the changed preferences (and a new secret storage mode, or None); returns a note to
#: show, or raises ValidationError / ValueError to refuse.
Applier = Callable[[dict[str, Any], str | None], Awaitable[str | None]]

GENERAL_FIELDS = ("appearance", "retention_days", "secret_storage")
STORAGE_NOTES = {
    "keyring": "Secrets are kept in the operating system's keyring.",
    "session": "Secrets are kept in memory only: you enter them again after every start.",
    "plaintext_file": "Secrets are kept in an UNENCRYPTED file readable only by you. Anyone who can "
    "read your files (a backup, another program running as you) can read them.",
}


def _scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` at the top of a scroll area, spare height below it (never between its rows)."""
    holder = QWidget()
    box = QVBoxLayout(holder)
    box.setContentsMargins(0, 0, 4, 0)
    box.addWidget(widget)
    box.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(holder)
    return scroll


class PreferencesDialog(QDialog):
    applied = Signal(str)  # a note for the status bar

    def __init__(self, settings: Settings, applier: Applier, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setAccessibleName("Preferences")
        self.settings = settings
        self.applier = applier
        self.general = ModelForm(
            Settings,
            values=settings.preferences(),
            exclude=[n for n in Settings.model_fields if n not in GENERAL_FIELDS],
            order=GENERAL_FIELDS,
        )
        self.storage_note = QLabel()
        self.storage_note.setTextFormat(Qt.TextFormat.PlainText)
        self.storage_note.setWordWrap(True)
        self.storage_note.setAccessibleName("About the chosen secret storage")
        self.general.insert_row("", self.storage_note)
        self.general.changed.connect(self._update_note)
        self.polling = ModelForm(PollSchedule, values=settings.polling.model_dump(mode="json"))
        self.notifications = ModelForm(
            NotificationPrefs, values=settings.notifications.model_dump(mode="json")
        )
        self.pages = QTabWidget()
        self.pages.setAccessibleName("Preference pages")
        self.pages.addTab(_scrolled(self.general), "&General")
        self.pages.addTab(_scrolled(self.polling), "P&olling")
        self.pages.addTab(_scrolled(self.notifications), "&Notifications")
        self.outcome = QLabel()
        self.outcome.setTextFormat(Qt.TextFormat.PlainText)
        self.outcome.setWordWrap(True)
        self.outcome.setAccessibleName("Outcome")
        self.outcome.setVisible(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        restore = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.setToolTip("Put the defaults in this page's fields (nothing is saved until OK)")
        restore.clicked.connect(self.restore_page_defaults)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.outcome)
        layout.addWidget(self.buttons)
        self._update_note()
        self.resize(620, 560)
        self._busy = False

    def forms(self) -> list[ModelForm]:
        return [self.general, self.polling, self.notifications]

    def _update_note(self) -> None:
        mode = self.general.values().get("secret_storage", "keyring")
        note = STORAGE_NOTES.get(mode, "")
        if mode != self.settings.secret_storage:
            note += " Your stored secrets are moved there when you press OK."
        self.storage_note.setText(note)

    def restore_page_defaults(self) -> None:
        form = self.forms()[self.pages.currentIndex()]
        if form is self.general:
            defaults = Settings().preferences()
            # Where secrets live is not reset by accident.
            defaults["secret_storage"] = self.general.values().get("secret_storage", "keyring")
            form.set_values(defaults)
        else:
            form.set_values({})

    def changes(self) -> tuple[dict[str, Any], str | None] | None:
        """The validated changes, or None after showing every problem beside its field."""
        checked: list[Any] = []
        for index, form in enumerate(self.forms()):
            value = form.validate()
            if value is None:
                self.pages.setCurrentIndex(index)
                form.focus_first_error()
                return None
            checked.append(value)
        general, polling, notifications = checked
        current = self.settings.preferences()
        changes: dict[str, Any] = {}
        for name in GENERAL_FIELDS:
            if name != "secret_storage" and getattr(general, name) != getattr(self.settings, name):
                changes[name] = getattr(general, name)
        if polling != self.settings.polling:
            changes["polling"] = polling.model_dump(mode="json")
        if notifications != self.settings.notifications:
            changes["notifications"] = notifications.model_dump(mode="json")
        storage = general.secret_storage if general.secret_storage != current["secret_storage"] else None
        return changes, storage

    def save(self) -> None:
        if self._busy:
            return
        found = self.changes()
        if found is None:
            return
        changes, storage = found
        if not changes and storage is None:
            self.accept()
            return
        self._busy = True
        self.buttons.setEnabled(False)
        spawn(self._apply(changes, storage), self._failed)

    async def _apply(self, changes: dict[str, Any], storage: str | None) -> None:
        try:
            note = await self.applier(changes, storage)
        except ValidationError as exc:
            self._show_refusal(errors_by_path(exc))
            return
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            self._show_refusal(dict(errors) if isinstance(errors, dict) and errors else {"": str(exc)})
            return
        finally:
            self._busy = False
            self.buttons.setEnabled(True)
        self.applied.emit(note or "Preferences saved.")
        self.accept()

    def _show_refusal(self, errors: dict[str, str]) -> None:
        general = {k: v for k, v in errors.items() if k.split(".")[0] in GENERAL_FIELDS}
        polling = {k.removeprefix("polling."): v for k, v in errors.items() if k.startswith("polling")}
        notify = {
            k.removeprefix("notifications."): v for k, v in errors.items() if k.startswith("notifications")
        }
        placed = ("polling", "notifications")
        rest = [v for k, v in errors.items() if k and not (k in general or k.startswith(placed))]
        for index, (form, part) in enumerate(
            [(self.general, general), (self.polling, polling), (self.notifications, notify)]
        ):
            if part:
                form.set_errors(part)
                self.pages.setCurrentIndex(index)
        text = "; ".join([errors[""]] if "" in errors else []) or "; ".join(rest)
        self.outcome.setText(f"Not saved: {text}" if text else "Not saved: see the marked fields.")
        self.outcome.setVisible(True)

    def _failed(self, error: BaseException) -> None:
        self._busy = False
        self.buttons.setEnabled(True)
        self.outcome.setText(f"Not saved: {error}")
        self.outcome.setVisible(True)
