"""The at-a-glance state behind the tray icon and the window title."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from runmonitor.app.overview import Overall, overview
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.storage.history import RunRecord

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def rec(status: RunStatus, *, target: str = "etl", minute: int = 0, profile: str = "p1") -> RunRecord:
    at = T0 + timedelta(minutes=minute)
    snapshot = RunSnapshot(
        ref=RunRef(service="marquez", target=target, run_id=str(next(_ids))),
        status=status,
        vendor_status=status.value,
        ended_at=at if status.terminal else None,
    )
    return RunRecord(
        id=next(_ids),
        profile_id=profile,
        origin="created",
        snapshot=snapshot,
        first_seen_at=at,
        last_checked_at=at,
        last_attempt_at=at,
        stale=False,
        last_error=None,
        last_error_kind=None,
        closed=status.terminal,
        closed_reason=None,
        request=None,
    )


def test_nothing_followed() -> None:
    result = overview([])
    assert result.state is Overall.NOTHING
    assert result.summary() == "nothing followed"
    assert result.last_ok is None


def test_a_later_success_clears_a_failing_target() -> None:
    failed, fixed = rec(RunStatus.FAILED, minute=1), rec(RunStatus.SUCCEEDED, minute=5)
    assert overview([failed]).state is Overall.FAILING
    cleared = overview([fixed, failed])  # any order
    assert cleared.state is Overall.OK
    assert (cleared.failing, cleared.passing) == (0, 1)
    assert cleared.last_ok == fixed.last_checked_at


def test_worst_state_wins_and_counts_are_per_target() -> None:
    records = [
        rec(RunStatus.FAILED, target="a", minute=3),
        rec(RunStatus.SUCCEEDED, target="a", minute=1),  # older than the failure
        rec(RunStatus.SUCCEEDED, target="b", minute=2),
        rec(RunStatus.FAILED, target="b", profile="p2", minute=2),  # another profile's "b"
        rec(RunStatus.RUNNING, target="c"),
    ]
    result = overview(records, sign_in=1)
    assert result.state is Overall.FAILING
    assert (result.failing, result.passing, result.running, result.sign_in) == (2, 1, 1, 1)
    assert result.summary() == "2 failing · 1 needs sign-in · 1 running · 1 passing"
    assert overview([rec(RunStatus.RUNNING)], sign_in=2).state is Overall.SIGN_IN
    assert overview([rec(RunStatus.RUNNING), rec(RunStatus.SUCCEEDED)]).state is Overall.RUNNING
