"""Vendor text is shown as plain text everywhere: table cells and tooltips, the details pane's
labels and tooltips, the timeline. A status, message or detail holding HTML must appear
literally, never rendered (no bold, no image fetch, no link).

Qt renders a tooltip (and an AutoText label) as HTML whenever ``Qt.mightBeRichText`` says it
looks like HTML; :func:`shown` reproduces that decision to read what a person would see.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QWidget

from runmonitor.domain.models import RunAction, RunRef, RunSnapshot
from runmonitor.domain.redact import redact_url
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import RunRecord, TransitionRecord
from runmonitor.ui.details import DetailsPane
from runmonitor.ui.profile_dialog import ADVANCED_FIELDS, ProfileDialog
from runmonitor.ui.run_model import (
    COL_CHECKED,
    COL_MESSAGE,
    COL_RUN_ID,
    COL_STATUS,
    COL_TARGET,
    RunTableModel,
    plain_tooltip,
)

HOSTILE = "<b>bold</b><img src='x'><a href='http://evil'>x</a>"
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TOOLTIP = Qt.ItemDataRole.ToolTipRole


def shown(text: str) -> str:
    """What Qt displays for ``text`` in a tooltip: rendered HTML when it looks like HTML."""
    document = QTextDocument()
    if QtGuiNamespace.mightBeRichText(text):
        document.setHtml(text)
    else:
        document.setPlainText(text)
    return document.toPlainText()


def renders_vendor_markup(tip: str) -> bool:
    """Whether Qt would render one of HOSTILE's tags in ``tip`` as markup."""
    return QtGuiNamespace.mightBeRichText(tip) and re.search(r"<(b|img|a)\b", tip) is not None


def hostile_record(*, stale: bool = True) -> RunRecord:
    started = NOW - timedelta(minutes=3)
    snapshot = RunSnapshot(
        ref=RunRef(service="codestream", target=f"deploy {HOSTILE}", run_id=f"exec {HOSTILE}"),
        status=RunStatus.RUNNING,
        vendor_status=HOSTILE,
        detail=f"detail {HOSTILE}",
        message=f"{HOSTILE}\nsecond line {HOSTILE}",
        created_at=started - timedelta(seconds=20),
        started_at=started,
        raw={"status": HOSTILE},
        fetched_at=NOW,
    )
    return RunRecord(
        id=7,
        profile_id="p-prod",
        origin="created",
        snapshot=snapshot,
        first_seen_at=started,
        last_checked_at=NOW - timedelta(seconds=40),
        last_attempt_at=NOW,
        stale=stale,
        last_error=f"The service failed: {HOSTILE}" if stale else None,
        last_error_kind="server_error" if stale else None,
        closed=False,
        closed_reason=None,
        request=None,
    )


def hostile_timeline() -> list[TransitionRecord]:
    t0 = NOW - timedelta(minutes=3)
    return [
        TransitionRecord(1, 7, t0, None, RunStatus.PENDING, HOSTILE, None, None, "created", None),
        TransitionRecord(
            2, 7, t0 + timedelta(seconds=30), RunStatus.PENDING, RunStatus.RUNNING, HOSTILE,
            f"detail {HOSTILE}", f"{HOSTILE}\nmore {HOSTILE}", "transition", None,
        ),
    ]  # fmt: skip


# -- the helper ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE,
        f"Running — vendor status: {HOSTILE}",
        f"{HOSTILE}\n  indented second line\n\nthird & last",
        "<qt>looks like rich text</qt>",
        "a < b and c > d",
        "plain\nmulti-line",
    ],
)
def test_plain_tooltip_shows_any_text_literally(text: str) -> None:
    tip = plain_tooltip(text)
    assert shown(tip) == text
    if not QtGuiNamespace.mightBeRichText(text):
        assert tip == text  # text Qt already shows literally is left alone


# -- the run table -------------------------------------------------------------------------------


def test_run_table_cells_and_tooltips_show_vendor_text_literally(qapp: Any) -> None:
    model = RunTableModel({"p-prod": "Production"}, clock=lambda: NOW)
    model.set_records([hostile_record()])
    tips = {column: model.index(0, column).data(TOOLTIP) for column in range(model.columnCount())}
    assert HOSTILE in shown(tips[COL_STATUS])  # vendor status and detail
    assert f"detail {HOSTILE}" in shown(tips[COL_STATUS])
    assert f"The service failed: {HOSTILE}" in shown(tips[COL_STATUS])  # the stale error
    assert shown(tips[COL_MESSAGE]) == f"{HOSTILE}\nsecond line {HOSTILE}"
    assert f"The service failed: {HOSTILE}" in shown(tips[COL_CHECKED])
    assert shown(tips[COL_TARGET]) == f"deploy {HOSTILE}"
    assert shown(tips[COL_RUN_ID]) == f"exec {HOSTILE}"
    for column, tip in tips.items():
        assert not renders_vendor_markup(tip or ""), (column, tip)
    # Cells are plain text in every view; the texts reach them unchanged.
    assert model.index(0, COL_TARGET).data() == f"deploy {HOSTILE}"
    assert model.index(0, COL_MESSAGE).data() == f"{HOSTILE} …"


