"""The run table: a flat model of RunRecords, a filter/sort proxy and a progress delegate.

:class:`RunTableModel` holds one row per :class:`~runmonitor.storage.history.RunRecord`, keyed by
the record's history id. Polling results arrive through :meth:`RunTableModel.upsert` /
:meth:`RunTableModel.upsert_many`, which change rows in place (``dataChanged``) or append them
(``rowsInserted``) and never reset the model, so a person's selection and scroll position
survive every poll. Only :meth:`RunTableModel.set_records` (the initial load) resets.

Columns have fixed logical indices (``COL_*``); the optional service column of the All-runs
tab is the last logical column, and a view can move it with ``header.moveSection``.

Vendor text is shown as plain text: cells are always plain, and every tooltip passes through
:func:`plain_tooltip`, because Qt renders a tooltip as HTML when it merely looks like HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPalette
from PySide6.QtGui import Qt as QtGuiNamespace  # the Qt namespace with QtGui's functions
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from runmonitor.domain.status import RunStatus
from runmonitor.domain.text import format_duration, plural
from runmonitor.storage.history import DurationStats, RunRecord
from runmonitor.ui.icons import status_icon, status_label

__all__ = [
    "COL_CHECKED",
    "COL_DURATION",
    "COL_MESSAGE",
    "COL_PROFILE",
    "COL_RUN_ID",
    "COL_SERVICE",
    "COL_STARTED",
    "COL_STATUS",
    "COL_TARGET",
    "STATUS_ORDER",
    "ProgressDelegate",
    "ProgressRole",
    "RecordRole",
    "RunFilterProxy",
    "RunTableModel",
    "SortRole",
    "format_ago",
    "format_time",
    "plain_tooltip",
    "status_tooltip",
]

COL_STATUS: Final = 0
COL_TARGET: Final = 1
COL_RUN_ID: Final = 2
COL_PROFILE: Final = 3
COL_STARTED: Final = 4
COL_DURATION: Final = 5
COL_CHECKED: Final = 6
COL_MESSAGE: Final = 7
COL_SERVICE: Final = 8
"""Only present when the model was built with ``show_service=True``."""

SortRole: Final = int(Qt.ItemDataRole.UserRole) + 1
"""Raw sortable values: status order, datetimes as timestamps, durations as seconds."""
RecordRole: Final = int(Qt.ItemDataRole.UserRole) + 2
"""The row's RunRecord (any column)."""
ProgressRole: Final = int(Qt.ItemDataRole.UserRole) + 3
"""COL_DURATION: elapsed / typical duration in 0..1 for a running run with history, else None."""

#: Sort order of statuses: what needs attention or is still moving comes first.
STATUS_ORDER: Final[dict[RunStatus, int]] = {
    RunStatus.RUNNING: 0,
    RunStatus.PENDING: 1,
    RunStatus.UNKNOWN: 2,
    RunStatus.FAILED: 3,
    RunStatus.CANCELLED: 4,
    RunStatus.SUCCEEDED: 5,
}

_HEADERS: Final[dict[int, tuple[str, str]]] = {
    COL_STATUS: ("Status", "The run's state; a clock badge means the last check failed (stale)."),
    COL_TARGET: ("Target", "The pipeline, job, data flow or export the run belongs to."),
    COL_RUN_ID: ("Run id", "The service's id for this run."),
    COL_PROFILE: ("Profile", "The saved connection the run was created or found with."),
    COL_STARTED: ("Started", "When the run started (local time)."),
    COL_DURATION: (
        "Duration",
        "How long the run took; for a running run, the time so far and the typical duration "
        "of recent successful runs.",
    ),
    COL_CHECKED: ("Checked", "When RunMonitor last heard from the service about this run."),
    COL_MESSAGE: ("Message", "The newest message the service gave for this run."),
    COL_SERVICE: ("Service", "The service the run belongs to."),
}

_DASH: Final = "—"
_DIGITS = re.compile(r"\d+")
_TIME_COLUMNS: Final = (COL_DURATION, COL_CHECKED)
_TIME_ROLES: Final = [
    int(Qt.ItemDataRole.DisplayRole),
    int(Qt.ItemDataRole.ToolTipRole),
    int(Qt.ItemDataRole.AccessibleTextRole),
    SortRole,
    ProgressRole,
]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Text helpers (also used by the details pane)


