"""The notification policy with a fake clock: what is notified, when, and in which words.

The preferences come from real ``Settings``/``Profile`` objects, so a profile's own
preferences overriding the global default is exercised through ``Settings.notifications_for``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.redact import secret_registry
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent
from runmonitor.notify.notification import Notification, Outcome
from runmonitor.notify.policy import (
    COALESCED,
    FIXED,
    NotificationPolicy,
    PolicyOptions,
    SuppressReason,
    in_quiet_hours,
    until_tomorrow,
)
from runmonitor.notify.wording import MESSAGE_LIMIT, overflow_text, plain_text
from runmonitor.storage.history import IntentRecord, IntentState, RunRecord
from runmonitor.storage.settings.model import NotificationPrefs, Profile, Settings

LOCAL = timezone(timedelta(hours=2))  # the person's time zone in these tests
# Noon local time on a Monday.
START = datetime(2025, 3, 10, 12, 0, tzinfo=LOCAL).astimezone(UTC)
WINDOW = 5.0


class FakeClock:
    """Monotonic and wall time that move only when the test says so."""

    def __init__(self, now: datetime = START) -> None:
        self.mono = 1000.0
        self._now = now

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self._now.timestamp()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self._now += timedelta(seconds=seconds)

    def set_local(self, hour: int, minute: int = 0) -> None:
        """Jump the wall clock to a local time of day on the next such moment (monotonic goes on)."""
        local = self._now.astimezone(LOCAL)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        self.advance((target - local).total_seconds())


_ids = itertools.count(1)


def make_settings(
    staging: NotificationPrefs | None = None, default: NotificationPrefs | None = None
) -> Settings:
    conn = {"base_url": "http://127.0.0.1:5000"}
    return Settings(
        profiles=[
            Profile(service="marquez", name="prod", connection=conn),
            Profile(service="marquez", name="staging", connection=conn, notifications=staging),
        ],
        notifications=default or NotificationPrefs(),
    )


@dataclass
class Env:
    clock: FakeClock
    settings: Settings
    policy: NotificationPolicy

    @property
    def prod(self) -> str:
        return self.settings.profile("prod").key

    @property
    def staging(self) -> str:
        return self.settings.profile("staging").key

    def after_window(self) -> list[Notification]:
        """Let the pending batch's window close and take what it shows."""
        due = self.policy.due()
        assert due is not None, "nothing pending"
        self.clock.advance(max(0.0, due - self.clock.monotonic()))
        return self.policy.flush()


def make_env(settings: Settings | None = None, **kwargs: Any) -> Env:
    clock = FakeClock()
    chosen = settings or make_settings()

    def prefs_for(profile_id: str) -> NotificationPrefs:
        return chosen.notifications_for(chosen.profile(profile_id))

    def profile_name(profile_id: str) -> str:
        return chosen.profile(profile_id).name

    policy = NotificationPolicy(prefs_for, profile_name, clock, WINDOW, tz=LOCAL, **kwargs)
    return Env(clock, chosen, policy)


@pytest.fixture
def env() -> Env:
    return make_env()


def record(
    profile_id: str,
    *,
    status: RunStatus = RunStatus.FAILED,
    target: str = "daily_orders",
    run_id: str | None = None,
    vendor: str | None = None,
    message: str | None = None,
    detail: str | None = None,
    took: float | None = None,
    service: str = "marquez",
) -> RunRecord:
    row = next(_ids)
    ended = START if took is not None else None
    snapshot = RunSnapshot(
        ref=RunRef(service=service, target=target, run_id=run_id or str(1000 + row)),
        status=status,
        vendor_status=vendor if vendor is not None else status.value,
        detail=detail,
        message=message,
        started_at=START - timedelta(seconds=took) if took is not None else None,
        ended_at=ended,
    )
    return RunRecord(
        id=row,
        profile_id=profile_id,
        origin="created",
        snapshot=snapshot,
        first_seen_at=START,
        last_checked_at=START,
        last_attempt_at=START,
        stale=False,
        last_error=None,
        last_error_kind=None,
        closed=status.terminal,
        closed_reason=None,
        request=None,
    )


