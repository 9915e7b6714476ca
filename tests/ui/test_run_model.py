"""RunTableModel, RunFilterProxy, ProgressDelegate and the status icons, on real Qt views."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QAbstractItemView, QApplication, QTableView

from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import DurationStats, RunRecord
from runmonitor.ui import icons, theme
from runmonitor.ui.icons import app_icon, status_colour, status_icon, status_label, status_pixmap
from runmonitor.ui.run_model import (
    COL_CHECKED,
    COL_DURATION,
    COL_MESSAGE,
    COL_PROFILE,
    COL_RUN_ID,
    COL_SERVICE,
    COL_STARTED,
    COL_STATUS,
    COL_TARGET,
    STATUS_ORDER,
    ProgressDelegate,
    ProgressRole,
    RecordRole,
    RunFilterProxy,
    RunTableModel,
    SortRole,
    format_time,
)

pytestmark = pytest.mark.usefixtures("qapp")  # icons are QPixmaps: a QApplication must exist

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
PROFILES = {"p-prod": "Production", "p-stage": "Staging"}
DISPLAY = Qt.ItemDataRole.DisplayRole
TOOLTIP = Qt.ItemDataRole.ToolTipRole


class Clock:
    """A settable clock for the model's time-relative columns."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_record(
    run: int,
    status: RunStatus = RunStatus.RUNNING,
    *,
    service: str = "codestream",
    target: str | None = None,
    profile: str = "p-prod",
    vendor: str | None = "RUNNING",
    detail: str | None = None,
    message: str | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
    created: datetime | None = None,
    checked: datetime | None = None,
    stale: bool = False,
    error: str | None = None,
    raw: Any = None,
) -> RunRecord:
    started = started if started is not None else NOW - timedelta(minutes=run % 50 + 1)
    snapshot = RunSnapshot(
        ref=RunRef(service=service, target=target or f"pipeline-{run % 7}", run_id=f"run-{run}"),
        status=status,
        vendor_status=vendor,
        detail=detail,
        message=message,
        created_at=created,
        started_at=None if status is RunStatus.PENDING else started,
        ended_at=ended,
        raw=raw,
        fetched_at=NOW,
    )
    return RunRecord(
        id=run,
        profile_id=profile,
        origin="created",
        snapshot=snapshot,
        first_seen_at=created or started,
        last_checked_at=checked if checked is not None else NOW - timedelta(seconds=12),
        last_attempt_at=NOW,
        stale=stale,
        last_error=error,
        last_error_kind="connection" if error else None,
        closed=False,
        closed_reason=None,
        request=None,
    )


def with_snapshot(record: RunRecord, **changes: Any) -> RunRecord:
    return replace(record, snapshot=record.snapshot.model_copy(update=changes))


def varied_records() -> list[RunRecord]:
    """A dozen runs covering every status, stale runs, long messages and both profiles."""
    out = []
    for run, status in enumerate(itertools.islice(itertools.cycle(RunStatus), 12), start=1):
        ended = NOW - timedelta(seconds=30) if status.terminal else None
        out.append(
            make_record(
                run,
                status,
                vendor=status.value.lower(),
                detail="waiting for approval" if status is RunStatus.RUNNING else None,
                message=f"message {run}\nsecond line" if run % 3 == 0 else None,
                ended=ended,
                created=NOW - timedelta(hours=1),
                profile="p-prod" if run % 2 else "p-stage",
                service=["cognite", "codestream", "connhex"][run % 3],
                stale=run % 5 == 0,
                error="Connection refused" if run % 5 == 0 else None,
            )
        )
    return out


def make_model(records: list[RunRecord] | None = None, **kwargs: Any) -> RunTableModel:
    kwargs.setdefault("clock", Clock())
    model = RunTableModel(PROFILES, **kwargs)
    model.set_records(records if records is not None else varied_records())
    return model


