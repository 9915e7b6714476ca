"""A fake engine clock and a driver that advances it (with the simulator's clock) for tests.

:class:`FakeClock` is a :class:`~runmonitor.domain.clock.WaitingClock` whose time moves only
when a test advances it; advancing wakes exactly the sleeps and waits that became due. When
it is given a simulator, the simulator's clock is advanced with it at the simulator's time
scale, so "one engine second" stays "``time_scale`` simulated seconds" as with a real clock.

:class:`Driver` steps an engine through time: it lets the checks in flight land (real HTTP
to the simulator and the history's thread still take real time), then jumps the clock to
the next timer. No test waits in real time to prove that nothing happened: it advances the
engine's clock past the moment something would have happened, and then looks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runmonitor.engine import PollingEngine


@dataclass(order=True)
class _Timer:
    deadline: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    event: asyncio.Event | None = field(compare=False, default=None)

    def woken(self) -> bool:
        return self.future.done() or (self.event is not None and self.event.is_set())


class FakeClock:
    """Monotonic and wall time that move only when the test says so; sleeps and waits on them."""

    def __init__(self, sim: Any = None, *, now_from_sim: bool = False) -> None:
        self.mono = 1000.0
        #: Seconds the test advanced this clock, in all.
        self.advanced = 0.0
        #: Seconds the machine "slept": the wall clock jumped while the monotonic one stood.
        self.slept = 0.0
        self.sim = sim
        self.now_from_sim = now_from_sim
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    # -- Clock ------------------------------------------------------------------------------
    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        # Real time plus every advance and "sleep": the history stamps records with the real
        # clock, so the engine's ages and "last checked" times stay in step with it. Scheduling
        # reads only the monotonic clock, which moves only when the test advances it.
        return time.time() + self.advanced + self.slept

    def now(self) -> datetime:
        if self.now_from_sim and self.sim is not None:
            return datetime.fromtimestamp(self.sim.clock.now(), UTC)
        return datetime.fromtimestamp(self.wall(), UTC)

    # -- WaitingClock -----------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        timer = self._add(seconds, None)
        try:
            await timer.future
        finally:
            self._timers.remove(timer)

    async def wait(self, event: asyncio.Event, within: float) -> bool:
        if event.is_set():
            return True
        timer = self._add(within, event)
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiter, timer.future}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            self._timers.remove(timer)
        return event.is_set()

    def _add(self, seconds: float, event: asyncio.Event | None) -> _Timer:
        timer = _Timer(
            self.mono + seconds, next(self._seq), asyncio.get_running_loop().create_future(), event
        )
        self._timers.append(timer)
        return timer

    # -- for tests --------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move time on (and the simulator's clock with it); wake what became due."""
        if seconds < 0:
            raise ValueError("time does not go back")
        self.mono += seconds
        self.advanced += seconds
        if self.sim is not None:
            self.sim.clock.advance(seconds * self.sim.clock.scale)
        for timer in self._timers:
            if timer.deadline <= self.mono and not timer.future.done():
                timer.future.set_result(None)

    def suspend(self, seconds: float) -> None:
        """The laptop sleeps: the wall clock jumps, the monotonic clock does not move."""
        self.slept += seconds

    def next_deadline(self) -> float | None:
        pending = [t.deadline for t in self._timers if not t.woken()]
        return min(pending) if pending else None

    def quiet(self) -> bool:
        """True when everything that sleeps or waits on this clock is blocked (none was woken
        and has yet to run)."""
        return not any(t.woken() for t in self._timers)

    def waiting_on_events(self) -> int:
        return sum(1 for t in self._timers if t.event is not None and not t.woken())


class Driver:
    """Steps one engine through time on its :class:`FakeClock`."""

    def __init__(self, engine: PollingEngine, clock: FakeClock, *, real_timeout: float = 30.0) -> None:
        self.engine = engine
        self.clock = clock
        self.real_timeout = real_timeout

    def _settled(self) -> bool:
        if self.engine.in_flight() or not self.clock.quiet():
            return False
        # A running scheduler is settled only while it waits for the next due time.
        return not self.engine.running or self.clock.waiting_on_events() > 0

    async def settle(self) -> None:
        """Let everything that is due now run to its end (checks in flight land)."""
        deadline = time.monotonic() + self.real_timeout
        while True:
            for _ in range(4):
                await asyncio.sleep(0)
            if self._settled():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the engine did not settle in {self.real_timeout} real seconds")
            await asyncio.sleep(0.001)  # real I/O: the simulator's answers, the history's thread

    async def _settle_or(self, predicate: Callable[[], bool]) -> bool:
        """Settle, unless ``predicate`` holds first (then True)."""
        deadline = time.monotonic() + self.real_timeout
        while True:
            for _ in range(4):
                await asyncio.sleep(0)
            if predicate():
                return True
            if self._settled():
                return False
            if time.monotonic() > deadline:
                raise AssertionError(f"the engine did not settle in {self.real_timeout} real seconds")
            await asyncio.sleep(0.001)

    async def advance(self, seconds: float) -> None:
        """Move the engine's clock on by exactly ``seconds``, through every timer on the way."""
        end = self.clock.monotonic() + seconds
        while True:
            await self.settle()
            due = self.clock.next_deadline()
            if due is None or due > end:
                self.clock.advance(max(0.0, end - self.clock.monotonic()))
                await self.settle()
                return
            self.clock.advance(max(0.0, due - self.clock.monotonic()))

    async def until(
        self,
        predicate: Callable[[], bool],
        *,
        within: float = 60.0,
        what: str = "condition",
        in_flight: bool = False,
    ) -> float:
        """Advance timer by timer until ``predicate`` holds; fails after ``within`` engine seconds.

        ``in_flight``: also look while checks are still under way (for a test that acts while
        one is in flight), not only once they have landed. Returns the engine seconds it took.
        """
        start = self.clock.monotonic()
        end = start + within
        while True:
            if in_flight:
                if await self._settle_or(predicate):
                    return self.clock.monotonic() - start
            else:
                await self.settle()
            if predicate():
                return self.clock.monotonic() - start
            due = self.clock.next_deadline()
            if due is None or due > end:
                raise AssertionError(f"{what} did not happen within {within} s on the engine's clock")
            self.clock.advance(max(0.0, due - self.clock.monotonic()))