_KINDS = {
    RunStatus.FAILED: EventKind.FAILED,
    RunStatus.SUCCEEDED: EventKind.SUCCEEDED,
    RunStatus.CANCELLED: EventKind.CANCELLED,
    RunStatus.RUNNING: EventKind.STARTED,
}


def event(
    run: RunRecord,
    *,
    kind: EventKind | None = None,
    previous: RunStatus | None = RunStatus.RUNNING,
    quiet: bool = False,
    message: str | None = None,
) -> RunEvent:
    return RunEvent(
        kind or _KINDS[run.status],
        START,
        run.ref.service,
        run.profile_id,
        run=run,
        previous=previous,
        quiet=quiet,
        message=message,
    )


def fail(env: Env, profile_id: str | None = None, **kwargs: Any) -> RunRecord:
    run = record(profile_id or env.prod, status=RunStatus.FAILED, **kwargs)
    env.policy.feed(event(run))
    return run


def succeed(env: Env, profile_id: str | None = None, **kwargs: Any) -> RunRecord:
    run = record(profile_id or env.prod, status=RunStatus.SUCCEEDED, **kwargs)
    env.policy.feed(event(run))
    return run


# -- one event, in detail ------------------------------------------------------------------------


def test_a_single_failure_is_shown_in_detail_once_its_window_closes(env: Env) -> None:
    run = fail(env, run_id="1234", message="Task load_orders failed: disk full", took=192)
    assert env.policy.due() == env.clock.monotonic() + WINDOW
    env.clock.advance(WINDOW - 0.5)
    assert env.policy.flush() == []  # the window is still open
    assert env.policy.pending() == 1
    env.clock.advance(0.5)
    [shown] = env.policy.flush()
    assert shown.title == "Run 1234 of job daily_orders failed on prod (Marquez)"
    assert shown.body.splitlines() == [
        "Status: FAILED",
        "Task load_orders failed: disk full",
        "Took 3 min 12 s",
    ]
    assert shown.urgency == "critical"
    assert shown.sticky
    assert shown.kind == "failed"
    assert shown.run_ids == (run.id,)
    assert shown.service == "marquez"
    assert shown.profile_id == env.prod
    assert shown.profile_name == "prod"
    assert shown.count == 1
    assert env.policy.due() is None
    assert env.policy.flush(force=True) == []


@pytest.mark.parametrize(
    ("took", "text"),
    [
        (45, "Took 45 s"),
        (125, "Took 2 min 5 s"),
        (3900, "Took 1 h 5 min"),
        (7200, "Took 2 h"),
        (183600, "Took 2 d 3 h"),
    ],
)
def test_how_long_a_run_took_reads_as_everywhere_else(env: Env, took: float, text: str) -> None:
    fail(env, run_id="1234", took=took)
    [shown] = env.after_window()
    assert shown.body.splitlines()[-1] == text


@pytest.mark.parametrize(
    ("outcome", "count", "phrase"),
    [
        (Outcome.FAILED, 1, "1 run failed"),
        (Outcome.FAILED, 3, "3 runs failed"),
        (Outcome.SUCCEEDED, 2, "2 runs succeeded"),
        (Outcome.CANCELLED, 1, "1 run was cancelled"),
        (Outcome.CANCELLED, 2, "2 runs were cancelled"),
        (Outcome.STARTED, 2, "2 runs started"),
        (Outcome.FIXED, 1, "1 job fixed"),
        (Outcome.FIXED, 2, "2 jobs fixed"),
        (Outcome.AUTH_NEEDED, 1, "Sign-in needed"),
        (Outcome.AUTH_NEEDED, 4, "Sign-in needed (4×)"),
        (Outcome.CREATE_UNCONFIRMED, 1, "1 create unconfirmed"),
        (Outcome.CREATE_UNCONFIRMED, 2, "2 creates unconfirmed"),
    ],
)
def test_a_summary_counts_each_outcome_in_words(outcome: Outcome, count: int, phrase: str) -> None:
    run = record("p")
    title, body = overflow_text([("p", outcome, [event(run)] * count)], lambda _: "prod")
    assert title == f"{count} more run updates"
    assert body == f"{phrase} on prod (Marquez)"


