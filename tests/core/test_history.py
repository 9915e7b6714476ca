"""Run history in a real SQLite file: runs, transitions, intents, watches, retention, safety."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import (
    MAX_RAW_BYTES,
    OPEN_RUNS_OF_PROFILE_SQL,
    OPEN_RUNS_SQL,
    RETENTION_SQL,
    SCHEMA_VERSION,
    TIMELINE_SQL,
    AsyncHistory,
    DurationStats,
    HistoryError,
    HistoryStore,
    IntentState,
)
from runmonitor.storage.history import schema as history_schema

T0 = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


def snap(
    run_id: str,
    status: RunStatus = RunStatus.RUNNING,
    *,
    service: str = "svc",
    target: str = "pipe",
    extra: dict[str, str] | None = None,
    vendor: str | None = None,
    message: str | None = None,
    raw: Any = None,
    created: datetime | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> RunSnapshot:
    return RunSnapshot(
        ref=RunRef(service=service, target=target, run_id=run_id, extra=extra or {}),
        status=status,
        vendor_status=vendor if vendor is not None else status.value.lower(),
        message=message,
        raw=raw,
        created_at=created,
        started_at=started,
        ended_at=ended,
        fetched_at=T0,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(db_path) as opened:
        yield opened


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- runs --------------------------------------------------------------------------------------


def test_run_round_trip_keeps_identity_extra_raw_times_and_request(db_path: Path) -> None:
    raw = {"id": 7, "status": "running", "nested": [{"a": 1.5}, None, "ü"]}
    snapshot = snap(
        "r1",
        extra={"namespace": "ns", "reportTime": "1700000000000"},
        message="working",
        raw=raw,
        created=T0,
        started=T0 + timedelta(seconds=1, microseconds=7),
        ended=None,
    )
    with HistoryStore(db_path) as store:
        record, inserted = store.upsert_run(
            "prof", snapshot, origin="created", request={"flow": "f1", "params": {"n": 3}}, at=T0
        )
        assert inserted
    with HistoryStore(db_path) as store:  # a fresh process would see the same
        again = store.get_run(record.id)
    assert again == record
    assert again is not None
    assert again.profile_id == "prof"
    assert again.origin == "created"
    assert again.ref == snapshot.ref
    assert again.ref.extra == {"namespace": "ns", "reportTime": "1700000000000"}
    assert again.snapshot.raw == raw
    assert again.snapshot.started_at == T0 + timedelta(seconds=1, microseconds=7)
    assert again.snapshot.started_at.tzinfo is not None
    assert again.snapshot.created_at == T0
    assert again.snapshot.ended_at is None
    assert again.snapshot.fetched_at == T0
    assert again.first_seen_at == T0
    assert again.first_seen_at.utcoffset() == timedelta(0)
    assert again.request == {"flow": "f1", "params": {"n": 3}}
    # The inserted snapshot is the service's answer: it counts as a successful check.
    assert (again.last_checked_at, again.last_attempt_at) == (T0, T0)
    assert (again.stale, again.closed, again.last_error) == (False, False, None)
    assert (again.status, again.terminal) == (RunStatus.RUNNING, False)


def test_naive_datetimes_are_taken_as_utc(store: HistoryStore) -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    record, _ = store.upsert_run("p", snap("r", created=naive), origin="added", at=naive)
    assert record.snapshot.created_at == naive.replace(tzinfo=UTC)
    assert record.first_seen_at == naive.replace(tzinfo=UTC)


def test_upsert_is_idempotent_and_writes_one_first_transition(store: HistoryStore) -> None:
    first, inserted = store.upsert_run("p", snap("r1", raw={"v": 1}), origin="watched", at=T0)
    assert inserted
    same, inserted_again = store.upsert_run(
        "p", snap("r1", RunStatus.SUCCEEDED, raw={"v": 2}), origin="created", at=T0 + timedelta(hours=1)
    )
    assert not inserted_again
    assert same == first  # returned unchanged, not overwritten
    assert store.get_run(first.id) == first
    [transition] = store.timeline(first.id)
    assert (transition.from_status, transition.to_status, transition.event) == (
        None,
        RunStatus.RUNNING,
        "discovered",
    )
    assert transition.raw == {"v": 1}
    assert transition.at == T0

    other_profile, inserted_other = store.upsert_run("q", snap("r1"), origin="added")
    assert inserted_other
    assert other_profile.id != first.id
    assert store.timeline(other_profile.id)[0].event == "added"
    created, _ = store.upsert_run("p", snap("r2"), origin="created")
    assert store.timeline(created.id)[0].event == "created"
    assert store.find_run("svc", "p", "pipe", "r1") == first
    assert store.find_run("svc", "p", "pipe", "nope") is None


def test_a_run_terminal_on_insert_is_closed_at_once(store: HistoryStore) -> None:
    record, _ = store.upsert_run("p", snap("done", RunStatus.FAILED), origin="watched", at=T0)
    assert record.closed
    assert record.closed_reason == "terminal"
    assert record.terminal
    assert store.open_runs() == []


def test_record_check_updates_last_known_and_appends_transitions(store: HistoryStore) -> None:
    record, _ = store.upsert_run(
        "p", snap("r", RunStatus.PENDING, extra={"a": "1", "b": "1"}), origin="created", at=T0
    )

    # A check without a change: last known state and times move, no transition.
    t1 = T0 + timedelta(seconds=10)
    checked = store.record_check(record.id, snap("r", RunStatus.PENDING, message="queued"), event=None, at=t1)
    assert checked.snapshot.message == "queued"
    assert checked.last_checked_at == checked.last_attempt_at == t1
    assert len(store.timeline(record.id)) == 1

    t2 = T0 + timedelta(seconds=20)
    running = store.record_check(
        record.id,
        snap("r", RunStatus.RUNNING, extra={"b": "2", "c": "3"}, raw={"state": "run"}, started=t1),
        event="transition",
        at=t2,
    )
    assert running.ref.extra == {"a": "1", "b": "2", "c": "3"}  # merged, new keys win
    assert running.status is RunStatus.RUNNING
    assert running.snapshot.started_at == t1
    assert not running.closed
    assert [r.id for r in store.open_runs()] == [record.id]

    t3 = T0 + timedelta(seconds=30)
    done = store.record_check(
        record.id, snap("r", RunStatus.SUCCEEDED, vendor="Completed", ended=t3), event="transition", at=t3
    )
    assert done.closed
    assert done.closed_reason == "terminal"
    assert done.closed_at == t3
    assert store.open_runs() == []

    timeline = store.timeline(record.id)
    assert [(t.from_status, t.to_status, t.event) for t in timeline] == [
        (None, RunStatus.PENDING, "created"),
        (RunStatus.PENDING, RunStatus.RUNNING, "transition"),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED, "transition"),
    ]
    assert [t.at for t in timeline] == [T0, t2, t3]
    assert timeline[1].raw == {"state": "run"}
    assert timeline[2].vendor_status == "Completed"
    assert all(t.run == record.id for t in timeline)


def test_stale_and_recovered(store: HistoryStore) -> None:
    record, _ = store.upsert_run("p", snap("r"), origin="created", at=T0)
    ok_at = T0 + timedelta(seconds=5)
    store.record_check(record.id, snap("r", message="ok"), event=None, at=ok_at)

    fail_at = T0 + timedelta(seconds=10)
    failed = store.record_failure(record.id, kind="timed_out", message="no answer", stale=False, at=fail_at)
    assert (failed.last_error, failed.last_error_kind, failed.stale) == ("no answer", "timed_out", False)
    assert failed.last_checked_at == ok_at  # only successful checks count
    assert failed.last_attempt_at == fail_at
    assert failed.snapshot.message == "ok"  # last known snapshot kept
    assert len(store.timeline(record.id)) == 1

    stale = store.record_failure(
        record.id, kind="connection_failed", message="refused", stale=True, at=fail_at
    )
    assert stale.stale
    store.record_failure(record.id, kind="connection_failed", message="refused", stale=True, at=fail_at)
    events = store.timeline(record.id)
    assert [e.event for e in events] == ["created", "stale"]  # only the flip is noted
    assert (events[1].from_status, events[1].to_status, events[1].detail) == (
        RunStatus.RUNNING,
        RunStatus.RUNNING,
        "refused",
    )

    back_at = T0 + timedelta(seconds=60)
    recovered = store.record_check(record.id, snap("r"), event=None, at=back_at)
    store.record_event(record.id, "recovered", detail="answering again", at=back_at)
    assert not recovered.stale
    assert (recovered.last_error, recovered.last_error_kind) == (None, None)
    assert recovered.last_checked_at == back_at
    last = store.timeline(record.id)[-1]
    assert (last.event, last.detail, last.from_status, last.to_status) == (
        "recovered",
        "answering again",
        RunStatus.RUNNING,
        RunStatus.RUNNING,
    )


def test_quiet_checks_are_written_in_one_batch_unless_the_run_moved_on(store: HistoryStore) -> None:
    a, _ = store.upsert_run("p", snap("a"), origin="created", at=T0)
    b, _ = store.upsert_run("p", snap("b"), origin="created", at=T0)
    c, _ = store.upsert_run("p", snap("c"), origin="created", at=T0)
    checked = T0 + timedelta(seconds=5)
    # b failed a check after the quiet one was queued; c finished meanwhile.
    store.record_failure(
        b.id, kind="timed_out", message="no answer", stale=True, at=T0 + timedelta(seconds=6)
    )
    store.record_check(c.id, snap("c", RunStatus.SUCCEEDED), event="succeeded", at=T0 + timedelta(seconds=4))
    items = [
        (a.id, snap("a", message="still going", extra={"k": "v"}), checked),
        (b.id, snap("b", message="stale news"), checked),
        (c.id, snap("c", message="too late"), checked),
    ]
    assert store.record_quiet_checks(items) == 1
    after_a, after_b, after_c = (store.get_run(r.id) for r in (a, b, c))
    assert after_a is not None and after_a.last_checked_at == checked
    assert after_a.snapshot.message == "still going" and after_a.ref.extra == {"k": "v"}
    assert len(store.timeline(a.id)) == 1  # no transition for a quiet check
    assert after_b is not None and after_b.stale and after_b.snapshot.message is None
    assert after_c is not None and after_c.status is RunStatus.SUCCEEDED and after_c.snapshot.message is None


def test_close_and_reopen(store: HistoryStore) -> None:
    record, _ = store.upsert_run("p", snap("r"), origin="added", at=T0)
    other, _ = store.upsert_run("q", snap("s"), origin="added", at=T0)
    closed = store.close_run(record.id, "gone: not found on the service", at=T0 + timedelta(minutes=1))
    assert closed.closed
    assert closed.closed_reason == "gone: not found on the service"
    assert [r.id for r in store.open_runs()] == [other.id]
    assert store.open_runs("p") == []

    # A terminal answer for a run closed for another reason keeps that reason.
    after = store.record_check(record.id, snap("r", RunStatus.CANCELLED), event="transition")
    assert after.closed_reason == "gone: not found on the service"

    reopened = store.reopen_run(record.id)
    assert not reopened.closed
    assert reopened.closed_reason is None
    assert [r.id for r in store.open_runs("p")] == [record.id]


def test_unknown_ids(store: HistoryStore) -> None:
    assert store.get_run(999) is None
    assert store.timeline(999) == []
    with pytest.raises(HistoryError, match="999"):
        store.record_check(999, snap("r"), event=None)
    with pytest.raises(HistoryError):
        store.close_run(999, "x")
    with pytest.raises(HistoryError):
        store.record_event(999, "recovered")
    assert store.get_intent("nope") is None
    with pytest.raises(HistoryError):
        store.set_intent_state("nope", IntentState.DISCARDED)


def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = HistoryStore(db_path)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(HistoryError, match="closed"):
        store.open_runs()


# -- queries -----------------------------------------------------------------------------------


@pytest.fixture
def populated(store: HistoryStore) -> HistoryStore:
    rows = [
        # (service, profile, target, run_id, status, message, origin)
        ("cognite", "p1", "100%_done", "a1", RunStatus.SUCCEEDED, None, "watched"),
        ("cognite", "p1", "100x done", "a2", RunStatus.FAILED, "Disk FULL", "watched"),
        ("cognite", "p2", "1000 done", "a3", RunStatus.RUNNING, None, "created"),
        ("marquez", "p1", "job", "b1", RunStatus.RUNNING, "50% there", "created"),
        ("marquez", "p2", "job", "b2", RunStatus.PENDING, None, "added"),
        ("marquez", "p2", "job", "under_score", RunStatus.CANCELLED, None, "added"),
    ]
    for i, (service, profile, target, run_id, status, message, origin) in enumerate(rows):
        store.upsert_run(
            profile,
            snap(run_id, status, service=service, target=target, message=message),
            origin=origin,
            at=T0 + timedelta(minutes=i),
        )
    return store


def ids(records: Any) -> list[str]:
    return [r.ref.run_id for r in records[0]]


def test_query_is_newest_first_with_total(populated: HistoryStore) -> None:
    page, total = populated.query_runs()
    assert total == 6
    assert [r.ref.run_id for r in page] == ["under_score", "b2", "b1", "a3", "a2", "a1"]


def test_query_filters(populated: HistoryStore) -> None:
    q = populated.query_runs
    assert ids(q(service="cognite")) == ["a3", "a2", "a1"]
    assert ids(q(profile_id="p2")) == ["under_score", "b2", "a3"]
    assert ids(q(service="marquez", profile_id="p2")) == ["under_score", "b2"]
    assert ids(q(statuses={RunStatus.RUNNING, RunStatus.PENDING})) == ["b2", "b1", "a3"]
    assert q(statuses=[]) == ([], 0)
    assert ids(q(origin="added")) == ["under_score", "b2"]
    assert ids(q(text="DONE")) == ["a3", "a2", "a1"]  # case-insensitive, in the target
    assert ids(q(text="disk full")) == ["a2"]  # in the message
    assert ids(q(text="failed")) == ["a2"]  # in the vendor status
    assert ids(q(text="B1")) == ["b1"]  # in the run id


def test_query_text_wildcards_match_literally(populated: HistoryStore) -> None:
    q = populated.query_runs
    assert ids(q(text="0%_")) == ["a1"]  # not "1000 done" nor "100x done"
    assert ids(q(text="%")) == ["b1", "a1"]  # "50% there" and "100%_done"
    assert ids(q(text="_")) == ["under_score", "a1"]
    assert ids(q(text="\\")) == []


def test_query_paging(populated: HistoryStore) -> None:
    page1, total1 = populated.query_runs(profile_id="p1", limit=2)
    page2, total2 = populated.query_runs(profile_id="p1", limit=2, offset=2)
    assert total1 == total2 == 3
    assert [r.ref.run_id for r in page1] == ["b1", "a2"]
    assert [r.ref.run_id for r in page2] == ["a1"]
    assert populated.query_runs(limit=2, offset=10) == ([], 6)


def test_queries_use_indexes(store: HistoryStore, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:

        def plan(sql: str, params: tuple[Any, ...]) -> str:
            return " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))

        # SEARCH through an index, never a SCAN of the whole table (100k runs must stay fast).
        assert plan(OPEN_RUNS_SQL, ()).startswith("SEARCH runs USING INDEX runs_")
        assert plan(OPEN_RUNS_OF_PROFILE_SQL, ("p",)).startswith("SEARCH runs USING INDEX runs_open")
        assert plan(TIMELINE_SQL, (1,)).startswith("SEARCH transitions USING INDEX transitions_run")
        assert (
            plan(RETENTION_SQL, (0.0, 10))
            == "SEARCH runs USING COVERING INDEX runs_retention (closed=? AND activity_at<?)"
        )
    finally:
        conn.close()


# -- duration statistics -----------------------------------------------------------------------


def test_duration_stats_known_values(store: HistoryStore) -> None:
    for i, seconds in enumerate([40, 10, 100, 30, 70, 20, 90, 50, 80, 60]):
        start = T0 + timedelta(hours=i)
        end = start + timedelta(seconds=seconds)
        # Half have a start time, the others only a creation time.
        if i % 2:
            snapshot = snap(f"ok{i}", RunStatus.SUCCEEDED, started=start, ended=end)
        else:
            snapshot = snap(f"ok{i}", RunStatus.SUCCEEDED, created=start, ended=end)
        store.upsert_run("p", snapshot, origin="watched")
    # Not counted: failed, still running, no start, other target, other service.
    store.upsert_run(
        "p", snap("f", RunStatus.FAILED, started=T0, ended=T0 + timedelta(hours=9)), origin="watched"
    )
    store.upsert_run("p", snap("r", RunStatus.RUNNING, started=T0), origin="watched")
    store.upsert_run("p", snap("n", RunStatus.SUCCEEDED, ended=T0), origin="watched")
    store.upsert_run(
        "p",
        snap("o", RunStatus.SUCCEEDED, target="other", started=T0, ended=T0 + timedelta(days=1)),
        origin="watched",
    )

    stats = store.duration_stats("svc", "p", "pipe")
    assert stats is not None
    assert stats.count == 10
    assert stats.median_s == pytest.approx(55.0)
    assert stats.p90_s == pytest.approx(91.0)
    assert store.duration_stats("svc", None, "pipe") == stats  # any profile
    assert store.duration_stats("svc", "other-profile", "pipe") is None

    # The most recent three by end time: hours 7, 8, 9 -> 50, 80, 60 s.
    recent = store.duration_stats("svc", "p", "pipe", limit=3)
    assert isinstance(recent, DurationStats)
    assert recent.count == 3
    assert recent.median_s == pytest.approx(60.0)
    assert recent.p90_s == pytest.approx(76.0)
    assert store.duration_stats("svc", "p", "pipe", limit=1) is None
    assert store.duration_stats("svc", "p", "other") is None  # only one run
    assert store.duration_stats("nope", "p", "pipe") is None


# -- intents -----------------------------------------------------------------------------------


def test_intent_lifecycle(store: HistoryStore) -> None:
    a = store.add_intent("connhex", "p", "exp", {"type": "oneTime", "n": [1, 2]}, None, at=T0)
    b = store.add_intent("marquez", "p", "job", {}, "6f1c0c8e-uuid", at=T0 + timedelta(seconds=1))
    c = store.add_intent("marquez", "p", "job", {}, None, at=T0 + timedelta(seconds=2))
    assert len(a.id) == 32 and a.id != b.id
    assert (a.state, a.run, a.error, a.created_at, a.updated_at) == (IntentState.PENDING, None, None, T0, T0)
    assert a.request == {"type": "oneTime", "n": [1, 2]}
    assert b.client_run_id == "6f1c0c8e-uuid"
    assert [i.id for i in store.open_intents()] == [a.id, b.id, c.id]

    queued = store.set_intent_state(
        a.id, IntentState.QUEUED, error="Maximum number of queued exports reached"
    )
    assert queued.state is IntentState.QUEUED
    assert queued.error == "Maximum number of queued exports reached"
    assert queued.updated_at > a.updated_at

    run, _ = store.upsert_run("p", snap("x1", service="connhex", target="exp"), origin="created")
    confirmed = store.set_intent_state(a.id, IntentState.CONFIRMED, run=run.id)
    assert (confirmed.state, confirmed.run, confirmed.error) == (IntentState.CONFIRMED, run.id, None)
    failed = store.set_intent_state(c.id, IntentState.FAILED, error="HTTP 400")
    assert store.get_intent(c.id) == failed
    assert [i.id for i in store.open_intents()] == [b.id]

    # Start-up after a crash: the pending intent's process is gone.
    marked = store.mark_pending_unconfirmed()
    assert [i.id for i in marked] == [b.id]
    assert marked[0].state is IntentState.UNCONFIRMED
    assert marked[0].error and "may or may not" in marked[0].error
    assert store.mark_pending_unconfirmed() == []
    assert store.get_intent(a.id) == confirmed  # untouched
    assert [i.state for i in store.open_intents()] == [IntentState.UNCONFIRMED]
    discarded = store.set_intent_state(b.id, IntentState.DISCARDED)
    assert discarded.state is IntentState.DISCARDED
    assert store.open_intents() == []


# -- watches -----------------------------------------------------------------------------------


def test_watches(store: HistoryStore) -> None:
    w = store.add_watch("cognite", "p", "extpipe-1", at=T0)
    assert store.add_watch("cognite", "p", "extpipe-1", at=T0 + timedelta(hours=1)) == w  # idempotent
    other = store.add_watch("cognite", "q", "extpipe-1")
    assert (w.added_at, w.last_checked_at, w.summary) == (T0, None, None)
    assert [x.id for x in store.watches()] == [w.id, other.id]
    assert [x.id for x in store.watches("q")] == [other.id]

    summary = {"last_success": T0, "last_message": "fine", "apiKey": "leak"}
    updated = store.update_watch(w.id, summary=summary, at=T0 + timedelta(minutes=5))
    assert updated.last_checked_at == T0 + timedelta(minutes=5)
    assert updated.summary == {"last_success": T0.isoformat(), "last_message": "fine", "apiKey": "***"}
    assert store.watches("p") == [updated]

    assert store.remove_watch(w.id)
    assert not store.remove_watch(w.id)
    assert [x.id for x in store.watches()] == [other.id]
    with pytest.raises(HistoryError):
        store.update_watch(w.id, summary=None)


# -- raw payloads ------------------------------------------------------------------------------


def test_raw_payload_secrets_are_redacted(store: HistoryStore, db_path: Path) -> None:
    raw = {"id": "r", "token": "tok-123456", "items": [{"password": "hunter22", "ok": True}], "code": ""}
    record, _ = store.upsert_run("p", snap("r", raw=raw), origin="created")
    masked = {"id": "r", "token": "***", "items": [{"password": "***", "ok": True}], "code": ""}
    assert record.snapshot.raw == masked
    assert store.timeline(record.id)[0].raw == masked
    checked = store.record_check(
        record.id, snap("r", RunStatus.FAILED, raw={"clientSecret": "s3cr3t"}), event="t"
    )
    assert checked.snapshot.raw == {"clientSecret": "***"}
    assert store.timeline(record.id)[-1].raw == {"clientSecret": "***"}
    store.close()
    data = db_path.read_bytes() + (
        Path(f"{db_path}-wal").read_bytes() if Path(f"{db_path}-wal").exists() else b""
    )
    for secret in (b"tok-123456", b"hunter22", b"s3cr3t"):
        assert secret not in data


def test_oversized_raw_payload_is_replaced_by_its_size(store: HistoryStore, tmp_path: Path) -> None:
    big = {"blob": "x" * (MAX_RAW_BYTES + 10)}
    size = len(f'{{"blob":"{big["blob"]}"}}'.encode())
    record, _ = store.upsert_run("p", snap("r", raw=big), origin="created")
    assert record.snapshot.raw == {"truncated": True, "size": size}
    assert store.timeline(record.id)[0].raw == {"truncated": True, "size": size}
    fits = {"blob": "y" * (MAX_RAW_BYTES - 100)}
    assert store.record_check(record.id, snap("r", raw=fits), event=None).snapshot.raw == fits

    with HistoryStore(tmp_path / "small.sqlite3", max_raw_bytes=100) as small:
        # Counted in UTF-8 bytes, not characters: 40 x "é" is 80 bytes plus the JSON around it.
        rec, _ = small.upsert_run("p", snap("r", raw={"t": "é" * 40}), origin="created")
        assert rec.snapshot.raw == {"t": "é" * 40}
        rec = small.record_check(rec.id, snap("r", raw={"t": "é" * 60}), event=None)
        assert rec.snapshot.raw == {"truncated": True, "size": 128}


# -- the file ----------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_file_is_private_and_in_wal_mode(store: HistoryStore, db_path: Path) -> None:
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_an_existing_folder_keeps_its_permissions(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with HistoryStore(shared / "h.sqlite3"):
        pass
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # only folders it creates are made private
    assert stat.S_IMODE((shared / "h.sqlite3").stat().st_mode) == 0o600


def test_stats(store: HistoryStore, db_path: Path) -> None:
    r, _ = store.upsert_run("p", snap("r"), origin="created")
    store.upsert_run("p", snap("d", RunStatus.SUCCEEDED), origin="watched")
    store.record_event(r.id, "note")
    store.add_intent("svc", "p", "pipe", {}, None)
    store.add_watch("svc", "p", "pipe")
    stats = store.stats()
    assert {
        k: stats[k] for k in ("runs", "open_runs", "transitions", "intents", "open_intents", "watches")
    } == {
        "runs": 2,
        "open_runs": 1,
        "transitions": 3,
        "intents": 1,
        "open_intents": 1,
        "watches": 1,
    }
    assert stats["file_size"] >= db_path.stat().st_size > 0


def test_newer_schema_is_refused_and_left_untouched(db_path: Path) -> None:
    with HistoryStore(db_path) as store:
        store.upsert_run("p", snap("r"), origin="created")
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.execute("PRAGMA journal_mode = DELETE")  # as if the newer version used another journal
    conn.close()
    before = digest(db_path)
    listing = sorted(os.listdir(db_path.parent))

    with pytest.raises(HistoryError) as caught:
        HistoryStore(db_path)
    message = str(caught.value)
    assert "newer RunMonitor" in message
    assert f"schema {SCHEMA_VERSION + 3}, this version knows {SCHEMA_VERSION}" in message
    assert str(db_path) in message
    assert digest(db_path) == before
    assert sorted(os.listdir(db_path.parent)) == listing  # no -wal/-shm left behind


def test_newer_schema_in_wal_mode_is_refused(db_path: Path) -> None:
    with HistoryStore(db_path):
        pass
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    keep_open = conn  # the newer app still running: its WAL is live
    try:
        before = digest(db_path)
        with pytest.raises(HistoryError, match="newer RunMonitor"):
            HistoryStore(db_path)
        assert digest(db_path) == before
    finally:
        keep_open.close()


@pytest.mark.parametrize(
    "content",
    [b'{"settings": true}\n', b"\x00" * 4096, b"SQLite format 3\x00" + b"\xff" * 200],
    ids=["json", "zeros", "bad-header"],
)
def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    listing = sorted(os.listdir(db_path.parent))
    with pytest.raises(HistoryError) as caught:
        HistoryStore(db_path)
    assert str(db_path) in str(caught.value)
    assert db_path.read_bytes() == content
    assert sorted(os.listdir(db_path.parent)) == listing


def test_another_apps_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = digest(db_path)
    with pytest.raises(HistoryError, match="not a RunMonitor run history"):
        HistoryStore(db_path)
    assert digest(db_path) == before


@pytest.mark.parametrize("kind", ["zero-bytes", "empty-database"])
def test_migration_from_an_empty_v0_file(db_path: Path, kind: str) -> None:
    db_path.parent.mkdir(parents=True)
    if kind == "zero-bytes":
        db_path.touch()
    else:
        conn = sqlite3.connect(db_path)
        conn.execute("VACUUM")  # writes the header: a valid database, user_version 0, no tables
        conn.close()
        assert db_path.read_bytes().startswith(b"SQLite format 3\x00")
    with HistoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        record, _ = store.upsert_run("p", snap("r"), origin="created")
    with HistoryStore(db_path) as store:  # opening a current file migrates nothing
        assert store.get_run(record.id) == record
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "transitions", "intents", "watches"} <= tables
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_old_version(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HistoryStore(db_path) as store:
        store.upsert_run("p", snap("r"), origin="created")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("THIS IS NOT SQL")

    monkeypatch.setattr(history_schema, "MIGRATIONS", (*history_schema.MIGRATIONS, broken))
    monkeypatch.setattr(history_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(HistoryError, match="Cannot prepare"):
        HistoryStore(db_path)
    monkeypatch.undo()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    finally:
        conn.close()
    with HistoryStore(db_path) as store:
        assert len(store.open_runs()) == 1


_CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from runmonitor.storage.history import HistoryStore, IntentState
    from runmonitor.domain.models import RunRef, RunSnapshot
    from runmonitor.domain.status import RunStatus

    store = HistoryStore(Path(sys.argv[1]))
    intent = store.add_intent("svc", "p", "pipe", {"n": 1}, "client-1")
    for i in range(5):
        ref = RunRef(service="svc", target="pipe", run_id=f"r{i}", extra={"i": str(i)})
        record, _ = store.upsert_run("p", RunSnapshot(ref=ref, status=RunStatus.PENDING), origin="created")
    store.record_check(record.id, RunSnapshot(ref=ref, status=RunStatus.RUNNING), event="transition")
    store.set_intent_state(intent.id, IntentState.CONFIRMED, run=record.id)
    pending = store.add_intent("svc", "p", "pipe", {"n": 2}, None)
    print("ready", intent.id, pending.id, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_everything_returned_survives_a_sigkill(db_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()  # SIGKILL: no atexit, no close, no checkpoint
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -9
    _, confirmed_id, pending_id = line

    with HistoryStore(db_path) as store:
        runs = store.open_runs()
        assert [r.ref.run_id for r in runs] == [f"r{i}" for i in range(5)]
        assert runs[-1].status is RunStatus.RUNNING
        assert runs[-1].ref.extra == {"i": "4"}
        assert [t.event for t in store.timeline(runs[-1].id)] == ["created", "transition"]
        confirmed = store.get_intent(confirmed_id)
        assert confirmed is not None
        assert (confirmed.state, confirmed.run, confirmed.client_run_id) == (
            IntentState.CONFIRMED,
            runs[-1].id,
            "client-1",
        )
        [unconfirmed] = store.mark_pending_unconfirmed()
        assert unconfirmed.id == pending_id
        assert unconfirmed.request == {"n": 2}


# -- retention ---------------------------------------------------------------------------------


def test_retention_deletes_only_old_closed_runs_in_batches(store: HistoryStore) -> None:
    now = T0 + timedelta(days=100)
    old = T0
    old_closed = []
    for i in range(5):
        record, _ = store.upsert_run("p", snap(f"old{i}"), origin="watched", at=old)
        store.record_check(record.id, snap(f"old{i}", RunStatus.SUCCEEDED), event="transition", at=old)
        old_closed.append(record.id)
    old_open, _ = store.upsert_run("p", snap("old-open"), origin="created", at=old)
    store.record_failure(old_open.id, kind="timed_out", message="x", stale=True, at=old)
    recent_closed, _ = store.upsert_run("p", snap("recent", RunStatus.FAILED), origin="watched", at=now)
    # Seen long ago but checked recently: still active.
    checked_recently, _ = store.upsert_run("p", snap("checked"), origin="watched", at=old)
    store.record_check(checked_recently.id, snap("checked", RunStatus.SUCCEEDED), event="t", at=now)
    # Seen long ago, removed by the user recently: closing counts as activity.
    removed_recently, _ = store.upsert_run("p", snap("removed"), origin="watched", at=old)
    store.close_run(removed_recently.id, "removed by the user", at=now - timedelta(days=1))

    old_done = store.add_intent("svc", "p", "pipe", {}, None, at=old)
    store.set_intent_state(old_done.id, IntentState.CONFIRMED, run=old_closed[0], at=old)
    old_failed = store.add_intent("svc", "p", "pipe", {}, None, at=old)
    store.set_intent_state(old_failed.id, IntentState.FAILED, error="no", at=old)
    old_open_intent = store.add_intent("svc", "p", "pipe", {}, None, at=old)
    store.set_intent_state(old_open_intent.id, IntentState.UNCONFIRMED, at=old)
    new_done = store.add_intent("svc", "p", "pipe", {}, None, at=now)
    store.set_intent_state(new_done.id, IntentState.DISCARDED, at=now)

    before = store.stats()["transitions"]
    assert store.apply_retention(30, now=now, batch=2) == 5
    for run in old_closed:
        assert store.get_run(run) is None
        assert store.timeline(run) == []
    assert store.stats()["transitions"] == before - 10  # two per deleted run
    for kept in (old_open, recent_closed, checked_recently, removed_recently):
        assert store.get_run(kept.id) is not None
    assert len(store.timeline(old_open.id)) == 2  # created + stale
    assert store.get_intent(old_done.id) is None
    assert store.get_intent(old_failed.id) is None
    assert store.get_intent(old_open_intent.id) is not None
    assert store.get_intent(new_done.id) is not None
    assert store.apply_retention(30, now=now) == 0
    with pytest.raises(ValueError, match="keep_days"):
        store.apply_retention(-1)


def test_retention_keeps_intent_of_kept_run_and_unlinks_deleted(store: HistoryStore) -> None:
    record, _ = store.upsert_run("p", snap("r", RunStatus.SUCCEEDED), origin="created", at=T0)
    intent = store.add_intent("svc", "p", "pipe", {}, None, at=T0 + timedelta(days=50))
    store.set_intent_state(intent.id, IntentState.CONFIRMED, run=record.id, at=T0 + timedelta(days=50))
    assert store.apply_retention(30, now=T0 + timedelta(days=60)) == 1
    kept = store.get_intent(intent.id)
    assert kept is not None
    assert kept.run is None  # the run is gone; the intent no longer points at a reused id


# -- async -------------------------------------------------------------------------------------


@pytest.fixture
def new_history_threads() -> Callable[[], set[threading.Thread]]:
    """History worker threads started since the test began (other tests' threads do not count)."""
    before = set(threading.enumerate())

    def new() -> set[threading.Thread]:
        return {
            t for t in threading.enumerate() if t.name.startswith("runmonitor-history") and t not in before
        }

    return new


def test_async_history_offers_every_store_method() -> None:
    public = sorted(
        name for name, value in vars(HistoryStore).items() if inspect.isfunction(value) and name[0] != "_"
    )
    assert "upsert_run" in public and "stats" in public
    for name in public:
        assert inspect.iscoroutinefunction(getattr(AsyncHistory, name, None)), name


async def test_async_history_calls_run_in_the_history_thread(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, new_history_threads: Callable[[], set[threading.Thread]]
) -> None:
    seen: list[tuple[str, str]] = []

    def spy(name: str) -> None:
        original = getattr(HistoryStore, name)

        def wrapper(self: HistoryStore, *args: Any, **kwargs: Any) -> Any:
            seen.append((name, threading.current_thread().name))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(HistoryStore, name, wrapper)

    for name in ("__init__", "upsert_run", "record_check", "timeline", "query_runs", "close"):
        spy(name)

    history = await AsyncHistory.open(db_path)
    record, inserted = await history.upsert_run("p", snap("r"), origin="created")
    assert inserted
    await history.record_check(record.id, snap("r", RunStatus.SUCCEEDED), event="transition")
    assert [t.to_status for t in await history.timeline(record.id)] == [
        RunStatus.RUNNING,
        RunStatus.SUCCEEDED,
    ]
    page, total = await history.query_runs(statuses={RunStatus.SUCCEEDED})
    assert total == 1 and page[0].id == record.id
    await history.close()

    loop_thread = threading.current_thread().name
    assert [n for n, _ in seen] == [
        "__init__",
        "upsert_run",
        "record_check",
        "timeline",
        "query_runs",
        "close",
    ]
    threads = {t for _, t in seen}
    assert len(threads) == 1  # one dedicated thread for everything
    [thread] = threads
    assert thread.startswith("runmonitor-history")
    assert thread != loop_thread
    assert new_history_threads() == set()


@pytest.fixture
def garbage_file(db_path: Path) -> Path:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"not a database at all")
    return db_path


