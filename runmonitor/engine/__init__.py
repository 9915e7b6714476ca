"""Following runs: the polling scheduler, host health and back-off, creates, watches, events.

Imports ``domain``, ``services`` and ``storage``; no Qt."""

from runmonitor.engine.poller import (
    Clock,
    Health,
    PollingEngine,
    ProfileHealth,
    QueuedForQuota,
    RunEvent,
    SystemClock,
)

__all__ = ["Clock", "Health", "PollingEngine", "ProfileHealth", "QueuedForQuota", "RunEvent", "SystemClock"]