class Spy:
    """Records a model's change signals."""

    def __init__(self, model: Any) -> None:
        self.events: list[tuple[Any, ...]] = []
        model.dataChanged.connect(
            lambda tl, br, roles=(): self.events.append(
                ("dataChanged", tl.row(), tl.column(), br.row(), br.column(), list(roles))
            )
        )
        model.rowsInserted.connect(lambda _p, first, last: self.events.append(("rowsInserted", first, last)))
        model.rowsRemoved.connect(lambda _p, first, last: self.events.append(("rowsRemoved", first, last)))
        model.modelReset.connect(lambda: self.events.append(("modelReset",)))
        model.layoutChanged.connect(lambda *_: self.events.append(("layoutChanged",)))

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]

    def clear(self) -> None:
        self.events.clear()


# --------------------------------------------------------------------------------------------
# Model structure


@pytest.mark.parametrize("show_service", [False, True])
def test_model_passes_modeltester(qtmodeltester: Any, show_service: bool) -> None:
    model = make_model(show_service=show_service)
    model.set_durations({("codestream", "pipeline-1"): DurationStats(count=5, median_s=600, p90_s=900)})
    assert model.columnCount() == (9 if show_service else 8)
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


def test_proxy_passes_modeltester(qtmodeltester: Any) -> None:
    model = make_model(show_service=True)
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(COL_STATUS, Qt.SortOrder.AscendingOrder)
    proxy.set_text("pipeline")
    proxy.set_statuses({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.SUCCEEDED})
    assert 0 < proxy.rowCount() < model.rowCount()
    qtmodeltester.check(proxy, force_py=True)
    qtmodeltester.check(proxy)


def test_headers_have_titles_and_tooltips() -> None:
    model = make_model(show_service=True)
    titles = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert titles == [
        "Status",
        "Target",
        "Run id",
        "Profile",
        "Started",
        "Duration",
        "Checked",
        "Message",
        "Service",
    ]
    for column in range(model.columnCount()):
        tip = model.headerData(column, Qt.Orientation.Horizontal, TOOLTIP)
        assert isinstance(tip, str) and len(tip) > 10
    assert model.headerData(0, Qt.Orientation.Vertical) is None
    assert make_model().headerData(COL_SERVICE, Qt.Orientation.Horizontal) is None


def test_display_roles_for_one_row() -> None:
    record = make_record(
        7,
        RunStatus.RUNNING,
        service="codestream",
        target="deploy-prod",
        profile="p-stage",
        message="Deploying\nstep 2 of 5",
        started=NOW - timedelta(minutes=3, seconds=5),
        checked=NOW - timedelta(seconds=12),
    )
    model = make_model([record], show_service=True, service_names={"codestream": "Code Stream"})

    def cell(column: int, role: Any = DISPLAY) -> Any:
        return model.index(0, column).data(role)

    assert cell(COL_STATUS) == "Running"
    assert cell(COL_TARGET) == "deploy-prod"
    assert cell(COL_RUN_ID) == "run-7"
    assert cell(COL_PROFILE) == "Staging"
    assert cell(COL_STARTED) == format_time(record.snapshot.started_at, NOW)  # type: ignore[arg-type]
    assert cell(COL_DURATION) == "3 min 5 s"
    assert cell(COL_CHECKED) == "12 s ago"
    assert cell(COL_MESSAGE) == "Deploying …"
    assert cell(COL_MESSAGE, TOOLTIP) == "Deploying\nstep 2 of 5"
    assert cell(COL_SERVICE) == "Code Stream"
    assert cell(COL_STATUS, RecordRole) is record
    assert (
        cell(COL_STATUS, Qt.ItemDataRole.DecorationRole).cacheKey()
        == status_icon(RunStatus.RUNNING).cacheKey()
    )
    assert cell(COL_TARGET, Qt.ItemDataRole.DecorationRole) is None
    assert cell(COL_DURATION, Qt.ItemDataRole.TextAlignmentRole) & Qt.AlignmentFlag.AlignRight
    assert cell(COL_STARTED, SortRole) == pytest.approx(record.snapshot.started_at.timestamp())  # type: ignore[union-attr]
    assert cell(COL_DURATION, SortRole) == pytest.approx(185.0)
    assert cell(COL_STATUS, SortRole) == STATUS_ORDER[RunStatus.RUNNING]


