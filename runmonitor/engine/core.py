"""The engine's shared state: what is followed, per-host bookkeeping, due times, events out.

:class:`EngineCore` holds everything the engine's parts (hosts, polling, creates, health)
read and write, and the small helpers they share; it does no I/O of its own. The parts are
mixed into :class:`~runmonitor.engine.poller.PollingEngine`, each in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from runmonitor.domain.clock import SystemClock, WaitingClock
from runmonitor.domain.errors import ProfileGone
from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunSnapshot
from runmonitor.domain.schedule import PollSchedule
from runmonitor.domain.status import RunStatus
from runmonitor.engine.events import RunEvent
from runmonitor.engine.scheduler import DueTimes
from runmonitor.services.base import CreateRequest, Service
from runmonitor.storage.history import AsyncHistory, IntentRecord, RunRecord, WatchRecord

log = logging.getLogger(__name__)

AnyService = Service[Any, Any]
ClientProvider = Callable[[str], AnyService]
"""Gives the live client of a profile id (raises :class:`ProfileGone` for an unknown profile)."""


@dataclass
class TrackedRun:
    record: RunRecord
    host: str
    due: float = 0.0
    generation: int = 0
    in_flight: bool = False
    again: bool = False
    failures: int = 0
    not_found: int = 0
    quiet_next: bool = False
    first_seen_mono: float = 0.0


@dataclass
class HostState:
    name: str
    in_flight: int = 0
    not_before: float = 0.0
    down: bool = False
    #: When this host stopped answering (wall clock), while it is down.
    down_since: datetime | None = None
    #: Monotonic time until which the service asked us to wait (429 / quota).
    limited_until: float = 0.0
    failures: int = 0
    limited: int = 0
    probing: bool = False
    waiting: deque[tuple[str, Any]] = field(default_factory=deque)


@dataclass
class QueuedCreate:
    intent: IntentRecord
    due: float
    attempts: int = 0
    #: The request as the person made it (with secrets); None after a restart.
    request: CreateRequest | None = None
    sending: bool = False


@dataclass
class EngineStats:
    polls: int = 0
    watch_polls: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    transitions: int = 0
    dropped_late_answers: int = 0
    #: Checks a fixed poller at the base interval would have made that the schedule skipped.
    saved: float = 0.0
    wakeups_detected: int = 0


class EngineCore:
    """State and shared helpers of the polling engine (see :mod:`runmonitor.engine.poller`)."""

    def __init__(
        self,
        history: AsyncHistory,
        clients: ClientProvider,
        *,
        schedule: PollSchedule | None = None,
        clock: WaitingClock | None = None,
        per_host_in_flight: int = 4,
        max_in_flight: int = 64,
        queue_on_quota: bool = True,
        catch_up_spread: float = 5.0,
        retention_days: float | None = 90.0,
        retention_every: float = 6 * 3600.0,
        seed: int | None = None,
    ) -> None:
        self.history = history
        self._clients = clients
        self.schedule = schedule or PollSchedule()
        self._profile_schedules: dict[str, PollSchedule] = {}
        self.clock: WaitingClock = clock or SystemClock()
        self.per_host_in_flight = per_host_in_flight
        self.max_in_flight = max_in_flight
        self.queue_on_quota = queue_on_quota
        self.catch_up_spread = catch_up_spread
        self.retention_days = retention_days
        self.retention_every = retention_every
        self.rng = random.Random(seed)
        self.stats = EngineStats()
        self._subscribers: list[Callable[[RunEvent], None]] = []
        self._runs: dict[int, TrackedRun] = {}
        self._watches: dict[int, tuple[WatchRecord, float, bool]] = {}  # id -> (record, due, baseline_done)
        self._queued: dict[str, QueuedCreate] = {}
        self._hosts: dict[str, HostState] = {}
        self._due = DueTimes(self.clock)
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduler: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._paused_all = False
        self._paused: set[str] = set()
        self._auth_needed: set[str] = set()
        #: Refusals of credentials in a row per profile, since its last good answer.
        self._auth_strikes: dict[str, int] = {}
        self._parked: list[tuple[str, Any]] = []
        self._last_tick: tuple[float, float] | None = None
        self._stopping = False
        #: Unchanged checks waiting to be written: run id -> (snapshot, checked at).
        self._quiet_checks: dict[int, tuple[RunSnapshot, datetime]] = {}
        self._quiet_flush: asyncio.Task[None] | None = None

    # -- subscribers ------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[RunEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: RunEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("a subscriber failed on %s", event.kind)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lookups ----------------------------------------------------------------------------
    def schedule_for(self, profile_id: str) -> PollSchedule:
        return self._profile_schedules.get(profile_id, self.schedule)

    def set_profile_schedule(self, profile_id: str, schedule: PollSchedule | None) -> None:
        if schedule is None:
            self._profile_schedules.pop(profile_id, None)
        else:
            self._profile_schedules[profile_id] = schedule

    def _client(self, profile_id: str) -> AnyService:
        return self._clients(profile_id)

    def _host_of(self, client: AnyService) -> str:
        base = str(client.config.base_url)
        return urlsplit(base).netloc or base

    def _host(self, name: str) -> HostState:
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = HostState(name)
        return host

    def _track(self, record: RunRecord, *, due: float, quiet: bool = False) -> TrackedRun:
        try:
            host = self._host_of(self._client(record.profile_id))
        except ProfileGone:
            host = f"profile:{record.profile_id}"
        age = max(0.0, (self.clock.now() - record.first_seen_at).total_seconds())
        tracked = TrackedRun(
            record=record,
            host=host,
            due=due,
            quiet_next=quiet,
            first_seen_mono=self.clock.monotonic() - age,
        )
        self._runs[record.id] = tracked
        self._push(due, "run", record.id)
        return tracked

    def followed(self) -> list[RunRecord]:
        return [t.record for t in self._runs.values()]

    def is_followed(self, run: int) -> bool:
        return run in self._runs

    def is_paused(self, profile_id: str | None = None) -> bool:
        if profile_id is None:
            return self._paused_all
        return self._paused_all or profile_id in self._paused or profile_id in self._auth_needed

    def _push(self, due: float, kind: str, key: Any) -> None:
        self._due.push(due, kind, key)

    def _kick(self) -> None:
        self._due.kick()

    def _reschedule_soon(self, kind: str, key: Any) -> None:
        due = self.clock.monotonic() + self.rng.uniform(0, self.catch_up_spread)
        if kind == "run" and key in self._runs:
            self._runs[key].due = due
        elif kind == "watch" and key in self._watches:
            record, _, baseline = self._watches[key]
            self._watches[key] = (record, due, baseline)
        elif kind == "intent" and key in self._queued:
            self._queued[key].due = due
        else:
            return
        self._push(due, kind, key)

    def _current_due(self, kind: str, key: Any) -> float | None:
        if kind == "run":
            tracked = self._runs.get(key)
            return tracked.due if tracked is not None and not tracked.in_flight else None
        if kind == "watch":
            entry = self._watches.get(key)
            return entry[1] if entry else None
        queued = self._queued.get(key)
        return queued.due if queued and not queued.sending else None

    def _profile_of(self, kind: str, key: Any) -> str | None:
        if kind == "run":
            return self._runs[key].record.profile_id
        if kind == "watch":
            return self._watches[key][0].profile_id
        return self._queued[key].intent.profile_id

    def _host_name(self, kind: str, key: Any) -> str:
        if kind == "run":
            return self._runs[key].host
        profile = self._profile_of(kind, key)
        try:
            return self._host_of(self._client(profile or ""))
        except ProfileGone:
            return f"profile:{profile}"

    def _set_due(self, kind: str, key: Any, due: float) -> None:
        if kind == "run":
            self._runs[key].due = due
        elif kind == "watch":
            record, _, baseline = self._watches[key]
            self._watches[key] = (record, due, baseline)
        else:
            self._queued[key].due = due
        self._push(due, kind, key)

    def _next_due(self, record: RunRecord, now: float, tracked: TrackedRun | None = None) -> float:
        schedule = self.schedule_for(record.profile_id)
        age = (
            now - tracked.first_seen_mono
            if tracked
            else (self.clock.now() - record.first_seen_at).total_seconds()
        )
        interval = schedule.interval_for(max(0.0, age))
        self.stats.saved += max(0.0, interval / schedule.base_interval - 1.0)
        return now + schedule.jittered(interval, self.rng)

    # -- helpers ----------------------------------------------------------------------------
    def _event(
        self,
        kind: EventKind,
        record: RunRecord,
        *,
        previous: RunStatus | None = None,
        quiet: bool = False,
        message: str | None = None,
        error_kind: str | None = None,
    ) -> RunEvent:
        return RunEvent(
            kind,
            self.clock.now(),
            record.ref.service,
            record.profile_id,
            run=record,
            previous=previous,
            quiet=quiet,
            message=message,
            error_kind=error_kind,
        )

    def _emit_intent(
        self, kind: EventKind, intent: IntentRecord, message: str, *, error_kind: str | None = None
    ) -> None:
        """Announce something that happened to a create (queued, unconfirmed, failed)."""
        self._emit(
            RunEvent(
                kind,
                self.clock.now(),
                intent.service,
                intent.profile_id,
                intent=intent,
                message=message,
                error_kind=error_kind,
            )
        )

    def in_flight(self) -> int:
        return self._in_flight
