"""Preferences: appearance, history, polling and notification defaults, where secrets live.

Forms are generated from the settings models (the same validation as the settings file).
Nothing is changed until every page is valid; a refused value is shown beside its field
and its page is brought to the front.

The Notifications page has three parts: the default notification choices of every profile
(:class:`NotificationPrefs`; a profile may have its own, set in its profile dialog), how
notifications are grouped (:class:`PolicyOptions`) and the command to run on events
(:class:`HookConfig`, or none). The command's ``events`` set gets its own editor, a grid of
check boxes (:class:`EventKindsEditor`). It offers the kinds a person would want a command for
(:data:`HOOK_EVENT_CHOICES`) and leaves out the engine's bookkeeping (a run created here,
added or found by watching, a vendor status that changed without changing the outcome, a
check that went stale or recovered, a create waiting in a queue): those happen often, mostly
need nobody, and a command run for each would be noise. A kind that is not offered but was
put in the settings file by hand is kept (and named under the grid), never dropped silently.
"Test command" runs the command once, in the background, for a made-up run and shows how it
went under the button. "Restore Defaults" on this page resets the notification choices and
the grouping but leaves the command alone (like where secrets are kept on the General page).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.schedule import PollSchedule
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent
from runmonitor.notify.hooks import HookResult, run_hook
from runmonitor.notify.notification import Notification
from runmonitor.notify.wording import describe_event, plain_text
from runmonitor.services import registry
from runmonitor.storage.history import RunRecord
from runmonitor.storage.settings.model import (
    COALESCED,
    FIXED,
    HookConfig,
    NotificationPrefs,
    PolicyOptions,
    Settings,
)
from runmonitor.ui.forms import (
    CheckOutcome,
    FieldError,
    HelpLabel,
    ModelForm,
    errors_by_path,
)
from runmonitor.ui.runs_view import spawn

#: Applies the changed preferences (and a new secret storage mode, or None); returns a note to
#: show, or raises ValidationError / ValueError to refuse.
Applier = Callable[[dict[str, Any], str | None], Awaitable[str | None]]

GENERAL_FIELDS = ("appearance", "close_to_tray", "retention_days", "secret_storage")
STORAGE_NOTES = {
    "keyring": "Secrets are kept in the operating system's keyring.",
    "session": "Secrets are kept in memory only: you enter them again after every start.",
    "plaintext_file": "Secrets are kept in an UNENCRYPTED file readable only by you. Anyone who can "
    "read your files (a backup, another program running as you) can read them.",
}
GENERAL_PAGE, POLLING_PAGE, NOTIFY_PAGE = range(3)

#: (kind, label, what it means) for every kind the "Run for" grid offers, in reading order.
HOOK_EVENT_CHOICES: tuple[tuple[str, str, str], ...] = (
    ("failed", "Failed", "A run failed."),
    ("succeeded", "Succeeded", "A run succeeded."),
    ("cancelled", "Cancelled", "A run was cancelled."),
    ("started", "Started", "A run started running."),
    (FIXED, "Fixed", "A pipeline or job that was failing has a successful run again."),
    (
        COALESCED,
        "Summaries",
        "One notification that sums up several events that came at once (e.g. “3 runs failed”).",
    ),
    ("auth_needed", "Sign-in needed", "A profile's credentials were refused: its checks are paused."),
    (
        "create_unconfirmed",
        "Creation unconfirmed",
        "A create may or may not have reached the service: look it up or discard it.",
    ),
    ("create_failed", "Creation failed", "The service refused a create (also one that waited in a queue)."),
    ("unknown", "Status unknown", "The service reported a status RunMonitor cannot interpret."),
    ("gone", "Run gone", "The service no longer knows a run that was being followed."),
)
HOOK_HELP = (
    "It runs when one of the chosen events happens, with RUNMONITOR_EVENT, RUNMONITOR_PROFILE, "
    "RUNMONITOR_TARGET, RUNMONITOR_STATUS, RUNMONITOR_MESSAGE… in its environment (never a secret)."
)
NO_EVENTS = "choose at least one event, or turn the command off"
SAMPLE_PROFILE = "Sample profile"
_SAMPLE_STATUS = {
    "failed": RunStatus.FAILED,
    "succeeded": RunStatus.SUCCEEDED,
    FIXED: RunStatus.SUCCEEDED,
    "cancelled": RunStatus.CANCELLED,
    "started": RunStatus.RUNNING,
    "unknown": RunStatus.UNKNOWN,
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


def _flush(form: ModelForm) -> ModelForm:
    """``form`` without its own outer margins (it sits in a group box, level with the box's text)."""
    layout = form.layout()
    if layout is not None:
        layout.setContentsMargins(0, 4, 0, 0)
    return form


def _section(title: str, accessible: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    box.setAccessibleName(accessible)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(10, 8, 10, 8)
    layout.setSpacing(4)
    for widget in widgets:
        layout.addWidget(widget)
    return box


def hook_json(hook: HookConfig) -> dict[str, Any]:
    """``hook`` for the settings file: JSON values, the events as a sorted list."""
    data = hook.model_dump(mode="json")
    data["events"] = sorted(hook.events)
    return data


def sample_notification(kind: str, now: datetime | None = None) -> Notification:
    """A made-up notification of ``kind`` about a made-up run of the first service, for "Test command"."""
    now = now or datetime.now(UTC)
    status = _SAMPLE_STATUS.get(kind, RunStatus.FAILED)
    service = next(iter(registry()))
    ref = RunRef(service=service, target="sample", run_id="00000000-0000-4000-8000-000000000000")
    snapshot = RunSnapshot(
        ref=ref,
        status=status,
        vendor_status=status.value,
        message="A made-up run: RunMonitor is testing your command.",
        fetched_at=now,
    )
    record = RunRecord(
        id=0,
        profile_id="sample",
        origin="created",
        snapshot=snapshot,
        first_seen_at=now,
        last_checked_at=now,
        last_attempt_at=now,
        stale=False,
        last_error=None,
        last_error_kind=None,
        closed=status.terminal,
        closed_reason=None,
        request=None,
    )
    if kind in {item.value for item in EventKind}:
        event_kind = EventKind(kind)
    else:
        event_kind = EventKind.SUCCEEDED if kind == FIXED else EventKind.FAILED
    event = RunEvent(
        kind=event_kind,
        at=now,
        service=service,
        profile_id="sample",
        run=record,
        previous=RunStatus.RUNNING,
        message=snapshot.message,
    )
    title, body = describe_event(event, SAMPLE_PROFILE)
    return Notification(
        key="runmonitor-hook-test",
        title=f"Test: {title}",
        body=body,
        urgency="normal",
        sticky=False,
        service=service,
        profile_id="sample",
        run_ids=(0,),
        kind=kind,
        at=now,
        profile_name=SAMPLE_PROFILE,
        events=(event,),
    )


def sample_kind(events: Iterable[str]) -> str:
    """The kind "Test command" pretends: the first chosen one in the grid's order."""
    chosen = set(events)
    for kind, *_ in HOOK_EVENT_CHOICES:
        if kind in chosen:
            return kind
    return min(chosen) if chosen else "failed"


def describe_hook_result(result: HookResult) -> tuple[str, str, str]:
    """(icon shape, tone, one line of text) for the outcome of a test run of the command."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    first = plain_text(lines[0], 200) if lines else ""
    said = f": {first}" if first else ""
    if result.ok:
        return "ok", "ok", f"It worked (exit status 0){said}"
    if result.timed_out:
        text = result.error or "stopped at the timeout"
        return "failed", "error", f"{text[:1].upper()}{text[1:]} (the timeout){said}"
    if result.returncode is None:
        text = result.error or "it could not be started"
        return "failed", "error", text[:1].upper() + text[1:]
    return "failed", "error", f"Exit status {result.returncode}{said}"


class EventKindsEditor(QWidget):
    """The ``events`` of a :class:`HookConfig`: one check box per offered kind, in a grid.

    Kinds that are set but not offered (written into the settings file by hand) are kept in
    :meth:`value` and named in a line under the grid.
    """

    changed = Signal()

    def __init__(self, columns: int = 3, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Run for")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(4)
        self.boxes: dict[str, QCheckBox] = {}
        for index, (kind, label, meaning) in enumerate(HOOK_EVENT_CHOICES):
            box = QCheckBox(label)
            box.setAccessibleName(f"Run for: {label}")
            box.setAccessibleDescription(meaning)
            box.setToolTip(f"{meaning} (RUNMONITOR_EVENT={kind})")
            box.toggled.connect(self._on_toggled)
            grid.addWidget(box, index // columns, index % columns)
            self.boxes[kind] = box
        for column in range(columns):
            grid.setColumnStretch(column, 1)
        outer.addLayout(grid)
        self.extra: frozenset[str] = frozenset()
        self.extra_note = HelpLabel("")
        self.extra_note.setAccessibleName("Other events from the settings file")
        self.extra_note.hide()
        outer.addWidget(self.extra_note)
        self.error = FieldError("Run for")
        outer.addWidget(self.error)

    def _on_toggled(self, _checked: bool) -> None:
        self.error.set_message(None)
        self.changed.emit()

    def value(self) -> frozenset[str]:
        return frozenset(kind for kind, box in self.boxes.items() if box.isChecked()) | self.extra

    def set_value(self, kinds: Iterable[str]) -> None:
        chosen = frozenset(kinds)
        for kind, box in self.boxes.items():
            box.setChecked(kind in chosen)
        self.extra = chosen - set(self.boxes)
        if self.extra:
            self.extra_note.setText(f"Also (set in the settings file): {', '.join(sorted(self.extra))}.")
        self.extra_note.setVisible(bool(self.extra))
        self.error.set_message(None)

    def set_error(self, message: str | None) -> None:
        self.error.set_message(message)

    def focus_chain(self) -> list[QWidget]:
        return list(self.boxes.values())


class PreferencesDialog(QDialog):
    applied = Signal(str)  # a note for the status bar

    def __init__(self, settings: Settings, applier: Applier, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setAccessibleName("Preferences")
        self.settings = settings
        self.applier = applier
        self._hook_task: asyncio.Task[Any] | None = None
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
        self.notify_options = ModelForm(PolicyOptions, values=settings.notify_options.model_dump(mode="json"))
        self.pages = QTabWidget()
        self.pages.setAccessibleName("Preference pages")
        self.pages.addTab(_scrolled(self.general), "&General")
        self.pages.addTab(_scrolled(self.polling), "P&olling")
        self.pages.addTab(_scrolled(self._notification_page()), "&Notifications")
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
        self.resize(640, 600)
        self._busy = False

    # -- the Notifications page -----------------------------------------------------------------
    def _notification_page(self) -> QWidget:
        defaults = _section(
            "Notify me about",
            "Default notifications",
            HelpLabel(
                "The default for every profile. A profile can have its own choices: "
                "Manage profiles → Edit → Notifications. Sign-in needed and unconfirmed creates "
                "are always notified."
            ),
            _flush(self.notifications),
        )
        grouping = _section("Grouping", "Grouping of notifications", _flush(self.notify_options))
        # The model's title ("Fixed") is short for the settings file; say what it does here.
        fixed = self.notify_options.field_widget("notify_fixed")
        if isinstance(fixed, QCheckBox):
            fixed.setText("Notify when a failure is fixed")
            fixed.setAccessibleName("Notify when a failure is fixed")

        hook = self.settings.hook
        default_events: frozenset[str] = HookConfig.model_fields["events"].default
        self.hook_enabled = QCheckBox("&Run a command")
        self.hook_enabled.setAccessibleName("Run a command on events")
        self.hook_enabled.setToolTip("Run a program of your choice when a run fails, succeeds…")
        self.hook_enabled.setChecked(hook is not None)
        self.hook_form = ModelForm(
            HookConfig,
            values={k: v for k, v in hook_json(hook).items() if k != "events"} if hook else None,
            exclude=("events",),
        )
        self.hook_form.setAccessibleName("The command")
        _flush(self.hook_form)
        self.hook_events = EventKindsEditor()
        self.hook_events.set_value(hook.events if hook is not None else default_events)
        events_label = QLabel("Run for")
        events_label.setBuddy(self.hook_events.focus_chain()[0])
        events_label.setToolTip("Which events run the command")
        self.hook_form.insert_row("timeout_s", self.hook_events, events_label)

        self.hook_test_button = QPushButton("&Test command")
        self.hook_test_button.setAccessibleName("Test the command")
        self.hook_test_button.setToolTip(
            "Run the command once now, for a made-up run and the first event chosen below “Run for”"
        )
        self.hook_test_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.hook_test_button.clicked.connect(self._on_test_hook_clicked)
        self.hook_outcome_view = CheckOutcome("Running the command", "Command test result")
        # The parts, by the names the tests and the rest of the dialog use.
        self.hook_busy = self.hook_outcome_view.busy
        self.hook_icon = self.hook_outcome_view.icon
        self.hook_result = self.hook_outcome_view.label
        test_widget = QWidget()
        test_row = QHBoxLayout(test_widget)
        test_row.setContentsMargins(0, 0, 0, 0)
        test_row.setSpacing(8)
        test_row.addWidget(self.hook_test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.hook_outcome_view, 1)
        test_row.addStretch(0)
        # Last row of the command's form (no field has this name), under the fields.
        self.hook_form.insert_row("(end)", test_widget, QLabel(""))
        self.hook_form.changed.connect(self._hook_edited)
        self.hook_events.changed.connect(self._hook_edited)

        self.hook_details = self.hook_form
        hook_help = HelpLabel(HOOK_HELP)
        command = _section("Command on events", "Command on events", self.hook_enabled, hook_help)
        section_layout = command.layout()
        assert section_layout is not None
        section_layout.addWidget(self.hook_details)
        self.hook_enabled.toggled.connect(self._sync_hook)
        self._sync_hook()

        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(6, 6, 6, 6)
        box.setSpacing(10)
        for widget in (defaults, grouping, command):
            box.addWidget(widget)
        return page

    def _hook_edited(self) -> None:
        """An outcome shown under "Test command" is about the command as it was: hide it."""
        if not self.is_testing_hook() and self.hook_outcome_view.shape is not None:
            self.hook_outcome_view.clear()

    def _sync_hook(self) -> None:
        enabled = self.hook_enabled.isChecked()
        self.hook_details.setEnabled(enabled and not self.is_testing_hook())
        if not enabled:
            self._set_hook_errors({})

    def forms(self) -> list[ModelForm]:
        return [self.general, self.polling, self.notifications, self.notify_options, self.hook_form]

    def _update_note(self) -> None:
        mode = self.general.values().get("secret_storage", "keyring")
        note = STORAGE_NOTES.get(mode, "")
        if mode != self.settings.secret_storage:
            note += " Your stored secrets are moved there when you press OK."
        self.storage_note.setText(note)

    def restore_page_defaults(self) -> None:
        page = self.pages.currentIndex()
        if page == GENERAL_PAGE:
            defaults = Settings().preferences()
            # Where secrets live is not reset by accident.
            defaults["secret_storage"] = self.general.values().get("secret_storage", "keyring")
            self.general.set_values(defaults)
        elif page == POLLING_PAGE:
            self.polling.set_values({})
        else:  # the command is not removed by accident either
            self.notifications.set_values({})
            self.notify_options.set_values({})

    # -- the command ------------------------------------------------------------------------------
    def checked_hook(self) -> tuple[bool, HookConfig | None]:
        """(True, None) when no command is to run, (True, config) for a valid one, or
        (False, None) after showing every problem beside its field."""
        if not self.hook_enabled.isChecked():
            self._set_hook_errors({})
            return True, None
        events = self.hook_events.value()
        errors: dict[str, str] = {}
        hook: HookConfig | None = None
        try:
            hook = HookConfig.model_validate({**self.hook_form.values(), "events": sorted(events)})
        except ValidationError as exc:
            errors = errors_by_path(exc)
        if not events:
            errors.setdefault("events", NO_EVENTS)
        errors.update(self.hook_form.local_errors())
        self._set_hook_errors(errors)
        if errors:
            return False, None
        return True, hook

    def _set_hook_errors(self, errors: Mapping[str, str]) -> None:
        events = [text for path, text in errors.items() if path.split(".")[0] == "events"]
        self.hook_events.set_error("\n".join(events) or None)
        self.hook_form.set_errors({p: t for p, t in errors.items() if p.split(".")[0] != "events"})

    def _hook_errors(self) -> bool:
        return bool(self.hook_form.errors() or self.hook_events.error.message())

    def _focus_hook_error(self) -> None:
        if self.hook_form.errors():
            self.hook_form.focus_first_error()
        else:
            self.hook_events.focus_chain()[0].setFocus(Qt.FocusReason.OtherFocusReason)

    def is_testing_hook(self) -> bool:
        return self._hook_task is not None and not self._hook_task.done()

    def _on_test_hook_clicked(self) -> None:
        if self.is_testing_hook():
            return
        ok, hook = self.checked_hook()
        if not ok or hook is None:
            self._focus_hook_error()
            self._show_hook_outcome("failed", "error", "Fix the marked fields first.")
            return
        self._set_hook_testing(True)
        self._hook_task = spawn(self.test_hook(hook), self._hook_test_crashed)

    async def test_hook(self, hook: HookConfig) -> HookResult:
        """Run ``hook`` once for a made-up event and show how it went under the button."""
        try:
            result = await run_hook(hook, sample_notification(sample_kind(hook.events)))
        except Exception:
            self._set_hook_testing(False)
            raise
        # Not on cancellation: the dialog is closing, and _cancel_hook_test has tidied up.
        self._set_hook_testing(False)
        shape, kind, text = describe_hook_result(result)
        self._show_hook_outcome(shape, kind, text)
        return result

    def _hook_test_crashed(self, error: BaseException) -> None:
        self._set_hook_testing(False)
        self._show_hook_outcome("failed", "error", f"The test failed: {type(error).__name__}: {error}")

    def _set_hook_testing(self, testing: bool) -> None:
        self.hook_details.setEnabled(not testing and self.hook_enabled.isChecked())
        self.hook_enabled.setEnabled(not testing)
        if testing:
            self.hook_outcome_view.start("Running the command…")
        else:
            self.hook_outcome_view.stop()

    def _show_hook_outcome(self, shape: str, kind: str, text: str) -> None:
        self.hook_outcome_view.show_outcome(shape, kind, text)

    def _cancel_hook_test(self) -> None:
        task, self._hook_task = self._hook_task, None
        if task is not None and not task.done():
            task.cancel()  # run_hook kills the command and whatever it started
            self._set_hook_testing(False)
            self.hook_outcome_view.clear()

    # -- saving ---------------------------------------------------------------------------------------
    def changes(self) -> tuple[dict[str, Any], str | None] | None:
        """The validated changes, or None after showing every problem beside its field."""
        pages = [
            (GENERAL_PAGE, self.general),
            (POLLING_PAGE, self.polling),
            (NOTIFY_PAGE, self.notifications),
            (NOTIFY_PAGE, self.notify_options),
        ]
        checked: list[Any] = []
        for page, form in pages:
            value = form.validate()
            if value is None:
                self.pages.setCurrentIndex(page)
                form.focus_first_error()
                return None
            checked.append(value)
        hook_ok, hook = self.checked_hook()
        if not hook_ok:
            self.pages.setCurrentIndex(NOTIFY_PAGE)
            self._focus_hook_error()
            return None
        general, polling, notifications, notify_options = checked
        current = self.settings.preferences()
        changes: dict[str, Any] = {}
        for name in GENERAL_FIELDS:
            if name != "secret_storage" and getattr(general, name) != getattr(self.settings, name):
                changes[name] = getattr(general, name)
        if polling != self.settings.polling:
            changes["polling"] = polling.model_dump(mode="json")
        if notifications != self.settings.notifications:
            changes["notifications"] = notifications.model_dump(mode="json")
        if notify_options != self.settings.notify_options:
            changes["notify_options"] = notify_options.model_dump(mode="json")
        if hook != self.settings.hook:
            changes["hook"] = hook_json(hook) if hook is not None else None
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
        def under(prefix: str) -> dict[str, str]:
            return {
                path.removeprefix(prefix).removeprefix("."): text
                for path, text in errors.items()
                if path.split(".")[0] == prefix
            }

        general = {k: v for k, v in errors.items() if k.split(".")[0] in GENERAL_FIELDS}
        placed = ("polling", "notifications", "notify_options", "hook")
        rest = [v for k, v in errors.items() if k and not (k in general or k.split(".")[0] in placed)]
        parts = [
            (GENERAL_PAGE, self.general.set_errors, general),
            (POLLING_PAGE, self.polling.set_errors, under("polling")),
            (NOTIFY_PAGE, self.notifications.set_errors, under("notifications")),
            (NOTIFY_PAGE, self.notify_options.set_errors, under("notify_options")),
            (NOTIFY_PAGE, self._set_hook_errors, under("hook")),
        ]
        for page, show, part in parts:
            if part:
                show(part)
                self.pages.setCurrentIndex(page)
        text = "; ".join([errors[""]] if "" in errors else []) or "; ".join(rest)
        self.outcome.setText(f"Not saved: {text}" if text else "Not saved: see the marked fields.")
        self.outcome.setVisible(True)

    def _failed(self, error: BaseException) -> None:
        self._busy = False
        self.buttons.setEnabled(True)
        self.outcome.setText(f"Not saved: {error}")
        self.outcome.setVisible(True)

    # -- closing and colours --------------------------------------------------------------------------
    def done(self, result: int) -> None:
        """Every way of closing ends here: a command still being tested is stopped."""
        self._cancel_hook_test()
        super().done(result)