def test_a_long_run_id_is_shortened_in_the_title_and_given_whole_in_the_body(env: Env) -> None:
    run_id = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
    succeed_prefs = make_env(make_settings(default=NotificationPrefs(on_success=True)))
    succeed(succeed_prefs, run_id=run_id, vendor="COMPLETED")
    [shown] = succeed_prefs.after_window()
    assert shown.title == "Run 3f2a9c1e-5b… of job daily_orders succeeded on prod (Marquez)"
    assert f"Run id: {run_id}" in shown.body.splitlines()
    assert "Status: COMPLETED" in shown.body.splitlines()
    assert shown.urgency == "normal"
    assert not shown.sticky


def test_a_vendor_link_is_attached_without_secrets() -> None:
    env = make_env(run_url=lambda run: f"https://marquez.example/runs/{run.ref.run_id}?token=abc123456")
    run = fail(env, run_id="77")
    [shown] = env.after_window()
    assert shown.url is not None
    assert shown.url.startswith("https://marquez.example/runs/77?token=")
    assert "abc123456" not in shown.url
    assert shown.run_ids == (run.id,)


# -- coalescing ----------------------------------------------------------------------------------


def test_failures_within_the_window_become_one_summary(env: Env) -> None:
    runs = []
    for index, target in enumerate(["orders", "customers", "invoices"]):
        runs.append(fail(env, target=target, run_id=str(10 + index), vendor="ERROR"))
        env.clock.advance(1.5)  # all within 5 s of the first
    [shown] = env.after_window()
    assert shown.title == "3 runs failed on prod (Marquez)"
    assert shown.body.splitlines() == [
        "• orders: run 10 (ERROR)",
        "• customers: run 11 (ERROR)",
        "• invoices: run 12 (ERROR)",
    ]
    assert shown.kind == COALESCED
    assert shown.count == 3
    assert shown.run_ids == tuple(r.id for r in runs)  # a click opens the first
    assert shown.sticky
    assert shown.urgency == "critical"
    assert env.policy.stats.notifications == 1
    assert env.policy.stats.events_notified == 3


def test_a_summary_lists_five_runs_then_the_rest_as_a_count(env: Env) -> None:
    for index in range(8):
        fail(env, target=f"job{index}")
    [shown] = env.after_window()
    assert shown.title == "8 runs failed on prod (Marquez)"
    lines = shown.body.splitlines()
    assert len(lines) == 6
    assert lines[-1] == "+3 more"
    assert len(shown.run_ids) == 8


def test_events_in_different_windows_are_notified_separately(env: Env) -> None:
    first = fail(env, target="orders")
    env.clock.advance(WINDOW - 0.01)
    second = fail(env, target="customers")  # just inside the first window
    env.clock.advance(0.01)
    third = fail(env, target="invoices")  # exactly at its end: a new window
    shown = env.policy.flush()
    assert [n.run_ids for n in shown] == [(first.id, second.id)]
    assert env.policy.due() == env.clock.monotonic() + WINDOW
    [later] = env.after_window()
    assert later.run_ids == (third.id,)
    assert later.title.startswith("Run ")


def test_a_late_flush_shows_only_the_windows_that_closed(env: Env) -> None:
    first = fail(env, target="orders")
    env.clock.advance(WINDOW + 3)  # nobody flushed in time
    second = fail(env, target="customers")
    [shown] = env.policy.flush()
    assert shown.run_ids == (first.id,)
    [forced] = env.policy.flush(force=True)
    assert forced.run_ids == (second.id,)


def test_groups_are_per_profile_and_outcome_most_urgent_first() -> None:
    env = make_env(make_settings(default=NotificationPrefs(on_success=True)))
    succeed(env, target="a")
    succeed(env, target="b")
    fail(env, target="c")
    fail(env, env.staging, target="d")
    shown = env.after_window()
    assert [(n.profile_name, n.kind, n.count) for n in shown] == [
        ("prod", "failed", 1),
        ("staging", "failed", 1),
        ("prod", COALESCED, 2),
    ]
    assert shown[2].title == "2 runs succeeded on prod (Marquez)"


