"""How runs read on the command line: status texts, event lines, tables and the JSON objects of
``--json`` (their shapes are documented in README and read by scripts: keep them stable)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent
from runmonitor.storage.history import RunRecord, TransitionRecord

#: Events that say something about the run besides its status; shown in front of it.
_STATUS_EVENTS = frozenset(
    {EventKind.STARTED, EventKind.SUCCEEDED, EventKind.FAILED, EventKind.CANCELLED, EventKind.UNKNOWN}
)


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC with a ``Z`` (for JSON), or None."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time in the local time zone (for people), or ``-``."""
    return value.astimezone().strftime(fmt) if value else "-"


def describe_status(status: RunStatus | str, vendor: str | None, detail: str | None = None) -> str:
    text = RunStatus(status).value
    if vendor:
        text += f" ({vendor})"
    if detail:
        text += f" - {detail}"
    return text


def describe_snapshot(snapshot: RunSnapshot) -> str:
    """``STATUS (vendor status) - detail: message``."""
    message = f": {snapshot.message}" if snapshot.message else ""
    return describe_status(snapshot.status, snapshot.vendor_status, snapshot.detail) + message


def snapshot_json(snapshot: RunSnapshot) -> str:
    """A snapshot as one JSON line (without the service's raw answer)."""
    return snapshot.model_dump_json(exclude={"raw"})


def run_times(record: RunRecord) -> tuple[datetime, float | None]:
    """When the run started (as well as it is known) and how long it took or has taken so far."""
    snap = record.snapshot
    start = snap.started_at or snap.created_at or record.first_seen_at
    if record.status.terminal:
        end = snap.ended_at or record.closed_at or record.last_checked_at
    elif record.closed:
        end = record.closed_at
    else:
        end = datetime.now(UTC)
    return start, ((end - start).total_seconds() if end is not None else None)


def status_cell(record: RunRecord) -> str:
    text = record.status.value
    if record.stale:
        text += " (stale)"
    if record.closed and not record.status.terminal:
        text += f" ({(record.closed_reason or 'closed').split(':')[0]})"
    return text


def run_json(record: RunRecord, names: dict[str, str]) -> dict[str, Any]:
    snap = record.snapshot
    _, duration = run_times(record)
    return {
        "id": record.id,
        "service": snap.ref.service,
        "profile": names.get(record.profile_id),
        "profile_id": record.profile_id,
        "target": snap.ref.target,
        "run_id": snap.ref.run_id,
        "status": snap.status.value,
        "vendor_status": snap.vendor_status,
        "detail": snap.detail,
        "message": snap.message,
        "origin": record.origin,
        "open": not record.closed,
        "closed_reason": record.closed_reason,
        "stale": record.stale,
        "last_error": record.last_error,
        "created_at": iso(snap.created_at),
        "started_at": iso(snap.started_at),
        "ended_at": iso(snap.ended_at),
        "first_seen_at": iso(record.first_seen_at),
        "last_checked_at": iso(record.last_checked_at),
        "duration_s": None if duration is None else round(duration, 3),
    }


def transition_json(item: TransitionRecord) -> dict[str, Any]:
    return {
        "time": iso(item.at),
        "event": item.event,
        "from": item.from_status.value if item.from_status else None,
        "to": item.to_status.value,
        "vendor_status": item.vendor_status,
        "detail": item.detail,
        "message": item.message,
    }


def event_json(event: RunEvent, names: dict[str, str]) -> dict[str, Any]:
    run, intent = event.run, event.intent
    snap = run.snapshot if run is not None else None
    return {
        "event": event.kind.value,
        "time": iso(event.at),
        "service": event.service or (snap.ref.service if snap else None),
        "profile": names.get(event.profile_id),
        "profile_id": event.profile_id,
        "id": run.id if run is not None else None,
        "target": snap.ref.target if snap else (intent.target if intent else None),
        "run_id": snap.ref.run_id if snap else None,
        "status": snap.status.value if snap else None,
        "previous": event.previous.value if event.previous else None,
        "vendor_status": snap.vendor_status if snap else None,
        "detail": snap.detail if snap else None,
        "message": event.message or (snap.message if snap else None),
        "quiet": event.quiet,
        "stale": run.stale if run is not None else False,
        "intent": intent.id if intent is not None else None,
    }


def event_line(event: RunEvent, names: dict[str, str]) -> str:
    """One line per event for people: time, run, what happened."""
    stamp = local(event.at, "%H:%M:%S")
    who = f"{event.service}/{names.get(event.profile_id, event.profile_id[:8])}"
    run = event.run
    if run is None:
        target = event.intent.target if event.intent is not None else ""
        what = event.kind.value.replace("_", " ")
        return f"{stamp} {who} {target}: {what}" + (f": {event.message}" if event.message else "")
    snap = run.snapshot
    text = describe_status(snap.status, snap.vendor_status, snap.detail)
    if event.kind not in _STATUS_EVENTS:
        text = f"{event.kind.value.replace('_', ' ')}, {text}"
    message = event.message or snap.message
    if message:
        text += f": {message}"
    return f"{stamp} #{run.id} {who} {snap.ref.target} run {snap.ref.run_id}: {text}"


def render_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), *(line(r) for r in rows)]
