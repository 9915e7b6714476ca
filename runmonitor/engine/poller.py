"""The polling engine: follows runs and watches, spends as few requests as it can, loses nothing.

One scheduler task keeps a heap of due times (runs, watches and queued creates), so ten
thousand followed runs cost one timer, not ten thousand. It dispatches checks with at
most one request in flight per run and a bounded number per host, honours Retry-After
and rate limits per host, backs off on errors, treats a host that stops answering as
down (one probe at a time, then one catch-up round when it answers again), and detects
transitions by comparing normalised snapshots. Every answer is written to the history
before subscribers hear about it; nothing here imports Qt.

Typical use::

    engine = PollingEngine(history, clients)
    engine.subscribe(on_event)
    await engine.start()          # resumes every open run from the history
    record = await engine.create_run(profile_id, request)
    ...
    await engine.stop()
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from runmonitor.domain.errors import (
    AuthFailed,
    ConnectionFailed,
    Forbidden,
    NotFound,
    QuotaReached,
    RateLimited,
    ServerError,
    ServiceError,
    TimedOut,
)
from runmonitor.domain.events import EventKind, transition_event
from runmonitor.domain.models import Capability, RunAction, RunRef, RunSnapshot
from runmonitor.domain.redact import MASK, redact_json
from runmonitor.domain.schedule import PollSchedule
from runmonitor.domain.status import RunStatus
from runmonitor.services.base import CreateRequest, Service
from runmonitor.storage.history import AsyncHistory, IntentRecord, IntentState, RunRecord, WatchRecord

log = logging.getLogger(__name__)

AnyService = Service[Any, Any]
ClientProvider = Callable[[str], AnyService]
"""Gives the live client of a profile id (raises KeyError for an unknown profile)."""


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


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds that stop while the machine sleeps (scheduling)."""
        ...

    def wall(self) -> float:
        """Epoch seconds of the real wall clock, which keep going during sleep."""
        ...

    def now(self) -> datetime:
        """The time to compare with the services' timestamps (heartbeats, ages)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _Tracked:
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
class _Host:
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
class _QueuedCreate:
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


class PollingEngine:
    """Follows runs and watches across services; see the module docstring."""

    def __init__(
        self,
        history: AsyncHistory,
        clients: ClientProvider,
        *,
        schedule: PollSchedule | None = None,
        clock: Clock | None = None,
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
        self.clock: Clock = clock or SystemClock()
        self.per_host_in_flight = per_host_in_flight
        self.max_in_flight = max_in_flight
        self.queue_on_quota = queue_on_quota
        self.catch_up_spread = catch_up_spread
        self.retention_days = retention_days
        self.retention_every = retention_every
        self.rng = random.Random(seed)
        self.stats = EngineStats()
        self._subscribers: list[Callable[[RunEvent], None]] = []
        self._runs: dict[int, _Tracked] = {}
        self._watches: dict[int, tuple[WatchRecord, float, bool]] = {}  # id -> (record, due, baseline_done)
        self._queued: dict[str, _QueuedCreate] = {}
        self._hosts: dict[str, _Host] = {}
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
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

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every open run, watch and queued create from the history, then run."""
        if self._scheduler is not None:
            return
        self._stopping = False
        for intent in await self.history.mark_pending_unconfirmed():
            self._emit(
                RunEvent(
                    EventKind.CREATE_UNCONFIRMED,
                    self.clock.now(),
                    intent.service,
                    intent.profile_id,
                    intent=intent,
                    message="RunMonitor stopped before the service confirmed this create; "
                    "look it up or discard it",
                )
            )
        now = self.clock.monotonic()
        for record in await self.history.open_runs():
            self._track(record, due=now + self.rng.uniform(0, self.catch_up_spread), quiet=True)
        for watch in await self.history.watches():
            self._watches[watch.id] = (watch, now, watch.last_checked_at is not None)
            self._set_due("watch", watch.id, now + self.rng.uniform(0, self.catch_up_spread))
        for intent in await self.history.open_intents():
            if intent.state is IntentState.QUEUED:
                self._queued[intent.id] = _QueuedCreate(intent, now)
                self._set_due("intent", intent.id, now + self.rng.uniform(0, self.catch_up_spread))
        self._scheduler = asyncio.create_task(self._run(), name="runmonitor-poller")
        if self.retention_days is not None:
            self._spawn(self._maintain(), "runmonitor-retention")

    async def _maintain(self) -> None:
        """Apply the retention setting now and then; the deletes run in the history thread,
        in small batches, so neither the loop nor the database is held up."""
        while not self._stopping and self.retention_days is not None:
            try:
                deleted = await self.history.apply_retention(self.retention_days)
                if deleted:
                    log.info("retention: removed %d runs older than %g days", deleted, self.retention_days)
            except Exception:
                log.exception("applying the retention setting failed")
            await asyncio.sleep(self.retention_every)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start_empty(self) -> None:
        """Run the scheduler without taking anything over from the history.

        For a one-shot command (``runmonitor run create --wait``) that follows only what it
        creates itself: the history's open runs, watches and queued creates stay with the
        window, pending creates are not marked unconfirmed, and no retention runs here.
        """
        if self._scheduler is not None:
            return
        self._stopping = False
        self._scheduler = asyncio.create_task(self._run(), name="runmonitor-poller")

    async def stop(self) -> None:
        """Stop polling and wait for requests in flight; everything is already in the history."""
        self._stopping = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*([scheduler] if scheduler else []), *tasks, return_exceptions=True)
        quiet, self._quiet_flush = self._quiet_flush, None
        if quiet is not None:
            quiet.cancel()
            await asyncio.gather(quiet, return_exceptions=True)
        await self.flush_quiet_checks()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and not self._scheduler.done()

    # -- following runs ---------------------------------------------------------------------
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

    def _host(self, name: str) -> _Host:
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = _Host(name)
        return host

    def _track(self, record: RunRecord, *, due: float, quiet: bool = False) -> _Tracked:
        try:
            host = self._host_of(self._client(record.profile_id))
        except KeyError:
            host = f"profile:{record.profile_id}"
        age = max(0.0, (self.clock.now() - record.first_seen_at).total_seconds())
        tracked = _Tracked(
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

    async def add_run(
        self, profile_id: str, target: str, run_id: str, extra: dict[str, str] | None = None
    ) -> RunRecord:
        """Follow a run that already exists (e.g. started elsewhere), by its id."""
        client = self._client(profile_id)
        ref = RunRef(service=client.key, target=target, run_id=run_id, extra=extra or {})
        snapshot = await client.get_status(ref)
        record, inserted = await self.history.upsert_run(profile_id, snapshot, origin="added")
        if inserted:
            self._emit(self._event(EventKind.ADDED, record))
        if not record.closed and record.id not in self._runs:
            self._track(record, due=self._next_due(record, self.clock.monotonic()))
            self._kick()
        return record

    async def create_run(self, profile_id: str, request: CreateRequest) -> RunRecord:
        """Create a run: the intent is stored first, the request is sent once, the run followed.

        Raises the service's error; a full quota raises :class:`QueuedForQuota` when
        ``queue_on_quota`` is set, and the create is then sent again when the quota frees.
        """
        client = self._client(profile_id)
        request = client.prepare_request(request)
        intent = await self.history.add_intent(
            client.key,
            profile_id,
            request.target(),
            stored_request(request),
            client.client_run_id(request),
        )
        return await self._send_create(client, profile_id, intent, request)

    async def _send_create(
        self, client: AnyService, profile_id: str, intent: IntentRecord, request: CreateRequest
    ) -> RunRecord:
        try:
            snapshot = await client.create_run(request)
        except RateLimited as exc:
            # A refusal before processing: nothing was created, so sending it later is safe.
            if isinstance(exc, QuotaReached) and self.queue_on_quota:
                raise await self._queue_intent(intent, request, exc) from exc
            await self.history.set_intent_state(intent.id, IntentState.FAILED, error=str(exc))
            self._emit_create_problem(EventKind.CREATE_FAILED, intent, exc)
            raise
        except ServiceError as exc:
            if exc.may_have_reached_service:
                updated = await self.history.set_intent_state(
                    intent.id, IntentState.UNCONFIRMED, error=str(exc)
                )
                self._emit_create_problem(EventKind.CREATE_UNCONFIRMED, updated, exc)
            else:
                updated = await self.history.set_intent_state(intent.id, IntentState.FAILED, error=str(exc))
                self._emit_create_problem(EventKind.CREATE_FAILED, updated, exc)
            raise
        record, _ = await self.history.upsert_run(
            profile_id, snapshot, origin="created", request=stored_request(request)
        )
        await self.history.set_intent_state(intent.id, IntentState.CONFIRMED, run=record.id)
        self._emit(self._event(EventKind.CREATED, record))
        if not record.closed:
            self._track(record, due=self._next_due(record, self.clock.monotonic()))
            self._kick()
        return record

    async def _queue_intent(
        self, intent: IntentRecord, request: CreateRequest, exc: RateLimited
    ) -> QueuedForQuota:
        previous = self._queued.get(intent.id)
        attempts = (previous.attempts if previous else 0) + 1
        schedule = self.schedule_for(intent.profile_id)
        wait = exc.retry_after if exc.retry_after is not None else schedule.backoff(attempts, 30.0, self.rng)
        updated = await self.history.set_intent_state(intent.id, IntentState.QUEUED, error=str(exc))
        due = self.clock.monotonic() + wait
        self._queued[intent.id] = _QueuedCreate(updated, due, attempts, request)
        self._push(due, "intent", intent.id)
        self._kick()
        retry_at = self.clock.now() + timedelta(seconds=wait)
        self._emit(
            RunEvent(
                EventKind.CREATE_QUEUED,
                self.clock.now(),
                updated.service,
                updated.profile_id,
                intent=updated,
                message=f"{exc.message}; will try again at {retry_at:%H:%M:%S}",
                error_kind=exc.kind,
            )
        )
        return QueuedForQuota(
            f"{exc.message}. The run is queued and will be created when the quota frees.",
            intent=updated,
            retry_at=retry_at,
            service=exc.service,
            status_code=exc.status_code,
        )

    def _emit_create_problem(self, kind: EventKind, intent: IntentRecord, exc: ServiceError) -> None:
        self._emit(
            RunEvent(
                kind,
                self.clock.now(),
                intent.service,
                intent.profile_id,
                intent=intent,
                message=str(exc),
                error_kind=exc.kind,
            )
        )

    # -- creates whose outcome is unknown ---------------------------------------------------
    async def lookup_intent(self, intent_id: str) -> list[RunSnapshot]:
        """Runs on the service that may be this create: by its client-chosen id where the
        service takes one, else the target's runs created around the intent's time."""
        intent = await self.history.get_intent(intent_id)
        if intent is None:
            raise KeyError(intent_id)
        client = self._client(intent.profile_id)
        if intent.client_run_id:
            ref = client.ref_for_client_id(intent.target, intent.client_run_id)
            try:
                return [await client.get_status(ref)]
            except NotFound:
                return []
        if Capability.LIST_RUNS not in client.capabilities:
            return []
        request = client.request_model.model_validate(intent.request)
        try:
            # Enough of the newest runs to reach back past the intent on a busy pipeline.
            runs = await client.list_runs(client.list_target_for(request), limit=200)
        except NotFound:
            return []
        earliest = intent.created_at - timedelta(minutes=2)
        latest = intent.updated_at + timedelta(minutes=10)
        return [r for r in runs if r.created_at is None or earliest <= r.created_at <= latest]

    async def adopt_intent(self, intent_id: str, snapshot: RunSnapshot) -> RunRecord:
        """The person confirmed that ``snapshot`` is the run this create made: follow it."""
        intent = await self.history.get_intent(intent_id)
        if intent is None:
            raise KeyError(intent_id)
        record, inserted = await self.history.upsert_run(
            intent.profile_id, snapshot, origin="created", request=intent.request
        )
        await self.history.set_intent_state(intent_id, IntentState.CONFIRMED, run=record.id)
        if inserted:
            self._emit(self._event(EventKind.CREATED, record))
        if not record.closed and record.id not in self._runs:
            self._track(record, due=self.clock.monotonic())
            self._kick()
        return record

    async def discard_intent(self, intent_id: str) -> IntentRecord:
        self._queued.pop(intent_id, None)
        return await self.history.set_intent_state(intent_id, IntentState.DISCARDED)

    # -- watches ----------------------------------------------------------------------------
    async def watch(self, profile_id: str, target: str) -> WatchRecord:
        """Look for runs of ``target`` that someone else starts, and follow them."""
        client = self._client(profile_id)
        if Capability.WATCH not in client.capabilities:
            raise ValueError(f"{client.display_name} cannot watch a {client.target_label.lower()}")
        record = await self.history.add_watch(client.key, profile_id, target)
        if record.id not in self._watches:
            now = self.clock.monotonic()
            self._watches[record.id] = (record, now, record.last_checked_at is not None)
            self._set_due("watch", record.id, now)
            self._kick()
        return record

    async def unwatch(self, watch_id: int) -> None:
        self._watches.pop(watch_id, None)
        await self.history.remove_watch(watch_id)

    # -- control ----------------------------------------------------------------------------
    def pause(self, profile_id: str | None = None) -> None:
        if profile_id is None:
            self._paused_all = True
        else:
            self._paused.add(profile_id)

    def resume(self, profile_id: str | None = None) -> None:
        """Resume polling; runs that came due meanwhile get one catch-up round, spread out."""
        if profile_id is None:
            self._paused_all = False
            self._auth_needed.clear()
        else:
            self._paused.discard(profile_id)
            self._auth_needed.discard(profile_id)
        parked, self._parked = self._parked, []
        for kind, key in parked:
            self._reschedule_soon(kind, key)
        self._kick()

    def is_paused(self, profile_id: str | None = None) -> bool:
        if profile_id is None:
            return self._paused_all
        return self._paused_all or profile_id in self._paused or profile_id in self._auth_needed

    def health(self, profile_ids: list[str] | None = None) -> dict[str, ProfileHealth]:
        """Each profile's connection health (the given ones, else every one with runs or watches).

        One pass over the followed runs; cheap enough to call once a second.
        """
        now_mono, now = self.clock.monotonic(), self.clock.now()

        def at(mono: float) -> datetime:
            return now + timedelta(seconds=max(0.0, mono - now_mono))

        runs: dict[str, list[_Tracked]] = {}
        for tracked in self._runs.values():
            runs.setdefault(tracked.record.profile_id, []).append(tracked)
        watches: dict[str, list[float]] = {}
        for record, due, _ in self._watches.values():
            watches.setdefault(record.profile_id, []).append(due)
        wanted = profile_ids if profile_ids is not None else sorted(set(runs) | set(watches))
        out: dict[str, ProfileHealth] = {}
        for profile_id in wanted:
            mine = runs.get(profile_id, [])
            dues = [t.due for t in mine if not t.in_flight] + watches.get(profile_id, [])
            checked = [t.record.last_checked_at for t in mine if t.record.last_checked_at is not None]
            last_ok = max(checked) if checked else None
            # A profile with nothing followed has not asked its host anything: it stays idle.
            names = {t.host for t in mine}
            if watches.get(profile_id):
                try:
                    names.add(self._host_of(self._client(profile_id)))
                except KeyError:
                    pass
            hosts = [self._hosts[name] for name in sorted(names) if name in self._hosts]
            base = ProfileHealth(
                profile_id,
                Health.IDLE,
                followed=len(mine),
                watches=len(watches.get(profile_id, [])),
                last_ok=last_ok,
            )
            paused = self.is_paused(profile_id)
            next_check = None if paused or not dues else at(min(dues))
            down = next((h for h in hosts if h.down), None)
            limited = next((h for h in hosts if h.limited_until > now_mono), None)
            stale = [t.record for t in mine if t.record.stale]
            if profile_id in self._auth_needed:
                health = replace(base, state=Health.SIGN_IN, detail="sign-in needed")
            elif self._paused_all or profile_id in self._paused:
                health = replace(base, state=Health.PAUSED, detail="polling paused")
            elif down is not None:
                health = replace(
                    base,
                    state=Health.UNREACHABLE,
                    host=down.name,
                    since=down.down_since,
                    until=at(down.not_before),
                    next_check=next_check,
                    detail=next((r.last_error or "" for r in stale if r.last_error), ""),
                )
            elif limited is not None:
                health = replace(
                    base,
                    state=Health.RATE_LIMITED,
                    host=limited.name,
                    until=at(limited.limited_until),
                    next_check=next_check,
                    detail="the service asked us to slow down",
                )
            elif stale:
                since_values = [r.last_checked_at for r in stale if r.last_checked_at is not None]
                health = replace(
                    base,
                    state=Health.STALE,
                    since=min(since_values) if since_values else None,
                    next_check=next_check,
                    detail=stale[0].last_error or "",
                )
            else:
                state = Health.OK if mine or watches.get(profile_id) else Health.IDLE
                health = replace(base, state=state, next_check=next_check)
            out[profile_id] = health
        return out

    def credentials_changed(self, profile_id: str) -> None:
        """The profile's client was replaced (new key): drop answers in flight, check again."""
        self._auth_strikes.pop(profile_id, None)
        for tracked in self._runs.values():
            if tracked.record.profile_id == profile_id:
                tracked.generation += 1
                tracked.in_flight = False
        self.resume(profile_id)

    def refresh(self, run: int | None = None) -> None:
        """Check now: one run, or every followed run (spread over a few seconds)."""
        targets = [self._runs[run]] if run is not None and run in self._runs else list(self._runs.values())
        now = self.clock.monotonic()
        for tracked in targets:
            if tracked.in_flight:
                tracked.again = True
                continue
            spread = 0.0 if run is not None else self.rng.uniform(0, min(self.catch_up_spread, 1.0))
            tracked.due = now + spread
            self._push(tracked.due, "run", tracked.record.id)
        self._kick()

    async def perform(self, run: int, action: RunAction, *, reason: str | None = None) -> RunRecord:
        """Act on a run (cancel, pause, …); the answer supersedes any check in flight."""
        tracked = self._runs.get(run)
        record = tracked.record if tracked else await self.history.get_run(run)
        if record is None:
            raise KeyError(run)
        client = self._client(record.profile_id)
        snapshot = await client.perform(record.ref, action, reason=reason)
        if tracked is not None:
            tracked.generation += 1  # an answer to a check sent before the action is stale
            tracked.in_flight = False
        updated = await self._apply_snapshot(record, snapshot, quiet=False)
        if not updated.closed:
            if tracked is None:
                tracked = self._track(updated, due=self.clock.monotonic() + 1.0)
            else:
                tracked.record = updated
                tracked.due = self.clock.monotonic() + 1.0
                self._push(tracked.due, "run", run)
            self._kick()
        else:
            self._runs.pop(run, None)
        return updated

    async def forget(self, run: int) -> RunRecord:
        """Stop following a run (it stays in the history, closed)."""
        self._runs.pop(run, None)
        return await self.history.close_run(run, "removed by the user")

    # -- the scheduler ----------------------------------------------------------------------
    def _push(self, due: float, kind: str, key: Any) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), kind, key))

    def _kick(self) -> None:
        self._wakeup.set()

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
        except KeyError:
            return f"profile:{profile}"

    async def _run(self) -> None:
        try:
            while not self._stopping:
                self._detect_wake()
                self._dispatch_due()
                timeout = 1.0
                if self._heap:
                    timeout = max(0.0, min(timeout, self._heap[0][0] - self.clock.monotonic()))
                self._wakeup.clear()
                if timeout > 0:
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), timeout)
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:  # the scheduler must never die silently
            log.exception("the polling scheduler failed; restarting it")
            if not self._stopping:
                self._scheduler = asyncio.create_task(self._run(), name="runmonitor-poller")

    def _detect_wake(self) -> None:
        """After a suspend the wall clock jumps while the monotonic clock did not advance."""
        wall, mono = self.clock.wall(), self.clock.monotonic()
        if self._last_tick is not None:
            jump = (wall - self._last_tick[0]) - (mono - self._last_tick[1])
            if jump > 30.0:
                self.stats.wakeups_detected += 1
                log.info("woke up after about %.0f s asleep: one catch-up round", jump)
                for tracked in self._runs.values():
                    tracked.quiet_next = True
                    if not tracked.in_flight:
                        self._reschedule_soon("run", tracked.record.id)
                for host in self._hosts.values():
                    host.down = False
                    host.down_since = None
                    host.not_before = 0.0
        self._last_tick = (wall, mono)

    #: Checks due within this many seconds go out in the same round: fewer wake-ups.
    DISPATCH_SLACK = 0.02

    def _dispatch_due(self) -> None:
        now = self.clock.monotonic()
        horizon = now + self.DISPATCH_SLACK
        while self._heap and self._heap[0][0] <= horizon and self._in_flight < self.max_in_flight:
            due, _, kind, key = heapq.heappop(self._heap)
            current = self._current_due(kind, key)
            if current is None or current != due:
                continue  # superseded entry
            profile = self._profile_of(kind, key)
            if profile is not None and self.is_paused(profile):
                self._parked.append((kind, key))
                continue
            host = self._host(self._host_name(kind, key))
            if host.not_before > now:
                self._set_due(kind, key, host.not_before + self.rng.uniform(0, 0.25))
                continue
            if host.down and host.probing:
                host.waiting.append((kind, key))  # released by the catch-up round
                continue
            if host.in_flight >= self.per_host_in_flight:
                host.waiting.append((kind, key))
                continue
            if host.down:
                host.probing = True
            self._start(kind, key, host)

    def _set_due(self, kind: str, key: Any, due: float) -> None:
        if kind == "run":
            self._runs[key].due = due
        elif kind == "watch":
            record, _, baseline = self._watches[key]
            self._watches[key] = (record, due, baseline)
        else:
            self._queued[key].due = due
        self._push(due, kind, key)

    def _start(self, kind: str, key: Any, host: _Host) -> None:
        host.in_flight += 1
        self._in_flight += 1
        if kind == "run":
            tracked = self._runs[key]
            tracked.in_flight = True
            coro = self._poll_run(tracked, tracked.generation, host)
        elif kind == "watch":
            coro = self._poll_watch(key, host)
        else:
            coro = self._retry_intent(key, host)
        self._spawn(coro, f"runmonitor-{kind}-{key}")

    def _finished(self, host: _Host) -> None:
        host.in_flight -= 1
        self._in_flight -= 1
        host.probing = False
        # Release only as many waiting checks as there are free slots on this host; the rest
        # keep their place in line.
        free = self.per_host_in_flight - host.in_flight
        now = self.clock.monotonic()
        while host.waiting and not host.down and free > 0:
            kind, key = host.waiting.popleft()
            if self._current_due(kind, key) is None:
                continue
            self._set_due(kind, key, now)
            free -= 1
        if host.down:
            # The host must be probed again, and the check that just failed may never come
            # back (a create that is sent once, a run that ended): the oldest waiting check
            # becomes the next probe, when the back-off allows.
            while host.waiting:
                kind, key = host.waiting.popleft()
                if self._current_due(kind, key) is not None:
                    self._set_due(kind, key, max(now, host.not_before))
                    break
        self._kick()

    # -- one check of one run ---------------------------------------------------------------
    def _next_due(self, record: RunRecord, now: float, tracked: _Tracked | None = None) -> float:
        schedule = self.schedule_for(record.profile_id)
        age = (
            now - tracked.first_seen_mono
            if tracked
            else (self.clock.now() - record.first_seen_at).total_seconds()
        )
        interval = schedule.interval_for(max(0.0, age))
        self.stats.saved += max(0.0, interval / schedule.base_interval - 1.0)
        return now + schedule.jittered(interval, self.rng)

    async def _poll_run(self, tracked: _Tracked, generation: int, host: _Host) -> None:
        record = tracked.record
        try:
            client = self._client(record.profile_id)
            try:
                snapshot = await client.get_status(record.ref)
            except ServiceError as exc:
                if generation != tracked.generation or record.id not in self._runs:
                    self.stats.dropped_late_answers += 1
                    return
                await self._poll_failed(tracked, host, exc)
                return
            if generation != tracked.generation or record.id not in self._runs:
                self.stats.dropped_late_answers += 1
                return
            self.stats.polls += 1
            snapshot = self._check_heartbeat(record.profile_id, snapshot)
            tracked.not_found = 0
            recovering = record.stale or tracked.failures > 0
            tracked.failures = 0
            updated = await self._apply_snapshot(record, snapshot, quiet=tracked.quiet_next)
            tracked.quiet_next = False
            if recovering and record.stale:
                await self.history.record_event(record.id, "recovered")
                self._emit(self._event(EventKind.RECOVERED, updated))
            tracked.record = updated
            if updated.closed:
                self._runs.pop(record.id, None)
                return
            now = self.clock.monotonic()
            tracked.due = now if tracked.again else self._next_due(updated, now, tracked)
            tracked.again = False
            self._push(tracked.due, "run", record.id)
            self._host_answered(host)
            self._auth_strikes.pop(record.profile_id, None)
        except asyncio.CancelledError:
            raise
        except KeyError:
            log.warning("run %s belongs to profile %s, which no longer exists", record.id, record.profile_id)
            self._runs.pop(record.id, None)
        except Exception as exc:  # a bug must not stop this run from being followed
            log.exception("checking run %s failed unexpectedly", record.id)
            if record.id in self._runs:
                tracked.failures += 1
                tracked.due = self.clock.monotonic() + self.schedule.backoff(tracked.failures, 5.0, self.rng)
                self._push(tracked.due, "run", record.id)
                self.stats.errors["internal"] = self.stats.errors.get("internal", 0) + 1
                del exc
        finally:
            tracked.in_flight = False
            self._finished(host)

    def _check_heartbeat(self, profile_id: str, snapshot: RunSnapshot) -> RunSnapshot:
        """A running run whose heartbeats went silent is no longer known to be running."""
        beat = snapshot.heartbeat_at
        if beat is None or snapshot.status is not RunStatus.RUNNING:
            return snapshot
        schedule = self.schedule_for(profile_id)
        silent_for = (self.clock.now() - beat).total_seconds()
        limit = schedule.heartbeat_interval * schedule.heartbeat_multiple
        if silent_for <= limit:
            return snapshot
        return snapshot.model_copy(
            update={
                "status": RunStatus.UNKNOWN,
                # Stable text (the time of the last beat, not its age), so that every later
                # check of the same silence is not another transition.
                "detail": f"no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC (expected every "
                f"{_duration(schedule.heartbeat_interval)})",
            }
        )

    #: Refusals of a profile's credentials in a row (no good answer between) before it is
    #: paused as "sign-in needed".
    AUTH_STRIKES = 3
    #: The same for tokens refused right after a good login (the credentials work): a storm of
    #: expired tokens must not stop polling, a service that never takes its own tokens must.
    FRESH_TOKEN_STRIKES = 12

    #: Checks that changed nothing are written to the history in batches this often (seconds).
    QUIET_FLUSH_EVERY = 1.0

    async def _apply_snapshot(self, record: RunRecord, snapshot: RunSnapshot, *, quiet: bool) -> RunRecord:
        kind = transition_event(record.snapshot, snapshot)
        if (
            kind is None
            and snapshot.status is record.status
            and not snapshot.status.terminal
            and not record.stale
            and not record.closed
        ):
            # Nothing happened: keep the new details in memory now and write them with the
            # next batch (one transaction a second instead of one per check). A crash loses at
            # most that second of "last checked" times, never a status.
            now = self.clock.now()
            merged = snapshot.model_copy(
                update={
                    "ref": record.ref.model_copy(update={"extra": {**record.ref.extra, **snapshot.ref.extra}})
                }
            )
            self._quiet_checks[record.id] = (merged, now)
            if self._quiet_flush is None or self._quiet_flush.done():
                self._quiet_flush = asyncio.create_task(
                    self._flush_quiet_later(), name="runmonitor-quiet-checks"
                )
            return replace(record, snapshot=merged, last_checked_at=now, last_attempt_at=now)
        self._quiet_checks.pop(record.id, None)  # this full write supersedes it
        updated = await self.history.record_check(record.id, snapshot, event=kind.value if kind else None)
        if kind is not None:
            self.stats.transitions += 1
            self._emit(self._event(kind, updated, previous=record.status, quiet=quiet))
        return updated

    async def _poll_failed(self, tracked: _Tracked, host: _Host, exc: ServiceError) -> None:
        record = tracked.record
        self.stats.errors[exc.kind] = self.stats.errors.get(exc.kind, 0) + 1
        schedule = self.schedule_for(record.profile_id)
        now = self.clock.monotonic()
        if isinstance(exc, (AuthFailed, Forbidden)):
            strikes = self._auth_strikes.get(record.profile_id, 0) + 1
            self._auth_strikes[record.profile_id] = strikes
            limit = (
                self.FRESH_TOKEN_STRIKES
                if isinstance(exc, AuthFailed) and exc.fresh_token_refused
                else self.AUTH_STRIKES
            )
            if strikes < limit:
                # A token that was refused right after a good sign-in (a proxy that dropped
                # it, a clock jump, a revoked session) is tried again before anyone is asked
                # to sign in: the checks back off meanwhile.
                await self._mark_failure(tracked, exc, stale=True)
                tracked.failures += 1
                tracked.due = now + schedule.backoff(tracked.failures, schedule.base_interval, self.rng)
                self._push(tracked.due, "run", record.id)
                return
            # The profile pauses until its credentials change; the run keeps its last status.
            await self._mark_failure(tracked, exc, stale=False)
            await self._auth_needed_for(record.profile_id, exc, tracked.record)
            tracked.due = now + schedule.max_backoff
            self._push(tracked.due, "run", record.id)
            return
        if isinstance(exc, RateLimited):
            # Honour the service's wait exactly, for every run on this host.
            host.limited += 1
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else schedule.backoff(host.limited, 2.0, self.rng)
            )
            host.not_before = max(host.not_before, now + wait)
            host.limited_until = host.not_before
            tracked.due = host.not_before
            self._push(tracked.due, "run", record.id)
            await self._mark_failure(tracked, exc, stale=False)
            return
        if isinstance(exc, NotFound):
            tracked.not_found += 1
            if tracked.not_found >= schedule.not_found_limit:
                updated = await self.history.close_run(record.id, "gone: not found on the service")
                self._runs.pop(record.id, None)
                self._emit(self._event(EventKind.GONE, updated, message=exc.message))
                return
        tracked.failures += 1
        if isinstance(exc, (ConnectionFailed, TimedOut)) and not exc.may_have_reached_service:
            host.failures += 1
            host.down_since = host.down_since or self.clock.now()
            host.down = True
            host.not_before = now + schedule.backoff(host.failures, 2.0, self.rng)
        elif isinstance(exc, (ConnectionFailed, TimedOut)):
            host.failures += 1
            if host.failures >= 3:
                host.down_since = host.down_since or self.clock.now()
                host.down = True
                host.not_before = now + schedule.backoff(host.failures, 2.0, self.rng)
        retry_after = exc.retry_after if isinstance(exc, ServerError) else None
        wait = (
            retry_after
            if retry_after is not None
            else schedule.backoff(tracked.failures, schedule.base_interval, self.rng)
        )
        tracked.due = max(now + wait, host.not_before)
        self._push(tracked.due, "run", record.id)
        await self._mark_failure(tracked, exc, stale=True)

    async def _flush_quiet_later(self) -> None:
        await asyncio.sleep(self.QUIET_FLUSH_EVERY)
        await self.flush_quiet_checks()

    async def flush_quiet_checks(self) -> None:
        """Write the batched unchanged checks now."""
        items = [(run, snapshot, at) for run, (snapshot, at) in self._quiet_checks.items()]
        self._quiet_checks.clear()
        if not items:
            return
        try:
            await self.history.record_quiet_checks(items)
        except Exception:  # the next check writes again; a lost "last checked" time is harmless
            log.exception("writing %d unchanged checks to the history failed", len(items))

    async def _mark_failure(self, tracked: _Tracked, exc: ServiceError, *, stale: bool) -> None:
        record = tracked.record
        if record.id in self._quiet_checks:
            await self.flush_quiet_checks()  # keep the order: the good check, then this failure
        became_stale = stale and not record.stale
        updated = await self.history.record_failure(
            record.id, kind=exc.kind, message=str(exc), stale=stale or record.stale
        )
        tracked.record = updated
        if became_stale:
            self._emit(self._event(EventKind.STALE, updated, message=str(exc), error_kind=exc.kind))

    async def _auth_needed_for(self, profile_id: str, exc: ServiceError, record: RunRecord | None) -> None:
        if profile_id in self._auth_needed:
            return
        self._auth_needed.add(profile_id)
        if record is not None:
            await self.history.record_event(record.id, "auth_needed", detail=str(exc))
        service = record.ref.service if record is not None else ""
        self._emit(
            RunEvent(
                EventKind.AUTH_NEEDED,
                self.clock.now(),
                service,
                profile_id,
                run=record,
                message=str(exc),
                error_kind=exc.kind,
            )
        )

    def _host_answered(self, host: _Host) -> None:
        """A good answer from ``host``; after an outage every run waiting on it gets one
        check (a catch-up round, spread out), not one per missed interval."""
        was_down = host.down
        host.failures = 0
        host.limited = 0
        host.down = False
        host.down_since = None
        if not was_down:
            return
        log.info("%s answers again: one catch-up round", host.name)
        waiting, host.waiting = host.waiting, deque()
        for kind, key in waiting:
            self._reschedule_soon(kind, key)
        for tracked in self._runs.values():
            if tracked.host == host.name and not tracked.in_flight:
                self._reschedule_soon("run", tracked.record.id)

    # -- one look at one watch --------------------------------------------------------------
    async def _poll_watch(self, watch_id: int, host: _Host) -> None:
        entry = self._watches.get(watch_id)
        try:
            if entry is None:
                return
            watch, _, baseline_done = entry
            client = self._client(watch.profile_id)
            schedule = self.schedule_for(watch.profile_id)
            try:
                snapshot = await client.watch(watch.target)
            except ServiceError as exc:
                self.stats.errors[exc.kind] = self.stats.errors.get(exc.kind, 0) + 1
                if isinstance(exc, (AuthFailed, Forbidden)):
                    await self._auth_needed_for(watch.profile_id, exc, None)
                wait = (
                    exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after is not None else None
                )
                due = self.clock.monotonic() + (
                    wait if wait is not None else schedule.backoff(2, schedule.watch_interval, self.rng)
                )
                if watch_id in self._watches:
                    self._watches[watch_id] = (watch, due, baseline_done)
                    self._push(due, "watch", watch_id)
                return
            self.stats.watch_polls += 1
            self._host_answered(host)
            for run in snapshot.runs:
                record, inserted = await self.history.upsert_run(watch.profile_id, run, origin="watched")
                if not inserted:
                    continue
                # Runs that existed before the watch began are history, not news.
                self._emit(self._event(EventKind.DISCOVERED, record, quiet=not baseline_done))
                if not record.closed and record.id not in self._runs:
                    self._track(record, due=self._next_due(record, self.clock.monotonic()))
            summary = {
                "last_success": _iso(snapshot.last_success),
                "last_failure": _iso(snapshot.last_failure),
                "last_seen": _iso(snapshot.last_seen),
                "last_message": snapshot.last_message,
                "runs": len(snapshot.runs),
            }
            updated = await self.history.update_watch(watch_id, summary=summary, at=self.clock.now())
            due = self.clock.monotonic() + schedule.jittered(schedule.watch_interval, self.rng)
            if watch_id in self._watches:
                self._watches[watch_id] = (updated, due, True)
                self._push(due, "watch", watch_id)
        except asyncio.CancelledError:
            raise
        except KeyError:
            self._watches.pop(watch_id, None)
        except Exception:
            log.exception("watching %s failed unexpectedly", watch_id)
            if watch_id in self._watches:
                self._set_due("watch", watch_id, self.clock.monotonic() + 60.0)
        finally:
            self._finished(host)

    # -- queued creates ---------------------------------------------------------------------
    async def _retry_intent(self, intent_id: str, host: _Host) -> None:
        queued = self._queued.get(intent_id)
        try:
            if queued is None:
                return
            intent = queued.intent
            client = self._client(intent.profile_id)
            request = queued.request
            if request is None:
                if MASK in json.dumps(intent.request):
                    # Secret inputs are never stored, so this create cannot be rebuilt after a restart.
                    self._queued.pop(intent_id, None)
                    updated = await self.history.set_intent_state(
                        intent_id,
                        IntentState.FAILED,
                        error="Not sent: it had secret inputs, which RunMonitor does not store; "
                        "create the run again",
                    )
                    self._emit_create_problem(
                        EventKind.CREATE_FAILED,
                        updated,
                        ServiceError(updated.error or "", service=intent.service),
                    )
                    return
                request = client.request_model.model_validate(intent.request)
            queued.sending = True
            try:
                await self._send_create(client, intent.profile_id, intent, request)
            except QueuedForQuota:
                return  # queued again with a new due time
            except ServiceError:
                self._queued.pop(intent_id, None)  # recorded as failed/unconfirmed and announced
                return
            self._queued.pop(intent_id, None)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sending queued create %s failed unexpectedly", intent_id)
            self._queued.pop(intent_id, None)
        finally:
            current = self._queued.get(intent_id)
            if current is not None:
                current.sending = False
            self._finished(host)

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

    def in_flight(self) -> int:
        return self._in_flight


def stored_request(request: CreateRequest) -> dict[str, Any]:
    """The create request as history keeps it (for re-run and look-up): secret-named
    values, such as a pipeline input called "password", are masked."""
    data = redact_json(request.model_dump(mode="json"))
    return data if isinstance(data, dict) else {}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
