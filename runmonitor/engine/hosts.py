"""Host health: a bounded number of checks per host, back-off, down, one probe, one catch-up.

Every check is admitted by its host first: it waits out a Retry-After or back-off, queues
behind the per-host limit, and while the host is down only one probe goes out at a time.
When a down host answers again, everything waiting on it gets one check, spread out.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from runmonitor.domain.errors import ConnectionFailed, ServiceError, TimedOut
from runmonitor.domain.schedule import PollSchedule
from runmonitor.engine.core import EngineCore, HostState

log = logging.getLogger(__name__)


class Hosts(EngineCore):
    """The per-host part of the engine: admission, release, failures, recovery."""

    def _admit(self, kind: str, key: Any, host: HostState, now: float) -> bool:
        """Whether a due check may start on ``host`` now; otherwise it is put back or queued."""
        if host.not_before > now:
            self._set_due(kind, key, host.not_before + self.rng.uniform(0, 0.25))
            return False
        if host.down and host.probing:
            host.waiting.append((kind, key))  # released by the catch-up round
            return False
        if host.in_flight >= self.per_host_in_flight:
            host.waiting.append((kind, key))
            return False
        if host.down:
            host.probing = True
        return True

    def _finished(self, host: HostState) -> None:
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

    def _host_answered(self, host: HostState) -> None:
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

    def _host_unreachable(
        self, host: HostState, exc: ServiceError, schedule: PollSchedule, now: float
    ) -> None:
        """A check on ``host`` failed: a connection that never reached the service marks the
        host down at once, one that may have reached it after three failures in a row."""
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

    def _hosts_woke(self) -> None:
        """After a suspend nothing is known about any host: every one is tried again."""
        for host in self._hosts.values():
            host.down = False
            host.down_since = None
            host.not_before = 0.0
