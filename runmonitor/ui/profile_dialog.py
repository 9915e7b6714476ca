"""The dialog that adds or edits a connection profile.

Its fields are the profile's name, a :class:`~runmonitor.ui.forms.ModelForm` of the
service's connection model and, below it, the profile's notification preferences: "Use the
global defaults" (stored as ``notifications=None``, so later changes to the defaults apply) or
the profile's own choices (a form of :class:`~runmonitor.storage.settings.model.NotificationPrefs`).

Secrets are typed here but never shown: an already-stored secret appears as an empty field
with the placeholder "stored — leave empty to keep", and an empty field keeps it. The dialog
cannot read stored secrets, so "Test connection" hands the tester what it has: the draft
profile (no secrets) and the secrets typed in this dialog; the tester fills in the stored ones
itself.

Open it with ``.open()`` (never ``exec()``: a nested event loop breaks the qasync tasks) and
connect :attr:`ProfileDialog.saved`; then read :meth:`result_profile` and :meth:`result_secrets`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, time
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.errors import (
    ServiceError,
    check_outcome,
)
from runmonitor.services import get as get_service
from runmonitor.services.base import ServiceConfig
from runmonitor.storage.settings.model import (
    PLACEHOLDER,
    NotificationPrefs,
    Profile,
    ProfileError,
    validate_connection,
)
from runmonitor.ui.forms import (
    CheckOutcome,
    FieldError,
    HelpLabel,
    ModelForm,
    errors_by_path,
    feedback_icon,
    tone,
)

log = logging.getLogger(__name__)

#: ``tester(profile_draft, typed_secrets) -> description of what answered``. The draft carries no
#: secrets; ``typed_secrets`` holds only what was typed in the dialog, so the tester adds the stored
#: ones (from the keyring) for fields left empty, builds the client and calls ``check_connection()``.
Tester = Callable[[Profile, dict[str, str]], Awaitable[str]]

STORED_PLACEHOLDER = "stored — leave empty to keep"
#: Connection fields every service has that few people change: shown after the service's own,
#: in this order (the proxy, then the TLS trust settings side by side, then the timeout).
ADVANCED_FIELDS = ("proxy", "ca_bundle", "verify_tls", "timeout_seconds")
NAME_MAX_LENGTH = 80


def outcome_of(exc: BaseException) -> tuple[str, str]:
    """(icon shape, text) for a failed connection test."""
    return check_outcome(exc)


def _report_failure(task: asyncio.Future[None]) -> None:
    """Log what escaped a connection-test task (run_test handles every expected outcome)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("connection test task failed", exc_info=task.exception())


class WarningBanner(QFrame):
    """A standing warning: triangle icon + plain text on a tinted background from the palette."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("warningBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        row.setSpacing(8)
        self.icon = QLabel()
        self.icon.setFixedSize(16, 16)
        self.icon.setAccessibleName("Warning")
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setText(text)
        self.label.setAccessibleName(f"Warning: {text}")
        row.addWidget(self.label, 1)
        self.setAccessibleName("Warning")
        self.setAccessibleDescription(text)
        self._recolour()

    def text(self) -> str:
        return self.label.text()

    def _recolour(self) -> None:
        parent = self.parentWidget()
        base = parent.palette() if parent is not None else QGuiApplication.palette()
        accent = tone("warning", base)
        window = base.color(QPalette.ColorRole.Window)
        k = 0.14
        tint = window.toRgb()
        tint.setRgb(
            round(window.red() * (1 - k) + accent.red() * k),
            round(window.green() * (1 - k) + accent.green() * k),
            round(window.blue() * (1 - k) + accent.blue() * k),
        )
        palette = QPalette(base)
        palette.setColor(QPalette.ColorRole.Window, tint)
        self.setPalette(palette)
        self.icon.setPixmap(feedback_icon("warning", accent, 16).pixmap(QSize(16, 16)))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.ParentChange):
            self._recolour()


class _Notes(QWidget):
    """The live connection warnings: one icon + text line each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Connection warnings")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self._notes: list[str] = []
        self.banners: list[WarningBanner] = []
        self.hide()

    def notes(self) -> list[str]:
        return list(self._notes)

    def set_notes(self, notes: list[str]) -> None:
        if notes == self._notes:
            return
        self._notes = list(notes)
        for banner in self.banners:
            self._layout.removeWidget(banner)
            banner.deleteLater()
        self.banners = [WarningBanner(note, self) for note in notes]
        for banner in self.banners:
            self._layout.addWidget(banner)
            banner.show()
        self.setVisible(bool(notes))


