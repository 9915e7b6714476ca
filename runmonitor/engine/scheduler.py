"""Due times: one heap of (when, kind, key) entries and the one wait until the next is due.

Pure bookkeeping with an injected clock: it reads the time and waits through the clock, so
a test that advances a fake clock wakes exactly the work that became due, while production
(:class:`~runmonitor.domain.clock.SystemClock`) sleeps on asyncio as before. Entries are
never removed: the engine skips an entry whose key has a newer due time (superseded).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

from runmonitor.domain.clock import WaitingClock


class DueTimes:
    """A min-heap of due times; ten thousand followed runs cost one timer, not ten thousand."""

    def __init__(self, clock: WaitingClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, kind: str, key: Any) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), kind, key))

    def kick(self) -> None:
        """Wake the wait now (something new may be due)."""
        self._wakeup.set()

    def earliest(self) -> float | None:
        """The earliest due time, or None when nothing is due at all."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[float, str, Any]:
        """Take the earliest entry: (due, kind, key)."""
        due, _, kind, key = heapq.heappop(self._heap)
        return due, kind, key

    async def wait(self, longest: float = 1.0) -> None:
        """Wait until the earliest entry is due, a :meth:`kick`, or ``longest`` seconds."""
        timeout = longest
        if self._heap:
            timeout = max(0.0, min(timeout, self._heap[0][0] - self.clock.monotonic()))
        self._wakeup.clear()
        if timeout > 0:
            await self.clock.wait(self._wakeup, timeout)
        else:
            await asyncio.sleep(0)