def test_a_clean_record_keeps_its_plain_tooltips(qapp: Any) -> None:
    record = hostile_record(stale=False)
    snapshot = record.snapshot.model_copy(update={"vendor_status": "RUNNING", "detail": "waiting"})
    model = RunTableModel(clock=lambda: NOW)
    model.set_records([replace(record, snapshot=snapshot)])
    assert model.index(0, COL_STATUS).data(TOOLTIP) == "Running — vendor status: RUNNING (waiting)"


# -- the details pane ----------------------------------------------------------------------------


def _labels(widget: QWidget) -> list[QLabel]:
    return widget.findChildren(QLabel)


def test_details_pane_shows_vendor_text_literally(qtbot: Any) -> None:
    pane = DetailsPane({"p-prod": "Production"}, clock=lambda: NOW)
    qtbot.addWidget(pane)
    url = f"https://vra.example.com/codestream/#/executions/{HOSTILE}"
    pane.show_record(
        hostile_record(),
        hostile_timeline(),
        run_url=url,
        actions=[RunAction.CANCEL],
        service_name="Code Stream",
    )
    pane.show()
    labels = _labels(pane)
    assert labels
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in labels), [
        (label.accessibleName(), label.textFormat()) for label in labels
        if label.textFormat() != Qt.TextFormat.PlainText
    ]  # fmt: skip
    assert pane.vendor_label.text() == f"Vendor status: {HOSTILE} — detail {HOSTILE}"
    assert pane.message_label.text() == f"{HOSTILE}\nsecond line {HOSTILE}"
    assert pane.error_row.value.text() == f"The service failed: {HOSTILE}"
    assert pane.target_row.value.text() == f"deploy {HOSTILE}"
    # Every tooltip in the pane reads as its plain text.
    for widget in [pane, *pane.findChildren(QWidget)]:
        assert not renders_vendor_markup(widget.toolTip()), (widget.accessibleName(), widget.toolTip())
    assert shown(pane.open_button.toolTip()) == redact_url(url)
    assert shown(pane.url_field.toolTip()) == redact_url(url)
    # The timeline: cells are plain text, tooltips are escaped.
    view = pane.timeline_view
    item = view.topLevelItem(1)
    assert item.text(3) == HOSTILE  # the first line
    assert shown(item.toolTip(3)) == f"{HOSTILE}\nmore {HOSTILE}"
    assert shown(item.toolTip(1)) == f"Vendor status: {HOSTILE}\ndetail {HOSTILE}"
    assert HOSTILE in pane.raw_view.toPlainText()  # a QPlainTextEdit: plain by nature


# -- the profile dialog: the new connection fields and their warnings ----------------------------


def test_profile_dialog_shows_proxy_and_tls_fields_and_plain_warnings(qtbot: Any, tmp_path: Path) -> None:
    dialog = ProfileDialog("marquez")
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    names = dialog.form.field_names()
    assert names[-len(ADVANCED_FIELDS) :] == list(ADVANCED_FIELDS)
    assert ADVANCED_FIELDS == ("proxy", "ca_bundle", "verify_tls", "timeout_seconds")
    values = {**dialog.form.values(), "base_url": "https://marquez.example.com", "verify_tls": False}
    dialog.form.set_values({**values, "ca_bundle": str(tmp_path / "missing.pem")})
    dialog.name_edit.setText("prod")
    assert dialog.save() is False
    assert "no such file" in dialog.form.errors()["ca_bundle"]
    assert dialog.current_warnings() == ["TLS certificate verification is off for this connection."]
    dialog.form.set_values({**values, "proxy": "http://alice:secret@proxy.example.com:3128"})
    assert dialog.save() is False
    assert "user name or password" in dialog.form.errors()["proxy"]
    banners = dialog.notes.banners
    assert [banner.text() for banner in banners] == [
        "TLS certificate verification is off for this connection."
    ]
    assert all(banner.label.textFormat() == Qt.TextFormat.PlainText for banner in banners)