def test_more_groups_than_allowed_at_once_are_folded_into_one_summary() -> None:
    prefs = NotificationPrefs(on_success=True, on_start=True)
    env = make_env(make_settings(default=prefs), max_per_flush=2)
    fail(env, target="a")
    succeed(env, target="b")
    succeed(env, env.staging, target="c")
    started = record(env.staging, status=RunStatus.RUNNING, target="e")
    env.policy.feed(event(started, previous=RunStatus.PENDING))
    shown = env.after_window()
    assert len(shown) == 2
    assert shown[0].kind == "failed"
    summary = shown[1]
    assert summary.kind == COALESCED
    assert summary.title == "3 more run updates"
    assert summary.body.splitlines() == [
        "1 run succeeded on prod (Marquez)",
        "1 run succeeded on staging (Marquez)",
        "1 run started on staging (Marquez)",
    ]
    assert summary.profile_id == ""  # across profiles
    assert summary.service == "marquez"
    assert summary.count == 3


def test_the_window_can_be_changed_from_the_settings(env: Env) -> None:
    env.policy.configure(PolicyOptions(coalesce_window_s=0))
    fail(env)
    assert len(env.policy.flush()) == 1


# -- first check after start-up or waking -------------------------------------------------------


def test_states_found_on_the_first_check_are_not_notified(env: Env) -> None:
    env.policy.feed(event(record(env.prod, status=RunStatus.FAILED), quiet=True))
    env.policy.feed(event(record(env.prod, status=RunStatus.SUCCEEDED, target="other"), quiet=True))
    discovered = record(env.prod, status=RunStatus.FAILED, target="watched")
    env.policy.feed(event(discovered, kind=EventKind.DISCOVERED, previous=None, quiet=True))
    assert env.policy.due() is None
    assert env.policy.flush(force=True) == []
    assert env.policy.stats.count(SuppressReason.FIRST_CHECK) == 3


def test_a_failure_found_quietly_does_not_silence_the_next_one(env: Env) -> None:
    env.policy.feed(event(record(env.prod, status=RunStatus.FAILED), quiet=True))
    fail(env)
    assert len(env.after_window()) == 1


def test_a_run_found_by_a_watch_counts_by_its_status(env: Env) -> None:
    found = record(env.prod, status=RunStatus.FAILED, target="nightly", run_id="r9")
    env.policy.feed(event(found, kind=EventKind.DISCOVERED, previous=None))
    [shown] = env.after_window()
    assert shown.kind == "failed"
    assert shown.title == "Run r9 of job nightly failed on prod (Marquez)"


# -- what counts --------------------------------------------------------------------------------


def test_events_that_are_not_outcomes_are_ignored(env: Env) -> None:
    run = record(env.prod, status=RunStatus.RUNNING)
    for kind in (EventKind.CREATED, EventKind.CHANGED, EventKind.STALE, EventKind.RECOVERED, EventKind.GONE):
        env.policy.feed(event(run, kind=kind))
    assert env.policy.due() is None
    assert env.policy.stats.ignored == 5
    assert env.policy.stats.received == 5


def test_same_status_and_running_again_are_not_news() -> None:
    env = make_env(make_settings(default=NotificationPrefs(on_start=True)))
    failed = record(env.prod, status=RunStatus.FAILED)
    env.policy.feed(event(failed, previous=RunStatus.FAILED))
    running = record(env.prod, status=RunStatus.RUNNING, target="heartbeat")
    env.policy.feed(event(running, previous=RunStatus.UNKNOWN))
    assert env.policy.due() is None
    assert env.policy.stats.count(SuppressReason.UNCHANGED) == 2
    env.policy.feed(event(record(env.prod, status=RunStatus.RUNNING, run_id="5"), previous=RunStatus.PENDING))
    [shown] = env.after_window()
    assert shown.title == "Run 5 of job daily_orders started on prod (Marquez)"
    assert shown.urgency == "low"


