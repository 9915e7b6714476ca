"""What can happen to a run, a profile or a create: the kinds of event, and which change is which."""

from __future__ import annotations

from enum import StrEnum

from runmonitor.domain.models import RunSnapshot
from runmonitor.domain.status import RunStatus


class EventKind(StrEnum):
    CREATED = "created"
    DISCOVERED = "discovered"
    ADDED = "added"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    CHANGED = "changed"
    STALE = "stale"
    RECOVERED = "recovered"
    AUTH_NEEDED = "auth_needed"
    GONE = "gone"
    CREATE_QUEUED = "create_queued"
    CREATE_UNCONFIRMED = "create_unconfirmed"
    CREATE_FAILED = "create_failed"


_STATUS_EVENTS = {
    RunStatus.RUNNING: EventKind.STARTED,
    RunStatus.SUCCEEDED: EventKind.SUCCEEDED,
    RunStatus.FAILED: EventKind.FAILED,
    RunStatus.CANCELLED: EventKind.CANCELLED,
    RunStatus.UNKNOWN: EventKind.UNKNOWN,
    RunStatus.PENDING: EventKind.CHANGED,
}


def transition_event(previous: RunSnapshot | None, current: RunSnapshot) -> EventKind | None:
    """The event a change from ``previous`` to ``current`` is, or None when nothing changed."""
    if current.same_state(previous):
        return None
    if previous is not None and previous.status is current.status:
        return EventKind.CHANGED
    return _STATUS_EVENTS[current.status]