async def test_async_open_errors_surface_and_leave_no_thread(
    garbage_file: Path, new_history_threads: Callable[[], set[threading.Thread]]
) -> None:
    db_path = garbage_file
    with pytest.raises(HistoryError, match="not a SQLite database"):
        await AsyncHistory.open(db_path)
    for _ in range(200):  # the worker thread ends on its own once the executor is shut down
        if not new_history_threads():
            break
        await asyncio.sleep(0.01)
    assert new_history_threads() == set()


async def test_event_loop_keeps_ticking_during_a_big_batch(db_path: Path) -> None:
    """20k upserts, in pages of 500 as a watched pipeline's list would come, while a 10 ms ticker runs.

    The results are dropped as they come so the heap stays small: a full garbage collection of
    a large heap stops every thread alike, and that is not what this test is about.
    """
    total_runs, page = 20_000, 500
    async with await AsyncHistory.open(db_path) as history:
        ticks: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        started = time.monotonic()
        inserted = 0
        for first in range(0, total_runs, page):
            chunk = [snap(f"run-{i}", raw={"i": i, "token": "t"}) for i in range(first, first + page)]
            inserted += sum(new for _, new in await history.upsert_runs("p", chunk, origin="watched"))
        finished = time.monotonic()
        done.set()
        await task

        assert inserted == total_runs
        during = [t for t in ticks if started <= t <= finished]
        gaps = [b - a for a, b in zip([started, *during], [*during, finished], strict=True)]
        # Not a benchmark: only that the loop kept running while the disk worked. Run on the loop
        # itself, the batch held it for about 2 s in one piece; the bounds leave room for a busy CI.
        assert max(gaps) < 1.0, f"event loop blocked for {max(gaps):.3f} s"
        assert len(during) >= (finished - started) / 0.1

        assert (await history.stats())["runs"] == total_runs
        newest, count = await history.query_runs(limit=1)
        assert count == total_runs
        assert newest[0].snapshot.raw == {"i": total_runs - 1, "token": "***"}


async def test_async_close_is_idempotent_and_later_calls_fail_clearly(
    db_path: Path, new_history_threads: Callable[[], set[threading.Thread]]
) -> None:
    history = await AsyncHistory.open(db_path)
    assert history.schema_version == SCHEMA_VERSION
    await history.close()
    await history.close()
    with pytest.raises(HistoryError, match="closed"):
        await history.open_runs()
    assert new_history_threads() == set()


async def test_cancelled_open_closes_what_the_worker_opened(
    db_path: Path, new_history_threads: Callable[[], set[threading.Thread]]
) -> None:
    task = asyncio.create_task(AsyncHistory.open(db_path))
    await asyncio.sleep(0)  # the worker has started opening
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if not new_history_threads():
            break
        await asyncio.sleep(0.01)
    assert new_history_threads() == set()
    async with await AsyncHistory.open(db_path) as history:  # nothing left holding the file
        assert await history.open_runs() == []
