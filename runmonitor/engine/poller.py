"""The polling engine: follows runs and watches, spends as few requests as it can, loses nothing.

One scheduler task keeps a heap of due times (runs, watches and queued creates), so ten
thousand followed runs cost one timer, not ten thousand. It dispatches checks with at
most one request in flight per run and a bounded number per host, honours Retry-After
and rate limits per host, backs off on errors, treats a host that stops answering as
down (one probe at a time, then one catch-up round when it answers again), and detects
transitions by comparing normalised snapshots. Every answer is written to the history
before subscribers hear about it; nothing here imports Qt. Time is read and waited on only
through the injected clock (:class:`~runmonitor.domain.clock.WaitingClock`), so a test can
drive the engine with a fake one.

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
import logging
from typing import Any

from runmonitor.domain.events import EventKind
from runmonitor.engine.core import HostState, QueuedCreate
from runmonitor.engine.creates import Creates
from runmonitor.engine.health import HealthReport
from runmonitor.storage.history import IntentState

log = logging.getLogger(__name__)


class PollingEngine(Creates, HealthReport):
    """Follows runs and watches across services; see the module docstring.

    The parts live in their own modules: :mod:`~runmonitor.engine.core` (state),
    :mod:`~runmonitor.engine.scheduler` (due times), :mod:`~runmonitor.engine.hosts`,
    :mod:`~runmonitor.engine.polling`, :mod:`~runmonitor.engine.creates` and
    :mod:`~runmonitor.engine.health`; this class starts, stops, steers and dispatches.
    """

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every open run, watch and queued create from the history, then run."""
        if self._scheduler is not None:
            return
        self._stopping = False
        for intent in await self.history.mark_pending_unconfirmed():
            self._emit_intent(
                EventKind.CREATE_UNCONFIRMED,
                intent,
                "RunMonitor stopped before the service confirmed this create; look it up or discard it",
            )
        now = self.clock.monotonic()
        for record in await self.history.open_runs():
            self._track(record, due=now + self.rng.uniform(0, self.catch_up_spread), quiet=True)
        for watch in await self.history.watches():
            self._watches[watch.id] = (watch, now, watch.last_checked_at is not None)
            self._set_due("watch", watch.id, now + self.rng.uniform(0, self.catch_up_spread))
        for intent in await self.history.open_intents():
            if intent.state is IntentState.QUEUED:
                self._queued[intent.id] = QueuedCreate(intent, now)
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
            await self.clock.sleep(self.retention_every)

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

    # -- the dispatch loop --------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while not self._stopping:
                self._detect_wake()
                self._dispatch_due()
                await self._due.wait(1.0)
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
                self._hosts_woke()
        self._last_tick = (wall, mono)

    def _start(self, kind: str, key: Any, host: HostState) -> None:
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

    #: Checks due within this many seconds go out in the same round: fewer wake-ups.
    DISPATCH_SLACK = 0.02

    def _dispatch_due(self) -> None:
        now = self.clock.monotonic()
        horizon = now + self.DISPATCH_SLACK
        while (
            (earliest := self._due.earliest()) is not None
            and earliest <= horizon
            and self._in_flight < self.max_in_flight
        ):
            due, kind, key = self._due.pop()
            current = self._current_due(kind, key)
            if current is None or current != due:
                continue  # superseded entry
            profile = self._profile_of(kind, key)
            if profile is not None and self.is_paused(profile):
                self._parked.append((kind, key))
                continue
            host = self._host(self._host_name(kind, key))
            if self._admit(kind, key, host, now):
                self._start(kind, key, host)
