"""DetailsPane on real widgets: facts, timeline, redacted raw JSON, actions, links, plain text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QAccessible, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QPlainTextEdit, QWidget

from runmonitor.domain.models import RunAction, RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import DurationStats, RunRecord, TransitionRecord
from runmonitor.ui.details import EMPTY_TEXT, DetailsPane, action_label

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
HTML = "<b>bold</b><img src=x>"
SECRET = "hunter2-very-secret"


def make_record(
    status: RunStatus = RunStatus.RUNNING,
    *,
    message: str | None = "Loading rows",
    vendor: str | None = "RUNNING",
    detail: str | None = "waiting for approval",
    raw: Any = None,
    stale: bool = False,
    error: str | None = None,
) -> RunRecord:
    started = NOW - timedelta(minutes=3)
    snapshot = RunSnapshot(
        ref=RunRef(service="codestream", target="deploy-prod", run_id="exec-4711"),
        status=status,
        vendor_status=vendor,
        detail=detail,
        message=message,
        created_at=started - timedelta(seconds=20),
        started_at=started,
        ended_at=NOW - timedelta(seconds=5) if status.terminal else None,
        raw=raw,
        fetched_at=NOW,
    )
    return RunRecord(
        id=42,
        profile_id="p-prod",
        origin="created",
        snapshot=snapshot,
        first_seen_at=started,
        last_checked_at=NOW - timedelta(seconds=12),
        last_attempt_at=NOW,
        stale=stale,
        last_error=error,
        last_error_kind="connection" if error else None,
        closed=False,
        closed_reason=None,
        request=None,
    )


def transitions() -> list[TransitionRecord]:
    t0 = NOW - timedelta(minutes=4)
    rows = [
        TransitionRecord(1, 42, t0, None, RunStatus.PENDING, "QUEUED", None, None, "created", None),
        TransitionRecord(
            2, 42, t0 + timedelta(seconds=30), RunStatus.PENDING, RunStatus.RUNNING, "RUNNING", None,
            "Started on worker-3", "transition", None,
        ),
        TransitionRecord(
            3, 42, t0 + timedelta(minutes=2), RunStatus.RUNNING, RunStatus.RUNNING, "RUNNING",
            "waiting for approval", "Waiting for approval\nfrom the ops team", "transition", None,
        ),
    ]  # fmt: skip
    return [rows[2], rows[0], rows[1]]  # out of order on purpose


@pytest.fixture
def pane(qtbot: Any) -> DetailsPane:
    widget = DetailsPane({"p-prod": "Production"}, clock=lambda: NOW)
    qtbot.addWidget(widget)
    widget.resize(520, 800)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def show(pane: DetailsPane, record: RunRecord | None = None, **kwargs: Any) -> RunRecord:
    record = record or make_record()
    kwargs.setdefault("run_url", None)
    kwargs.setdefault("actions", [])
    kwargs.setdefault("service_name", "Code Stream")
    pane.show_record(record, kwargs.pop("timeline", transitions()), **kwargs)
    return record


def fact(pane: DetailsPane, caption: str) -> str | None:
    """The text of a visible fact row, or None when the row is hidden."""
    for row in (
        pane.target_row, pane.run_id_row, pane.profile_row, pane.service_row, pane.started_row,
        pane.ended_row, pane.duration_row, pane.checked_row, pane.stale_row, pane.error_row,
    ):  # fmt: skip
        if row.caption == caption:
            return row.value.text() if row.value.isVisibleTo(pane) else None
    raise KeyError(caption)


def test_empty_state(pane: DetailsPane) -> None:
    assert pane.stack.currentIndex() == 0
    assert pane.empty_label.text() == EMPTY_TEXT
    assert pane.empty_label.isVisible()
    show(pane)
    assert pane.stack.currentIndex() == 1
    pane.show_record(None, [])
    assert pane.stack.currentIndex() == 0 and pane.record() is None
    assert pane.timeline_view.topLevelItemCount() == 0


def test_header_and_facts(pane: DetailsPane) -> None:
    record = show(pane, durations=DurationStats(count=5, median_s=600, p90_s=900), target_label="Pipeline")
    assert pane.record() is record
    assert pane.status_label.text() == "Running"
    assert pane.vendor_label.text() == "Vendor status: RUNNING — waiting for approval"
    assert pane.message_label.text() == "Loading rows"
    assert pane.icon_label.pixmap() is not None and not pane.icon_label.pixmap().isNull()
    assert pane.target_row.label.text() == "Pipeline:"
    assert fact(pane, "Pipeline") == "deploy-prod"
    assert fact(pane, "Run id") == "exec-4711"
    assert fact(pane, "Profile") == "Production"
    assert fact(pane, "Service") == "Code Stream"
    assert fact(pane, "Duration") == "3 min so far; usually ~10 min"
    assert fact(pane, "Ended") is None
    assert fact(pane, "Last checked") is not None and fact(pane, "Last checked").endswith("(12 s ago)")  # type: ignore[union-attr]
    assert fact(pane, "Stale since") is None and fact(pane, "Last error") is None


def test_stale_record_shows_stale_since_and_the_error(pane: DetailsPane) -> None:
    show(pane, make_record(stale=True, error="Connection refused (127.0.0.1:8443)"))
    assert pane.status_label.text() == "Running (stale)"
    assert fact(pane, "Last checked") is None
    assert fact(pane, "Stale since") is not None
    assert fact(pane, "Last error") == "Connection refused (127.0.0.1:8443)"


def test_timeline_is_oldest_first_with_changes_and_events(pane: DetailsPane) -> None:
    show(pane)
    view = pane.timeline_view
    assert view.topLevelItemCount() == 3
    rows = [[view.topLevelItem(i).text(c) for c in range(4)] for i in range(3)]
    assert [r[1] for r in rows] == ["→ Pending", "Pending → Running", "Running (waiting for approval)"]
    assert [r[2] for r in rows] == ["created", "transition", "transition"]
    assert rows[2][3] == "Waiting for approval"  # first line; the full text is the tooltip
    assert view.topLevelItem(2).toolTip(3) == "Waiting for approval\nfrom the ops team"
    assert view.topLevelItem(1).toolTip(1) == "Vendor status: RUNNING"
    assert [view.headerItem().text(c) for c in range(4)] == ["Time", "Change", "Event", "Message"]
    show(pane, timeline=[])
    assert pane.timeline_empty.isVisible() and not pane.timeline_view.isVisible()


def test_raw_response_is_pretty_json_with_secrets_masked(pane: DetailsPane) -> None:
    raw = {
        "id": "exec-4711",
        "status": "RUNNING",
        "apiKey": SECRET,
        "steps": [{"name": "deploy", "client_secret": SECRET, "password": SECRET}],
        "input": {"Authorization": f"Bearer {SECRET}", "region": "eu"},
    }
    show(pane, make_record(raw=raw))
    view = pane.raw_view
    assert isinstance(view, QPlainTextEdit) and view.isReadOnly()
    text = view.toPlainText()
    assert SECRET not in text
    shown = json.loads(text)
    assert shown["apiKey"] == "***"
    assert shown["steps"][0] == {"name": "deploy", "client_secret": "***", "password": "***"}
    assert shown["input"] == {"Authorization": "***", "region": "eu"}
    assert "\n  " in text  # indented
    assert view.font().fixedPitch() or view.fontInfo().fixedPitch()
    show(pane, make_record(raw=None))
    assert pane.raw_view.toPlainText() == "No response stored for this run."


def test_copy_id_puts_the_run_id_on_the_clipboard(pane: DetailsPane, qtbot: Any) -> None:
    QGuiApplication.clipboard().setText("something else")
    show(pane)
    qtbot.mouseClick(pane.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "exec-4711"
    assert pane.copy_button.text() == "Copied"
    qtbot.waitUntil(lambda: pane.copy_button.text() == "Copy id", timeout=3000)


def test_action_buttons_emit_the_action(pane: DetailsPane, qtbot: Any) -> None:
    show(pane, actions=[RunAction.CANCEL, RunAction.PAUSE, RunAction.RESUME])
    assert [b.text() for b in pane.action_buttons.values()] == ["Cancel", "Pause", "Resume"]
    for action, button in pane.action_buttons.items():
        assert button.isEnabled() and button.isVisible()
        with qtbot.waitSignal(pane.action_requested, timeout=1000) as blocker:
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert blocker.args == [action]
    assert "Code Stream" in pane.action_buttons[RunAction.CANCEL].toolTip()


def test_action_buttons_are_disabled_for_a_terminal_run(pane: DetailsPane, qtbot: Any) -> None:
    show(pane, make_record(RunStatus.SUCCEEDED), actions=[RunAction.CANCEL])
    button = pane.action_buttons[RunAction.CANCEL]
    assert not button.isEnabled()
    assert "finished" in button.accessibleDescription()
    with qtbot.assertNotEmitted(pane.action_requested, wait=50):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    # The same pane showing a running run again enables them.
    show(pane, make_record(RunStatus.RUNNING), actions=[RunAction.CANCEL])
    assert pane.action_buttons[RunAction.CANCEL].isEnabled()
    pane.set_actions_enabled(False)
    assert not pane.action_buttons[RunAction.CANCEL].isEnabled()
    pane.set_actions_enabled(True)
    assert pane.action_buttons[RunAction.CANCEL].isEnabled()


def test_action_buttons_are_replaced_per_record(pane: DetailsPane) -> None:
    show(pane, actions=[RunAction.CANCEL, RunAction.PAUSE])
    show(pane, actions=[RunAction.DELETE], service_name="Connhex Exporter", target_label="Export")
    assert [b.text() for b in pane.action_buttons.values()] == ["Delete export"]
    assert not pane.actions_box.isHidden()
    show(pane, actions=[])
    assert pane.action_buttons == {} and pane.actions_box.isHidden()
    assert action_label(RunAction.FAIL) == "Mark failed"
    assert action_label(RunAction.DELETE) == "Delete"


def test_vendor_html_is_shown_literally(pane: DetailsPane) -> None:
    record = make_record(message=HTML, vendor=f"<i>{HTML}</i>", detail="<a href='https://evil'>x</a>")
    record = replace(record, stale=True, last_error=f"{HTML} refused")
    show(pane, record)
    assert pane.message_label.textFormat() == Qt.TextFormat.PlainText
    assert pane.message_label.text() == HTML
    assert pane.vendor_label.text() == f"Vendor status: <i>{HTML}</i> — <a href='https://evil'>x</a>"
    assert pane.error_row.value.text() == f"{HTML} refused"
    assert not pane.vendor_label.openExternalLinks()
    for label in pane.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText, label.text()


def test_open_link_button_only_with_a_run_url(pane: DetailsPane, qtbot: Any) -> None:
    url = "https://codestream.example.com/automation-ui/#/executions/exec-4711"
    show(pane, run_url=url)
    assert pane.link_box.isVisible()
    assert pane.open_button.text() == "Open in Code Stream"
    assert isinstance(pane.url_field, QLineEdit) and pane.url_field.isReadOnly()
    assert pane.url_field.text() == url

    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("https", catcher, "handle")  # type: ignore[arg-type]
    try:
        qtbot.mouseClick(pane.open_button, Qt.MouseButton.LeftButton)
    finally:
        QDesktopServices.unsetUrlHandler("https")
    assert catcher.urls == [url]

    show(pane, run_url=None)
    assert not pane.link_box.isVisible()
    show(pane, run_url="javascript:alert(1)")
    assert not pane.link_box.isVisible() and pane.run_url is None


def test_shown_url_masks_secret_query_parameters(pane: DetailsPane) -> None:
    show(pane, run_url=f"https://cdf.example.com/runs/1?api_key={SECRET}&page=2")
    assert SECRET not in pane.url_field.text()
    assert "page=2" in pane.url_field.text()


class UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def handle(self, url: QUrl) -> None:
        self.urls.append(url.toString())


def _focusable(pane: DetailsPane) -> Iterator[QWidget]:
    for widget in pane.findChildren(QWidget):
        if widget.isVisibleTo(pane) and widget.focusPolicy() != Qt.FocusPolicy.NoFocus:
            if widget.parent() is not None and type(widget).__name__ in ("QScrollBar", "QWidget"):
                continue
            yield widget


def test_accessible_names_everywhere(pane: DetailsPane) -> None:
    show(pane, run_url="https://x.example.com/r/1", actions=[RunAction.CANCEL, RunAction.ABORT])
    checked = 0
    for widget in _focusable(pane):
        if widget.objectName() == "qt_scrollarea_viewport":
            continue
        interface = QAccessible.queryAccessibleInterface(widget)
        assert interface is not None
        assert interface.text(QAccessible.Text.Name), f"{type(widget).__name__} has no accessible name"
        checked += 1
    assert checked >= 8
    for label in (pane.status_label, pane.vendor_label, pane.message_label, pane.run_id_row.value):
        name = QAccessible.queryAccessibleInterface(label).text(QAccessible.Text.Name)
        assert name
    assert pane.run_id_row.value.accessibleName() == "Run id: exec-4711"
    assert pane.status_label.accessibleName() == "Status: Running"
    assert pane.run_id_row.label.buddy() is pane.run_id_row.value
    assert pane.timeline_caption.buddy() is pane.timeline_view
    assert pane.raw_caption.buddy() is pane.raw_view
    buttons = [b for b in pane.findChildren(QAbstractButton) if b.isVisibleTo(pane)]
    assert all(b.accessibleName() for b in buttons)


def test_tick_refreshes_relative_times(qtbot: Any) -> None:
    now = [NOW]
    pane = DetailsPane(clock=lambda: now[0])
    qtbot.addWidget(pane)
    show(pane)
    assert fact(pane, "Duration") == "3 min so far"
    now[0] = NOW + timedelta(minutes=10)
    pane.tick()
    assert fact(pane, "Duration") == "13 min so far"
    assert fact(pane, "Profile") == "p-prod"  # no name known: the id
    pane.set_profile_names({"p-prod": "Prod"})
    assert fact(pane, "Profile") == "Prod"


def test_section_mnemonics_move_focus(pane: DetailsPane, qtbot: Any) -> None:
    show(pane)
    pane.activateWindow()
    pane.copy_button.setFocus()
    qtbot.keyClick(pane, Qt.Key.Key_R, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: pane.raw_view.hasFocus(), timeout=1000)
    qtbot.keyClick(pane, Qt.Key.Key_T, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: pane.timeline_view.hasFocus(), timeout=1000)
