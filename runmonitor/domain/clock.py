"""Time as RunMonitor reads and waits on it: the Clock protocols and the real clock.

:class:`Clock` reads time (what the notification policy needs); :class:`WaitingClock` also
sleeps and waits, so the polling engine never waits on real asyncio time behind its clock's
back. Production uses :class:`SystemClock`; tests inject a clock that moves only when they
advance it, which wakes exactly the work that became due.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


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


class WaitingClock(Clock, Protocol):
    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on :meth:`monotonic`."""
        ...

    async def wait(self, event: asyncio.Event, within: float) -> bool:
        """Return once ``event`` is set (True) or ``within`` seconds have passed (False)."""
        ...


class SystemClock:
    """The real clocks, and asyncio's own sleeping and waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, within: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), within)
        except TimeoutError:
            return False
        return True