def format_ago(when: datetime, now: datetime) -> str:
    """ "12 s ago", "5 min ago", "3 h ago", or a date for anything older than a day."""
    seconds = (now - when).total_seconds()
    if seconds < 1:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return format_time(when, now)


def format_time(when: datetime, now: datetime | None = None, *, seconds: bool = False) -> str:
    """Local time of day ("10:02") for today, with the date ("2026-11-20 10:02") otherwise."""
    local = _local(when)
    pattern = "%H:%M:%S" if seconds else "%H:%M"
    if now is not None and local.date() == _local(now).date():
        return local.strftime(pattern)
    return local.strftime(f"%Y-%m-%d {pattern}")


def format_timestamp(when: datetime) -> str:
    """A full local timestamp with the zone, for tooltips and the details pane."""
    return _local(when).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _local(when: datetime) -> datetime:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone()


def _natural_key(text: str) -> str:
    """Case-folded text whose numbers compare by value ("run-9" < "run-10")."""
    return _DIGITS.sub(lambda m: m.group().zfill(20), text.casefold())


def _first_line(text: str) -> str:
    stripped = text.strip()
    line, _, rest = stripped.partition("\n")
    return f"{line.rstrip()} …" if rest.strip() else line


def plain_tooltip(text: str) -> str:
    """``text`` as a tooltip that Qt shows literally, whatever a service put in it.

    Qt shows a tooltip as rich text when ``Qt.mightBeRichText`` says it looks like HTML, so a
    vendor message such as ``<img src=…>`` would be rendered (and fetch nothing, but still
    mislead). Text Qt would take for HTML is escaped and wrapped in a paragraph that keeps line
    breaks and spacing; other text is returned unchanged, as Qt already shows it literally.
    """
    if not text or not QtGuiNamespace.mightBeRichText(text):
        return text
    return f'<p style="white-space:pre-wrap">{html.escape(text, quote=False)}</p>'