def test_defaults_notify_failures_and_cancellations_only(env: Env) -> None:
    succeed(env, target="a")
    env.policy.feed(event(record(env.prod, status=RunStatus.RUNNING, target="b"), previous=None))
    cancelled = record(env.prod, status=RunStatus.CANCELLED, target="c", run_id="8")
    env.policy.feed(event(cancelled))
    [shown] = env.after_window()
    assert shown.title == "Run 8 of job c was cancelled on prod (Marquez)"
    assert shown.run_ids == (cancelled.id,)
    assert env.policy.stats.count(SuppressReason.DISABLED) == 2


def test_a_profiles_own_preferences_override_the_global_default() -> None:
    settings = make_settings(
        staging=NotificationPrefs(on_failure=False, on_success=True),
        default=NotificationPrefs(on_failure=True, on_success=False),
    )
    env = make_env(settings)
    succeed(env, env.prod, target="a")
    fail(env, env.staging, target="b")
    ok = succeed(env, env.staging, target="c")
    bad = fail(env, env.prod, target="d")
    shown = env.after_window()
    assert [(n.profile_name, n.kind, n.run_ids) for n in shown] == [
        ("prod", "failed", (bad.id,)),
        ("staging", "succeeded", (ok.id,)),
    ]


def test_sign_in_needed_is_notified_once_per_profile_until_cleared() -> None:
    silent = NotificationPrefs(on_failure=False, on_cancel=False)
    env = make_env(make_settings(default=silent))
    run = record(env.prod, status=RunStatus.RUNNING)

    def auth_needed() -> RunEvent:
        return RunEvent(
            EventKind.AUTH_NEEDED, START, "marquez", env.prod, run=run, message="401: token expired"
        )

    env.policy.feed(auth_needed())
    env.policy.feed(auth_needed())
    [shown] = env.after_window()
    assert shown.title == "Sign-in needed for prod (Marquez)"
    assert "token expired" in shown.body
    assert shown.sticky
    assert shown.key == f"auth:{env.prod}"
    assert env.policy.stats.count(SuppressReason.REPEAT) == 1
    env.policy.feed(auth_needed())
    assert env.policy.due() is None
    env.policy.clear_auth(env.prod)
    env.policy.feed(auth_needed())
    assert len(env.after_window()) == 1
    # A check going stale says nothing about signing in; a run's status coming through does.
    env.policy.feed(event(record(env.prod, status=RunStatus.RUNNING), kind=EventKind.STALE))
    env.policy.feed(auth_needed())
    assert env.policy.due() is None
    env.policy.feed(event(record(env.prod, status=RunStatus.FAILED)))
    env.policy.feed(auth_needed())
    assert [n.kind for n in env.after_window()] == ["auth_needed"]


def test_an_unconfirmed_create_is_always_notified() -> None:
    env = make_env(make_settings(default=NotificationPrefs(on_failure=False, on_cancel=False)))
    intent = IntentRecord(
        id="intent-1",
        service="marquez",
        profile_id=env.prod,
        target="daily_orders",
        request={},
        client_run_id=None,
        created_at=START,
        updated_at=START,
        state=IntentState.UNCONFIRMED,
        run=None,
        error="timed out",
    )
    env.policy.feed(
        RunEvent(EventKind.CREATE_UNCONFIRMED, START, "marquez", env.prod, intent=intent, message="timed out")
    )
    [shown] = env.after_window()
    assert shown.title == "Create of job daily_orders unconfirmed on prod (Marquez)"
    assert shown.intent_ids == ("intent-1",)
    assert shown.run_ids == ()
    assert shown.sticky
    assert shown.key == "intent:intent-1"


# -- no repeats, and fixed ------------------------------------------------------------------------


def test_a_target_that_keeps_failing_is_notified_once_then_fixed(env: Env) -> None:
    first = fail(env, target="orders")
    [failed] = env.after_window()
    fail(env, target="orders")  # the next run of the same job fails too
    fail(env, target="orders")
    env.clock.advance(60)
    assert env.policy.flush(force=True) == []
    assert env.policy.stats.count(SuppressReason.REPEAT) == 2
    assert env.policy.failing_targets() == [(env.prod, "marquez", "orders")]
    fixed_run = succeed(env, target="orders", run_id="55", took=30)  # on_success is off
    [fixed] = env.after_window()
    assert fixed.kind == FIXED
    assert fixed.title == "Fixed: job orders on prod (Marquez)"
    assert fixed.body.splitlines() == ["Run 55 succeeded after a failure.", "Took 30 s"]
    assert fixed.run_ids == (fixed_run.id,)
    assert fixed.key == failed.key  # replaces the sticky failure where the channel can
    assert not fixed.sticky
    assert env.policy.failing_targets() == []
    # Broken again: that is news again.
    again = fail(env, target="orders")
    [shown] = env.after_window()
    assert shown.run_ids == (again.id,)
    assert first.id not in shown.run_ids


