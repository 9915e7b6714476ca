"""What the engine tells the rest of RunMonitor: run events, profile health, a queued create."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from runmonitor.domain.errors import ServiceError
from runmonitor.domain.events import EventKind
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import IntentRecord, RunRecord


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a run, a profile or a create, for the UI and notifications.

    ``quiet`` marks states found on the first check after start-up or after waking from
    sleep: they are true, but nobody should be alerted about them.
    """

    kind: EventKind
    at: datetime
    service: str
    profile_id: str
    run: RunRecord | None = None
    previous: RunStatus | None = None
    quiet: bool = False
    message: str | None = None
    error_kind: str | None = None
    intent: IntentRecord | None = None


class Health(StrEnum):
    """How one profile's connection is doing, worst first."""

    SIGN_IN = "sign-in needed"
    UNREACHABLE = "unreachable"
    RATE_LIMITED = "rate limited"
    STALE = "stale"
    PAUSED = "paused"
    OK = "OK"
    IDLE = "idle"


@dataclass(frozen=True)
class ProfileHealth:
    """A profile's connection health as the engine sees it now (for the status bar, tray, doctor)."""

    profile_id: str
    state: Health
    #: Runs and watches followed for this profile.
    followed: int = 0
    watches: int = 0
    #: Unreachable or stale since (the last good answer), when known.
    since: datetime | None = None
    #: Rate limited until, or the next attempt at an unreachable host.
    until: datetime | None = None
    #: When the next status check of this profile is due (None: nothing due, or paused).
    next_check: datetime | None = None
    #: The newest good answer for any of this profile's runs.
    last_ok: datetime | None = None
    detail: str = ""
    #: The host its runs are checked on ("" when nothing has been asked yet).
    host: str = ""


class QueuedForQuota(ServiceError):
    """The service's quota is full; the create is queued and will be sent when it frees."""

    kind = "queued"
    may_have_reached_service_default = False

    def __init__(self, message: str, *, intent: IntentRecord, retry_at: datetime, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.intent = intent
        self.retry_at = retry_at
