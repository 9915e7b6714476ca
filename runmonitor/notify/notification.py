"""What a notification is: its outcome, its urgency and the :class:`Notification` shown to the person.

``Notification.key`` is stable: a notification with the key of an earlier one replaces it.
Failures and fixes of a target share one key, so "fixed" replaces the sticky failure; a run's
start, success or cancellation share the run's key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from runmonitor.domain.events import EventKind
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent

# FIXED and COALESCED (the kinds a notification has beyond the engine's events) live with the
# preferences in storage/settings/model.py, which the settings file's hook configuration needs.
from runmonitor.storage.settings.model import COALESCED, FIXED

__all__ = ["COALESCED", "FIXED", "Notification", "Outcome", "Urgency", "event_outcome"]

Urgency = Literal["low", "normal", "critical"]


class Outcome(StrEnum):
    """What a notification is about; events are grouped by profile and outcome."""

    FAILED = "failed"
    AUTH_NEEDED = "auth_needed"
    CREATE_UNCONFIRMED = "create_unconfirmed"
    CANCELLED = "cancelled"
    FIXED = "fixed"
    SUCCEEDED = "succeeded"
    STARTED = "started"


_STATUS_OUTCOMES = {
    RunStatus.FAILED: Outcome.FAILED,
    RunStatus.SUCCEEDED: Outcome.SUCCEEDED,
    RunStatus.CANCELLED: Outcome.CANCELLED,
    RunStatus.RUNNING: Outcome.STARTED,
}
_KIND_OUTCOMES = {
    EventKind.FAILED: Outcome.FAILED,
    EventKind.SUCCEEDED: Outcome.SUCCEEDED,
    EventKind.CANCELLED: Outcome.CANCELLED,
    EventKind.STARTED: Outcome.STARTED,
    EventKind.AUTH_NEEDED: Outcome.AUTH_NEEDED,
    EventKind.CREATE_UNCONFIRMED: Outcome.CREATE_UNCONFIRMED,
}


def event_outcome(event: RunEvent) -> Outcome | None:
    """What ``event`` would be notified as (a run found by watching counts by its status), or None."""
    if event.kind is EventKind.DISCOVERED:
        return _STATUS_OUTCOMES.get(event.run.status) if event.run is not None else None
    return _KIND_OUTCOMES.get(event.kind)


@dataclass(frozen=True)
class Notification:
    """One thing to show. All text is plain text; ``key`` is stable for replacing."""

    key: str
    title: str
    body: str
    urgency: Urgency
    sticky: bool
    service: str
    """Service key; empty for a summary across services."""
    profile_id: str
    """Empty for a summary across profiles."""
    run_ids: tuple[int, ...]
    """History row ids of the runs concerned; a click opens the first."""
    kind: str
    """An :class:`EventKind` value, :data:`FIXED` or :data:`COALESCED`."""
    at: datetime
    """When the newest event it carries happened."""
    profile_name: str = ""
    count: int = 1
    """How many events it carries."""
    url: str | None = None
    """The run in the vendor's UI (single-run notifications, where the service has a link)."""
    intent_ids: tuple[str, ...] = ()
    """Creates whose outcome is unknown (creation unconfirmed): a click opens their banner."""
    events: tuple[RunEvent, ...] = field(default=(), repr=False, compare=False)
    """The events it was made from (for hooks and details)."""
