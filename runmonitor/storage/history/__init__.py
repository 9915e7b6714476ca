"""Run history: every run RunMonitor created, added or discovered, with its transitions.

One SQLite file in WAL mode; every committed write survives a crash of the app. The parts:

- :mod:`~runmonitor.storage.history.records`: the records it hands out, and :class:`HistoryError`;
- :mod:`~runmonitor.storage.history.schema`: tables, indexes, migrations and version checks;
- :mod:`~runmonitor.storage.history.database`: opening the file safely, the lock, transactions;
- :mod:`~runmonitor.storage.history.rows`: values to columns and rows to records;
- :mod:`~runmonitor.storage.history.store`: :class:`HistoryStore`, synchronous;
- :mod:`~runmonitor.storage.history.aio`: :class:`AsyncHistory`, the store on one worker thread
  so an event loop never waits on the disk.

Import from here: ``from runmonitor.storage.history import AsyncHistory, RunRecord``.
"""

from runmonitor.storage.history.aio import AsyncHistory
from runmonitor.storage.history.records import (
    OPEN_INTENT_STATES,
    RESOLVED_INTENT_STATES,
    DurationStats,
    HistoryError,
    IntentRecord,
    IntentState,
    RunOrigin,
    RunRecord,
    TransitionRecord,
    WatchRecord,
)
from runmonitor.storage.history.schema import (
    MIGRATIONS,
    OPEN_RUNS_OF_PROFILE_SQL,
    OPEN_RUNS_SQL,
    RETENTION_SQL,
    SCHEMA_VERSION,
    TIMELINE_SQL,
)
from runmonitor.storage.history.store import MAX_RAW_BYTES, HistoryStore

__all__ = [
    "MAX_RAW_BYTES",
    "MIGRATIONS",
    "OPEN_INTENT_STATES",
    "OPEN_RUNS_OF_PROFILE_SQL",
    "OPEN_RUNS_SQL",
    "RESOLVED_INTENT_STATES",
    "RETENTION_SQL",
    "SCHEMA_VERSION",
    "TIMELINE_SQL",
    "AsyncHistory",
    "DurationStats",
    "HistoryError",
    "HistoryStore",
    "IntentRecord",
    "IntentState",
    "RunOrigin",
    "RunRecord",
    "TransitionRecord",
    "WatchRecord",
]
