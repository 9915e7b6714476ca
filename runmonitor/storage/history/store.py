"""The run history store: what is kept about runs, transitions, create intents and watches.

Each public write is one small transaction, committed before the method returns (the
connection, its lock and the transactions are :class:`~runmonitor.storage.history.database.
HistoryDatabase`). Raw vendor payloads go through :func:`redact_json` and are replaced by
``{"truncated": true, "size": n}`` when their encoding exceeds ``max_raw_bytes``. Create requests
are stored as given (they are needed verbatim for "run again"; connection secrets are never
part of a request).

:class:`HistoryStore` is synchronous and meant to be used from one thread at a time (a lock
guards it anyway); :class:`~runmonitor.storage.history.aio.AsyncHistory` runs it off the event
loop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from runmonitor.domain.models import RunSnapshot
from runmonitor.domain.redact import redact_json
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history.database import HistoryDatabase
from runmonitor.storage.history.records import (
    OPEN_INTENT_STATES,
    RESOLVED_INTENT_STATES,
    DurationStats,
    HistoryError,
    IntentRecord,
    IntentState,
    RunRecord,
    TransitionRecord,
    WatchRecord,
)
from runmonitor.storage.history.rows import (
    dumps,
    epoch_now,
    intent_from_row,
    like_pattern,
    percentile,
    run_from_row,
    scrub,
    snapshot_columns,
    transition_from_row,
    watch_from_row,
)
from runmonitor.storage.history.schema import (
    INTENT_COLUMNS,
    OPEN_RUNS_OF_PROFILE_SQL,
    OPEN_RUNS_SQL,
    RETENTION_SQL,
    RUN_COLUMNS,
    TIMELINE_SQL,
    WATCH_COLUMNS,
)

# The package's name: log lines keep saying "runmonitor.storage.history" wherever the code sits.
log = logging.getLogger("runmonitor.storage.history")

MAX_RAW_BYTES: Final = 256 * 1024
_FIRST_EVENT: Final = {"created": "created", "watched": "discovered", "added": "added"}


class HistoryStore(HistoryDatabase):
    """Run history in one SQLite file. Synchronous; use it from one thread at a time."""

    def __init__(self, path: Path, *, max_raw_bytes: int = MAX_RAW_BYTES) -> None:
        self.max_raw_bytes = max_raw_bytes
        super().__init__(path)

    def _raw_json(self, raw: Any) -> str | None:
        if raw is None:
            return None
        text = dumps(redact_json(raw))
        size = len(text.encode("utf-8"))
        if size > self.max_raw_bytes:
            return dumps({"truncated": True, "size": size})
        return text

    # -- rows --------------------------------------------------------------------------------

    def _fetch_run(self, conn: sqlite3.Connection, run: int) -> RunRecord | None:
        row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run,)).fetchone()
        return None if row is None else run_from_row(row)

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

    def _add_change(
        self,
        conn: sqlite3.Connection,
        run: int,
        snapshot: RunSnapshot,
        *,
        at: float,
        from_status: RunStatus | None,
        event: str,
        raw_json: str | None,
    ) -> None:
        """A transition to ``snapshot`` (its status, vendor status, detail, message and raw)."""
        self._add_transition(
            conn,
            run,
            at=at,
            from_status=from_status,
            to_status=snapshot.status,
            vendor_status=snapshot.vendor_status,
            detail=snapshot.detail,
            message=snapshot.message,
            event=event,
            raw_json=raw_json,
        )

    def _add_note(
        self, conn: sqlite3.Connection, current: RunRecord, *, at: float, event: str, detail: str | None
    ) -> None:
        """A note in the timeline that changes nothing: the run's status on both sides."""
        self._add_transition(
            conn,
            current.id,
            at=at,
            from_status=current.status,
            to_status=current.status,
            vendor_status=current.snapshot.vendor_status,
            detail=detail,
            message=None,
            event=event,
            raw_json=None,
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
            return self._upsert(conn, profile_id, snapshot, origin=origin, request=request, at=epoch_now(at))

    def upsert_runs(
        self,
        profile_id: str,
        snapshots: Sequence[RunSnapshot],
        *,
        origin: str,
        at: datetime | None = None,
    ) -> list[tuple[RunRecord, bool]]:
        """:meth:`upsert_run` for many runs in one transaction (a watched pipeline's list)."""
        now = epoch_now(at)
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
            f"SELECT {RUN_COLUMNS} FROM runs "
            "WHERE service = ? AND profile_id = ? AND target = ? AND run_id = ?",
            key,
        ).fetchone()
        if existing is not None:
            return run_from_row(existing), False
        raw_json = self._raw_json(snapshot.raw)
        terminal = snapshot.status.terminal
        cursor = conn.execute(
            "INSERT INTO runs (service, profile_id, target, run_id, extra, origin, status, vendor_status, "
            "detail, message, created_at, started_at, ended_at, raw, fetched_at, first_seen_at, "
            "last_checked_at, last_attempt_at, closed, closed_reason, closed_at, activity_at, request) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *key,
                dumps(ref.extra),
                str(origin),
                snapshot.status.value,
                *snapshot_columns(snapshot, raw_json),
                at,
                at,
                at,
                int(terminal),
                "terminal" if terminal else None,
                at if terminal else None,
                at,
                None if request is None else dumps(request),
            ),
        )
        run = cursor.lastrowid
        assert run is not None
        event = _FIRST_EVENT.get(str(origin), str(origin))
        self._add_change(conn, run, snapshot, at=at, from_status=None, event=event, raw_json=raw_json)
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
        now = epoch_now(at)
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
                    dumps(extra),
                    snapshot.status.value,
                    *snapshot_columns(snapshot, raw_json),
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
                self._add_change(
                    conn, run, snapshot, at=now, from_status=current.status, event=event, raw_json=raw_json
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
                now = epoch_now(at)
                cursor = conn.execute(
                    "UPDATE runs SET extra = ?, vendor_status = ?, detail = ?, message = ?, created_at = ?, "
                    "started_at = ?, ended_at = ?, raw = ?, fetched_at = ?, last_checked_at = ?, "
                    "last_attempt_at = ?, stale = 0, last_error = NULL, last_error_kind = NULL, "
                    "activity_at = max(activity_at, ?) "
                    "WHERE id = ? AND closed = 0 AND status = ? "
                    "AND (last_attempt_at IS NULL OR last_attempt_at <= ?)",
                    (
                        dumps(snapshot.ref.extra),
                        *snapshot_columns(snapshot, self._raw_json(snapshot.raw)),
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
        now = epoch_now(at)
        message_safe = scrub(message)
        with self._write() as conn:
            current = self._require_run(conn, run)
            conn.execute(
                "UPDATE runs SET last_attempt_at = ?, last_error = ?, last_error_kind = ?, stale = ? "
                "WHERE id = ?",
                (now, message_safe, kind, int(stale), run),
            )
            if stale and not current.stale:
                self._add_note(conn, current, at=now, event="stale", detail=message_safe)
            return self._require_run(conn, run)

    def record_event(
        self, run: int, event: str, *, detail: str | None = None, at: datetime | None = None
    ) -> None:
        """A note in the run's timeline (recovered, auth_needed, ...), its status on both sides."""
        now = epoch_now(at)
        with self._write() as conn:
            current = self._require_run(conn, run)
            self._add_note(conn, current, at=now, event=event, detail=scrub(detail))

    def close_run(self, run: int, reason: str, *, at: datetime | None = None) -> RunRecord:
        """Stop following the run (e.g. "gone: not found on the service", "removed by the user")."""
        now = epoch_now(at)
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
                f"SELECT {RUN_COLUMNS} FROM runs "
                "WHERE service = ? AND profile_id = ? AND target = ? AND run_id = ?",
                (service, profile_id, target, run_id),
            ).fetchone()
            return None if row is None else run_from_row(row)

    def runs_with_run_id(
        self, run_id: str, *, service: str | None = None, profile_id: str | None = None
    ) -> list[RunRecord]:
        """Runs whose service-side run id is exactly ``run_id`` (any target), newest first."""
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"
        params: list[Any] = [run_id]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        if profile_id is not None:
            sql += " AND profile_id = ?"
            params.append(profile_id)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY first_seen_at DESC, id DESC", params).fetchall()
            return [run_from_row(r) for r in rows]

    def open_runs(self, profile_id: str | None = None) -> list[RunRecord]:
        """Runs still followed (not closed), oldest first."""
        with self._read() as conn:
            if profile_id is None:
                rows = conn.execute(OPEN_RUNS_SQL).fetchall()
            else:
                rows = conn.execute(OPEN_RUNS_OF_PROFILE_SQL, (profile_id,)).fetchall()
            return [run_from_row(r) for r in rows]

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
            pattern = like_pattern(text)
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
                    f"SELECT {RUN_COLUMNS} FROM runs {where} "
                    "ORDER BY first_seen_at DESC, id DESC LIMIT ? OFFSET ?",
                    [*params, max(0, limit), max(0, offset)],
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return [run_from_row(r) for r in rows], total

    def timeline(self, run: int) -> list[TransitionRecord]:
        """The run's transitions and notes, oldest first."""
        with self._read() as conn:
            return [transition_from_row(r) for r in conn.execute(TIMELINE_SQL, (run,)).fetchall()]

    def duration_stats(
        self, service: str, profile_id: str | None, target: str, *, limit: int = 50
    ) -> DurationStats | None:
        """Durations of the most recent ``limit`` SUCCEEDED runs of a target (by end time).

        A duration is ended_at minus started_at (else created_at); runs without both ends, and
        negative durations (clock skew), are left out. The median and p90 are interpolated
        linearly between closest ranks (see :func:`~runmonitor.storage.history.rows.percentile`).
        None with fewer than 2 runs.
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
            median_s=percentile(durations, 0.5),
            p90_s=percentile(durations, 0.9),
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
        now = epoch_now(at)
        intent_id = uuid.uuid4().hex
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO intents ({INTENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (
                    intent_id,
                    service,
                    profile_id,
                    target,
                    dumps(request),
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
        now = epoch_now(at)
        state = IntentState(state)
        with self._write() as conn:
            current = self._require_intent(conn, intent_id)
            new_error = scrub(error) if error is not None else current.error
            if state is IntentState.CONFIRMED and error is None:
                new_error = None
            conn.execute(
                "UPDATE intents SET state = ?, run = ?, error = ?, updated_at = ? WHERE id = ?",
                (state.value, current.run if run is None else run, new_error, now, intent_id),
            )
            return self._require_intent(conn, intent_id)

    def _require_intent(self, conn: sqlite3.Connection, intent_id: str) -> IntentRecord:
        row = conn.execute(f"SELECT {INTENT_COLUMNS} FROM intents WHERE id = ?", (intent_id,)).fetchone()
        if row is None:
            raise HistoryError(f"No create intent {intent_id!r} in the run history.")
        return intent_from_row(row)

    def get_intent(self, intent_id: str) -> IntentRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {INTENT_COLUMNS} FROM intents WHERE id = ?", (intent_id,)).fetchone()
            return None if row is None else intent_from_row(row)

    def open_intents(self) -> list[IntentRecord]:
        """Pending, unconfirmed and queued intents, oldest first."""
        states = sorted(s.value for s in OPEN_INTENT_STATES)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {INTENT_COLUMNS} FROM intents WHERE state IN (?, ?, ?) ORDER BY created_at, id",
                states,
            ).fetchall()
            return [intent_from_row(r) for r in rows]

    def intent_count(self) -> int:
        """How many creates were ever attempted (every create writes its intent first)."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM intents").fetchone()[0])

    def mark_pending_unconfirmed(self, *, at: datetime | None = None) -> list[IntentRecord]:
        """At start-up: every PENDING intent becomes UNCONFIRMED (its process is gone)."""
        now = epoch_now(at)
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
        now = epoch_now(at)
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO watches (service, profile_id, target, added_at) VALUES (?, ?, ?, ?)",
                (service, profile_id, target, now),
            )
            row = conn.execute(
                f"SELECT {WATCH_COLUMNS} FROM watches WHERE service = ? AND profile_id = ? AND target = ?",
                (service, profile_id, target),
            ).fetchone()
            return watch_from_row(row)

    def remove_watch(self, watch_id: int) -> bool:
        """Stop watching; False when there was no such watch."""
        with self._write() as conn:
            return conn.execute("DELETE FROM watches WHERE id = ?", (watch_id,)).rowcount > 0

    def watches(self, profile_id: str | None = None) -> list[WatchRecord]:
        with self._read() as conn:
            if profile_id is None:
                rows = conn.execute(f"SELECT {WATCH_COLUMNS} FROM watches ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {WATCH_COLUMNS} FROM watches WHERE profile_id = ? ORDER BY id", (profile_id,)
                ).fetchall()
            return [watch_from_row(r) for r in rows]

    def update_watch(
        self, watch_id: int, *, summary: dict[str, Any] | None, at: datetime | None = None
    ) -> WatchRecord:
        """Store the latest health summary of a watch, checked at ``at``."""
        now = epoch_now(at)
        summary_json = None if summary is None else dumps(redact_json(summary))
        with self._write() as conn:
            conn.execute(
                "UPDATE watches SET summary = ?, last_checked_at = ? WHERE id = ?",
                (summary_json, now, watch_id),
            )
            row = conn.execute(f"SELECT {WATCH_COLUMNS} FROM watches WHERE id = ?", (watch_id,)).fetchone()
            if row is None:
                raise HistoryError(f"No watch with id {watch_id} in the run history.")
            return watch_from_row(row)

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
        cutoff = epoch_now(now) - keep_days * 86400.0
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
