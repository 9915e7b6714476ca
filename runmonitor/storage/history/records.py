"""The records the run history hands out (runs, transitions, create intents, watches), and its error.

Plain frozen dataclasses and enums: what :class:`~runmonitor.storage.history.store.HistoryStore`
returns and takes. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from runmonitor.domain.errors import RunMonitorError
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus


class HistoryError(RunMonitorError):
    """The history database cannot be opened or used. The message is meant for people."""


class RunOrigin(StrEnum):
    """How a run came into the history (``RunRecord.origin``)."""

    CREATED = "created"
    ADDED = "added"
    WATCHED = "watched"


class IntentState(StrEnum):
    PENDING = "pending"
    """Written before the create request goes out."""
    CONFIRMED = "confirmed"
    """The service created the run; ``IntentRecord.run`` points at it."""
    FAILED = "failed"
    """The service refused; nothing was created."""
    UNCONFIRMED = "unconfirmed"
    """Unknown outcome: found pending at start-up, or the create failed in a way that may have
    reached the service."""
    QUEUED = "queued"
    """Waiting for a quota (e.g. Connhex queued exports); will be retried."""
    DISCARDED = "discarded"
    """The user gave up on it."""


OPEN_INTENT_STATES: Final = frozenset({IntentState.PENDING, IntentState.UNCONFIRMED, IntentState.QUEUED})
RESOLVED_INTENT_STATES: Final = frozenset({IntentState.CONFIRMED, IntentState.FAILED, IntentState.DISCARDED})


@dataclass(frozen=True)
class RunRecord:
    id: int
    profile_id: str
    origin: str
    snapshot: RunSnapshot
    first_seen_at: datetime
    last_checked_at: datetime | None
    last_attempt_at: datetime | None
    stale: bool
    last_error: str | None
    last_error_kind: str | None
    closed: bool
    closed_reason: str | None
    request: dict[str, Any] | None
    closed_at: datetime | None = None

    @property
    def ref(self) -> RunRef:
        return self.snapshot.ref

    @property
    def status(self) -> RunStatus:
        return self.snapshot.status

    @property
    def terminal(self) -> bool:
        return self.snapshot.status.terminal


@dataclass(frozen=True)
class TransitionRecord:
    id: int
    run: int
    at: datetime
    from_status: RunStatus | None
    to_status: RunStatus
    vendor_status: str | None
    detail: str | None
    message: str | None
    event: str
    raw: Any


@dataclass(frozen=True)
class IntentRecord:
    id: str
    service: str
    profile_id: str
    target: str
    request: dict[str, Any]
    client_run_id: str | None
    created_at: datetime
    updated_at: datetime
    state: IntentState
    run: int | None
    error: str | None


@dataclass(frozen=True)
class WatchRecord:
    id: int
    service: str
    profile_id: str
    target: str
    added_at: datetime
    last_checked_at: datetime | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class DurationStats:
    """Durations of recent successful runs, in seconds (percentiles by linear interpolation)."""

    count: int
    median_s: float
    p90_s: float
