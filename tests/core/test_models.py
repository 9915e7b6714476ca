"""Run models: newest-first ordering and the watch summary derived from runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runmonitor.domain.models import RunRef, RunSnapshot, newest_first, summarize_runs
from runmonitor.domain.status import RunStatus, StatusMap

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def snap(
    run_id: str,
    status: RunStatus,
    minutes: int | None,
    *,
    ended: int | None = None,
    message: str | None = None,
) -> RunSnapshot:
    return RunSnapshot(
        ref=RunRef(service="s", target="t", run_id=run_id),
        status=status,
        created_at=None if minutes is None else T0 + timedelta(minutes=minutes),
        ended_at=None if ended is None else T0 + timedelta(minutes=ended),
        message=message,
    )


def test_newest_first_is_stable_and_puts_undated_last() -> None:
    runs = [
        snap("a", RunStatus.RUNNING, 1),
        snap("b", RunStatus.RUNNING, None),
        snap("c", RunStatus.RUNNING, 5),
        snap("d", RunStatus.RUNNING, 1),
    ]
    assert [r.ref.run_id for r in newest_first(runs)] == ["c", "a", "d", "b"]


def test_summary_is_derived_from_the_runs() -> None:
    runs = newest_first(
        [
            snap("ok-old", RunStatus.SUCCEEDED, 0, ended=10),
            snap("bad", RunStatus.FAILED, 20, ended=25, message="disk full"),
            snap("ok-new", RunStatus.SUCCEEDED, 30, ended=40),
            snap("now", RunStatus.RUNNING, 50, message="working"),
        ]
    )
    summary = summarize_runs("s", "t", runs)
    assert summary.last_success == T0 + timedelta(minutes=40)
    assert summary.last_failure == T0 + timedelta(minutes=25)
    assert summary.last_seen == T0 + timedelta(minutes=50)
    assert summary.last_message == "working"
    overridden = summarize_runs("s", "t", runs, last_message="from the service")
    assert overridden.last_message == "from the service"
    empty = summarize_runs("s", "t", [])
    assert (empty.last_success, empty.last_failure, empty.last_seen, empty.last_message) == (
        None,
        None,
        None,
        None,
    )


def test_same_state_compares_what_a_person_would_call_a_transition() -> None:
    a = snap("x", RunStatus.RUNNING, 1)
    assert a.same_state(a.model_copy(update={"message": "progress 50%"}))
    assert not a.same_state(a.model_copy(update={"vendor_status": "PAUSED"}))
    assert not a.same_state(a.model_copy(update={"status": RunStatus.SUCCEEDED}))
    assert not a.same_state(None)


def test_status_map_can_fold_case_and_names_unknown_values() -> None:
    table = StatusMap({"Done": (RunStatus.SUCCEEDED, None)}, case_sensitive=False)
    assert table.map(" done ").status is RunStatus.SUCCEEDED
    strict = StatusMap({"Done": (RunStatus.SUCCEEDED, None)})
    unknown = strict.map("done")
    assert unknown.status is RunStatus.UNKNOWN
    assert unknown.detail == "unrecognised status 'done'"
    assert RunStatus.SUCCEEDED.terminal and not RunStatus.UNKNOWN.terminal