def test_unknown_profile_and_service_fall_back_to_their_ids() -> None:
    model = make_model([make_record(1, profile="p-gone", service="nosuch")], show_service=True)
    assert model.index(0, COL_PROFILE).data() == "p-gone"
    assert model.index(0, COL_SERVICE).data() == "nosuch"
    model.set_profile_names({"p-gone": "Renamed"})
    assert model.index(0, COL_PROFILE).data() == "Renamed"


def test_service_names_default_to_the_registry() -> None:
    model = make_model([make_record(1, service="connhex")], show_service=True)
    assert model.index(0, COL_SERVICE).data() == "Connhex Exporter"


def test_pending_and_finished_durations() -> None:
    pending = make_record(1, RunStatus.PENDING, vendor="QUEUED", created=NOW - timedelta(minutes=4))
    finished = make_record(
        2, RunStatus.SUCCEEDED, started=NOW - timedelta(hours=2), ended=NOW - timedelta(hours=1, minutes=55)
    )
    no_times = make_record(3, RunStatus.FAILED)
    no_times = with_snapshot(no_times, started_at=None, ended_at=None)
    model = make_model([pending, finished, no_times])
    assert model.index(0, COL_DURATION).data() == "waiting 4 min"
    assert model.index(0, COL_STARTED).data() == "—"
    assert model.index(1, COL_DURATION).data() == "5 min"
    assert model.index(1, COL_DURATION, QModelIndex()).data(SortRole) == pytest.approx(300.0)
    assert model.index(2, COL_DURATION).data() == "—"
    assert model.index(2, COL_DURATION).data(SortRole) is None


# --------------------------------------------------------------------------------------------
# Updates: upsert never resets


def test_upsert_existing_row_emits_data_changed_only() -> None:
    model = make_model()
    spy = Spy(model)
    changed = with_snapshot(model.record_at(4), status=RunStatus.FAILED, message="boom")
    assert model.upsert(changed) == 4
    assert spy.events == [("dataChanged", 4, 0, 4, model.columnCount() - 1, [])]
    assert model.index(4, COL_STATUS).data() == "Failed (stale)"  # run 5 is stale
    assert model.index(4, COL_MESSAGE).data() == "boom"
    assert model.record_at(4) is changed
    assert model.rowCount() == 12


def test_upsert_new_record_inserts_at_the_end() -> None:
    model = make_model()
    spy = Spy(model)
    row = model.upsert(make_record(99, RunStatus.PENDING, vendor="QUEUED"))
    assert row == 12
    assert spy.events == [("rowsInserted", 12, 12)]
    assert model.row_of(99) == 12
    assert model.index(12, COL_RUN_ID).data() == "run-99"


def test_upsert_many_emits_one_data_changed_per_contiguous_block() -> None:
    model = make_model()
    spy = Spy(model)
    ids = [model.record_at(row).id for row in (0, 1, 2, 5, 6, 9)]
    batch = [with_snapshot(model.record_at(model.row_of(i)), message=f"new {i}") for i in reversed(ids)]  # type: ignore[arg-type]
    batch.append(make_record(200))
    batch.append(make_record(201))
    batch.append(with_snapshot(make_record(200), message="the later copy wins"))
    model.upsert_many(batch)
    last = model.columnCount() - 1
    assert spy.events == [
        ("dataChanged", 0, 0, 2, last, []),
        ("dataChanged", 5, 0, 6, last, []),
        ("dataChanged", 9, 0, 9, last, []),
        ("rowsInserted", 12, 13),
    ]
    assert model.index(5, COL_MESSAGE).data() == f"new {ids[3]}"
    assert model.row_of(200) == 12 and model.row_of(201) == 13
    assert model.index(12, COL_MESSAGE).data() == "the later copy wins"