def status_tooltip(record: RunRecord, now: datetime | None = None) -> str:
    """E.g. "Running — vendor status: RUNNING (waiting for approval)", plus staleness lines."""
    snap = record.snapshot
    text = status_label(snap.status)
    if snap.vendor_status:
        text += f" — vendor status: {snap.vendor_status}"
        if snap.detail:
            text += f" ({snap.detail})"
    elif snap.detail:
        text += f" — {snap.detail}"
    lines = [text]
    if record.stale:
        lines.append(f"Stale: the last check failed: {record.last_error or 'no answer'}")
        if record.last_checked_at is not None:
            lines.append(f"Last good check: {format_timestamp(record.last_checked_at)}")
        else:
            lines.append("No check has succeeded yet.")
    if record.closed:
        reason = f" ({record.closed_reason})" if record.closed_reason else ""
        lines.append(f"No longer followed{reason}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The model


class RunTableModel(QAbstractTableModel):
    """Runs as table rows; see the module docstring for the update rules."""

    COL_STATUS = COL_STATUS
    COL_TARGET = COL_TARGET
    COL_RUN_ID = COL_RUN_ID
    COL_PROFILE = COL_PROFILE
    COL_STARTED = COL_STARTED
    COL_DURATION = COL_DURATION
    COL_CHECKED = COL_CHECKED
    COL_MESSAGE = COL_MESSAGE
    COL_SERVICE = COL_SERVICE

    def __init__(
        self,
        profile_names: Mapping[str, str] | None = None,
        *,
        show_service: bool = False,
        clock: Callable[[], datetime] = _utcnow,
        service_names: Mapping[str, str] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._records: list[RunRecord] = []
        self._rows: dict[int, int] = {}
        self._profile_names: dict[str, str] = dict(profile_names or {})
        self._service_names: dict[str, str] | None = dict(service_names) if service_names else None
        self._durations: dict[tuple[str, str], DurationStats] = {}
        self._show_service = show_service
        self._clock = clock

    # -- shape ------------------------------------------------------------------------------

    @property
    def show_service(self) -> bool:
        return self._show_service

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return COL_SERVICE + 1 if self._show_service else COL_MESSAGE + 1

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < self.columnCount():
            return None
        title, tip = _HEADERS[section]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return title
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            return tip
        return None

    # -- records ----------------------------------------------------------------------------

    def set_records(self, records: Iterable[RunRecord]) -> None:
        """Replace every row (initial load): one model reset."""
        unique: dict[int, RunRecord] = {}
        for record in records:
            unique[record.id] = record
        self.beginResetModel()
        self._records = list(unique.values())
        self._reindex()
        self.endResetModel()

    def records(self) -> list[RunRecord]:
        return list(self._records)

    def record_at(self, row: int) -> RunRecord:
        return self._records[row]

    def row_of(self, run_id: int) -> int | None:
        """The row of the run with history id ``run_id``, or None."""
        return self._rows.get(run_id)

    def upsert(self, record: RunRecord) -> int:
        """Update the run's row in place, or append it; returns its row."""
        row = self._rows.get(record.id)
        if row is not None:
            self._records[row] = record
            self._emit_rows_changed(row, row)
            return row
        row = len(self._records)
        self.beginInsertRows(QModelIndex(), row, row)
        self._records.append(record)
        self._rows[record.id] = row
        self.endInsertRows()
        return row

    def upsert_many(self, records: Iterable[RunRecord]) -> None:
        """Upsert a batch: one ``dataChanged`` per contiguous block of changed rows, and one
        ``rowsInserted`` for all new rows (appended in the order given)."""
        changed: set[int] = set()
        added: dict[int, RunRecord] = {}
        for record in records:
            row = self._rows.get(record.id)
            if row is not None:
                self._records[row] = record
                changed.add(row)
            else:
                added[record.id] = record  # a later duplicate wins
        for first, last in _blocks(sorted(changed)):
            self._emit_rows_changed(first, last)
        if added:
            first = len(self._records)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            for offset, record in enumerate(added.values()):
                self._records.append(record)
                self._rows[record.id] = first + offset
            self.endInsertRows()

    def remove(self, run_id: int) -> bool:
        """Remove the run with history id ``run_id``; False when it is not in the model."""
        row = self._rows.get(run_id)
        if row is None:
            return False
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._records[row]
        del self._rows[run_id]
        for later in range(row, len(self._records)):
            self._rows[self._records[later].id] = later
        self.endRemoveRows()
        return True

    def set_profile_names(self, mapping: Mapping[str, str]) -> None:
        self._profile_names = dict(mapping)
        self._emit_column_changed(COL_PROFILE, COL_PROFILE)

    def profile_name(self, profile_id: str) -> str:
        return self._profile_names.get(str(profile_id), str(profile_id))

    def service_name(self, key: str) -> str:
        if self._service_names is None:
            self._service_names = _registry_names()
        return self._service_names.get(key, key)

    def set_durations(self, mapping: Mapping[tuple[str, str], DurationStats]) -> None:
        """Typical durations of recent successful runs, keyed by (service, target)."""
        self._durations = dict(mapping)
        self._emit_column_changed(COL_DURATION, COL_DURATION)

    def duration_stats(self, record: RunRecord) -> DurationStats | None:
        stats = self._durations.get((record.ref.service, record.ref.target))
        return stats if stats is not None and stats.count > 0 and stats.median_s > 0 else None

    def tick(self) -> None:
        """Refresh the time-relative columns (duration, checked): one ``dataChanged``."""
        self._emit_column_changed(_TIME_COLUMNS[0], _TIME_COLUMNS[-1], _TIME_ROLES)

    def _reindex(self) -> None:
        self._rows = {record.id: row for row, record in enumerate(self._records)}

    def _emit_rows_changed(self, first: int, last: int) -> None:
        self.dataChanged.emit(self.index(first, 0), self.index(last, self.columnCount() - 1))

    def _emit_column_changed(self, first: int, last: int, roles: list[int] | None = None) -> None:
        if not self._records:
            return
        top, bottom = self.index(0, first), self.index(len(self._records) - 1, last)
        if roles is None:
            self.dataChanged.emit(top, bottom)
        else:
            self.dataChanged.emit(top, bottom, roles)

    # -- data -------------------------------------------------------------------------------

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or index.parent().isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._records) and 0 <= column < self.columnCount()):
            return None
        record = self._records[row]
        role = int(role)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(record, column)
        if role == RecordRole:
            return record
        if role == SortRole:
            return self._sort_value(record, column)
        if role == Qt.ItemDataRole.DecorationRole:
            if column == COL_STATUS:
                return status_icon(record.status, stale=record.stale)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = self._tooltip(record, column)
            return plain_tooltip(tip) if tip else tip
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self._accessible(record, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column == COL_DURATION:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == ProgressRole:
            return self._progress(record) if column == COL_DURATION else None
        if role == Qt.ItemDataRole.FontRole:
            if record.stale and column in (COL_STATUS, COL_CHECKED):
                font = QFont()
                font.setItalic(True)
                return font
            return None
        return None

    def _display(self, record: RunRecord, column: int) -> str:
        snap = record.snapshot
        if column == COL_STATUS:
            label = status_label(snap.status)
            return f"{label} (stale)" if record.stale else label
        if column == COL_TARGET:
            return snap.ref.target
        if column == COL_RUN_ID:
            return snap.ref.run_id
        if column == COL_PROFILE:
            return self.profile_name(record.profile_id)
        if column == COL_STARTED:
            return format_time(snap.started_at, self._clock()) if snap.started_at else _DASH
        if column == COL_DURATION:
            return self._duration_text(record)
        if column == COL_CHECKED:
            return self._checked_text(record)
        if column == COL_MESSAGE:
            return _first_line(snap.message) if snap.message else ""
        if column == COL_SERVICE:
            return self.service_name(snap.ref.service)
        return ""

    def _elapsed(self, record: RunRecord) -> float | None:
        """Seconds: the finished run's duration, or the time a live run has been going."""
        snap = record.snapshot
        begin = snap.started_at or (snap.created_at if snap.ended_at else None)
        if snap.status.terminal:
            if begin is not None and snap.ended_at is not None:
                return max(0.0, (snap.ended_at - begin).total_seconds())
            return None
        if snap.started_at is not None:
            return max(0.0, (self._clock() - snap.started_at).total_seconds())
        return None

    def _duration_text(self, record: RunRecord) -> str:
        snap = record.snapshot
        elapsed = self._elapsed(record)
        if elapsed is None:
            if snap.status is RunStatus.PENDING and snap.created_at is not None:
                waited = (self._clock() - snap.created_at).total_seconds()
                return f"waiting {format_duration(waited)}"
            return _DASH
        text = format_duration(elapsed)
        stats = self.duration_stats(record) if snap.status is RunStatus.RUNNING else None
        if stats is not None:
            text += f" / ~{format_duration(stats.median_s)}"
        return text

    def _progress(self, record: RunRecord) -> float | None:
        if record.snapshot.status is not RunStatus.RUNNING:
            return None
        stats = self.duration_stats(record)
        elapsed = self._elapsed(record)
        if stats is None or elapsed is None:
            return None
        return min(1.0, max(0.0, elapsed / stats.median_s))

    def _checked_text(self, record: RunRecord) -> str:
        now = self._clock()
        if record.stale:
            if record.last_checked_at is None:
                return "stale, never checked"
            return f"stale since {format_time(record.last_checked_at, now)}"
        if record.last_checked_at is None:
            return "not yet"
        return format_ago(record.last_checked_at, now)

    def _tooltip(self, record: RunRecord, column: int) -> str | None:
        snap = record.snapshot
        if column == COL_STATUS:
            return status_tooltip(record)
        if column == COL_MESSAGE:
            return snap.message or None
        if column == COL_STARTED:
            lines = []
            if snap.created_at:
                lines.append(f"Created: {format_timestamp(snap.created_at)}")
            if snap.started_at:
                lines.append(f"Started: {format_timestamp(snap.started_at)}")
            else:
                lines.append("Not started yet.")
            if snap.ended_at:
                lines.append(f"Ended: {format_timestamp(snap.ended_at)}")
            return "\n".join(lines)
        if column == COL_DURATION:
            stats = self.duration_stats(record)
            if stats is None:
                return None
            return (
                f"Typical duration: ~{format_duration(stats.median_s)} "
                f"(median of the last {plural(stats.count, 'successful run')}; 90% took up to "
                f"{format_duration(stats.p90_s)})"
            )
        if column == COL_CHECKED:
            lines = []
            if record.last_checked_at is not None:
                lines.append(f"Last good check: {format_timestamp(record.last_checked_at)}")
            else:
                lines.append("No check has succeeded yet.")
            if record.stale:
                lines.append(f"The last check failed: {record.last_error or 'no answer'}")
                if record.last_attempt_at is not None:
                    lines.append(f"Last attempt: {format_timestamp(record.last_attempt_at)}")
            return "\n".join(lines)
        if column == COL_PROFILE:
            return f"Profile id: {record.profile_id}"
        if column == COL_TARGET:
            return snap.ref.target
        if column == COL_RUN_ID:
            return snap.ref.run_id
        if column == COL_SERVICE:
            return snap.ref.service
        return None

    def _accessible(self, record: RunRecord, column: int) -> str:
        if column == COL_STATUS:
            text = status_label(record.status)
            if record.snapshot.vendor_status:
                text += f", vendor status {record.snapshot.vendor_status}"
            if record.stale:
                text += ", stale: the last check failed"
            return text
        if column == COL_MESSAGE:
            return record.snapshot.message or "no message"
        if column == COL_DURATION:
            progress = self._progress(record)
            text = self._duration_text(record).replace(" / ~", " of about ")
            return f"{text}, {round(progress * 100)} percent" if progress is not None else text
        return self._display(record, column)

    def _sort_value(self, record: RunRecord, column: int) -> Any:
        snap = record.snapshot
        if column == COL_STATUS:
            return STATUS_ORDER.get(snap.status, len(STATUS_ORDER))
        if column == COL_STARTED:
            when = snap.started_at or snap.created_at or record.first_seen_at
            return when.timestamp()
        if column == COL_DURATION:
            elapsed = self._elapsed(record)
            return float(elapsed) if elapsed is not None else None
        if column == COL_CHECKED:
            return record.last_checked_at.timestamp() if record.last_checked_at else None
        if column == COL_MESSAGE:
            return (snap.message or "").casefold()
        return _natural_key(self._display(record, column))


def _blocks(rows: list[int]) -> Iterable[tuple[int, int]]:
    """Contiguous (first, last) runs of sorted row numbers."""
    if not rows:
        return
    first = prev = rows[0]
    for row in rows[1:]:
        if row != prev + 1:
            yield first, prev
            first = row
        prev = row
    yield first, prev


def _registry_names() -> dict[str, str]:
    try:
        from runmonitor.services import registry

        return {key: cls.display_name for key, cls in registry().items()}
    except Exception:  # pragma: no cover - the registry is part of the package
        return {}


# --------------------------------------------------------------------------------------------
# Filter and sort


class RunFilterProxy(QSortFilterProxyModel):
    """Filters runs by text, statuses, profile and service; sorts by :data:`SortRole`.

    The text filter is a case-insensitive substring match over the target, run id, profile
    name, vendor status, message and status label.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._statuses: frozenset[RunStatus] | None = None
        self._profile: str | None = None
        self._service: str | None = None
        self.setSortRole(SortRole)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setDynamicSortFilter(True)

    def set_text(self, text: str) -> None:
        folded = text.strip().casefold()
        if folded != self._text:
            self._change_filter(lambda: setattr(self, "_text", folded))

    def set_statuses(self, statuses: Iterable[RunStatus] | None) -> None:
        value = frozenset(statuses) if statuses is not None else None
        if value != self._statuses:
            self._change_filter(lambda: setattr(self, "_statuses", value))

    def set_profile(self, profile_id: object | None) -> None:
        value = str(profile_id) if profile_id is not None else None
        if value != self._profile:
            self._change_filter(lambda: setattr(self, "_profile", value))

    def set_service(self, key: str | None) -> None:
        if key != self._service:
            self._change_filter(lambda: setattr(self, "_service", key))

    @property
    def text(self) -> str:
        return self._text

    def record_at(self, row: int) -> RunRecord:
        """The record shown at proxy ``row``."""
        source = self.mapToSource(self.index(row, 0))
        return self._runs().record_at(source.row())

    def row_of(self, run_id: int) -> int | None:
        """The proxy row of the run with history id ``run_id``, or None when filtered out."""
        source_row = self._runs().row_of(run_id)
        if source_row is None:
            return None
        proxy = self.mapFromSource(self.sourceModel().index(source_row, 0))
        return proxy.row() if proxy.isValid() else None

    def _runs(self) -> RunTableModel:
        model = self.sourceModel()
        if not isinstance(model, RunTableModel):
            raise TypeError("RunFilterProxy needs a RunTableModel source")
        return model

    def _change_filter(self, apply: Callable[[], None]) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10+
            self.beginFilterChange()
            apply()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            apply()
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, RunTableModel):
            return super().filterAcceptsRow(source_row, source_parent)
        record = model.record_at(source_row)
        if self._statuses is not None and record.status not in self._statuses:
            return False
        if self._profile is not None and record.profile_id != self._profile:
            return False
        if self._service is not None and record.ref.service != self._service:
            return False
        if self._text:
            snap = record.snapshot
            haystack = (
                snap.ref.target,
                snap.ref.run_id,
                model.profile_name(record.profile_id),
                snap.vendor_status or "",
                snap.message or "",
                status_label(snap.status),
            )
            return any(self._text in part.casefold() for part in haystack)
        return True


# --------------------------------------------------------------------------------------------
# Progress bar under the duration text


class ProgressDelegate(QStyledItemDelegate):
    """Draws the cell text lifted a little, with a thin bar of :data:`ProgressRole` under it.

    Cells without a progress value are drawn exactly as the default delegate draws them. The
    bar's colours come from the palette (Highlight on Mid; HighlightedText when selected).
    """

    BAR_HEIGHT = 3
    MARGIN = 4

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        fraction = self._fraction(index)
        if fraction is None:
            super().paint(painter, option, index)
            return
        # Background and selection over the whole cell, then the text lifted above the bar.
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        background = QStyleOptionViewItem(opt)
        background.text = ""
        background.icon = QIcon()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, background, painter, widget)
        lifted = QStyleOptionViewItem(opt)
        lifted.rect = opt.rect.adjusted(0, 0, 0, -(self.BAR_HEIGHT + 1))
        lifted.backgroundBrush = QBrush(Qt.BrushStyle.NoBrush)
        lifted.state = lifted.state & ~QStyle.StateFlag.State_HasFocus
        lifted.features = lifted.features & ~QStyleOptionViewItem.ViewItemFeature.Alternate
        if opt.state & QStyle.StateFlag.State_Selected:
            # Selection is already painted; draw only the text in the highlighted text colour.
            lifted.state = lifted.state & ~QStyle.StateFlag.State_Selected
            palette = QPalette(lifted.palette)
            palette.setColor(QPalette.ColorRole.Text, palette.color(QPalette.ColorRole.HighlightedText))
            lifted.palette = palette
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, lifted, painter, widget)
        self._paint_bar(painter, opt, fraction)

    @staticmethod
    def _fraction(index: QModelIndex | QPersistentModelIndex) -> float | None:
        value = index.data(ProgressRole)
        if value is None:
            return None
        try:
            return min(1.0, max(0.0, float(value)))
        except (TypeError, ValueError):
            return None

    def _paint_bar(self, painter: QPainter, option: QStyleOptionViewItem, fraction: float) -> None:
        rect: QRect = option.rect
        palette: QPalette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        track_rect = QRect(
            rect.left() + self.MARGIN,
            rect.bottom() - self.BAR_HEIGHT - 1,
            max(0, rect.width() - 2 * self.MARGIN),
            self.BAR_HEIGHT,
        )
        if track_rect.width() <= 0:
            return
        if selected:
            fill = palette.color(QPalette.ColorRole.HighlightedText)
            track = QColor(fill)
            track.setAlphaF(0.35)
        else:
            fill = palette.color(QPalette.ColorRole.Highlight)
            track = palette.color(QPalette.ColorRole.Mid)
            track.setAlphaF(0.45)
        painter.save()
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.fillRect(track_rect, track)
            done = QRect(track_rect)
            done.setWidth(round(track_rect.width() * fraction))
            if done.width() > 0:
                painter.fillRect(done, fill)
        finally:
            painter.restore()
