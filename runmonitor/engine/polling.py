"""Run and watch checks: one look at a run or a watch, and what its answer changes.

A run's answer is compared with its last snapshot (a transition is written and announced,
an unchanged check is batched), a failure marks it stale, backs it off or pauses its
profile for sign-in; a watch's answer adds the runs someone else started. Every answer is
written to the history before subscribers hear about it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime

from runmonitor.domain.errors import (
    AuthFailed,
    Forbidden,
    NotFound,
    ProfileGone,
    RateLimited,
    ServerError,
    ServiceError,
)
from runmonitor.domain.events import EventKind, transition_event
from runmonitor.domain.models import Capability, RunAction, RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.domain.text import format_duration
from runmonitor.engine.core import HostState, TrackedRun
from runmonitor.engine.events import RunEvent
from runmonitor.engine.hosts import Hosts
from runmonitor.storage.history import RunRecord, WatchRecord

log = logging.getLogger(__name__)


class Polling(Hosts):
    """Following runs and watches: adding, acting on and checking them."""

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

    # -- watches ---------------------------------------------------------------------------------
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

    # -- one check of one run ---------------------------------------------------------------
    async def _poll_run(self, tracked: TrackedRun, generation: int, host: HostState) -> None:
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
        except ProfileGone:
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
                f"{format_duration(schedule.heartbeat_interval)})",
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

    async def _poll_failed(self, tracked: TrackedRun, host: HostState, exc: ServiceError) -> None:
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
        self._host_unreachable(host, exc, schedule, now)
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
        await self.clock.sleep(self.QUIET_FLUSH_EVERY)
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

    async def _mark_failure(self, tracked: TrackedRun, exc: ServiceError, *, stale: bool) -> None:
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

    # -- one look at one watch --------------------------------------------------------------
    async def _poll_watch(self, watch_id: int, host: HostState) -> None:
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
        except ProfileGone:
            self._watches.pop(watch_id, None)
        except Exception:
            log.exception("watching %s failed unexpectedly", watch_id)
            if watch_id in self._watches:
                self._set_due("watch", watch_id, self.clock.monotonic() + 60.0)
        finally:
            self._finished(host)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
