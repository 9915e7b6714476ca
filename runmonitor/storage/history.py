"""Run history: every run RunMonitor created, added or discovered, with its transitions.

One SQLite file (stdlib :mod:`sqlite3`) in WAL mode with ``synchronous=NORMAL``: every
committed transaction survives a crash of the app (a power loss may roll back the last few).
Each public write is one small transaction, committed before the method returns.

Conventions:

- Times are stored as epoch seconds (REAL, UTC) and returned as aware UTC datetimes. A naive
  datetime passed in is taken to be UTC.
- JSON columns are stored as text. Raw vendor payloads go through :func:`redact_json` and are
  replaced by ``{"truncated": true, "size": n}`` when their encoding exceeds ``max_raw_bytes``.
  Create requests are stored as given (they are needed verbatim for "run again"; connection
  secrets are never part of a request).
- The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` are applied in one
  transaction on open. A file written by a newer RunMonitor, a file that is not a SQLite
  database and a SQLite database that is not a RunMonitor history are refused with
  :class:`HistoryError` and left exactly as they were.

:class:`HistoryStore` is synchronous and meant to be used from one thread at a time (a lock
guards it anyway). :class:`AsyncHistory` runs every call in one dedicated worker thread so an
event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, ParamSpec, Self, TypeVar

from runmonitor.domain.errors import RunMonitorError
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.redact import redact_json, secret_registry
from runmonitor.domain.status import RunStatus
from runmonitor.storage.paths import DIR_MODE

log = logging.getLogger(__name__)

__all__ = [
    "MAX_RAW_BYTES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
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

MAX_RAW_BYTES: Final = 256 * 1024
FILE_MODE: Final = 0o600
_SQLITE_HEADER: Final = b"SQLite format 3\x00"


class HistoryError(RunMonitorError):
    """The history database cannot be opened or used. The message is meant for people."""


class RunOrigin(StrEnum):
    """How a run came into the history (``RunRecord.origin``)."""

    CREATED = "created"
    ADDED = "added"
    WATCHED = "watched"


_FIRST_EVENT: Final = {"created": "created", "watched": "discovered", "added": "added"}


class IntentState(StrEnum):
    PENDING = "pending"
    """Written before the create request goes out."""
    CONFIRMED = "confirmed"
    """The service created the run; ``IntentRecord.run`` points at it."""
    FAILED = "failed"
    """The service refused; nothing was created."""
    UNCONFIRMED = "unconfirmed"
    """Unknown outcome: found pending at start-up, or the create failed in a way that may have
    reached the service."""
    QUEUED = "queued"
    """Waiting for a quota (e.g. Connhex queued exports); will be retried."""
    DISCARDED = "discarded"
    """The user gave up on it."""


OPEN_INTENT_STATES: Final = frozenset({IntentState.PENDING, IntentState.UNCONFIRMED, IntentState.QUEUED})
RESOLVED_INTENT_STATES: Final = frozenset({IntentState.CONFIRMED, IntentState.FAILED, IntentState.DISCARDED})


@dataclass(frozen=True)
class RunRecord:
    id: int
    profile_id: str
    origin: str
    snapshot: RunSnapshot
    first_seen_at: datetime
    last_checked_at: datetime | None
    last_attempt_at: datetime | None
    stale: bool
    last_error: str | None
    last_error_kind: str | None
    closed: bool
    closed_reason: str | None
    request: dict[str, Any] | None
    closed_at: datetime | None = None

    @property
    def ref(self) -> RunRef:
        return self.snapshot.ref

    @property
    def status(self) -> RunStatus:
        return self.snapshot.status

    @property
    def terminal(self) -> bool:
        return self.snapshot.status.terminal


@dataclass(frozen=True)
class TransitionRecord:
    id: int
    run: int
    at: datetime
    from_status: RunStatus | None
    to_status: RunStatus
    vendor_status: str | None
    detail: str | None
    message: str | None
    event: str
    raw: Any


@dataclass(frozen=True)
class IntentRecord:
    id: str
    service: str
    profile_id: str
    target: str
    request: dict[str, Any]
    client_run_id: str | None
    created_at: datetime
    updated_at: datetime
    state: IntentState
    run: int | None
    error: str | None


@dataclass(frozen=True)
class WatchRecord:
    id: int
    service: str
    profile_id: str
    target: str
    added_at: datetime
    last_checked_at: datetime | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class DurationStats:
    """Durations of recent successful runs, in seconds (percentiles by linear interpolation)."""

    count: int
    median_s: float
    p90_s: float


# --------------------------------------------------------------------------------------------
# Schema

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

_RUN_COLUMNS: Final = (
    "id, service, profile_id, target, run_id, extra, origin, status, vendor_status, detail, message, "
    "created_at, started_at, ended_at, raw, fetched_at, first_seen_at, last_checked_at, last_attempt_at, "
    "stale, last_error, last_error_kind, closed, closed_reason, closed_at, request"
)
_TRANSITION_COLUMNS: Final = "id, run, at, from_status, to_status, vendor_status, detail, message, event, raw"
_INTENT_COLUMNS: Final = (
    "id, service, profile_id, target, request, client_run_id, created_at, updated_at, state, run, error"
)
_WATCH_COLUMNS: Final = "id, service, profile_id, target, added_at, last_checked_at, summary"

OPEN_RUNS_SQL: Final = f"SELECT {_RUN_COLUMNS} FROM runs WHERE closed = 0 ORDER BY id"
OPEN_RUNS_OF_PROFILE_SQL: Final = (
    f"SELECT {_RUN_COLUMNS} FROM runs WHERE closed = 0 AND profile_id = ? ORDER BY id"
)
TIMELINE_SQL: Final = f"SELECT {_TRANSITION_COLUMNS} FROM transitions WHERE run = ? ORDER BY id"
RETENTION_SQL: Final = "SELECT id FROM runs WHERE closed = 1 AND activity_at < ? ORDER BY activity_at LIMIT ?"


# --------------------------------------------------------------------------------------------
# Conversions


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt_req(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _now(at: datetime | None) -> float:
    ts = _ts(at)
    return datetime.now(UTC).timestamp() if ts is None else ts


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _status(value: str | None) -> RunStatus:
    try:
        return RunStatus(value or "UNKNOWN")
    except ValueError:
        return RunStatus.UNKNOWN


def _scrub(text: str | None) -> str | None:
    return None if text is None else secret_registry.scrub(text)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted ``ordered`` by linear interpolation between closest ranks.

    Position ``q * (n - 1)`` (numpy's default, ``statistics.quantiles(method="inclusive")``):
    the median of [1, 2, 3, 4] is 2.5 and its p90 is 3.7.
    """
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --------------------------------------------------------------------------------------------
# The store


