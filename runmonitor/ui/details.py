"""The details pane beside the run table: one run's facts, timeline, raw response and actions.

Everything a service sent (status, message, error text, raw JSON, URLs) is shown as plain
text: labels use ``Qt.PlainText``, tooltips go through
:func:`~runmonitor.ui.run_model.plain_tooltip` (Qt renders a tooltip that looks like HTML as
HTML), and the raw response goes into a read-only ``QPlainTextEdit`` after
:func:`~runmonitor.domain.redact.redact_json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final
from urllib.parse import urlsplit

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.models import RunAction
from runmonitor.domain.redact import redact_json, redact_url
from runmonitor.domain.text import format_duration
from runmonitor.storage.history import DurationStats, RunRecord, TransitionRecord
from runmonitor.ui.icons import status_icon, status_label
from runmonitor.ui.run_model import format_ago, format_time, format_timestamp, plain_tooltip

__all__ = ["ACTION_LABELS", "EMPTY_TEXT", "DetailsPane", "action_label"]

EMPTY_TEXT: Final = "Select a run to see its timeline and details."

ACTION_LABELS: Final[dict[RunAction, str]] = {
    RunAction.CANCEL: "Cancel",
    RunAction.PAUSE: "Pause",
    RunAction.RESUME: "Resume",
    RunAction.START: "Start",
    RunAction.COMPLETE: "Mark complete",
    RunAction.FAIL: "Mark failed",
    RunAction.ABORT: "Abort",
    RunAction.DELETE: "Delete",
}

_ACTION_TIPS: Final[dict[RunAction, str]] = {
    RunAction.CANCEL: "Ask {service} to cancel this run.",
    RunAction.PAUSE: "Ask {service} to pause this run.",
    RunAction.RESUME: "Ask {service} to resume this paused run.",
    RunAction.START: "Tell {service} that this run has started.",
    RunAction.COMPLETE: "Tell {service} that this run completed.",
    RunAction.FAIL: "Tell {service} that this run failed.",
    RunAction.ABORT: "Tell {service} that this run was aborted.",
    RunAction.DELETE: "Ask {service} to delete this {target}.",
}

_DASH: Final = "—"
_COPIED_MS: Final = 1500
TIMELINE_COLUMNS: Final = ("Time", "Change", "Event", "Message")


def action_label(action: RunAction, target_label: str | None = None) -> str:
    """The button text of ``action``; Delete names the target ("Delete export")."""
    if action is RunAction.DELETE and target_label:
        return f"Delete {target_label.lower()}"
    return ACTION_LABELS.get(action, action.value.capitalize())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _plain_label(text: str = "", *, name: str = "", selectable: bool = False, wrap: bool = False) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    if name:
        label.setAccessibleName(name)
    if wrap:
        label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
    return label


def _pretty_json(raw: Any) -> str:
    if raw is None:
        return "No response stored for this run."
    try:
        return json.dumps(redact_json(raw), indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(redact_json(raw))


def _safe_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL with a host; anything else is not offered as a link."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


class _FactRow:
    """A caption + value label pair in the facts form; the caption is the value's buddy."""

    def __init__(self, form: QFormLayout, caption: str, extra: QWidget | None = None) -> None:
        self.caption = caption
        self.label = _plain_label(f"{caption}:")
        self.value = _plain_label(name=caption, selectable=True, wrap=True)
        self.value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setBuddy(self.value)
        if extra is None:
            self.field: QWidget = self.value
        else:
            box = QWidget()
            row = QHBoxLayout(box)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(10)
            self.value.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            self.value.setWordWrap(False)
            row.addWidget(self.value)
            row.addWidget(extra)
            row.addStretch(1)
            self.field = box
        form.addRow(self.label, self.field)
        self._form = form

    def set(self, text: str | None, *, tooltip: str | None = None) -> None:
        self._form.setRowVisible(self.field, text is not None)
        if text is None:
            return
        self.value.setText(text)
        self.value.setAccessibleName(f"{self.caption}: {text}")
        self.value.setToolTip(plain_tooltip(tooltip or ""))

    def set_caption(self, caption: str) -> None:
        self.caption = caption
        self.label.setText(f"{caption}:")