def test_remove_reindexes_later_rows() -> None:
    model = make_model()
    spy = Spy(model)
    last_id = model.record_at(11).id
    assert model.remove(model.record_at(3).id)
    assert spy.events == [("rowsRemoved", 3, 3)]
    assert model.rowCount() == 11
    assert model.row_of(last_id) == 10
    assert model.record_at(model.row_of(last_id)).id == last_id  # type: ignore[arg-type]
    assert not model.remove(12345)


def test_set_records_resets_and_deduplicates() -> None:
    model = make_model([])
    spy = Spy(model)
    model.set_records([make_record(1), make_record(2), with_snapshot(make_record(1), message="newer")])
    assert spy.kinds() == ["modelReset"]
    assert model.rowCount() == 2
    assert model.index(model.row_of(1), COL_MESSAGE).data() == "newer"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# 1,000 rows updating under a held selection


def _selected_ids(view: QTableView) -> list[int]:
    return [index.data(RecordRole).id for index in view.selectionModel().selectedRows()]


def _round(records: list[RunRecord], round_no: int) -> list[RunRecord]:
    statuses = [RunStatus.RUNNING, RunStatus.PENDING, RunStatus.SUCCEEDED, RunStatus.FAILED]
    return [
        replace(
            with_snapshot(
                record,
                status=statuses[(record.id + round_no) % len(statuses)],
                vendor_status=f"state-{round_no}",
                message=f"round {round_no}",
            ),
            last_checked_at=NOW + timedelta(seconds=round_no),
            stale=(record.id + round_no) % 9 == 0,
        )
        for record in records
    ]


def _table(qtbot: Any, model: RunTableModel, sort_column: int, order: Qt.SortOrder) -> tuple[QTableView, Any]:
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(sort_column, order)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setItemDelegateForColumn(COL_DURATION, ProgressDelegate(view))
    view.resize(900, 500)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view, proxy