_NOTIFIED = (
    ("on_failure", "failures"),
    ("on_success", "successes"),
    ("on_start", "starts"),
    ("on_cancel", "cancellations"),
)
QUIET_HOURS_MESSAGE = "quiet hours need both a start and an end: set this one too, or clear the other"


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


def describe_prefs(prefs: NotificationPrefs) -> str:
    """One sentence saying what ``prefs`` notify, e.g. "Failures and cancellations; quiet 22:00–07:00."."""
    kinds = [label for name, label in _NOTIFIED if getattr(prefs, name)]
    if not kinds:
        text = "No run outcomes are notified"
    elif len(kinds) == 1:
        text = f"{kinds[0].capitalize()} are notified"
    else:
        text = f"{', '.join(kinds[:-1]).capitalize()} and {kinds[-1]} are notified"
    if prefs.quiet_from is not None and prefs.quiet_until is not None:
        text += f"; quiet hours {_clock(prefs.quiet_from)}–{_clock(prefs.quiet_until)}"
    else:
        text += "; no quiet hours"
    return text + "."


def place_quiet_hours_error(errors: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """Move NotificationPrefs' "both or neither" error (a model-level one, path "") beside the
    quiet-hours field that is missing, so it is shown where the fix is."""
    found = dict(errors)
    has_from, has_until = values.get("quiet_from") is not None, values.get("quiet_until") is not None
    if "" in found and has_from != has_until:
        missing = "quiet_until" if has_from else "quiet_from"
        found.pop("")
        found[missing] = QUIET_HOURS_MESSAGE
    return found


class NotificationSection(QGroupBox):
    """A profile's notification preferences: the global defaults, or its own choices.

    While "Use the global defaults" is checked the form is hidden and a line says what the
    defaults notify; unchecking shows the form, filled with the profile's own choices (or, for a
    profile without any, with the defaults as a starting point).
    """

    def __init__(
        self,
        own: NotificationPrefs | None,
        defaults: NotificationPrefs,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Notifications", parent)
        self.setAccessibleName("Notifications for this profile")
        self.defaults = defaults
        box = QVBoxLayout(self)
        box.setContentsMargins(10, 8, 10, 8)
        box.setSpacing(4)
        self.use_defaults = QCheckBox("&Use the global defaults")
        self.use_defaults.setAccessibleName("Use the global notification defaults")
        self.use_defaults.setToolTip(
            "Checked: this profile follows the defaults in Edit → Preferences → Notifications, "
            "also when they change later. Unchecked: this profile has its own choices."
        )
        self.use_defaults.setChecked(own is None)
        box.addWidget(self.use_defaults)
        self.summary = HelpLabel("")
        self.summary.setAccessibleName("What is notified")
        box.addWidget(self.summary)
        self.form = ModelForm(NotificationPrefs, values=(own or defaults).model_dump(mode="json"))
        form_layout = self.form.layout()
        if form_layout is not None:  # level with the check box above it
            form_layout.setContentsMargins(0, 6, 0, 0)
        self.form.setAccessibleName("This profile's notification choices")
        box.addWidget(self.form)
        self.use_defaults.toggled.connect(self._sync)
        self._sync()

    def uses_defaults(self) -> bool:
        return self.use_defaults.isChecked()

    def _sync(self) -> None:
        own = not self.uses_defaults()
        self.form.setVisible(own)
        if own:
            self.summary.setText(
                "This profile's own choices; later changes to the global defaults do not apply to it. "
                "Sign-in needed and unconfirmed creates are always notified."
            )
        else:
            self.summary.setText(
                f"{describe_prefs(self.defaults)} Change the defaults in Edit → Preferences → Notifications."
            )
            self.form.clear_errors()

    def focus_chain(self) -> list[QWidget]:
        return [self.use_defaults, *self.form.focus_chain()]

    def validate(self) -> tuple[bool, NotificationPrefs | None]:
        """(True, None) for the defaults, (True, prefs) for valid own choices, or (False, None)
        after showing what is wrong beside its field."""
        self.form.clear_errors()
        if self.uses_defaults():
            return True, None
        values = self.form.values()
        local = self.form.local_errors()
        try:
            prefs = NotificationPrefs.model_validate(values)
        except ValidationError as exc:
            self.set_errors({**errors_by_path(exc), **local})
            return False, None
        if local:
            self.set_errors(local)
            return False, None
        return True, prefs

    def set_errors(self, errors: Mapping[str, str]) -> None:
        self.form.set_errors(place_quiet_hours_error(errors, self.form.values()))

    def errors(self) -> dict[str, str]:
        return self.form.errors()


class ProfileDialog(QDialog):
    """Add or edit a profile of one service. Open with ``.open()``; listen to :attr:`saved`."""

    #: Emitted after a successful Save, just before the dialog closes with accept().
    saved = Signal()

    def __init__(
        self,
        service_key: str,
        *,
        profile: Profile | None = None,
        stored_secrets: Mapping[str, bool] | None = None,
        secret_warning: str | None = None,
        tester: Tester | None = None,
        default_notifications: NotificationPrefs | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = get_service(service_key)
        self.service_key = service_key
        self.config_model: type[ServiceConfig] = self.service.config_model
        self.profile = profile
        self.secret_names = self.config_model.secret_field_names()
        self.stored = {name for name, present in (stored_secrets or {}).items() if present}
        self.tester = tester
        self._result: Profile | None = None
        self._typed: dict[str, str] = {}
        self._test_task: asyncio.Future[None] | None = None

        title = (
            f"Edit profile “{profile.name}” — {self.service.display_name}"
            if profile is not None
            else f"New {self.service.display_name} profile"
        )
        self.setWindowTitle(title)
        self.setAccessibleName(title)

        intro = QLabel()
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        intro.setText(f"{self.service.vendor}: {self.service.summary}")
        intro.setAccessibleName("About this service")

        # -- name + connection form -------------------------------------------------------------
        fields = list(self.config_model.model_fields)
        order = [name for name in fields if name not in ADVANCED_FIELDS] + [
            name for name in ADVANCED_FIELDS if name in fields
        ]
        self.form = ModelForm(
            self.config_model, values=dict(profile.connection) if profile else None, order=order
        )
        self.name_edit = QLineEdit()
        self.name_edit.setMaxLength(NAME_MAX_LENGTH)
        self.name_edit.setPlaceholderText("e.g. prod or staging")
        self.name_edit.setAccessibleName("Profile name")
        self.name_edit.setAccessibleDescription("required")
        self.name_edit.setToolTip(Profile.model_fields["name"].description or "")
        self.name_edit.setClearButtonEnabled(True)
        if profile is not None:
            self.name_edit.setText(profile.name)
        self.name_error = FieldError("Name")
        name_row = QWidget()
        name_box = QVBoxLayout(name_row)
        name_box.setContentsMargins(0, 0, 0, 0)
        name_box.setSpacing(2)
        name_box.addWidget(self.name_edit)
        name_box.addWidget(self.name_error)
        name_row.setAccessibleName("Name")
        self.name_row = name_row
        name_label = QLabel("Name *")
        name_label.setBuddy(self.name_edit)
        name_label.setToolTip(self.name_edit.toolTip())
        name_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        name_label.setFixedHeight(max(self.name_edit.sizeHint().height(), name_label.sizeHint().height()))
        self.form.insert_row(None, name_row, name_label)

        for name in self.secret_names:
            line = self.form.field_widget(name)
            if isinstance(line, QLineEdit) and name in self.stored:
                line.setPlaceholderText(STORED_PLACEHOLDER)
                required = self.form.spec(name).required
                line.setAccessibleDescription(
                    ("required; " if required else "") + "a value is stored; leave empty to keep it"
                )
        self.secret_banner: WarningBanner | None = None
        first_secret = next((name for name in order if name in self.secret_names), None)
        if secret_warning and first_secret is not None:
            self.secret_banner = WarningBanner(secret_warning)
            self.form.insert_row(first_secret, self.secret_banner)

        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        holder_box = QVBoxLayout(holder)
        holder_box.setContentsMargins(0, 0, 4, 0)
        holder_box.addWidget(self.form)
        # -- notifications --------------------------------------------------------------------------
        self.notifications = NotificationSection(
            profile.notifications if profile is not None else None,
            default_notifications or NotificationPrefs(),
        )
        # Level with the connection form's fields (the form keeps its frames 6 px off the edges).
        notify_row = QHBoxLayout()
        notify_row.setContentsMargins(6, 4, 6, 0)
        notify_row.addWidget(self.notifications)
        holder_box.addLayout(notify_row)
        holder_box.addStretch(1)
        self.scroll_area.setWidget(holder)

        self.notes = _Notes()

        # -- test connection --------------------------------------------------------------------
        self.test_button = QPushButton("&Test connection")
        self.test_button.setAccessibleName("Test connection")
        self.test_button.setToolTip("Make one cheap signed-in request with these settings")
        self.test_button.clicked.connect(self._on_test_clicked)
        self.test_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.test_outcome_view = CheckOutcome("Testing the connection", "Connection test result")
        # The parts, by the names the tests and the rest of the dialog use.
        self.test_busy = self.test_outcome_view.busy
        self.test_icon = self.test_outcome_view.icon
        self.test_result = self.test_outcome_view.label
        test_row = QHBoxLayout()
        test_row.setSpacing(8)
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_outcome_view, 1)
        test_widget = QWidget()
        test_widget.setLayout(test_row)
        test_row.setContentsMargins(0, 0, 0, 0)
        test_widget.setVisible(tester is not None)
        self.test_row = test_widget

        # -- buttons ------------------------------------------------------------------------------
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText("&Save")
        self.save_button.setAccessibleName("Save the profile")
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setAccessibleName("Close without saving")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(intro)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(self.notes)
        layout.addWidget(self.test_row)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addWidget(self.buttons)

        # Enter in a field must not press Save (or any other button) by itself.
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)
            button.setDefault(False)

        self.form.changed.connect(self._update_warnings)
        self.name_edit.textChanged.connect(lambda _text: self.name_error.set_message(None))
        self._update_warnings()
        chain = [*self.form.focus_chain(), *self.notifications.focus_chain(), self.test_button]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)
        QWidget.setTabOrder(self.test_button, self.save_button)
        QWidget.setTabOrder(self.save_button, self.cancel_button)
        self.name_edit.setFocus()
        self._sized = False
        self.resize(660, 600)

    # -- results ------------------------------------------------------------------------------------
    def result_profile(self) -> Profile:
        """The saved profile (connection without secrets). Only valid after :attr:`saved`."""
        if self._result is None:
            raise RuntimeError("the profile dialog has not been saved")
        return self._result

    def result_secrets(self) -> dict[str, str]:
        """The secrets typed in this dialog. A secret field left empty is absent: keep what is stored."""
        return dict(self._typed)

    # -- reading the form ---------------------------------------------------------------------------
    def typed_secrets(self) -> dict[str, str]:
        values = self.form.values()
        return {
            name: str(values[name])
            for name in self.secret_names
            if name in values and str(values[name]).strip()
        }

    def check_connection_fields(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """(normalised connection without secrets, {}) or (None, field → error)."""
        values = self.form.values()
        plain = {name: value for name, value in values.items() if name not in self.secret_names}
        try:
            normalised = validate_connection(self.service_key, plain)
        except ProfileError as exc:
            return None, {path or "": text for path, text in exc.errors.items()} or {"": str(exc)}
        typed = self.typed_secrets()
        if typed:
            # Secrets are checked only when given: build the whole connection with them, with
            # stand-ins for stored ones, and report only on the secrets that were typed.
            stored = {name: PLACEHOLDER for name in self.stored if name in self.secret_names}
            data = {**normalised, **stored, **typed}
            try:
                self.config_model.model_validate(data)
            except ValidationError as exc:
                found = {
                    path: text for path, text in errors_by_path(exc).items() if path.split(".")[0] in typed
                }
                if found:
                    return None, found
        return normalised, {}

    def _draft(
        self, name: str, connection: dict[str, Any], notifications: NotificationPrefs | None = None
    ) -> Profile:
        data: dict[str, Any] = {
            "service": self.service_key,
            "name": name,
            "connection": connection,
            "notifications": notifications,
        }
        if self.profile is not None:
            data.update(id=self.profile.id, polling=self.profile.polling, created_at=self.profile.created_at)
        data["updated_at"] = datetime.now(UTC)
        return Profile.model_validate(data)

    # -- save ---------------------------------------------------------------------------------------
    def _on_save_clicked(self) -> None:
        self.save()

    def save(self) -> bool:
        """Validate; on success store the results, emit :attr:`saved` and accept()."""
        self.form.clear_errors()
        self.name_error.set_message(None)
        name = self.name_edit.text().strip()
        ok = True
        if not name:
            self.name_error.set_message("enter a name for this profile, e.g. prod")
            ok = False
        connection, errors = self.check_connection_fields()
        if errors:
            self.form.set_errors(errors)
            ok = False
        prefs_ok, notifications = self.notifications.validate()
        if not ok or not prefs_ok or connection is None:
            self._focus_first_error()
            return False
        try:
            profile = self._draft(name, connection, notifications)
        except ValidationError as exc:
            found = errors_by_path(exc)
            name_errors = [text for path, text in found.items() if path.split(".")[0] == "name"]
            if name_errors:
                self.name_error.set_message("\n".join(name_errors))
            notify = {
                path.removeprefix("notifications").removeprefix("."): text
                for path, text in found.items()
                if path.split(".")[0] == "notifications"
            }
            if notify:
                self.notifications.set_errors(notify)
            others = {
                path: text
                for path, text in found.items()
                if path.split(".")[0] not in ("name", "notifications")
            }
            if others:
                self.form.set_errors(others)
            self._focus_first_error()
            return False
        self._result = profile
        self._typed = self.typed_secrets()
        self.saved.emit()
        self.accept()
        return True

    def _focus_first_error(self) -> None:
        if self.name_error.message():
            self.name_edit.setFocus()
            self.scroll_area.ensureWidgetVisible(self.name_row)
        elif self.form.errors() or not self.notifications.errors():
            self.form.focus_first_error()
        else:
            self.notifications.form.focus_first_error()

    # -- live warnings ------------------------------------------------------------------------------
    def current_warnings(self) -> list[str]:
        """ServiceConfig.warnings() for what the form holds now (secrets stand in when empty)."""
        values = self.form.values()
        data = {**values, **{n: values.get(n) or PLACEHOLDER for n in self.secret_names}}
        # While the form is half-typed, invalid optional fields fall back to their defaults and an
        # invalid URL to a neutral one, so e.g. "TLS verification is off" shows during typing.
        fields = self.config_model.model_fields
        for _ in range(len(fields) + 1):
            try:
                return list(self.config_model.model_validate(data).warnings())
            except ValidationError as exc:
                bad = {str(item["loc"][0]) for item in exc.errors() if item["loc"]}
                replaced = False
                for name in bad:
                    info = fields.get(name)
                    if info is None or name not in data:
                        continue
                    if not info.is_required():
                        data.pop(name)
                        replaced = True
                    elif name == "base_url" and data[name] != "https://localhost":
                        data[name] = "https://localhost"
                        replaced = True
                if not replaced:
                    return []
        return []

    def _update_warnings(self) -> None:
        self.notes.set_notes(self.current_warnings())

    # -- test connection ----------------------------------------------------------------------------
    def _on_test_clicked(self) -> None:
        if self.tester is None or self.is_testing():
            return
        self.form.clear_errors()
        connection, errors = self.check_connection_fields()
        if errors or connection is None:
            self.form.set_errors(errors)
            self.form.focus_first_error()
            self._show_outcome("failed", "Fix the marked fields first.", kind="error")
            return
        name = self.name_edit.text().strip() or (self.profile.name if self.profile else "Unsaved profile")
        stored = self.profile.notifications if self.profile is not None else None
        try:
            draft = self._draft(name, connection, stored)
        except ValidationError:
            draft = self._draft("Unsaved profile", connection, stored)
        self._set_testing(True)
        self._test_task = asyncio.ensure_future(self.run_test(draft, self.typed_secrets()))
        self._test_task.add_done_callback(_report_failure)

    async def run_test(self, draft: Profile, typed: dict[str, str]) -> None:
        """Call the tester and show the outcome under the button (plain text, icon + words)."""
        assert self.tester is not None
        try:
            answer = await self.tester(draft, typed)
        except asyncio.CancelledError:
            raise
        except (ServiceError, ProfileError) as exc:
            shape, text = outcome_of(exc)
            self._show_outcome(shape, text, kind="warning" if shape == "signin" else "error")
        except Exception as exc:  # a bug in the tester: say so here, keep the traceback in the log
            log.exception("connection test of %s failed unexpectedly", self.service_key)
            self._show_outcome("failed", f"Failed: {type(exc).__name__}: {exc}", kind="error")
        else:
            text = str(answer).strip()
            self._show_outcome("ok", f"OK: {text}" if text else "OK", kind="ok")
        finally:
            self._set_testing(False)

    def is_testing(self) -> bool:
        return self._test_task is not None and not self._test_task.done()

    @property
    def test_outcome(self) -> str | None:
        """None, "testing", or the shape of the outcome shown ("ok", "signin", "failed"…)."""
        return self.test_outcome_view.shape

    def _set_testing(self, testing: bool) -> None:
        self.test_button.setEnabled(not testing)
        if testing:
            self.test_outcome_view.start("Testing…")
        else:
            self.test_outcome_view.stop()

    def _show_outcome(self, shape: str, text: str, *, kind: str) -> None:
        self.test_outcome_view.show_outcome(shape, kind, text)

    def _cancel_test(self) -> None:
        task, self._test_task = self._test_task, None
        if task is not None and not task.done():
            task.cancel()
            self._set_testing(False)
            self.test_outcome_view.clear()

    # -- closing ------------------------------------------------------------------------------------
    def done(self, result: int) -> None:
        """Every way of closing (Save, Cancel, Escape, the window's close button) ends up here."""
        self._cancel_test()
        super().done(result)

    def showEvent(self, event: QShowEvent) -> None:
        if not self._sized:  # sized once, when fonts and styles are final
            self._sized = True
            self._fit_size()
        super().showEvent(event)
        # QDialogButtonBox makes its first accept button the default when it is shown; Enter in a
        # field must not save, so undo that (Save stays one Tab + Space, or Alt+S, away).
        self.save_button.setDefault(False)

    def _fit_size(self) -> None:
        width = 660
        screen = self.screen() or QGuiApplication.primaryScreen()
        limit = int(screen.availableGeometry().height() * 0.85) if screen is not None else 800
        layout = self.layout()
        if layout is not None:
            layout.activate()
        chrome = self.sizeHint().height() - self.scroll_area.sizeHint().height()
        holder = self.scroll_area.widget()
        content = holder.heightForWidth(width - 40) if holder is not None else -1
        if content < 0 and holder is not None:
            content = holder.sizeHint().height()
        self.resize(width, max(360, min(limit, chrome + content + 12)))