def test_the_same_run_failing_twice_is_not_repeated(env: Env) -> None:
    run = fail(env)
    env.after_window()
    env.policy.feed(event(run, previous=RunStatus.UNKNOWN))  # failed, unknown, failed again
    assert env.policy.due() is None


def test_other_targets_and_profiles_are_not_silenced_by_a_failing_one(env: Env) -> None:
    fail(env, target="orders")
    env.after_window()
    fail(env, target="customers")
    fail(env, env.staging, target="orders")
    assert sorted(n.profile_name for n in env.after_window()) == ["prod", "staging"]


def test_no_fixed_for_a_failure_nobody_was_told_about() -> None:
    env = make_env(make_settings(staging=NotificationPrefs(on_failure=False)))
    fail(env, env.staging, target="orders")
    succeed(env, env.staging, target="orders")
    assert env.policy.due() is None
    env.policy.mute_until(env.clock.now() + timedelta(minutes=10))
    fail(env, target="orders")
    env.clock.advance(601)
    succeed(env, target="orders")  # on_success is off and the failure was muted: nothing
    assert env.policy.due() is None


def test_fixed_can_be_turned_off() -> None:
    env = make_env(notify_fixed=False)
    fail(env, target="orders")
    env.after_window()
    succeed(env, target="orders")
    assert env.policy.due() is None


# -- mute ----------------------------------------------------------------------------------------


def test_mute_drops_and_counts_until_it_ends(env: Env) -> None:
    until = env.clock.now() + timedelta(hours=1)
    env.policy.mute_until(until)
    assert env.policy.muted_until == until
    fail(env, target="a")
    fail(env, target="b")
    assert env.policy.due() is None
    assert env.policy.stats.count(SuppressReason.MUTED) == 2
    env.clock.advance(3600)  # the hour is over: notifications are back by themselves
    assert env.policy.muted_until is None
    fail(env, target="c")
    assert len(env.after_window()) == 1


def test_muting_drops_what_is_pending_and_resume_says_how_much_was_held(env: Env) -> None:
    fail(env, target="a")
    env.clock.advance(1)
    env.policy.mute_until(env.clock.now() + timedelta(hours=1))
    assert env.policy.flush(force=True) == []
    fail(env, target="b")
    assert env.policy.resume() == 2
    assert env.policy.muted_until is None
    fail(env, target="c")
    [shown] = env.after_window()
    assert shown.title.endswith("of job c failed on prod (Marquez)")
    assert env.policy.resume() == 0


def test_a_failure_dropped_by_a_pause_was_not_told(env: Env) -> None:
    fail(env, target="orders")
    env.policy.mute_until(env.clock.now() + timedelta(hours=1))  # before its window closed
    env.policy.resume()
    fail(env, target="orders")  # the person never heard of the first: this one is news
    assert len(env.after_window()) == 1


def test_resume_counts_the_pause_even_after_it_ran_out(env: Env) -> None:
    env.policy.mute_profile(env.staging, env.clock.now() + timedelta(hours=2))
    env.policy.mute_until(env.clock.now() + timedelta(hours=1))
    fail(env, target="a")
    fail(env, env.staging, target="b")
    env.clock.advance(3601)
    assert env.policy.muted_until is None
    assert env.policy.resume() == 2
    assert env.policy.profile_muted_until(env.staging) is not None
    fail(env, env.staging, target="c")  # the profile's own pause goes on
    assert env.policy.resume() == 0
    assert env.policy.stats.count(SuppressReason.MUTED) == 3