def test_thousand_rows_update_while_a_selection_is_held(qtbot: Any) -> None:
    clock = Clock()
    records = [make_record(i, started=NOW - timedelta(seconds=i)) for i in range(1, 1001)]
    model = make_model(records, clock=clock)
    spy = Spy(model)
    view, proxy = _table(qtbot, model, COL_STARTED, Qt.SortOrder.DescendingOrder)

    row = proxy.row_of(500)
    assert row is not None
    view.selectRow(row)
    view.scrollTo(proxy.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
    QApplication.processEvents()
    scroll = view.verticalScrollBar().value()
    assert scroll > 0
    expected = 500
    assert _selected_ids(view) == [expected]
    spy.clear()

    current = records
    for round_no in range(10):
        current = _round(current, round_no)
        model.upsert_many(current)
        clock.now += timedelta(seconds=1)
        model.tick()
        QApplication.processEvents()
        assert _selected_ids(view) == [expected], f"round {round_no}"
        assert view.currentIndex().data(RecordRole).id == expected
        assert view.verticalScrollBar().value() == scroll, f"round {round_no}"
        assert model.record_at(model.row_of(expected)).snapshot.message == f"round {round_no}"  # type: ignore[arg-type]
        if round_no == 4:
            # A click between rounds is handled like any other click: it becomes the selection.
            target_row = proxy.row_of(expected)
            assert target_row is not None
            clicked = proxy.index(target_row + 3, COL_TARGET)
            rect = view.visualRect(clicked)
            assert view.viewport().rect().contains(rect.center())
            qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            expected = clicked.data(RecordRole).id
            assert expected == 503
            assert _selected_ids(view) == [expected]

    assert "modelReset" not in spy.kinds()
    assert "rowsInserted" not in spy.kinds()
    assert spy.kinds().count("dataChanged") == 20  # one block per round, plus one tick per round


def test_selection_follows_a_run_whose_row_moves_when_sorted_by_status(qtbot: Any) -> None:
    records = [make_record(i, RunStatus.RUNNING) for i in range(1, 201)]
    model = make_model(records)
    view, proxy = _table(qtbot, model, COL_STATUS, Qt.SortOrder.AscendingOrder)
    view.selectRow(proxy.row_of(150))  # type: ignore[arg-type]
    before = proxy.row_of(150)

    # Run 150 succeeds: it sorts after every running run, and the selection moves with it.
    model.upsert(with_snapshot(model.record_at(model.row_of(150)), status=RunStatus.SUCCEEDED))  # type: ignore[arg-type]
    QApplication.processEvents()
    assert proxy.row_of(150) == 199 != before
    assert _selected_ids(view) == [150]


# --------------------------------------------------------------------------------------------
# Filtering and sorting


def _shown_ids(proxy: RunFilterProxy) -> list[int]:
    return [proxy.record_at(row).id for row in range(proxy.rowCount())]


def filter_records() -> list[RunRecord]:
    return [
        make_record(1, RunStatus.RUNNING, target="Nightly-Load", profile="p-prod", vendor="IN_PROGRESS"),
        make_record(2, RunStatus.FAILED, target="hourly", profile="p-stage", message="Disk FULL on worker"),
        make_record(3, RunStatus.SUCCEEDED, target="weekly", profile="p-prod", service="cognite"),
        make_record(4, RunStatus.PENDING, target="adhoc", profile="p-stage", vendor="WAITING_APPROVAL"),
        make_record(5, RunStatus.CANCELLED, target="adhoc-2", profile="p-prod", service="cognite"),
    ]


def test_text_filter_is_case_insensitive_over_the_documented_fields() -> None:
    model = make_model(filter_records())
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    cases = {
        "nightly": [1],  # target
        "RUN-3": [3],  # run id
        "staging": [2, 4],  # profile name
        "approval": [4],  # vendor status
        "disk full": [2],  # message
        "cancelled": [5],  # status text
        "no such thing": [],
        "": [1, 2, 3, 4, 5],
    }
    for text, ids in cases.items():
        proxy.set_text(text)
        assert sorted(_shown_ids(proxy)) == ids, text


def test_status_profile_and_service_filters_combine() -> None:
    model = make_model(filter_records())
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_statuses({RunStatus.RUNNING, RunStatus.PENDING})
    assert sorted(_shown_ids(proxy)) == [1, 4]
    proxy.set_profile("p-stage")
    assert _shown_ids(proxy) == [4]
    proxy.set_statuses(None)
    assert sorted(_shown_ids(proxy)) == [2, 4]
    proxy.set_profile(None)
    proxy.set_service("cognite")
    assert sorted(_shown_ids(proxy)) == [3, 5]
    proxy.set_text("adhoc")
    assert _shown_ids(proxy) == [5]
    proxy.set_service(None)
    proxy.set_text("")
    assert proxy.rowCount() == 5
    assert proxy.row_of(3) is not None
    proxy.set_statuses(set())
    assert proxy.rowCount() == 0 and proxy.row_of(3) is None


def test_filter_applies_to_rows_that_change_later() -> None:
    model = make_model(filter_records())
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_statuses({RunStatus.RUNNING})
    assert _shown_ids(proxy) == [1]
    model.upsert(with_snapshot(model.record_at(0), status=RunStatus.SUCCEEDED))
    assert _shown_ids(proxy) == []
    model.upsert(make_record(9, RunStatus.RUNNING))
    assert _shown_ids(proxy) == [9]


def test_sorting_by_status_and_started() -> None:
    records = [
        make_record(1, RunStatus.SUCCEEDED, started=NOW - timedelta(hours=3), ended=NOW),
        make_record(2, RunStatus.RUNNING, started=NOW - timedelta(hours=1)),
        make_record(3, RunStatus.FAILED, started=NOW - timedelta(hours=2), ended=NOW),
        make_record(4, RunStatus.PENDING, created=NOW - timedelta(minutes=5)),
        make_record(5, RunStatus.UNKNOWN, started=NOW - timedelta(hours=4)),
        make_record(6, RunStatus.CANCELLED, started=NOW - timedelta(minutes=30), ended=NOW),
    ]
    model = make_model(records)
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    assert proxy.dynamicSortFilter() and proxy.sortRole() == SortRole

    proxy.sort(COL_STATUS, Qt.SortOrder.AscendingOrder)
    assert [proxy.record_at(r).status for r in range(6)] == [
        RunStatus.RUNNING,
        RunStatus.PENDING,
        RunStatus.UNKNOWN,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.SUCCEEDED,
    ]
    proxy.sort(COL_STARTED, Qt.SortOrder.DescendingOrder)
    assert _shown_ids(proxy) == [4, 6, 2, 3, 1, 5]  # a pending run sorts by its creation time
    proxy.sort(COL_STARTED, Qt.SortOrder.AscendingOrder)
    assert _shown_ids(proxy) == [5, 1, 3, 2, 6, 4]


def test_sorting_run_ids_and_targets_is_natural() -> None:
    records = [make_record(i, target=f"job-{n}") for i, n in enumerate([10, 9, 100, 1], start=1)]
    model = make_model(records)
    proxy = RunFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(COL_TARGET, Qt.SortOrder.AscendingOrder)
    assert [proxy.index(r, COL_TARGET).data() for r in range(4)] == ["job-1", "job-9", "job-10", "job-100"]


# --------------------------------------------------------------------------------------------
# Tooltips and accessibility


def test_status_tooltip_carries_vendor_status_and_detail() -> None:
    record = make_record(1, RunStatus.RUNNING, vendor="RUNNING", detail="waiting for approval")
    model = make_model([record])
    tip = model.index(0, COL_STATUS).data(TOOLTIP)
    assert tip == "Running — vendor status: RUNNING (waiting for approval)"
    text = model.index(0, COL_STATUS).data(Qt.ItemDataRole.AccessibleTextRole)
    assert text == "Running, vendor status RUNNING"


def test_stale_run_tooltips_name_the_error_and_the_last_good_check() -> None:
    checked = NOW - timedelta(minutes=28)
    record = make_record(1, RunStatus.RUNNING, stale=True, error="Connection refused", checked=checked)
    model = make_model([record])
    status_tip = model.index(0, COL_STATUS).data(TOOLTIP)
    assert "Stale: the last check failed: Connection refused" in status_tip
    assert "Last good check:" in status_tip
    assert model.index(0, COL_STATUS).data() == "Running (stale)"
    assert model.index(0, COL_CHECKED).data() == f"stale since {format_time(checked, NOW)}"
    checked_tip = model.index(0, COL_CHECKED).data(TOOLTIP)
    assert "Connection refused" in checked_tip and "Last good check" in checked_tip
    assert model.index(0, COL_CHECKED).data(Qt.ItemDataRole.FontRole).italic()
    accessible = model.index(0, COL_STATUS).data(Qt.ItemDataRole.AccessibleTextRole)
    assert "stale" in accessible
    icon = model.index(0, COL_STATUS).data(Qt.ItemDataRole.DecorationRole)
    assert icon.cacheKey() == status_icon(RunStatus.RUNNING, stale=True).cacheKey()
    assert icon.cacheKey() != status_icon(RunStatus.RUNNING).cacheKey()


# --------------------------------------------------------------------------------------------
# Durations, ETA and tick()


def test_eta_and_progress_from_duration_stats() -> None:
    running = make_record(1, RunStatus.RUNNING, target="etl", started=NOW - timedelta(minutes=3))
    late = make_record(2, RunStatus.RUNNING, target="etl", started=NOW - timedelta(minutes=12))
    other = make_record(3, RunStatus.RUNNING, target="no-history", started=NOW - timedelta(minutes=3))
    done = make_record(
        4,
        RunStatus.SUCCEEDED,
        target="etl",
        started=NOW - timedelta(minutes=10),
        ended=NOW - timedelta(minutes=4),
    )
    model = make_model([running, late, other, done])
    assert model.index(0, COL_DURATION).data(ProgressRole) is None  # no history yet
    spy = Spy(model)
    model.set_durations({("codestream", "etl"): DurationStats(count=6, median_s=300.0, p90_s=420.0)})
    assert spy.events == [("dataChanged", 0, COL_DURATION, 3, COL_DURATION, [])]

    assert model.index(0, COL_DURATION).data() == "3 min / ~5 min"
    assert model.index(0, COL_DURATION).data(ProgressRole) == pytest.approx(0.6)
    assert "median of the last 6 successful runs" in model.index(0, COL_DURATION).data(TOOLTIP)
    assert (
        model.index(0, COL_DURATION).data(Qt.ItemDataRole.AccessibleTextRole)
        == "3 min of about 5 min, 60 percent"
    )
    assert model.index(1, COL_DURATION).data() == "12 min / ~5 min"
    assert model.index(1, COL_DURATION).data(ProgressRole) == 1.0
    assert model.index(2, COL_DURATION).data() == "3 min"
    assert model.index(2, COL_DURATION).data(ProgressRole) is None
    assert model.index(3, COL_DURATION).data() == "6 min"
    assert model.index(3, COL_DURATION).data(ProgressRole) is None
    assert model.index(0, COL_STATUS).data(ProgressRole) is None
    model.set_durations({("codestream", "etl"): DurationStats(count=0, median_s=0.0, p90_s=0.0)})
    assert model.index(0, COL_DURATION).data(ProgressRole) is None


def test_tick_changes_only_the_time_columns() -> None:
    clock = Clock()
    model = make_model(clock=clock)
    model.set_durations({("cognite", "pipeline-4"): DurationStats(count=3, median_s=3600, p90_s=4000)})
    columns = range(model.columnCount())
    before = [[model.index(r, c).data() for c in columns] for r in range(model.rowCount())]
    spy = Spy(model)
    clock.now += timedelta(minutes=7)
    model.tick()
    assert len(spy.events) == 1
    kind, top, left, bottom, right, roles = spy.events[0]
    assert (kind, top, left, bottom, right) == (
        "dataChanged",
        0,
        COL_DURATION,
        model.rowCount() - 1,
        COL_CHECKED,
    )
    assert int(Qt.ItemDataRole.DisplayRole) in roles and ProgressRole in roles
    after = [[model.index(r, c).data() for c in columns] for r in range(model.rowCount())]
    changed_columns = {c for r in range(model.rowCount()) for c in columns if before[r][c] != after[r][c]}
    assert changed_columns == {COL_DURATION, COL_CHECKED}
    assert model.index(0, COL_CHECKED).data() == "7 min ago"


def test_tick_on_an_empty_model_emits_nothing() -> None:
    model = make_model([])
    spy = Spy(model)
    model.tick()
    assert spy.events == []


# --------------------------------------------------------------------------------------------
# The progress delegate, painted for real


def test_progress_delegate_draws_a_bar_proportional_to_progress(qtbot: Any) -> None:
    records = [
        make_record(1, RunStatus.RUNNING, target="etl", started=NOW - timedelta(minutes=3)),
        make_record(2, RunStatus.SUCCEEDED, target="etl", started=NOW - timedelta(minutes=9), ended=NOW),
    ]
    model = make_model(records)
    model.set_durations({("codestream", "etl"): DurationStats(count=4, median_s=600, p90_s=700)})
    view = QTableView()
    view.setModel(model)
    view.setItemDelegateForColumn(COL_DURATION, ProgressDelegate(view))
    view.setColumnWidth(COL_DURATION, 200)
    view.resize(900, 200)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    image = view.viewport().grab().toImage()
    highlight = view.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)

    def bar_pixels(row: int) -> int:
        rect = view.visualRect(model.index(row, COL_DURATION))
        best = 0
        for y in range(rect.bottom() - ProgressDelegate.BAR_HEIGHT - 2, rect.bottom() + 1):
            count = sum(
                1
                for x in range(rect.left(), rect.right() + 1)
                if _close(QColor(image.pixel(QPoint(x, y))), highlight)
            )
            best = max(best, count)
        return best

    track = 200 - 2 * ProgressDelegate.MARGIN
    assert bar_pixels(0) == pytest.approx(track * 0.3, abs=3)
    assert bar_pixels(1) == 0