class HistoryStore:
    """Run history in one SQLite file. Synchronous; use it from one thread at a time."""

    def __init__(self, path: Path, *, max_raw_bytes: int = MAX_RAW_BYTES) -> None:
        self.path = Path(path)
        self.max_raw_bytes = max_raw_bytes
        self.schema_version = 0
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._probe_existing()
        self._create_parent_dirs()
        self._create_private_file()
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot open the run history {self.path}: {exc}") from exc
        try:
            self._configure(conn)
            self.schema_version = self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- opening -----------------------------------------------------------------------------

    def _probe_existing(self) -> None:
        """Refuse, without changing a byte, files this version must not write to."""
        path = self.path
        if not path.exists():
            return
        if not path.is_file():
            raise HistoryError(f"The run history {path} is not a file.")
        try:
            with path.open("rb") as f:
                header = f.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise HistoryError(f"Cannot read the run history {path}: {exc}") from exc
        if header and header != _SQLITE_HEADER:
            raise HistoryError(
                f"{path} is not a SQLite database, so it cannot be the run history. "
                "It was left untouched; move it away to start a new history."
            )
        if not header:
            return  # an empty file is an empty database
        # Read-only; without a WAL beside it the file holds everything committed, so read it as
        # immutable, which creates no -wal/-shm files either.
        wal = Path(f"{path}-wal")
        uri = path.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?mode=ro&immutable=1")
        try:
            probe = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot open the run history {path}: {exc}") from exc
        try:
            version = int(probe.execute("PRAGMA user_version").fetchone()[0])
            tables = probe.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"{path} is not a readable SQLite database ({exc}). It was left untouched; "
                "move it away to start a new history."
            ) from exc
        finally:
            probe.close()
        self._check_version(version)
        if version == 0 and tables:
            raise HistoryError(
                f"{path} is a SQLite database but not a RunMonitor run history. It was left untouched."
            )

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"The run history {self.path} was written by a newer RunMonitor "
                f"(schema {version}, this version knows {SCHEMA_VERSION}). It was left untouched; "
                "use the newer RunMonitor, or point RUNMONITOR_HOME elsewhere."
            )

    def _create_parent_dirs(self) -> None:
        """Create missing parent directories as 0o700; existing ones are left as they are."""
        parent = self.path.parent
        missing = [d for d in (parent, *parent.parents) if not d.exists()]
        try:
            for directory in reversed(missing):
                directory.mkdir(mode=DIR_MODE, exist_ok=True)
                if os.name == "posix":
                    os.chmod(directory, DIR_MODE)
        except OSError as exc:
            raise HistoryError(f"Cannot create the folder of the run history {parent}: {exc}") from exc

    def _create_private_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        except FileExistsError:
            return
        except OSError as exc:
            raise HistoryError(f"Cannot create the run history {self.path}: {exc}") from exc
        os.close(fd)
        if os.name == "posix":
            os.chmod(self.path, FILE_MODE)

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"Cannot use the run history {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            log.warning("run history %s: journal mode is %s, not WAL", self.path, mode)

    def _migrate(self, conn: sqlite3.Connection) -> int:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                self._check_version(version)
                for index in range(version, SCHEMA_VERSION):
                    log.info("run history %s: migrating schema %d -> %d", self.path, index, index + 1)
                    MIGRATIONS[index](conn)
                if version != SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot prepare the run history {self.path}: {exc}") from exc
        return SCHEMA_VERSION

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with sqlite3 errors turned into HistoryError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise HistoryError("The run history is closed.")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise HistoryError(f"Run history {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed when the block ends."""
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _raw_json(self, raw: Any) -> str | None:
        if raw is None:
            return None
        text = _dumps(redact_json(raw))
        size = len(text.encode("utf-8"))
        if size > self.max_raw_bytes:
            return _dumps({"truncated": True, "size": size})
        return text

    # -- rows --------------------------------------------------------------------------------

    @staticmethod
    def _run_from_row(row: sqlite3.Row | tuple[Any, ...]) -> RunRecord:
        (
            id_,
            service,
            profile_id,
            target,
            run_id,
            extra,
            origin,
            status,
            vendor_status,
            detail,
            message,
            created_at,
            started_at,
            ended_at,
            raw,
            fetched_at,
            first_seen_at,
            last_checked_at,
            last_attempt_at,
            stale,
            last_error,
            last_error_kind,
            closed,
            closed_reason,
            closed_at,
            request,
        ) = row
        snapshot = RunSnapshot(
            ref=RunRef(service=service, target=target, run_id=run_id, extra=_loads(extra) or {}),
            status=_status(status),
            vendor_status=vendor_status,
            detail=detail,
            message=message,
            created_at=_dt(created_at),
            started_at=_dt(started_at),
            ended_at=_dt(ended_at),
            raw=_loads(raw),
            fetched_at=_dt_req(fetched_at),
        )
        return RunRecord(
            id=id_,
            profile_id=profile_id,
            origin=origin,
            snapshot=snapshot,
            first_seen_at=_dt_req(first_seen_at),
            last_checked_at=_dt(last_checked_at),
            last_attempt_at=_dt(last_attempt_at),
            stale=bool(stale),
            last_error=last_error,
            last_error_kind=last_error_kind,
            closed=bool(closed),
            closed_reason=closed_reason,
            request=_loads(request),
            closed_at=_dt(closed_at),
        )

    @staticmethod
    def _transition_from_row(row: tuple[Any, ...]) -> TransitionRecord:
        id_, run, at, from_status, to_status, vendor_status, detail, message, event, raw = row
        return TransitionRecord(
            id=id_,
            run=run,
            at=_dt_req(at),
            from_status=None if from_status is None else _status(from_status),
            to_status=_status(to_status),
            vendor_status=vendor_status,
            detail=detail,
            message=message,
            event=event,
            raw=_loads(raw),
        )

    @staticmethod
    def _intent_from_row(row: tuple[Any, ...]) -> IntentRecord:
        (
            id_,
            service,
            profile_id,
            target,
            request,
            client_run_id,
            created_at,
            updated_at,
            state,
            run,
            error,
        ) = row
        return IntentRecord(
            id=id_,
            service=service,
            profile_id=profile_id,
            target=target,
            request=_loads(request),
            client_run_id=client_run_id,
            created_at=_dt_req(created_at),
            updated_at=_dt_req(updated_at),
            state=IntentState(state),
            run=run,
            error=error,
        )

    @staticmethod
    def _watch_from_row(row: tuple[Any, ...]) -> WatchRecord:
        id_, service, profile_id, target, added_at, last_checked_at, summary = row
        return WatchRecord(
            id=id_,
            service=service,
            profile_id=profile_id,
            target=target,
            added_at=_dt_req(added_at),
            last_checked_at=_dt(last_checked_at),
            summary=_loads(summary),
        )

    def _fetch_run(self, conn: sqlite3.Connection, run: int) -> RunRecord | None:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run,)).fetchone()
        return None if row is None else self._run_from_row(row)

    def _require_run(self, conn: sqlite3.Connection, run: int) -> RunRecord:
        record = self._fetch_run(conn, run)
        if record is None:
            raise HistoryError(f"No run with local id {run} in the run history.")
        return record

    def _add_transition(
        self,
        conn: sqlite3.Connection,
        run: int,
        *,
        at: float,
        from_status: RunStatus | None,
        to_status: RunStatus,
        vendor_status: str | None,
        detail: str | None,
        message: str | None,
        event: str,
        raw_json: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO transitions (run, at, from_status, to_status, vendor_status, detail, message, "
            "event, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run,
                at,
                None if from_status is None else from_status.value,
                to_status.value,
                vendor_status,
                detail,
                message,
                event,
                raw_json,
            ),
        )

    # -- runs --------------------------------------------------------------------------------

    def upsert_run(
        self,
        profile_id: str,
        snapshot: RunSnapshot,
        *,
        origin: str,
        request: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert the run, or return the stored one unchanged; the bool says it was inserted.

        The snapshot is the service's answer (to the create, the list or the status call), so
        an inserted run counts as checked at ``at`` (first_seen_at = last_checked_at =
        last_attempt_at). It gets a first transition (None -> its status; event "created",
        "discovered" or "added" by origin) and is closed at once when already terminal.
        """
        with self._write() as conn:
            return self._upsert(conn, profile_id, snapshot, origin=origin, request=request, at=_now(at))

    def upsert_runs(
        self,
        profile_id: str,
        snapshots: Sequence[RunSnapshot],
        *,
        origin: str,
        at: datetime | None = None,
    ) -> list[tuple[RunRecord, bool]]:
        """:meth:`upsert_run` for many runs in one transaction (a watched pipeline's list)."""
        now = _now(at)
        with self._write() as conn:
            return [self._upsert(conn, profile_id, s, origin=origin, request=None, at=now) for s in snapshots]

    def _upsert(
        self,
        conn: sqlite3.Connection,
        profile_id: str,
        snapshot: RunSnapshot,
        *,
        origin: str,
        request: dict[str, Any] | None,
        at: float,
    ) -> tuple[RunRecord, bool]:
        ref = snapshot.ref
        key = (ref.service, profile_id, ref.target, ref.run_id)
        existing = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs "
            "WHERE service = ? AND profile_id = ? AND target = ? AND run_id = ?",
            key,
        ).fetchone()
        if existing is not None:
            return self._run_from_row(existing), False
        raw_json = self._raw_json(snapshot.raw)
        terminal = snapshot.status.terminal
        cursor = conn.execute(
            "INSERT INTO runs (service, profile_id, target, run_id, extra, origin, status, vendor_status, "
            "detail, message, created_at, started_at, ended_at, raw, fetched_at, first_seen_at, "
            "last_checked_at, last_attempt_at, closed, closed_reason, closed_at, activity_at, request) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *key,
                _dumps(ref.extra),
                str(origin),
                snapshot.status.value,
                snapshot.vendor_status,
                snapshot.detail,
                snapshot.message,
                _ts(snapshot.created_at),
                _ts(snapshot.started_at),
                _ts(snapshot.ended_at),
                raw_json,
                _ts(snapshot.fetched_at),
                at,
                at,
                at,
                int(terminal),
                "terminal" if terminal else None,
                at if terminal else None,
                at,
                None if request is None else _dumps(request),
            ),
        )
        run = cursor.lastrowid
        assert run is not None
        self._add_transition(
            conn,
            run,
            at=at,
            from_status=None,
            to_status=snapshot.status,
            vendor_status=snapshot.vendor_status,
            detail=snapshot.detail,
            message=snapshot.message,
            event=_FIRST_EVENT.get(str(origin), str(origin)),
            raw_json=raw_json,
        )
        return self._require_run(conn, run), True

    def record_check(
        self, run: int, snapshot: RunSnapshot, *, event: str | None, at: datetime | None = None
    ) -> RunRecord:
        """A successful check: ``snapshot`` becomes the last known state.

        The stored identity (service, target, run id) is kept and ``ref.extra`` is merged (new
        keys win). The run stops being stale and loses its last error. With an ``event``, a
        transition from the previous status is appended. A terminal status closes the run
        (reason "terminal") unless it was already closed for another reason.
        """
        now = _now(at)
        with self._write() as conn:
            current = self._require_run(conn, run)
            extra = {**current.ref.extra, **snapshot.ref.extra}
            raw_json = self._raw_json(snapshot.raw)
            terminal = snapshot.status.terminal
            close = terminal and not current.closed
            conn.execute(
                "UPDATE runs SET extra = ?, status = ?, vendor_status = ?, detail = ?, message = ?, "
                "created_at = ?, started_at = ?, ended_at = ?, raw = ?, fetched_at = ?, "
                "last_checked_at = ?, last_attempt_at = ?, stale = 0, last_error = NULL, "
                "last_error_kind = NULL, activity_at = max(activity_at, ?), "
                "closed = CASE WHEN ? THEN 1 ELSE closed END, "
                "closed_reason = CASE WHEN ? THEN 'terminal' ELSE closed_reason END, "
                "closed_at = CASE WHEN ? THEN ? ELSE closed_at END "
                "WHERE id = ?",
                (
                    _dumps(extra),
                    snapshot.status.value,
                    snapshot.vendor_status,
                    snapshot.detail,
                    snapshot.message,
                    _ts(snapshot.created_at),
                    _ts(snapshot.started_at),
                    _ts(snapshot.ended_at),
                    raw_json,
                    _ts(snapshot.fetched_at),
                    now,
                    now,
                    now,
                    close,
                    close,
                    close,
                    now,
                    run,
                ),
            )
            if event is not None:
                self._add_transition(
                    conn,
                    run,
                    at=now,
                    from_status=current.status,
                    to_status=snapshot.status,
                    vendor_status=snapshot.vendor_status,
                    detail=snapshot.detail,
                    message=snapshot.message,
                    event=event,
                    raw_json=raw_json,
                )
            return self._require_run(conn, run)

    def record_quiet_checks(self, items: Sequence[tuple[int, RunSnapshot, datetime]]) -> int:
        """Many checks that changed nothing but the details, in one transaction (the engine
        batches them). ``snapshot.ref.extra`` is stored as given (already merged by the caller).

        An item is skipped when the run changed since it was checked: it closed, its status
        moved on, or a later attempt was recorded. Returns how many rows were updated.
        """
        updated = 0
        with self._write() as conn:
            for run, snapshot, at in items:
                now = _now(at)
                cursor = conn.execute(
                    "UPDATE runs SET extra = ?, vendor_status = ?, detail = ?, message = ?, created_at = ?, "
                    "started_at = ?, ended_at = ?, raw = ?, fetched_at = ?, last_checked_at = ?, "
                    "last_attempt_at = ?, stale = 0, last_error = NULL, last_error_kind = NULL, "
                    "activity_at = max(activity_at, ?) "
                    "WHERE id = ? AND closed = 0 AND status = ? "
                    "AND (last_attempt_at IS NULL OR last_attempt_at <= ?)",
                    (
                        _dumps(snapshot.ref.extra),
                        snapshot.vendor_status,
                        snapshot.detail,
                        snapshot.message,
                        _ts(snapshot.created_at),
                        _ts(snapshot.started_at),
                        _ts(snapshot.ended_at),
                        self._raw_json(snapshot.raw),
                        _ts(snapshot.fetched_at),
                        now,
                        now,
                        now,
                        run,
                        snapshot.status.value,
                        now,
                    ),
                )
                updated += cursor.rowcount
        return updated

    def record_failure(
        self, run: int, *, kind: str, message: str, stale: bool, at: datetime | None = None
    ) -> RunRecord:
        """A failed check: the last known snapshot stays; the error and staleness are noted.

        When the run becomes stale (False -> True) a "stale" transition is appended.
        """
        now = _now(at)
        message_safe = _scrub(message)
        with self._write() as conn:
            current = self._require_run(conn, run)
            conn.execute(
                "UPDATE runs SET last_attempt_at = ?, last_error = ?, last_error_kind = ?, stale = ? "
                "WHERE id = ?",
                (now, message_safe, kind, int(stale), run),
            )
            if stale and not current.stale:
                self._add_transition(
                    conn,
                    run,
                    at=now,
                    from_status=current.status,
                    to_status=current.status,
                    vendor_status=current.snapshot.vendor_status,
                    detail=message_safe,
                    message=None,
                    event="stale",
                    raw_json=None,
                )
            return self._require_run(conn, run)

    def record_event(
        self, run: int, event: str, *, detail: str | None = None, at: datetime | None = None
    ) -> None:
        """A note in the run's timeline (recovered, auth_needed, ...), its status on both sides."""
        now = _now(at)
        with self._write() as conn:
            current = self._require_run(conn, run)
            self._add_transition(
                conn,
                run,
                at=now,
                from_status=current.status,
                to_status=current.status,
                vendor_status=current.snapshot.vendor_status,
                detail=_scrub(detail),
                message=None,
                event=event,
                raw_json=None,
            )

    def close_run(self, run: int, reason: str, *, at: datetime | None = None) -> RunRecord:
        """Stop following the run (e.g. "gone: not found on the service", "removed by the user")."""
        now = _now(at)
        with self._write() as conn:
            self._require_run(conn, run)
            conn.execute(
                "UPDATE runs SET closed = 1, closed_reason = ?, closed_at = ?, "
                "activity_at = max(activity_at, ?) WHERE id = ?",
                (reason, now, now, run),
            )
            return self._require_run(conn, run)

    def reopen_run(self, run: int) -> RunRecord:
        """Follow the run again (it shows up in :meth:`open_runs`)."""
        with self._write() as conn:
            self._require_run(conn, run)
            conn.execute(
                "UPDATE runs SET closed = 0, closed_reason = NULL, closed_at = NULL WHERE id = ?", (run,)
            )
            return self._require_run(conn, run)

    def get_run(self, run: int) -> RunRecord | None:
        with self._read() as conn:
            return self._fetch_run(conn, run)

    def find_run(self, service: str, profile_id: str, target: str, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs "
                "WHERE service = ? AND profile_id = ? AND target = ? AND run_id = ?",
                (service, profile_id, target, run_id),
            ).fetchone()
            return None if row is None else self._run_from_row(row)

    def runs_with_run_id(
        self, run_id: str, *, service: str | None = None, profile_id: str | None = None
    ) -> list[RunRecord]:
        """Runs whose service-side run id is exactly ``run_id`` (any target), newest first."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"
        params: list[Any] = [run_id]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        if profile_id is not None:
            sql += " AND profile_id = ?"
            params.append(profile_id)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY first_seen_at DESC, id DESC", params).fetchall()
            return [self._run_from_row(r) for r in rows]

    def open_runs(self, profile_id: str | None = None) -> list[RunRecord]:
        """Runs still followed (not closed), oldest first."""
        with self._read() as conn:
            if profile_id is None:
                rows = conn.execute(OPEN_RUNS_SQL).fetchall()
            else:
                rows = conn.execute(OPEN_RUNS_OF_PROFILE_SQL, (profile_id,)).fetchall()
            return [self._run_from_row(r) for r in rows]

    def query_runs(
        self,
        *,
        service: str | None = None,
        profile_id: str | None = None,
        statuses: Collection[RunStatus] | None = None,
        text: str | None = None,
        origin: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """One page of runs, newest first, and how many match the filter in all.

        ``text`` is a substring of target, run id, vendor status or message (case-insensitive
        for ASCII letters; ``%`` and ``_`` match themselves).
        """
        clauses: list[str] = []
        params: list[Any] = []
        if service is not None:
            clauses.append("service = ?")
            params.append(service)
        if profile_id is not None:
            clauses.append("profile_id = ?")
            params.append(profile_id)
        if origin is not None:
            clauses.append("origin = ?")
            params.append(str(origin))
        if statuses is not None:
            values = sorted({RunStatus(s).value for s in statuses})
            if not values:
                return [], 0
            clauses.append(f"status IN ({', '.join('?' for _ in values)})")
            params.extend(values)
        if text:
            pattern = _like(text)
            clauses.append(
                "(target LIKE ? ESCAPE '\\' OR run_id LIKE ? ESCAPE '\\' "
                "OR vendor_status LIKE ? ESCAPE '\\' OR message LIKE ? ESCAPE '\\')"
            )
            params.extend([pattern] * 4)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as conn:
            conn.execute("BEGIN")  # one snapshot for the count and the page
            try:
                total = int(conn.execute(f"SELECT count(*) FROM runs {where}", params).fetchone()[0])
                rows = conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs {where} "
                    "ORDER BY first_seen_at DESC, id DESC LIMIT ? OFFSET ?",
                    [*params, max(0, limit), max(0, offset)],
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return [self._run_from_row(r) for r in rows], total

    def timeline(self, run: int) -> list[TransitionRecord]:
        """The run's transitions and notes, oldest first."""
        with self._read() as conn:
            return [self._transition_from_row(r) for r in conn.execute(TIMELINE_SQL, (run,)).fetchall()]

    def duration_stats(
        self, service: str, profile_id: str | None, target: str, *, limit: int = 50
    ) -> DurationStats | None:
        """Durations of the most recent ``limit`` SUCCEEDED runs of a target (by end time).

        A duration is ended_at minus started_at (else created_at); runs without both ends, and
        negative durations (clock skew), are left out. The median and p90 are interpolated
        linearly between closest ranks (see :func:`_percentile`). None with fewer than 2 runs.
        """
        sql = (
            "SELECT ended_at - coalesce(started_at, created_at) FROM runs "
            "WHERE service = ? AND target = ? AND status = ? AND ended_at IS NOT NULL "
            "AND coalesce(started_at, created_at) IS NOT NULL "
            "AND ended_at >= coalesce(started_at, created_at)"
        )
        params: list[Any] = [service, target, RunStatus.SUCCEEDED.value]
        if profile_id is not None:
            sql += " AND profile_id = ?"
            params.append(profile_id)
        sql += " ORDER BY ended_at DESC LIMIT ?"
        params.append(max(0, limit))
        with self._read() as conn:
            durations = sorted(float(r[0]) for r in conn.execute(sql, params).fetchall())
        if len(durations) < 2:
            return None
        return DurationStats(
            count=len(durations),
            median_s=_percentile(durations, 0.5),
            p90_s=_percentile(durations, 0.9),
        )

    # -- intents -----------------------------------------------------------------------------

    def add_intent(
        self,
        service: str,
        profile_id: str,
        target: str,
        request: dict[str, Any],
        client_run_id: str | None,
        *,
        at: datetime | None = None,
    ) -> IntentRecord:
        """Note a create about to be sent (PENDING); committed before this returns."""
        now = _now(at)
        intent_id = uuid.uuid4().hex
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO intents ({_INTENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (
                    intent_id,
                    service,
                    profile_id,
                    target,
                    _dumps(request),
                    client_run_id,
                    now,
                    now,
                    IntentState.PENDING.value,
                ),
            )
            return self._require_intent(conn, intent_id)

    def set_intent_state(
        self,
        intent_id: str,
        state: IntentState,
        *,
        run: int | None = None,
        error: str | None = None,
        at: datetime | None = None,
    ) -> IntentRecord:
        """Move an intent to ``state``. ``run``/``error`` replace the stored values when given;
        CONFIRMED clears the error."""
        now = _now(at)
        state = IntentState(state)
        with self._write() as conn:
            current = self._require_intent(conn, intent_id)
            new_error = _scrub(error) if error is not None else current.error
            if state is IntentState.CONFIRMED and error is None:
                new_error = None
            conn.execute(
                "UPDATE intents SET state = ?, run = ?, error = ?, updated_at = ? WHERE id = ?",
                (state.value, current.run if run is None else run, new_error, now, intent_id),
            )
            return self._require_intent(conn, intent_id)

    def _require_intent(self, conn: sqlite3.Connection, intent_id: str) -> IntentRecord:
        row = conn.execute(f"SELECT {_INTENT_COLUMNS} FROM intents WHERE id = ?", (intent_id,)).fetchone()
        if row is None:
            raise HistoryError(f"No create intent {intent_id!r} in the run history.")
        return self._intent_from_row(row)

    def get_intent(self, intent_id: str) -> IntentRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_INTENT_COLUMNS} FROM intents WHERE id = ?", (intent_id,)).fetchone()
            return None if row is None else self._intent_from_row(row)

    def open_intents(self) -> list[IntentRecord]:
        """Pending, unconfirmed and queued intents, oldest first."""
        states = sorted(s.value for s in OPEN_INTENT_STATES)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_INTENT_COLUMNS} FROM intents WHERE state IN (?, ?, ?) ORDER BY created_at, id",
                states,
            ).fetchall()
            return [self._intent_from_row(r) for r in rows]

    def intent_count(self) -> int:
        """How many creates were ever attempted (every create writes its intent first)."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM intents").fetchone()[0])

    def mark_pending_unconfirmed(self, *, at: datetime | None = None) -> list[IntentRecord]:
        """At start-up: every PENDING intent becomes UNCONFIRMED (its process is gone)."""
        now = _now(at)
        note = "RunMonitor stopped before the service answered; the run may or may not have been created."
        with self._write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM intents WHERE state = ? ORDER BY created_at, id",
                    (IntentState.PENDING.value,),
                ).fetchall()
            ]
            conn.executemany(
                "UPDATE intents SET state = ?, updated_at = ?, error = coalesce(error, ?) WHERE id = ?",
                [(IntentState.UNCONFIRMED.value, now, note, i) for i in ids],
            )
            return [self._require_intent(conn, i) for i in ids]

    # -- watches -----------------------------------------------------------------------------

    def add_watch(
        self, service: str, profile_id: str, target: str, *, at: datetime | None = None
    ) -> WatchRecord:
        """Watch a pipeline/job; adding it again returns the existing watch."""
        now = _now(at)
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO watches (service, profile_id, target, added_at) VALUES (?, ?, ?, ?)",
                (service, profile_id, target, now),
            )
            row = conn.execute(
                f"SELECT {_WATCH_COLUMNS} FROM watches WHERE service = ? AND profile_id = ? AND target = ?",
                (service, profile_id, target),
            ).fetchone()
            return self._watch_from_row(row)

    def remove_watch(self, watch_id: int) -> bool:
        """Stop watching; False when there was no such watch."""
        with self._write() as conn:
            return conn.execute("DELETE FROM watches WHERE id = ?", (watch_id,)).rowcount > 0

    def watches(self, profile_id: str | None = None) -> list[WatchRecord]:
        with self._read() as conn:
            if profile_id is None:
                rows = conn.execute(f"SELECT {_WATCH_COLUMNS} FROM watches ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_WATCH_COLUMNS} FROM watches WHERE profile_id = ? ORDER BY id", (profile_id,)
                ).fetchall()
            return [self._watch_from_row(r) for r in rows]

    def update_watch(
        self, watch_id: int, *, summary: dict[str, Any] | None, at: datetime | None = None
    ) -> WatchRecord:
        """Store the latest health summary of a watch, checked at ``at``."""
        now = _now(at)
        summary_json = None if summary is None else _dumps(redact_json(summary))
        with self._write() as conn:
            conn.execute(
                "UPDATE watches SET summary = ?, last_checked_at = ? WHERE id = ?",
                (summary_json, now, watch_id),
            )
            row = conn.execute(f"SELECT {_WATCH_COLUMNS} FROM watches WHERE id = ?", (watch_id,)).fetchone()
            if row is None:
                raise HistoryError(f"No watch with id {watch_id} in the run history.")
            return self._watch_from_row(row)

    # -- housekeeping ------------------------------------------------------------------------

    def apply_retention(self, keep_days: float, *, now: datetime | None = None, batch: int = 500) -> int:
        """Delete closed runs (and their transitions) inactive for ``keep_days``; return how many.

        A run's last activity is the latest of first seen, last successful check and closing.
        Runs go in transactions of ``batch`` rows, so other calls get the database in between.
        Resolved intents (confirmed, failed, discarded) last updated before the cutoff go too.
        Open runs are never deleted.
        """
        if keep_days < 0 or math.isnan(keep_days):
            raise ValueError(f"keep_days must be >= 0, not {keep_days}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, not {batch}")
        cutoff = _now(now) - keep_days * 86400.0
        deleted = 0
        while True:
            with self._write() as conn:
                ids = [r[0] for r in conn.execute(RETENTION_SQL, (cutoff, batch)).fetchall()]
                if ids:
                    marks = ", ".join("?" for _ in ids)
                    conn.execute(f"DELETE FROM transitions WHERE run IN ({marks})", ids)
                    conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
            deleted += len(ids)
            if len(ids) < batch:
                break
        resolved = sorted(s.value for s in RESOLVED_INTENT_STATES)
        with self._write() as conn:
            conn.execute(
                "DELETE FROM intents WHERE state IN (?, ?, ?) AND updated_at < ?", (*resolved, cutoff)
            )
        if deleted:
            log.info("run history: retention removed %d closed runs older than %s days", deleted, keep_days)
        return deleted

    def stats(self) -> dict[str, int]:
        """Row counts and the size on disk (database plus WAL), for the about/diagnostics view."""
        with self._read() as conn:

            def count(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            result = {
                "runs": count("SELECT count(*) FROM runs"),
                "open_runs": count("SELECT count(*) FROM runs WHERE closed = 0"),
                "transitions": count("SELECT count(*) FROM transitions"),
                "intents": count("SELECT count(*) FROM intents"),
                "open_intents": count(
                    "SELECT count(*) FROM intents WHERE state IN ('pending', 'unconfirmed', 'queued')"
                ),
                "watches": count("SELECT count(*) FROM watches"),
                "schema_version": self.schema_version,
            }
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.stat(f"{self.path}{suffix}").st_size
        result["file_size"] = size
        return result


# --------------------------------------------------------------------------------------------
# Async wrapper

P = ParamSpec("P")
T = TypeVar("T")


def _close_opened_store(future: Future[HistoryStore]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class AsyncHistory:
    """:class:`HistoryStore` for asyncio: every call runs in one dedicated worker thread.

    A cancelled await does not undo a call already handed to the worker; it still completes.
    """

    THREAD_NAME_PREFIX: Final = "runmonitor-history"

    def __init__(self, store: HistoryStore, executor: ThreadPoolExecutor) -> None:
        """Use :meth:`open`; this takes a store opened in ``executor``'s thread."""
        self._store = store
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, max_raw_bytes: int = MAX_RAW_BYTES) -> AsyncHistory:
        """Open (create, migrate) the history in a new worker thread, off the event loop."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=cls.THREAD_NAME_PREFIX)
        future = executor.submit(HistoryStore, path, max_raw_bytes=max_raw_bytes)
        try:
            store = await asyncio.wrap_future(future)
        except BaseException:
            # Also when cancelled while the worker was opening: close what it opens.
            future.add_done_callback(_close_opened_store)
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def close(self) -> None:
        """Close the store in the worker thread, then stop the thread. Closing twice is fine."""
        if self._closed:
            return
        try:
            await self.call(self._store.close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def schema_version(self) -> int:
        return self._store.schema_version

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in the history thread and return its result."""
        if self._closed:
            raise HistoryError("The run history is closed.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- runs --------------------------------------------------------------------------------

    async def upsert_run(
        self,
        profile_id: str,
        snapshot: RunSnapshot,
        *,
        origin: str,
        request: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> tuple[RunRecord, bool]:
        return await self.call(
            self._store.upsert_run, profile_id, snapshot, origin=origin, request=request, at=at
        )

    async def upsert_runs(
        self, profile_id: str, snapshots: Sequence[RunSnapshot], *, origin: str, at: datetime | None = None
    ) -> list[tuple[RunRecord, bool]]:
        return await self.call(self._store.upsert_runs, profile_id, snapshots, origin=origin, at=at)

    async def record_check(
        self, run: int, snapshot: RunSnapshot, *, event: str | None, at: datetime | None = None
    ) -> RunRecord:
        return await self.call(self._store.record_check, run, snapshot, event=event, at=at)

    async def record_quiet_checks(self, items: Sequence[tuple[int, RunSnapshot, datetime]]) -> int:
        return await self.call(self._store.record_quiet_checks, items)

    async def record_failure(
        self, run: int, *, kind: str, message: str, stale: bool, at: datetime | None = None
    ) -> RunRecord:
        return await self.call(
            self._store.record_failure, run, kind=kind, message=message, stale=stale, at=at
        )

    async def record_event(
        self, run: int, event: str, *, detail: str | None = None, at: datetime | None = None
    ) -> None:
        await self.call(self._store.record_event, run, event, detail=detail, at=at)

    async def close_run(self, run: int, reason: str, *, at: datetime | None = None) -> RunRecord:
        return await self.call(self._store.close_run, run, reason, at=at)

    async def reopen_run(self, run: int) -> RunRecord:
        return await self.call(self._store.reopen_run, run)

    async def get_run(self, run: int) -> RunRecord | None:
        return await self.call(self._store.get_run, run)

    async def find_run(self, service: str, profile_id: str, target: str, run_id: str) -> RunRecord | None:
        return await self.call(self._store.find_run, service, profile_id, target, run_id)

    async def runs_with_run_id(
        self, run_id: str, *, service: str | None = None, profile_id: str | None = None
    ) -> list[RunRecord]:
        return await self.call(self._store.runs_with_run_id, run_id, service=service, profile_id=profile_id)

    async def open_runs(self, profile_id: str | None = None) -> list[RunRecord]:
        return await self.call(self._store.open_runs, profile_id)

    async def query_runs(
        self,
        *,
        service: str | None = None,
        profile_id: str | None = None,
        statuses: Collection[RunStatus] | None = None,
        text: str | None = None,
        origin: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        return await self.call(
            self._store.query_runs,
            service=service,
            profile_id=profile_id,
            statuses=statuses,
            text=text,
            origin=origin,
            limit=limit,
            offset=offset,
        )

    async def timeline(self, run: int) -> list[TransitionRecord]:
        return await self.call(self._store.timeline, run)

    async def duration_stats(
        self, service: str, profile_id: str | None, target: str, *, limit: int = 50
    ) -> DurationStats | None:
        return await self.call(self._store.duration_stats, service, profile_id, target, limit=limit)

    # -- intents -----------------------------------------------------------------------------

    async def add_intent(
        self,
        service: str,
        profile_id: str,
        target: str,
        request: dict[str, Any],
        client_run_id: str | None,
        *,
        at: datetime | None = None,
    ) -> IntentRecord:
        return await self.call(
            self._store.add_intent, service, profile_id, target, request, client_run_id, at=at
        )

    async def set_intent_state(
        self,
        intent_id: str,
        state: IntentState,
        *,
        run: int | None = None,
        error: str | None = None,
        at: datetime | None = None,
    ) -> IntentRecord:
        return await self.call(self._store.set_intent_state, intent_id, state, run=run, error=error, at=at)

    async def get_intent(self, intent_id: str) -> IntentRecord | None:
        return await self.call(self._store.get_intent, intent_id)

    async def intent_count(self) -> int:
        return await self.call(self._store.intent_count)

    async def open_intents(self) -> list[IntentRecord]:
        return await self.call(self._store.open_intents)

    async def mark_pending_unconfirmed(self, *, at: datetime | None = None) -> list[IntentRecord]:
        return await self.call(self._store.mark_pending_unconfirmed, at=at)

    # -- watches -----------------------------------------------------------------------------

    async def add_watch(
        self, service: str, profile_id: str, target: str, *, at: datetime | None = None
    ) -> WatchRecord:
        return await self.call(self._store.add_watch, service, profile_id, target, at=at)

    async def remove_watch(self, watch_id: int) -> bool:
        return await self.call(self._store.remove_watch, watch_id)

    async def watches(self, profile_id: str | None = None) -> list[WatchRecord]:
        return await self.call(self._store.watches, profile_id)

    async def update_watch(
        self, watch_id: int, *, summary: dict[str, Any] | None, at: datetime | None = None
    ) -> WatchRecord:
        return await self.call(self._store.update_watch, watch_id, summary=summary, at=at)

    # -- housekeeping ------------------------------------------------------------------------

    async def apply_retention(
        self, keep_days: float, *, now: datetime | None = None, batch: int = 500
    ) -> int:
        return await self.call(self._store.apply_retention, keep_days, now=now, batch=batch)

    async def stats(self) -> dict[str, int]:
        return await self.call(self._store.stats)