def test_mute_until_none_resumes_and_naive_times_are_refused(env: Env) -> None:
    env.policy.mute_until(env.clock.now() + timedelta(days=1))
    env.policy.mute_until(None)
    fail(env)
    assert len(env.after_window()) == 1
    with pytest.raises(ValueError, match="aware"):
        env.policy.mute_until(datetime(2030, 1, 1))  # naive: refused


def test_one_profile_can_be_muted(env: Env) -> None:
    fail(env, env.staging, target="x")
    env.policy.mute_profile(env.staging, env.clock.now() + timedelta(hours=1))
    assert env.policy.flush(force=True) == []  # its pending failure went too
    fail(env, env.staging, target="y")
    prod = fail(env, env.prod, target="z")
    [shown] = env.after_window()
    assert shown.run_ids == (prod.id,)
    assert env.policy.stats.count(SuppressReason.MUTED) == 2
    env.policy.mute_profile(env.staging, None)
    fail(env, env.staging, target="w")
    assert [n.profile_name for n in env.after_window()] == ["staging"]


def test_pause_until_tomorrow_ends_the_next_morning() -> None:
    evening = datetime(2025, 3, 10, 21, 30, tzinfo=LOCAL)
    assert until_tomorrow(evening, tz=LOCAL) == datetime(2025, 3, 11, 8, 0, tzinfo=LOCAL)
    night = datetime(2025, 3, 11, 2, 0, tzinfo=LOCAL)
    assert until_tomorrow(night, tz=LOCAL) == datetime(2025, 3, 11, 8, 0, tzinfo=LOCAL)
    at_eight = datetime(2025, 3, 11, 8, 0, tzinfo=LOCAL)
    assert until_tomorrow(at_eight, tz=LOCAL) == datetime(2025, 3, 12, 8, 0, tzinfo=LOCAL)
    result = until_tomorrow(evening.astimezone(UTC), morning=time(7, 30))
    assert result.tzinfo is UTC
    assert result > evening


# -- quiet hours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "moment", "quiet"),
    [
        (time(22), time(7), time(21, 59), False),
        (time(22), time(7), time(22, 0), True),
        (time(22), time(7), time(23, 59, 59), True),
        (time(22), time(7), time(0, 0), True),
        (time(22), time(7), time(6, 59), True),
        (time(22), time(7), time(7, 0), False),
        (time(22), time(7), time(12, 0), False),
        (time(12), time(13, 30), time(11, 59), False),
        (time(12), time(13, 30), time(12, 0), True),
        (time(12), time(13, 30), time(13, 29), True),
        (time(12), time(13, 30), time(13, 30), False),
        (time(9), time(9), time(9), False),
    ],
)
def test_quiet_hours_window(start: time, end: time, moment: time, quiet: bool) -> None:
    prefs = NotificationPrefs(quiet_from=start, quiet_until=end)
    assert in_quiet_hours(prefs, moment) is quiet


def test_no_quiet_hours_by_default() -> None:
    assert not in_quiet_hours(NotificationPrefs(), time(3))


def test_quiet_hours_across_midnight_in_local_time() -> None:
    settings = make_settings(default=NotificationPrefs(quiet_from=time(22), quiet_until=time(7)))
    env = make_env(settings)
    shown_at: list[str] = []
    for hour, minute in [(21, 59), (22, 0), (3, 0), (6, 59), (7, 0)]:
        env.clock.set_local(hour, minute)
        fail(env, target=f"t{hour}{minute}")
        env.clock.advance(WINDOW)
        if env.policy.flush():
            shown_at.append(f"{hour:02}:{minute:02}")
    assert shown_at == ["21:59", "07:00"]
    assert env.policy.stats.count(SuppressReason.QUIET_HOURS) == 3


def test_quiet_hours_are_per_profile() -> None:
    settings = make_settings(staging=NotificationPrefs(quiet_from=time(0), quiet_until=time(23, 59)))
    env = make_env(settings)
    fail(env, env.staging, target="a")
    prod = fail(env, env.prod, target="b")
    [shown] = env.after_window()
    assert shown.run_ids == (prod.id,)
    assert env.policy.stats.count(SuppressReason.QUIET_HOURS) == 1