def _close(a: QColor, b: QColor, tolerance: int = 6) -> bool:
    return (
        abs(a.red() - b.red()) <= tolerance
        and abs(a.green() - b.green()) <= tolerance
        and (abs(a.blue() - b.blue()) <= tolerance)
    )


# --------------------------------------------------------------------------------------------
# Icons


def _grey_bytes(status: RunStatus, *, stale: bool = False, dark: bool = False) -> bytes:
    image = status_pixmap(status, stale=stale, size=24, dark=dark).toImage()
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    alpha = image.convertToFormat(QImage.Format.Format_Alpha8)
    return bytes(grey.constBits()) + bytes(alpha.constBits())


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("stale", [False, True])
def test_every_status_has_its_own_shape_even_without_colour(qapp: Any, dark: bool, stale: bool) -> None:
    shapes = {status: _grey_bytes(status, stale=stale, dark=dark) for status in RunStatus}
    assert len(set(shapes.values())) == len(RunStatus)
    # Grey images still differ pairwise by a visible number of pixels.
    for a, b in itertools.combinations(RunStatus, 2):
        differing = sum(1 for x, y in zip(shapes[a], shapes[b], strict=True) if abs(x - y) > 40)
        assert differing >= 20, (a, b)


def test_stale_icons_differ_from_fresh_ones(qapp: Any) -> None:
    for status in RunStatus:
        assert _grey_bytes(status, stale=True) != _grey_bytes(status, stale=False)


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())
    )


