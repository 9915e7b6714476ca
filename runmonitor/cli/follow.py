"""Following runs from a command: the polling engine set up for the command line, an engine on a
throw-away history for runs that are not to be recorded, and Ctrl+C/SIGTERM as a request to stop.

The command line has no polling loop of its own: every run it waits for, with a profile or
without, is followed by :class:`runmonitor.engine.PollingEngine` and seen through its events.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from runmonitor.domain.schedule import PollSchedule
from runmonitor.engine import PollingEngine, RunEvent
from runmonitor.storage.history import AsyncHistory
from runmonitor.storage.settings.model import Settings


def fixed_schedule(base: PollSchedule, poll: float) -> PollSchedule:
    """``base`` with one check interval (and watch interval) of ``poll`` seconds at every age."""
    return PollSchedule.model_validate({**base.model_dump(), "steps": [(0.0, poll)], "watch_interval": poll})


def make_engine(
    settings: Settings, history: AsyncHistory, provider: Any, poll: float | None
) -> PollingEngine:
    """An engine like the window's (retention is left to the window)."""
    schedule = fixed_schedule(settings.polling, poll) if poll else settings.polling
    return PollingEngine(history, provider, schedule=schedule, retention_days=None, catch_up_spread=1.0)


@asynccontextmanager
async def unrecorded_engine(
    clients: dict[str, Any], poll: float, on_event: Callable[[RunEvent], None]
) -> AsyncIterator[PollingEngine]:
    """A running engine that follows only what it is given, on a history in a temporary folder
    that is deleted afterwards: for runs made with ``--sim``/``--conn`` (and the console demo),
    which go straight to the service and are recorded nowhere.

    ``clients`` maps the ids the caller uses in place of profile ids to open clients. A full
    quota is an error here (nothing would send a queued create later).
    """
    with tempfile.TemporaryDirectory(prefix="runmonitor-") as folder:
        history = await AsyncHistory.open(Path(folder) / "history.sqlite3")
        try:
            engine = PollingEngine(
                history,
                clients.__getitem__,
                schedule=fixed_schedule(PollSchedule(), poll),
                retention_days=None,
                queue_on_quota=False,
            )
            engine.subscribe(on_event)
            await engine.start_empty()
            try:
                yield engine
            finally:
                await engine.stop()
        finally:
            await history.close()


class StopSignals:
    """Ctrl+C and SIGTERM set ``stop`` instead of interrupting, so the command can end cleanly
    (engine stopped, history closed). Where the loop takes no signal handlers (Windows),
    Ctrl+C still raises KeyboardInterrupt and ``main`` exits with 130."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.received: int | None = None
        self._installed: list[int] = []

    def _fire(self, signum: int) -> None:
        self.received = signum
        self.stop.set()

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._fire, int(signum))
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(signum)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._installed:
            loop.remove_signal_handler(signum)
