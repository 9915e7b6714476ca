"""Values to columns and rows to records: the conversions between the history's Python values and SQLite.

Times are stored as epoch seconds (REAL, UTC) and come back as aware UTC datetimes; a naive
datetime passed in is taken to be UTC. JSON columns are text. Also the small pure helpers the
store's queries need (LIKE patterns, percentiles, scrubbing of error texts).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.redact import secret_registry
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history.records import (
    IntentRecord,
    IntentState,
    RunRecord,
    TransitionRecord,
    WatchRecord,
)


def epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def utc(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def utc_req(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def epoch_now(at: datetime | None) -> float:
    ts = epoch(at)
    return datetime.now(UTC).timestamp() if ts is None else ts


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def status_of(value: str | None) -> RunStatus:
    try:
        return RunStatus(value or "UNKNOWN")
    except ValueError:
        return RunStatus.UNKNOWN


def scrub(text: str | None) -> str | None:
    return None if text is None else secret_registry.scrub(text)


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted ``ordered`` by linear interpolation between closest ranks.

    Position ``q * (n - 1)`` (numpy's default, ``statistics.quantiles(method="inclusive")``):
    the median of [1, 2, 3, 4] is 2.5 and its p90 is 3.7.
    """
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def snapshot_columns(snapshot: RunSnapshot, raw_json: str | None) -> tuple[Any, ...]:
    """The values of a run's columns that come from its snapshot after its status, in table order:
    vendor_status, detail, message, created_at, started_at, ended_at, raw, fetched_at."""
    return (
        snapshot.vendor_status,
        snapshot.detail,
        snapshot.message,
        epoch(snapshot.created_at),
        epoch(snapshot.started_at),
        epoch(snapshot.ended_at),
        raw_json,
        epoch(snapshot.fetched_at),
    )


def run_from_row(row: sqlite3.Row | tuple[Any, ...]) -> RunRecord:
    (
        id_,
        service,
        profile_id,
        target,
        run_id,
        extra,
        origin,
        status,
        vendor_status,
        detail,
        message,
        created_at,
        started_at,
        ended_at,
        raw,
        fetched_at,
        first_seen_at,
        last_checked_at,
        last_attempt_at,
        stale,
        last_error,
        last_error_kind,
        closed,
        closed_reason,
        closed_at,
        request,
    ) = row
    snapshot = RunSnapshot(
        ref=RunRef(service=service, target=target, run_id=run_id, extra=loads(extra) or {}),
        status=status_of(status),
        vendor_status=vendor_status,
        detail=detail,
        message=message,
        created_at=utc(created_at),
        started_at=utc(started_at),
        ended_at=utc(ended_at),
        raw=loads(raw),
        fetched_at=utc_req(fetched_at),
    )
    return RunRecord(
        id=id_,
        profile_id=profile_id,
        origin=origin,
        snapshot=snapshot,
        first_seen_at=utc_req(first_seen_at),
        last_checked_at=utc(last_checked_at),
        last_attempt_at=utc(last_attempt_at),
        stale=bool(stale),
        last_error=last_error,
        last_error_kind=last_error_kind,
        closed=bool(closed),
        closed_reason=closed_reason,
        request=loads(request),
        closed_at=utc(closed_at),
    )


def transition_from_row(row: tuple[Any, ...]) -> TransitionRecord:
    id_, run, at, from_status, to_status, vendor_status, detail, message, event, raw = row
    return TransitionRecord(
        id=id_,
        run=run,
        at=utc_req(at),
        from_status=None if from_status is None else status_of(from_status),
        to_status=status_of(to_status),
        vendor_status=vendor_status,
        detail=detail,
        message=message,
        event=event,
        raw=loads(raw),
    )


def intent_from_row(row: tuple[Any, ...]) -> IntentRecord:
    (
        id_,
        service,
        profile_id,
        target,
        request,
        client_run_id,
        created_at,
        updated_at,
        state,
        run,
        error,
    ) = row
    return IntentRecord(
        id=id_,
        service=service,
        profile_id=profile_id,
        target=target,
        request=loads(request),
        client_run_id=client_run_id,
        created_at=utc_req(created_at),
        updated_at=utc_req(updated_at),
        state=IntentState(state),
        run=run,
        error=error,
    )


def watch_from_row(row: tuple[Any, ...]) -> WatchRecord:
    id_, service, profile_id, target, added_at, last_checked_at, summary = row
    return WatchRecord(
        id=id_,
        service=service,
        profile_id=profile_id,
        target=target,
        added_at=utc_req(added_at),
        last_checked_at=utc(last_checked_at),
        summary=loads(summary),
    )