def _contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("status", list(RunStatus))
def test_status_colours_have_enough_contrast_on_light_and_dark(qapp: Any, status: RunStatus) -> None:
    for background in ("#ffffff", "#efefef"):
        assert _contrast(status_colour(status, False), QColor(background)) >= 3.0
    for background in ("#1e1e1e", "#2b2b2b", "#353535"):
        assert _contrast(status_colour(status, True), QColor(background)) >= 3.0


def test_icon_cache_and_labels(qapp: Any) -> None:
    icons.clear_icon_cache()
    first = status_icon(RunStatus.FAILED, size=20)
    assert status_icon(RunStatus.FAILED, size=20) is first
    assert status_icon(RunStatus.FAILED, size=32) is not first
    assert not first.pixmap(20, 20).isNull()
    assert [status_label(s) for s in RunStatus] == [
        "Pending",
        "Running",
        "Succeeded",
        "Failed",
        "Cancelled",
        "Unknown",
    ]


def test_icon_colours_follow_the_palette(qapp: Any) -> None:
    original = QApplication.palette()
    try:
        dark = QPalette(original)
        dark.setColor(QPalette.ColorRole.Window, QColor("#202020"))
        QApplication.setPalette(dark)
        assert theme.is_dark_palette()
        dark_icon = status_icon(RunStatus.SUCCEEDED)
        QApplication.setPalette(original)
        assert not theme.is_dark_palette()
        assert status_icon(RunStatus.SUCCEEDED).cacheKey() != dark_icon.cacheKey()
    finally:
        QApplication.setPalette(original)


def test_one_function_decides_whether_the_palette_is_dark() -> None:
    # theme.is_dark_palette is the one place that reads the window colour's lightness
    ui = Path(theme.__file__).parent
    deciding = sorted(
        str(path.relative_to(ui))
        for path in ui.rglob("*.py")
        if "generated" not in path.parts and "Window).lightness()" in path.read_text(encoding="utf-8")
    )
    assert deciding == ["theme.py"]


def test_app_icon_loads_the_svg_and_has_a_drawn_fallback(qapp: Any) -> None:
    icon = app_icon()
    assert not icon.isNull() and not icon.pixmap(48, 48).isNull()
    fallback = icons.drawn_app_icon()
    assert not fallback.pixmap(48, 48).isNull()
    assert icons._app_icon_candidates()[0].is_file()
