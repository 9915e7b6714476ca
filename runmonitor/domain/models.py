"""Run models shared by the service clients, the poller, the history store and the UI."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runmonitor.domain.status import MappedStatus, RunStatus

JSONValue = Any
"""A decoded JSON document (dict, list, str, number, bool or None)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunRef(BaseModel):
    """Everything needed to ask a service about one run again, also after a restart.

    ``target`` is what the run belongs to: a Cognite pipeline externalId, a Marquez job
    name, an InVision data flow id, a Connhex export id or a Code Stream pipeline id.
    ``extra`` holds service-specific hints a restart needs (Cognite's report time, the
    Marquez namespace, the Connhex export type).
    """

    model_config = ConfigDict(frozen=True)

    service: str
    target: str
    run_id: str
    extra: dict[str, str] = Field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.service, self.target, self.run_id))


class RunSnapshot(BaseModel):
    """What a service said about a run at one moment, normalised."""

    model_config = ConfigDict(frozen=True)

    ref: RunRef
    status: RunStatus
    vendor_status: str | None = None
    detail: str | None = None
    message: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    """The newest sign of life the service reported for a running run (Cognite's latest 'seen' report)."""
    raw: JSONValue = None
    fetched_at: datetime = Field(default_factory=utcnow)

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def from_mapped(cls, ref: RunRef, mapped: MappedStatus, **kwargs: Any) -> RunSnapshot:
        return cls(ref=ref, status=mapped.status, vendor_status=mapped.vendor, detail=mapped.detail, **kwargs)

    def same_state(self, other: RunSnapshot | None) -> bool:
        """True when nothing a person would call a transition differs from ``other``."""
        if other is None:
            return False
        return (self.status, self.vendor_status, self.detail) == (
            other.status,
            other.vendor_status,
            other.detail,
        )


class WatchSnapshot(BaseModel):
    """The recent runs of a pipeline/job (newest first), plus service-specific health."""

    model_config = ConfigDict(frozen=True)

    service: str
    target: str
    runs: list[RunSnapshot]
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_seen: datetime | None = None
    last_message: str | None = None
    raw: JSONValue = None
    fetched_at: datetime = Field(default_factory=utcnow)


_OLDEST = datetime.min.replace(tzinfo=UTC)


def newest_first(snapshots: list[RunSnapshot]) -> list[RunSnapshot]:
    """Runs sorted most recently created (or started) first; the sort is stable."""
    return sorted(snapshots, key=lambda s: s.created_at or s.started_at or _OLDEST, reverse=True)


def summarize_runs(service: str, target: str, runs: list[RunSnapshot], **fields: Any) -> WatchSnapshot:
    """A WatchSnapshot whose health fields are derived from ``runs`` (newest first).

    ``fields`` override what the service knows better (e.g. Cognite's lastSeen).
    """

    def latest(status: RunStatus | None) -> datetime | None:
        times = [
            s.ended_at or s.started_at or s.created_at for s in runs if status is None or s.status is status
        ]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    derived: dict[str, Any] = {
        "last_success": latest(RunStatus.SUCCEEDED),
        "last_failure": latest(RunStatus.FAILED),
        "last_seen": latest(None),
        "last_message": runs[0].message if runs else None,
    }
    return WatchSnapshot(service=service, target=target, runs=runs, **{**derived, **fields})


class RunAction(StrEnum):
    """Actions on a run that some services offer."""

    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    ABORT = "abort"
    DELETE = "delete"


class Capability(StrEnum):
    """Optional capabilities a service declares; the UI and poller read these."""

    LIST_RUNS = "list_runs"
    WATCH = "watch"
    ACTIONS = "actions"
    IDEMPOTENT_CREATE = "idempotent_create"