class DetailsPane(QWidget):
    """The selected run: header, facts, actions, timeline and the last raw response."""

    action_requested = Signal(object)
    """A RunAction the person asked for (the run is :meth:`record`)."""

    def __init__(
        self,
        profile_names: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Run details")
        self._profile_names: dict[str, str] = dict(profile_names or {})
        self._clock = clock
        self._record: RunRecord | None = None
        self._timeline: list[TransitionRecord] = []
        self._run_url: str | None = None
        self._service_name = ""
        self._target_label = "Target"
        self._durations: DurationStats | None = None
        self._actions_enabled = True
        self.action_buttons: dict[RunAction, QPushButton] = {}

        self.stack = QStackedWidget()
        self.empty_label = _plain_label(EMPTY_TEXT, name="No run selected", wrap=True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        empty_page = QWidget()
        empty_layout = QVBoxLayout(empty_page)
        empty_layout.addStretch(1)
        empty_layout.addWidget(self.empty_label)
        empty_layout.addStretch(2)
        self.stack.addWidget(empty_page)

        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setAccessibleName("Run details")
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget()
        self.scroll_area.setWidget(content)
        self.stack.addWidget(self.scroll_area)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

        body = QVBoxLayout(content)
        body.setContentsMargins(10, 10, 10, 10)
        body.setSpacing(8)

        # Header: icon, status text, vendor status and detail.
        self.icon_label = _plain_label()
        self.icon_label.setFixedSize(QSize(32, 32))
        self.icon_label.setAccessibleName("Status icon")
        self.status_label = _plain_label(name="Status", selectable=True)
        title_font = QFont(self.status_label.font())
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        self.status_label.setFont(title_font)
        self.vendor_label = _plain_label(name="Vendor status", selectable=True, wrap=True)
        self.vendor_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.status_label)
        titles.addWidget(self.vendor_label)
        header = QHBoxLayout()
        header.setSpacing(10)
        header.addWidget(self.icon_label, 0, Qt.AlignmentFlag.AlignTop)
        header.addLayout(titles, 1)
        body.addLayout(header)

        self.message_label = _plain_label(name="Message", selectable=True, wrap=True)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        body.addWidget(self.message_label)

        # Actions and the vendor link.
        self.actions_row = QHBoxLayout()
        self.actions_row.setSpacing(6)
        self.actions_box = QWidget()
        self.actions_box.setLayout(self.actions_row)
        self.actions_row.setContentsMargins(0, 0, 0, 0)
        self.open_button = QPushButton("Open")
        self.open_button.setAccessibleName("Open the run in the service's web page")
        self.open_button.clicked.connect(self._open_url)
        self.url_field = QLineEdit()
        self.url_field.setReadOnly(True)
        self.url_field.setFrame(False)
        self.url_field.setAccessibleName("Address of the run's web page")
        self.url_field.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.url_field.setStyleSheet("QLineEdit { background: transparent; }")
        link_row = QHBoxLayout()
        link_row.setContentsMargins(0, 0, 0, 0)
        link_row.addWidget(self.open_button)
        link_row.addWidget(self.url_field, 1)
        self.link_box = QWidget()
        self.link_box.setLayout(link_row)
        body.addWidget(self.actions_box)
        body.addWidget(self.link_box)

        # Key facts.
        self.facts = QFormLayout()
        self.facts.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.facts.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.facts.setHorizontalSpacing(12)
        self.facts.setVerticalSpacing(4)
        self.copy_button = QPushButton("Copy id")
        self.copy_button.setAccessibleName("Copy the run id to the clipboard")
        self.copy_button.setToolTip("Copy the run id to the clipboard")
        self.copy_button.clicked.connect(self.copy_run_id)
        self._copied_timer = QTimer(self)
        self._copied_timer.setSingleShot(True)
        self._copied_timer.setInterval(_COPIED_MS)
        self._copied_timer.timeout.connect(lambda: self.copy_button.setText("Copy id"))
        self.target_row = _FactRow(self.facts, "Target")
        self.run_id_row = _FactRow(self.facts, "Run id", self.copy_button)
        self.profile_row = _FactRow(self.facts, "Profile")
        self.service_row = _FactRow(self.facts, "Service")
        self.started_row = _FactRow(self.facts, "Started")
        self.ended_row = _FactRow(self.facts, "Ended")
        self.duration_row = _FactRow(self.facts, "Duration")
        self.checked_row = _FactRow(self.facts, "Last checked")
        self.stale_row = _FactRow(self.facts, "Stale since")
        self.error_row = _FactRow(self.facts, "Last error")
        self.closed_row = _FactRow(self.facts, "Followed")
        body.addLayout(self.facts)

        # Timeline, oldest first.
        self.timeline_view = QTreeWidget()
        self.timeline_view.setAccessibleName("Timeline of status changes, oldest first")
        self.timeline_view.setColumnCount(len(TIMELINE_COLUMNS))
        self.timeline_view.setHeaderLabels(list(TIMELINE_COLUMNS))
        self.timeline_view.setRootIsDecorated(False)
        self.timeline_view.setUniformRowHeights(True)
        self.timeline_view.setAlternatingRowColors(True)
        self.timeline_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.timeline_view.setWordWrap(False)
        self.timeline_view.setMinimumHeight(120)
        timeline_header = self.timeline_view.header()
        timeline_header.setStretchLastSection(True)
        timeline_header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.timeline_caption = self._section_label("&Timeline", self.timeline_view)
        self.timeline_empty = _plain_label("No status changes recorded yet.", name="Timeline is empty")
        self.timeline_empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        body.addWidget(self.timeline_caption)
        body.addWidget(self.timeline_view, 2)
        body.addWidget(self.timeline_empty)

        # The last raw response.
        self.raw_view = QPlainTextEdit()
        self.raw_view.setReadOnly(True)
        self.raw_view.setAccessibleName("Last raw response from the service, as JSON")
        self.raw_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.raw_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.raw_view.setMinimumHeight(140)
        self.raw_view.setTabChangesFocus(True)
        self.raw_caption = self._section_label("Last &response (secrets masked)", self.raw_view)
        body.addWidget(self.raw_caption)
        body.addWidget(self.raw_view, 3)

        self.show_record(None, [])

    # -- public API ---------------------------------------------------------------------

    def record(self) -> RunRecord | None:
        return self._record

    def set_profile_names(self, mapping: Mapping[str, str]) -> None:
        self._profile_names = dict(mapping)
        if self._record is not None:
            self._fill_facts(self._record)

    def set_actions_enabled(self, enabled: bool) -> None:
        """Turn the action buttons off while an action is in flight (terminal runs stay off)."""
        self._actions_enabled = enabled
        self._update_action_state()

    def show_record(
        self,
        record: RunRecord | None,
        timeline: Sequence[TransitionRecord] = (),
        *,
        run_url: str | None = None,
        actions: Sequence[RunAction] = (),
        service_name: str = "",
        target_label: str = "Target",
        durations: DurationStats | None = None,
    ) -> None:
        """Show ``record`` (None: the empty state) with its ``timeline``.

        ``actions`` are the run actions the service supports (one button each); ``run_url`` the
        run's page at the vendor (an "Open in <service_name>" button); ``target_label`` what the
        service calls a target ("Pipeline", "Export"); ``durations`` the typical duration of
        this target's successful runs.
        """
        self._record = record
        self._timeline = sorted(timeline, key=lambda t: (t.at, t.id))
        self._run_url = _safe_url(run_url)
        self._service_name = service_name
        self._target_label = target_label or "Target"
        self._durations = durations
        if record is None:
            self.stack.setCurrentIndex(0)
            self._set_actions(())
            self.timeline_view.clear()
            self.raw_view.setPlainText("")
            return
        self.stack.setCurrentIndex(1)
        self._fill_header(record)
        self._fill_facts(record)
        self._set_actions(actions)
        self._fill_link()
        self._fill_timeline()
        self.raw_view.setPlainText(_pretty_json(record.snapshot.raw))

    def tick(self) -> None:
        """Refresh the time-relative texts (duration so far, "12 s ago")."""
        if self._record is not None:
            self._fill_facts(self._record)

    def copy_run_id(self) -> None:
        if self._record is None:
            return
        QGuiApplication.clipboard().setText(self._record.ref.run_id)
        self.copy_button.setText("Copied")
        self._copied_timer.start()

    @property
    def run_url(self) -> str | None:
        return self._run_url

    # -- building -----------------------------------------------------------------------

    def _section_label(self, text: str, buddy: QWidget) -> QLabel:
        # The & marks the mnemonic (Alt+T, Alt+R): a plain-text label with a buddy honours it.
        label = _plain_label(text, name=text.replace("&", ""))
        font = QFont(label.font())
        font.setBold(True)
        label.setFont(font)
        label.setBuddy(buddy)
        return label

    def _fill_header(self, record: RunRecord) -> None:
        snap = record.snapshot
        self.icon_label.setPixmap(status_icon(snap.status, stale=record.stale, size=32).pixmap(32, 32))
        text = status_label(snap.status)
        if record.stale:
            text += " (stale)"
        self.status_label.setText(text)
        self.status_label.setAccessibleName(f"Status: {text}")
        self.icon_label.setAccessibleName(f"Status icon: {text}")
        self.icon_label.setToolTip(plain_tooltip(text))
        parts = []
        if snap.vendor_status:
            parts.append(f"Vendor status: {snap.vendor_status}")
        if snap.detail:
            parts.append(snap.detail)
        vendor = " — ".join(parts)
        self.vendor_label.setText(vendor)
        self.vendor_label.setAccessibleName(vendor or "No vendor status")
        self.vendor_label.setVisible(bool(vendor))
        message = snap.message or ""
        self.message_label.setText(message)
        self.message_label.setAccessibleName(f"Message: {message}" if message else "No message")
        self.message_label.setVisible(bool(message))

    def _fill_facts(self, record: RunRecord) -> None:
        snap = record.snapshot
        now = self._clock()
        self.target_row.set_caption(self._target_label)
        self.target_row.set(snap.ref.target)
        self.run_id_row.set(snap.ref.run_id)
        profile = self._profile_names.get(record.profile_id)
        self.profile_row.set(profile or record.profile_id, tooltip=f"Profile id: {record.profile_id}")
        self.service_row.set(self._service_name or None)
        if snap.started_at is not None:
            self.started_row.set(format_timestamp(snap.started_at))
        elif snap.created_at is not None:
            self.started_row.set(f"Not yet (created {format_timestamp(snap.created_at)})")
        else:
            self.started_row.set("Not yet")
        self.ended_row.set(format_timestamp(snap.ended_at) if snap.ended_at else None)
        self.duration_row.set(self._duration_text(record, now))
        if record.last_checked_at is not None:
            checked = (
                f"{format_timestamp(record.last_checked_at)} ({format_ago(record.last_checked_at, now)})"
            )
        else:
            checked = "Not yet"
        self.checked_row.set(None if record.stale else checked)
        if record.stale:
            since = format_timestamp(record.last_checked_at) if record.last_checked_at else "the first check"
            self.stale_row.set(since, tooltip="The information shown is from the last check that succeeded.")
            self.error_row.set(record.last_error or "No answer from the service")
        else:
            self.stale_row.set(None)
            self.error_row.set(None)
        if record.closed:
            reason = f": {record.closed_reason}" if record.closed_reason else ""
            self.closed_row.set(f"No longer followed{reason}")
        else:
            self.closed_row.set(None)

    def _duration_text(self, record: RunRecord, now: datetime) -> str | None:
        snap = record.snapshot
        typical = ""
        if self._durations is not None and self._durations.count > 0 and self._durations.median_s > 0:
            typical = f"; usually ~{format_duration(self._durations.median_s)}"
        if snap.started_at is None:
            return None
        if snap.ended_at is not None:
            return format_duration((snap.ended_at - snap.started_at).total_seconds())
        if snap.status.terminal:
            return None
        return f"{format_duration((now - snap.started_at).total_seconds())} so far{typical}"

    def _set_actions(self, actions: Sequence[RunAction]) -> None:
        while self.actions_row.count():
            item = self.actions_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.action_buttons = {}
        service = self._service_name or "the service"
        target = self._target_label.lower()
        for action in actions:
            if action in self.action_buttons:
                continue
            text = action_label(action, self._target_label if self._target_label != "Target" else None)
            button = QPushButton(text)
            tip = _ACTION_TIPS.get(action, "{service}").format(service=service, target=target)
            button.setAccessibleName(text)
            button.setToolTip(plain_tooltip(tip))
            button.setProperty("action_tip", tip)
            button.clicked.connect(partial(self._request, action))
            self.actions_row.addWidget(button)
            self.action_buttons[action] = button
        self.actions_row.addStretch(1)
        self.actions_box.setVisible(bool(self.action_buttons))
        self._update_action_state()

    def _update_action_state(self) -> None:
        terminal = self._record is None or self._record.terminal
        for button in self.action_buttons.values():
            button.setEnabled(self._actions_enabled and not terminal)
            tip = str(button.property("action_tip") or "")
            if terminal and self._record is not None:
                tip = f"{tip} Not available: the run has finished.".strip()
            button.setAccessibleDescription(tip)

    def _request(self, action: RunAction) -> None:
        if self._record is None or self._record.terminal or not self._actions_enabled:
            return
        self.action_requested.emit(action)

    def _fill_link(self) -> None:
        if self._run_url is None:
            self.link_box.setVisible(False)
            self.url_field.setText("")
            return
        name = self._service_name or "the service"
        self.open_button.setText(f"Open in {name}")
        self.open_button.setAccessibleName(f"Open this run in {name}")
        shown = redact_url(self._run_url)
        self.open_button.setToolTip(plain_tooltip(shown))
        self.url_field.setText(shown)
        self.url_field.setCursorPosition(0)
        self.url_field.setToolTip(plain_tooltip(shown))
        self.link_box.setVisible(True)

    def _open_url(self) -> None:
        if self._run_url is not None:
            QDesktopServices.openUrl(QUrl(self._run_url))

    def _fill_timeline(self) -> None:
        view = self.timeline_view
        view.clear()
        now = self._clock()
        items = []
        for transition in self._timeline:
            item = QTreeWidgetItem(
                [
                    format_time(transition.at, now, seconds=True),
                    self._change_text(transition),
                    transition.event,
                    (transition.message or "").strip().split("\n", 1)[0],
                ]
            )
            item.setToolTip(0, format_timestamp(transition.at))
            item.setIcon(1, status_icon(transition.to_status))
            detail = []
            if transition.vendor_status:
                detail.append(f"Vendor status: {transition.vendor_status}")
            if transition.detail:
                detail.append(transition.detail)
            item.setToolTip(1, plain_tooltip("\n".join(detail) or status_label(transition.to_status)))
            item.setToolTip(3, plain_tooltip(transition.message or ""))
            items.append(item)
        view.addTopLevelItems(items)
        for column in range(len(TIMELINE_COLUMNS) - 1):
            view.resizeColumnToContents(column)
        if items:
            view.scrollToItem(items[-1])
        self.timeline_view.setVisible(bool(items))
        self.timeline_empty.setVisible(not items)

    @staticmethod
    def _change_text(transition: TransitionRecord) -> str:
        to_text = status_label(transition.to_status)
        if transition.from_status is None:
            return f"→ {to_text}"
        if transition.from_status == transition.to_status:
            more = transition.detail or transition.vendor_status
            return f"{to_text} ({more})" if more else to_text
        return f"{status_label(transition.from_status)} → {to_text}"