def test_a_failure_held_back_by_quiet_hours_is_told_after_them() -> None:
    settings = make_settings(default=NotificationPrefs(quiet_from=time(22), quiet_until=time(7)))
    env = make_env(settings)
    env.clock.set_local(23)
    fail(env, target="orders")
    env.clock.set_local(8)
    fail(env, target="orders")  # still failing, but the person has not heard of it
    assert len(env.after_window()) == 1


# -- plain text ----------------------------------------------------------------------------------


def test_vendor_text_stays_plain_safe_and_short(env: Env) -> None:
    secret_registry.register(["hunter2-very-secret"])
    nasty = (
        "<b>Boom</b> & <a href='http://x'>click</a>\n\x1b[31mred\x1b[0m \u202eevil\u202c "
        "password=hunter2-very-secret " + "x" * 5000
    )
    fail(env, target="<i>orders</i>\nnext", message=nasty, vendor="<ERROR>")
    [shown] = env.after_window()
    assert "\n" not in shown.title
    assert "<i>orders</i> next" in shown.title  # literal: never turned into markup, never escaped
    lines = shown.body.splitlines()
    assert lines[0] == "Status: <ERROR>"
    message = lines[1]
    assert message.startswith("<b>Boom</b> & <a href='http://x'>click</a> [31mred [0m evil")
    assert len(message) == MESSAGE_LIMIT
    assert message.endswith("…")
    for text in (shown.title, shown.body):
        assert "&lt;" not in text
        assert "\x1b" not in text
        assert "\u202e" not in text
        assert "hunter2-very-secret" not in text
    assert "password=***" in message


def test_plain_text_helper() -> None:
    assert plain_text("  a\t\tb\r\nc  ") == "a b c"
    assert plain_text("abcdef", limit=4) == "abc…"
    assert plain_text("\u200bzero\u2066width") == "zero width"


# -- accounting ----------------------------------------------------------------------------------

_TARGETS = ["a", "b", "c"]
_STATUSES = [RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.CANCELLED, RunStatus.RUNNING]


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(_STATUSES),
            st.sampled_from(_TARGETS),
            st.booleans(),  # staging instead of prod
            st.booleans(),  # quiet
            st.floats(min_value=0, max_value=8),  # seconds before the next event
            st.sampled_from(["none", "flush", "mute", "resume"]),
        ),
        max_size=40,
    )
)
def test_every_event_is_accounted_for_and_failures_never_repeat(
    steps: list[tuple[RunStatus, str, bool, bool, float, str]],
) -> None:
    env = make_env(make_settings(default=NotificationPrefs(on_success=True, on_start=True)))
    shown: list[Notification] = []
    order: dict[int, int] = {}  # run row id -> position in the feed
    successes: dict[tuple[str, str], list[int]] = {}
    for position, (status, target, staging, quiet, gap, action) in enumerate(steps):
        run = record(env.staging if staging else env.prod, status=status, target=target)
        order[run.id] = position
        if status is RunStatus.SUCCEEDED:
            successes.setdefault((run.profile_id, target), []).append(position)
        env.policy.feed(event(run, quiet=quiet, previous=RunStatus.PENDING))
        env.clock.advance(gap)
        if action == "flush":
            shown.extend(env.policy.flush())
        elif action == "mute":
            env.policy.mute_until(env.clock.now() + timedelta(seconds=10))
        elif action == "resume":
            env.policy.resume()
    shown.extend(env.policy.flush(force=True))
    stats = env.policy.stats
    assert stats.received == len(steps)
    assert stats.received == stats.ignored + sum(stats.suppressed.values()) + stats.events_notified
    assert stats.events_notified == sum(n.count for n in shown)
    # Between two notified failures of one target, a run of that target succeeded.
    failures: dict[tuple[str, str], list[int]] = {}
    for notification in shown:
        for item in notification.events:
            assert item.run is not None
            if item.run.status is RunStatus.FAILED:
                key = (item.profile_id, item.run.ref.target)
                failures.setdefault(key, []).append(order[item.run.id])
    for key, positions in failures.items():
        positions.sort()
        for before, after in itertools.pairwise(positions):
            assert any(before < ok < after for ok in successes.get(key, [])), f"repeated failure for {key}"
