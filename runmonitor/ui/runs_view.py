"""A filterable run table beside a details pane: the body of every tab."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from runmonitor.domain.status import RunStatus
from runmonitor.domain.text import plural
from runmonitor.storage.history import RunRecord
from runmonitor.ui.details import DetailsPane
from runmonitor.ui.icons import status_icon, status_label
from runmonitor.ui.run_model import (
    COL_CHECKED,
    COL_DURATION,
    COL_PROFILE,
    COL_RUN_ID,
    COL_SERVICE,
    COL_STARTED,
    COL_STATUS,
    COL_TARGET,
    ProgressDelegate,
    RecordRole,
    RunFilterProxy,
    RunTableModel,
)

DEFAULT_WIDTHS = {
    COL_STATUS: 118,
    COL_TARGET: 190,
    COL_RUN_ID: 150,
    COL_PROFILE: 90,
    COL_STARTED: 96,
    COL_DURATION: 120,
    COL_CHECKED: 100,
    COL_SERVICE: 150,
}

STATUS_FILTERS: list[tuple[str, set[RunStatus] | None]] = [
    ("All statuses", None),
    ("Active (pending or running)", {RunStatus.PENDING, RunStatus.RUNNING}),
    ("Problems (failed or unknown)", {RunStatus.FAILED, RunStatus.UNKNOWN}),
    *[(status_label(s), {s}) for s in RunStatus],
]


class RunsView(QWidget):
    """Filter bar, run table and details; emits the selected run's record."""

    selection_changed = Signal(object)  # RunRecord | None

    def __init__(self, *, show_service: bool, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = RunTableModel({}, show_service=show_service)
        self.proxy = RunFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter runs (target, id, status, message)…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setAccessibleName(f"Filter the runs of {name}")
        self.filter_edit.textChanged.connect(self.proxy.set_text)
        self.status_filter = QComboBox()
        self.status_filter.setAccessibleName(f"Show runs of {name} by status")
        for index, (label, statuses) in enumerate(STATUS_FILTERS):
            self.status_filter.addItem(label)
            if statuses and len(statuses) == 1:
                self.status_filter.setItemIcon(index, status_icon(next(iter(statuses))))
        self.status_filter.currentIndexChanged.connect(self._status_filter_changed)
        self.count_label = QLabel()
        self.count_label.setAccessibleName("Number of runs shown")
        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.status_filter)
        bar.addWidget(self.count_label)

        self.table = QTableView()
        self.table.setAccessibleName(f"Runs of {name}")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in DEFAULT_WIDTHS.items():
            self.table.setColumnWidth(column, width)
        if show_service:
            header.moveSection(COL_SERVICE, 1)  # which service comes first in the All runs tab
        self.table.setItemDelegateForColumn(COL_DURATION, ProgressDelegate(self.table))
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.details = DetailsPane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName(f"splitter-{name}")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self._update_count()

    def _duration_column(self) -> int:
        return (
            COL_DURATION + (1 if self.model.show_service else 0)
            if hasattr(self.model, "show_service")
            else COL_DURATION
        )

    def _status_filter_changed(self, index: int) -> None:
        self.proxy.set_statuses(STATUS_FILTERS[index][1])
        self._update_count()

    def _update_count(self, *_: object) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        runs = plural(total, "run")
        self.count_label.setText(f"{shown} of {runs}" if shown != total else runs)

    def _selection_changed(self, *_: object) -> None:
        self.selection_changed.emit(self.selected())

    def selected(self) -> RunRecord | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        record = rows[0].data(RecordRole)
        return record if isinstance(record, RunRecord) else None

    def select_run(self, run_id: int) -> bool:
        row = self.model.row_of(run_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectionModel().select(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)
        return True

    def upsert(self, record: RunRecord) -> None:
        selected = self.selected()
        self.model.upsert(record)
        self._update_count()
        if selected is not None and selected.id == record.id:
            self.selection_changed.emit(record)

    def focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()


def spawn(
    coro: Coroutine[Any, Any, Any], on_error: Callable[[BaseException], None] | None = None
) -> asyncio.Task[Any]:
    """Run a coroutine from a Qt slot, keeping a reference and reporting its failure."""
    task: asyncio.Task[Any] = asyncio.ensure_future(coro)
    _TASKS.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        _TASKS.discard(finished)
        if finished.cancelled():
            return
        error = finished.exception()
        if error is not None:
            if on_error is not None:
                on_error(error)
            else:
                import logging

                logging.getLogger(__name__).error("background task failed", exc_info=error)

    task.add_done_callback(done)
    return task


_TASKS: set[asyncio.Task[Any]] = set()
