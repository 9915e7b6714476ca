"""The shape of the history file: its tables and indexes, their migrations, and the version checks.

The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` are applied in one transaction
on open (:func:`migrate`), and a file written by a newer RunMonitor is refused
(:func:`check_version`). The column lists and the named queries here are the order the store
reads rows in; the query-plan tests check the named queries against the indexes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from runmonitor.storage.history.records import HistoryError

# The package's name: log lines keep saying "runmonitor.storage.history" wherever the code sits.
log = logging.getLogger("runmonitor.storage.history")

_V1: Final = """
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    service         TEXT NOT NULL,
    profile_id      TEXT NOT NULL,
    target          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    extra           TEXT NOT NULL DEFAULT '{}',
    origin          TEXT NOT NULL,
    status          TEXT NOT NULL,
    vendor_status   TEXT,
    detail          TEXT,
    message         TEXT,
    created_at      REAL,
    started_at      REAL,
    ended_at        REAL,
    raw             TEXT,
    fetched_at      REAL NOT NULL,
    first_seen_at   REAL NOT NULL,
    last_checked_at REAL,
    last_attempt_at REAL,
    stale           INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_error_kind TEXT,
    closed          INTEGER NOT NULL DEFAULT 0,
    closed_reason   TEXT,
    closed_at       REAL,
    activity_at     REAL NOT NULL,   -- max(first_seen_at, last_checked_at, closed_at): retention
    request         TEXT,
    UNIQUE (service, profile_id, target, run_id)
);
CREATE INDEX runs_open ON runs (closed, profile_id);
CREATE INDEX runs_newest ON runs (first_seen_at, id);
CREATE INDEX runs_retention ON runs (closed, activity_at);
CREATE INDEX runs_durations ON runs (service, target, status, ended_at);

CREATE TABLE transitions (
    id            INTEGER PRIMARY KEY,
    run           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at            REAL NOT NULL,
    from_status   TEXT,
    to_status     TEXT NOT NULL,
    vendor_status TEXT,
    detail        TEXT,
    message       TEXT,
    event         TEXT NOT NULL,
    raw           TEXT
);
CREATE INDEX transitions_run ON transitions (run, id);

CREATE TABLE intents (
    id            TEXT PRIMARY KEY,
    service       TEXT NOT NULL,
    profile_id    TEXT NOT NULL,
    target        TEXT NOT NULL,
    request       TEXT NOT NULL,
    client_run_id TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    state         TEXT NOT NULL,
    run           INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    error         TEXT
);
CREATE INDEX intents_state ON intents (state, updated_at);
CREATE INDEX intents_run ON intents (run);

CREATE TABLE watches (
    id              INTEGER PRIMARY KEY,
    service         TEXT NOT NULL,
    profile_id      TEXT NOT NULL,
    target          TEXT NOT NULL,
    added_at        REAL NOT NULL,
    last_checked_at REAL,
    summary         TEXT,
    UNIQUE (service, profile_id, target)
);
"""

Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    statements = [s.strip() for s in sql.split(";") if s.strip()]

    def apply(conn: sqlite3.Connection) -> None:
        # Not executescript(): it commits, and a migration must stay inside the open transaction.
        for statement in statements:
            conn.execute(statement)

    return apply


MIGRATIONS: Final[Sequence[Migration]] = (_script(_V1),)
"""``MIGRATIONS[i]`` brings a database from ``user_version`` i to i + 1. Append, never edit."""

SCHEMA_VERSION: Final = len(MIGRATIONS)

RUN_COLUMNS: Final = (
    "id, service, profile_id, target, run_id, extra, origin, status, vendor_status, detail, message, "
    "created_at, started_at, ended_at, raw, fetched_at, first_seen_at, last_checked_at, last_attempt_at, "
    "stale, last_error, last_error_kind, closed, closed_reason, closed_at, request"
)
TRANSITION_COLUMNS: Final = "id, run, at, from_status, to_status, vendor_status, detail, message, event, raw"
INTENT_COLUMNS: Final = (
    "id, service, profile_id, target, request, client_run_id, created_at, updated_at, state, run, error"
)
WATCH_COLUMNS: Final = "id, service, profile_id, target, added_at, last_checked_at, summary"

OPEN_RUNS_SQL: Final = f"SELECT {RUN_COLUMNS} FROM runs WHERE closed = 0 ORDER BY id"
OPEN_RUNS_OF_PROFILE_SQL: Final = (
    f"SELECT {RUN_COLUMNS} FROM runs WHERE closed = 0 AND profile_id = ? ORDER BY id"
)
TIMELINE_SQL: Final = f"SELECT {TRANSITION_COLUMNS} FROM transitions WHERE run = ? ORDER BY id"
RETENTION_SQL: Final = "SELECT id FROM runs WHERE closed = 1 AND activity_at < ? ORDER BY activity_at LIMIT ?"


# --------------------------------------------------------------------------------------------
# Version checks


def check_version(path: Path, version: int) -> None:
    """Refuse a file whose schema is newer than :data:`SCHEMA_VERSION` (it is left untouched)."""
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"The run history {path} was written by a newer RunMonitor "
            f"(schema {version}, this version knows {SCHEMA_VERSION}). It was left untouched; "
            "use the newer RunMonitor, or point RUNMONITOR_HOME elsewhere."
        )


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the open database to :data:`SCHEMA_VERSION` in one transaction; returns that version."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            check_version(path, version)
            for index in range(version, SCHEMA_VERSION):
                log.info("run history %s: migrating schema %d -> %d", path, index, index + 1)
                MIGRATIONS[index](conn)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise HistoryError(f"Cannot prepare the run history {path}: {exc}") from exc
    return SCHEMA_VERSION
