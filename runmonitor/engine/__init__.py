"""Following runs: the polling scheduler, host health and back-off, creates, watches, events.

Imports ``domain``, ``services`` and ``storage``; no Qt. The parts: ``scheduler`` (due times),
``core`` (shared state), ``hosts``, ``polling`` (run and watch checks), ``creates``, ``health``,
``events`` (what the engine tells others) and ``poller`` (the :class:`PollingEngine`)."""

from runmonitor.domain.clock import Clock, SystemClock, WaitingClock
from runmonitor.engine.events import Health, ProfileHealth, QueuedForQuota, RunEvent
from runmonitor.engine.poller import PollingEngine

__all__ = [
    "Clock",
    "Health",
    "PollingEngine",
    "ProfileHealth",
    "QueuedForQuota",
    "RunEvent",
    "SystemClock",
    "WaitingClock",
]
