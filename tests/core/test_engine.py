"""The polling engine against the simulator over real HTTP, with a real SQLite history.

The engine runs on a fake clock (tests/engine_clock.py) that the tests advance together with
the simulator's: a test that checks that nothing happened advances the engine's clock past
the moment it would have happened, and looks; it never sleeps in real time for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runmonitor.domain.errors import AuthFailed, ConnectionFailed, ProfileGone, ServerError
from runmonitor.domain.events import EventKind, transition_event
from runmonitor.domain.models import RunAction, RunRef, RunSnapshot
from runmonitor.domain.schedule import PollSchedule
from runmonitor.domain.status import RunStatus
from runmonitor.engine import Health, PollingEngine, QueuedForQuota, RunEvent
from runmonitor.services import get, registry
from runmonitor.services.base import Service
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.storage.history import AsyncHistory, IntentState
from tests.engine_clock import Driver, FakeClock

SERVICES = list(registry())
FAST = PollSchedule(steps=((0, 0.05), (20, 0.15)), jitter=0.1, max_backoff=0.4, watch_interval=0.1)


def driven(
    sim: Simulator, history: AsyncHistory, clients: dict[str, Service[Any, Any]], **kwargs: Any
) -> tuple[PollingEngine, Driver]:
    """An engine on a fake clock that advances with ``sim``'s, and its driver."""
    clock = FakeClock(sim, now_from_sim=kwargs.pop("now_from_sim", False))
    engine = PollingEngine(history, clients.__getitem__, clock=clock, **kwargs)
    return engine, Driver(engine, clock)


@dataclass
class Env:
    sim: Simulator
    history: AsyncHistory
    engine: PollingEngine
    clients: dict[str, Service[Any, Any]]
    drive: Driver
    events: list[RunEvent] = field(default_factory=list)

    def profile(self, key: str) -> str:
        return f"profile-{key}"

    def request(self, key: str, **overrides: Any) -> Any:
        return get(key).request_model.model_validate({**self.sim.demo_request(key), **overrides})

    def kinds(self, run: int | None = None) -> list[EventKind]:
        return [e.kind for e in self.events if run is None or (e.run is not None and e.run.id == run)]


def make_clients(sim: Simulator, **overrides: dict[str, Any]) -> dict[str, Service[Any, Any]]:
    clients: dict[str, Service[Any, Any]] = {}
    for key in SERVICES:
        cls = get(key)
        values = {**sim.demo_connection(key), "timeout_seconds": 1.0, **overrides.get(key, {})}
        clients[f"profile-{key}"] = cls(cls.config_model.model_validate(values))
    return clients


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    sim = Simulator(seed=77, time_scale=30.0).start()
    history = await AsyncHistory.open(tmp_path / "history.sqlite3")
    clients = make_clients(sim)
    engine, drive = driven(sim, history, clients, schedule=FAST, seed=3, catch_up_spread=0.2)
    environment = Env(sim, history, engine, clients, drive)
    engine.subscribe(environment.events.append)
    await engine.start()
    try:
        yield environment
    finally:
        await engine.stop()
        for client in clients.values():
            await client.aclose()
        await history.close()
        sim.stop()


def test_transition_events() -> None:
    ref = RunRef(service="s", target="t", run_id="r")

    def snap(status: RunStatus, vendor: str) -> RunSnapshot:
        return RunSnapshot(ref=ref, status=status, vendor_status=vendor)

    assert transition_event(None, snap(RunStatus.PENDING, "NEW")) is EventKind.CHANGED
    assert (
        transition_event(snap(RunStatus.PENDING, "NEW"), snap(RunStatus.RUNNING, "RUNNING"))
        is EventKind.STARTED
    )
    assert transition_event(snap(RunStatus.RUNNING, "RUNNING"), snap(RunStatus.RUNNING, "RUNNING")) is None
    assert (
        transition_event(snap(RunStatus.RUNNING, "RUNNING"), snap(RunStatus.RUNNING, "WAITING"))
        is EventKind.CHANGED
    )
    assert transition_event(snap(RunStatus.RUNNING, "x"), snap(RunStatus.FAILED, "y")) is EventKind.FAILED
    assert (
        transition_event(snap(RunStatus.RUNNING, "x"), snap(RunStatus.CANCELLED, "y")) is EventKind.CANCELLED
    )
    assert transition_event(snap(RunStatus.RUNNING, "x"), snap(RunStatus.UNKNOWN, "y")) is EventKind.UNKNOWN


@pytest.mark.parametrize("key", SERVICES)
async def test_created_run_is_followed_to_the_end_and_then_left_alone(env: Env, key: str) -> None:
    scenario = next(name for name in env.sim.sims[key].scenarios if name in ("success", "completed"))
    env.sim.force(key, scenario)
    record = await env.engine.create_run(env.profile(key), env.request(key))
    assert record.origin == "created"
    assert env.kinds(record.id)[0] is EventKind.CREATED
    await env.drive.until(lambda: not env.engine.is_followed(record.id), what=f"{key} run to finish")
    final = await env.history.get_run(record.id)
    assert final is not None
    assert final.status is RunStatus.SUCCEEDED
    assert final.closed
    kinds = env.kinds(record.id)
    assert kinds[-1] is EventKind.SUCCEEDED
    assert EventKind.STARTED in kinds or key == "cognite"  # a Cognite report starts as RUNNING
    timeline = await env.history.timeline(record.id)
    assert [t.to_status for t in timeline][-1] is RunStatus.SUCCEEDED
    # Nothing is asked about a finished run any more.
    before = len(env.sim.requests(key))
    await env.drive.advance(0.5)  # ten check intervals
    assert len(env.sim.requests(key)) == before
    intents = await env.history.open_intents()
    assert intents == []


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=500), id="500"),
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=502), id="502"),
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=503, retry_after="1"), id="503"),
        pytest.param(Fault(FaultKind.TIMEOUT, seconds=2.0), id="timeout"),
        pytest.param(Fault(FaultKind.DROP), id="drop"),
        pytest.param(Fault(FaultKind.NON_JSON), id="non-json"),
        pytest.param(Fault(FaultKind.HTML_ERROR), id="html"),
        pytest.param(Fault(FaultKind.TRUNCATED), id="truncated"),
        pytest.param(Fault(FaultKind.HUGE), id="huge"),
    ],
)
async def test_errors_mark_the_run_stale_keep_its_status_and_recover(env: Env, fault: Fault) -> None:
    key = "marquez"
    env.sim.force(key, "completed")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    env.sim.faults(key).next(fault, count=2)
    await env.drive.until(lambda: EventKind.STALE in env.kinds(record.id), what="stale")
    stale = next(e for e in env.events if e.kind is EventKind.STALE)
    assert stale.run is not None
    assert stale.run.stale
    assert stale.run.last_error
    assert stale.run.status is not RunStatus.UNKNOWN  # the last known status is kept
    assert stale.run.last_checked_at is not None
    await env.drive.until(lambda: EventKind.RECOVERED in env.kinds(record.id), what="recovery")
    await env.drive.until(lambda: not env.engine.is_followed(record.id), what="the end")
    final = await env.history.get_run(record.id)
    assert final is not None
    assert final.status is RunStatus.SUCCEEDED
    assert not final.stale


async def test_retry_after_is_obeyed_on_the_simulators_clock(tmp_path: Path) -> None:
    with Simulator(seed=8, time_scale=10.0) as sim:
        history = await AsyncHistory.open(tmp_path / "h.sqlite3")
        clients = make_clients(sim)
        engine, drive = driven(sim, history, clients, schedule=FAST, seed=1)
        await engine.start()
        try:
            key = "invision"
            sim.force(key, "slow")
            await engine.create_run(
                "profile-invision", get(key).request_model.model_validate(sim.demo_request(key))
            )
            await drive.advance(0.2)
            sim.faults(key).next(Fault(FaultKind.RATE_LIMIT, retry_after="12"))
            await drive.until(lambda: any(r.status == 429 for r in sim.requests(key)), what="the 429")
            await drive.advance(1.6)
            records = sim.requests(key)
            limited = next(i for i, r in enumerate(records) if r.status == 429)
            after = records[limited + 1 :]
            assert after, "polling did not resume after the wait"
            waited = after[0].sim_time - records[limited].sim_time
            assert waited >= 12.0, f"asked again after {waited:.2f} simulated seconds, not 12"
            assert waited < 12.0 + 5.0
        finally:
            await engine.stop()
            for client in clients.values():
                await client.aclose()
            await history.close()


async def test_rate_limit_is_not_staleness(env: Env) -> None:
    key = "codestream"
    env.sim.force(key, "success")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    env.sim.faults(key).next(Fault(FaultKind.RATE_LIMIT, retry_after="3"))
    await env.drive.until(lambda: not env.engine.is_followed(record.id), what="the end")
    assert EventKind.STALE not in env.kinds(record.id)
    assert env.engine.stats.errors.get("rate_limited") == 1


async def test_pause_and_resume_a_profile(env: Env) -> None:
    key = "marquez"
    env.sim.force(key, "long", "long", "long")
    records = [await env.engine.create_run(env.profile(key), env.request(key)) for _ in range(3)]
    await env.drive.advance(0.3)
    env.engine.pause(env.profile(key))
    await env.drive.until(lambda: env.engine.in_flight() == 0, what="checks in flight to land")
    before = len(env.sim.requests(key))
    await env.drive.advance(0.8)  # several check intervals
    assert len(env.sim.requests(key)) == before, "a paused profile was polled"
    assert env.engine.is_paused(env.profile(key))
    assert not env.engine.is_paused(env.profile("invision"))
    env.engine.resume(env.profile(key))
    paths = {f"/marquez/api/v1/jobs/runs/{r.ref.run_id}" for r in records}
    # After the pause every run is checked again (the catch-up round), and followed on.
    await env.drive.until(
        lambda: paths <= {r.path for r in env.sim.requests(key)[before:]}, within=5, what="catch-up"
    )
    assert all(env.engine.is_followed(r.id) for r in records)


async def test_global_pause_stops_everything(env: Env) -> None:
    env.sim.force("invision", "slow")
    await env.engine.create_run(env.profile("invision"), env.request("invision"))
    env.engine.pause()
    await env.drive.until(lambda: env.engine.in_flight() == 0, what="checks in flight to land")
    before = len(env.sim.requests())
    await env.drive.advance(0.6)
    assert len(env.sim.requests()) == before
    env.engine.resume()
    await env.drive.until(lambda: len(env.sim.requests()) > before, within=5, what="polling again")


async def test_watch_finds_runs_someone_else_started(env: Env) -> None:
    key = "codestream"
    target = env.sim.demo_request(key)["pipeline_id"]
    env.sim.start_external_run(key, target, "success")  # before the watch: history, not news
    await env.engine.watch(env.profile(key), target)
    await env.drive.until(lambda: EventKind.DISCOVERED in env.kinds(), what="baseline")
    baseline = [e for e in env.events if e.kind is EventKind.DISCOVERED]
    assert all(e.quiet for e in baseline)
    external = env.sim.start_external_run(key, target, "failure")
    await env.drive.until(
        lambda: any(
            e.kind is EventKind.DISCOVERED and e.run and e.run.ref.run_id == external for e in env.events
        ),
        what="the new run",
    )
    news = next(
        e for e in env.events if e.kind is EventKind.DISCOVERED and e.run and e.run.ref.run_id == external
    )
    assert not news.quiet
    assert news.run is not None
    assert news.run.origin == "watched"
    await env.drive.until(
        lambda: any(
            e.kind is EventKind.FAILED and e.run and e.run.ref.run_id == external for e in env.events
        ),
        what="the run someone else started to fail",
    )


async def test_wrong_credentials_pause_the_profile_until_they_change(env: Env) -> None:
    key = "invision"
    env.sim.force(key, "slow")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    env.sim.sims[key].credentials["api_key"] = "rotated-key-0001"  # the key was revoked
    await env.drive.until(lambda: EventKind.AUTH_NEEDED in env.kinds(), what="sign-in needed")
    assert env.kinds().count(EventKind.AUTH_NEEDED) == 1
    assert env.engine.is_paused(env.profile(key))
    stored = await env.history.get_run(record.id)
    assert stored is not None
    assert stored.status is not RunStatus.FAILED  # never a failed run
    before = len(env.sim.requests(key))
    await env.drive.advance(0.4)
    assert len(env.sim.requests(key)) == before
    cls = get(key)
    env.clients[env.profile(key)] = cls(
        cls.config_model.model_validate({**env.sim.demo_connection(key), "api_key": "rotated-key-0001"})
    )
    env.engine.credentials_changed(env.profile(key))
    await env.drive.until(lambda: len(env.sim.requests(key)) > before, what="polling with the new key")
    assert not env.engine.is_paused(env.profile(key))


async def test_create_that_may_have_happened_is_unconfirmed_not_retried(env: Env) -> None:
    key = "invision"
    env.sim.faults(key).next(Fault(FaultKind.DROP, after_processing=True, method="POST"))
    with pytest.raises(ConnectionFailed) as info:
        await env.engine.create_run(env.profile(key), env.request(key))
    assert info.value.may_have_reached_service
    assert env.sim.creates(key) == 1
    intents = await env.history.open_intents()
    assert [i.state for i in intents] == [IntentState.UNCONFIRMED]
    assert EventKind.CREATE_UNCONFIRMED in env.kinds()
    await env.drive.advance(0.3)
    assert env.sim.creates(key) == 1  # never silently sent again
    await env.engine.discard_intent(intents[0].id)
    assert await env.history.open_intents() == []


async def test_unconfirmed_create_with_a_client_id_can_be_looked_up(env: Env) -> None:
    key = "marquez"
    # Three lost answers: the client gives up, but the run exists under our chosen id.
    env.sim.faults(key).next(Fault(FaultKind.HTTP_ERROR, status=502, after_processing=True, method="POST"))
    env.sim.faults(key).next(Fault(FaultKind.HTTP_ERROR, status=502, method="POST"), count=2)
    with pytest.raises(ServerError):
        await env.engine.create_run(env.profile(key), env.request(key))
    intent = (await env.history.open_intents())[0]
    assert intent.state is IntentState.UNCONFIRMED
    assert intent.client_run_id
    found = await env.engine.lookup_intent(intent.id)
    assert [s.ref.run_id for s in found] == [intent.client_run_id]
    record = await env.engine.adopt_intent(intent.id, found[0])
    assert record.ref.run_id == intent.client_run_id
    assert await env.history.open_intents() == []
    assert env.sim.creates(key) == 1


async def test_refused_create_is_failed_and_nothing_follows(env: Env) -> None:
    key = "invision"
    env.clients[env.profile(key)] = get(key)(
        get(key).config_model.model_validate({**env.sim.demo_connection(key), "api_key": "wrong-key-9999"})
    )
    with pytest.raises(AuthFailed):
        await env.engine.create_run(env.profile(key), env.request(key))
    assert env.kinds() == [EventKind.CREATE_FAILED]
    assert await env.history.open_intents() == []
    assert env.engine.followed() == []


async def test_full_quota_queues_the_create_and_sends_it_when_a_slot_frees(env: Env) -> None:
    key = "connhex"
    env.sim.faults(key).next(Fault(FaultKind.QUOTA, retry_after="3", method="POST"))
    with pytest.raises(QueuedForQuota) as info:
        await env.engine.create_run(env.profile(key), env.request(key))
    assert info.value.intent.state is IntentState.QUEUED
    assert env.sim.creates(key) == 0
    assert EventKind.CREATE_QUEUED in env.kinds()
    await env.drive.until(lambda: EventKind.CREATED in env.kinds(), what="the queued create")
    assert env.sim.creates(key) == 1
    assert await env.history.open_intents() == []


async def test_an_action_supersedes_a_check_in_flight(env: Env) -> None:
    key = "codestream"
    env.sim.force(key, "success")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    await env.drive.until(lambda: EventKind.STARTED in env.kinds(record.id), what="running")
    env.sim.faults(key).next(Fault(FaultKind.LATENCY, seconds=0.6, method="GET"))
    # The next check takes the slow answer: it is in flight now.
    await env.drive.until(lambda: env.sim.faults(key).pending == 0, in_flight=True, what="the slow check")
    assert env.engine.in_flight() == 1
    updated = await env.engine.perform(record.id, RunAction.CANCEL, reason="test")
    assert updated.snapshot.vendor_status in ("CANCELING", "CANCELED")
    await env.drive.until(lambda: env.engine.stats.dropped_late_answers >= 1, what="the late answer dropped")
    await env.drive.until(lambda: not env.engine.is_followed(record.id), what="cancelled")
    final = await env.history.get_run(record.id)
    assert final is not None
    assert final.status is RunStatus.CANCELLED


async def test_resume_after_restart_polls_open_runs_quietly(tmp_path: Path) -> None:
    with Simulator(seed=12, time_scale=30.0) as sim:
        path = tmp_path / "h.sqlite3"
        history = await AsyncHistory.open(path)
        clients = make_clients(sim)
        engine, _ = driven(sim, history, clients, schedule=FAST, seed=1)
        await engine.start()
        sim.force("marquez", "long")
        record = await engine.create_run(
            "profile-marquez", get("marquez").request_model.model_validate(sim.demo_request("marquez"))
        )
        await engine.stop()
        await history.close()

        history = await AsyncHistory.open(path)
        events: list[RunEvent] = []
        engine, drive = driven(sim, history, clients, schedule=FAST, seed=2)
        engine.subscribe(events.append)
        await engine.start()
        try:
            assert engine.is_followed(record.id)
            await drive.until(lambda: any(e.kind is EventKind.STARTED for e in events), what="first check")
            first = next(e for e in events if e.kind is EventKind.STARTED)
            assert first.quiet, "a state found on the first check after start must not alert"
            await drive.until(
                lambda: any(e.kind is EventKind.SUCCEEDED for e in events), within=20, what="the end"
            )
            assert not next(e for e in events if e.kind is EventKind.SUCCEEDED).quiet
        finally:
            await engine.stop()
            await history.close()
            for client in clients.values():
                await client.aclose()


async def test_run_that_disappears_is_gone_after_repeated_not_found(env: Env) -> None:
    key = "connhex"
    env.sim.force(key, "queued_long")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    await env.clients[env.profile(key)].perform(record.ref, RunAction.DELETE)  # deleted behind our back
    await env.drive.until(lambda: EventKind.GONE in env.kinds(record.id), what="gone")
    final = await env.history.get_run(record.id)
    assert final is not None
    assert final.closed
    assert not env.engine.is_followed(record.id)


async def test_host_outage_probes_gently_and_catches_up_once(env: Env) -> None:
    key = "marquez"
    env.sim.force(key, *["long"] * 6)
    records = [await env.engine.create_run(env.profile(key), env.request(key)) for _ in range(6)]
    await env.drive.advance(0.3)
    plan = env.sim.faults(key).randomly(1.0, Fault(FaultKind.DROP))
    await env.drive.until(lambda: EventKind.STALE in env.kinds(), what="stale")
    await env.drive.advance(1.5)
    start = len(env.sim.requests(key))
    await env.drive.advance(1.0)
    during = len(env.sim.requests(key)) - start
    # Six runs checked every ~0.05-0.15 s would make dozens of requests a second; a down host
    # gets one probe at a time with a growing back-off.
    assert during <= 8, f"{during} requests in one second to a host that is down"
    plan.clear()
    stale = env.kinds().count(EventKind.STALE)
    assert stale >= 1
    # Every run that went stale recovers; runs that waited behind the probe never went stale.
    await env.drive.until(lambda: env.kinds().count(EventKind.RECOVERED) == stale, within=10, what="recovery")
    for record in records:
        current = await env.history.get_run(record.id)
        assert current is not None
        assert not current.stale


async def test_silent_heartbeats_make_a_running_run_unknown(tmp_path: Path) -> None:
    with Simulator(seed=5, time_scale=30.0) as sim:
        history = await AsyncHistory.open(tmp_path / "h.sqlite3")
        clients = make_clients(sim)
        schedule = FAST.model_copy(update={"heartbeat_interval": 15.0, "heartbeat_multiple": 2.0})
        # The engine's wall clock is the simulator's, so heartbeat ages match its reports.
        engine, drive = driven(sim, history, clients, schedule=schedule, seed=2, now_from_sim=True)
        events: list[RunEvent] = []
        engine.subscribe(events.append)
        await engine.start()
        try:
            target = sim.demo_request("cognite")["external_id"]
            await engine.watch("profile-cognite", target)
            await drive.until(lambda: any(e.kind is EventKind.DISCOVERED for e in events), what="baseline")
            sim.start_external_run("cognite", target, "silent")  # an extractor that crashes mid-run
            await drive.until(
                lambda: any(e.kind is EventKind.UNKNOWN and not e.quiet for e in events),
                within=20,
                what="silence",
            )
            silent = next(e for e in events if e.kind is EventKind.UNKNOWN and not e.quiet)
            assert silent.run is not None
            assert silent.previous is RunStatus.RUNNING
            assert silent.run.snapshot.detail is not None
            assert "no heartbeat" in silent.run.snapshot.detail
            assert engine.is_followed(silent.run.id)  # UNKNOWN is not an end: it is still watched
            # Later checks of the same silence are not new transitions.
            await drive.advance(0.5)
            assert [e.kind for e in events if e.run and e.run.id == silent.run.id].count(
                EventKind.UNKNOWN
            ) == 1
        finally:
            await engine.stop()
            await history.close()
            for client in clients.values():
                await client.aclose()


async def test_secret_inputs_are_not_stored_with_the_request(env: Env) -> None:
    key = "codestream"
    request = env.request(key, input={"branch": "main", "db_password": "hunter2-very-secret"})
    record = await env.engine.create_run(env.profile(key), request)
    assert record.request is not None
    assert record.request["input"] == {"branch": "main", "db_password": "***"}
    sent = [r for r in env.sim.requests(key) if r.method == "POST" and r.path.endswith("/executions")]
    assert sent[-1].json()["input"]["db_password"] == "hunter2-very-secret"  # the service got it
    raw = (tmp := env.history.path).read_bytes() + (
        tmp.with_name(tmp.name + "-wal").read_bytes() if tmp.with_name(tmp.name + "-wal").exists() else b""
    )
    assert b"hunter2-very-secret" not in raw


async def test_retention_removes_old_finished_runs_at_start(tmp_path: Path) -> None:
    with Simulator(seed=9, time_scale=30.0) as sim:
        history = await AsyncHistory.open(tmp_path / "h.sqlite3")
        clients = make_clients(sim)
        ref = RunRef(service="invision", target="flow", run_id="old-run")
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        old, _ = await history.upsert_run(
            "profile-invision",
            RunSnapshot(ref=ref, status=RunStatus.SUCCEEDED, vendor_status="Succeeded"),
            origin="added",
            at=long_ago,
        )
        engine, drive = driven(sim, history, clients, schedule=FAST, retention_days=30)
        await engine.start()
        try:
            assert await gone_soon(history, old.id), "the old finished run was kept"
            # Then again every ``retention_every`` seconds on the engine's clock, and not before.
            older, _ = await history.upsert_run(
                "profile-invision",
                RunSnapshot(
                    ref=ref.model_copy(update={"run_id": "older-run"}),
                    status=RunStatus.SUCCEEDED,
                    vendor_status="Succeeded",
                ),
                origin="added",
                at=long_ago,
            )
            drive.clock.advance(engine.retention_every - 1.0)
            await drive.settle()
            assert await history.get_run(older.id) is not None, "retention ran before it was due"
            drive.clock.advance(1.0)
            assert await gone_soon(history, older.id), "retention did not run again when due"
        finally:
            await engine.stop()
            await history.close()
            for client in clients.values():
                await client.aclose()


async def gone_soon(history: AsyncHistory, run: int) -> bool:
    """Whether ``run`` leaves the history within a few real seconds (the deletes run in the
    history's thread, in batches)."""
    for _ in range(100):
        if await history.get_run(run) is None:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_waking_from_sleep_is_one_quiet_catch_up_round(tmp_path: Path) -> None:
    with Simulator(seed=14, time_scale=30.0) as sim:
        history = await AsyncHistory.open(tmp_path / "h.sqlite3")
        clients = make_clients(sim)
        slow = FAST.model_copy(update={"steps": ((0, 0.4),), "jitter": 0.0})
        engine, drive = driven(sim, history, clients, schedule=slow, catch_up_spread=0.2)
        events: list[RunEvent] = []
        engine.subscribe(events.append)
        await engine.start()
        try:
            sim.force("marquez", "long", "long", "long")
            runs = [
                await engine.create_run(
                    "profile-marquez",
                    get("marquez").request_model.model_validate(sim.demo_request("marquez")),
                )
                for _ in range(3)
            ]
            await drive.until(lambda: sum(e.kind is EventKind.STARTED for e in events) == 3, what="started")
            before = len(sim.requests("marquez"))
            sim.clock.advance(600)  # the runs finished while the laptop slept
            drive.clock.suspend(3600)
            await drive.until(lambda: engine.stats.wakeups_detected == 1, what="the wake-up")
            await drive.until(
                lambda: sum(e.kind is EventKind.SUCCEEDED for e in events) == 3, what="catch-up"
            )
            # One check per run, not a burst, and nobody is alerted about what happened asleep.
            assert len(sim.requests("marquez")) - before == 3
            assert all(e.quiet for e in events if e.kind is EventKind.SUCCEEDED)
            assert all(not engine.is_followed(r.id) for r in runs)
        finally:
            await engine.stop()
            await history.close()
            for client in clients.values():
                await client.aclose()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(FaultKind.RATE_LIMIT), id="429-without-retry-after"),
        pytest.param(Fault(FaultKind.QUOTA), id="quota-on-a-check"),
        pytest.param(Fault(FaultKind.LATENCY, seconds=0.3), id="latency"),
        pytest.param(Fault(FaultKind.EXPIRED_TOKEN), id="expired-token"),
    ],
)
async def test_waits_and_expired_tokens_are_not_failures(env: Env, fault: Fault) -> None:
    key = "codestream"  # the service whose tokens expire
    env.sim.force(key, "success")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    env.sim.faults(key).next(fault)
    await env.drive.until(lambda: not env.engine.is_followed(record.id), what="the end")
    kinds = env.kinds(record.id)
    assert EventKind.STALE not in kinds
    assert EventKind.AUTH_NEEDED not in env.kinds()
    assert kinds[-1] is EventKind.SUCCEEDED
    if fault.kind is FaultKind.EXPIRED_TOKEN:
        logins = [r for r in env.sim.requests(key) if r.path.endswith("/iaas/api/login")]
        assert len(logins) == 2  # the first sign-in and exactly one renewal


async def test_health_tells_each_profiles_state_next_check_and_outages(env: Env) -> None:
    marquez, codestream = env.profile("marquez"), env.profile("codestream")
    env.sim.force("marquez", "long", "long")
    env.sim.force("codestream", "approval")
    for _ in range(2):
        await env.engine.create_run(marquez, env.request("marquez"))
    await env.engine.create_run(codestream, env.request("codestream"))

    def state(profile: str) -> Health:
        return env.engine.health([profile])[profile].state

    await env.drive.until(
        lambda: env.engine.health([marquez])[marquez].last_ok is not None, what="a good answer"
    )
    health = env.engine.health([marquez, "nobody"])
    assert health[marquez].state is Health.OK
    assert health[marquez].followed == 2
    assert health[marquez].next_check is not None
    assert health["nobody"].state is Health.IDLE and health["nobody"].next_check is None

    env.engine.pause(marquez)
    assert state(marquez) is Health.PAUSED
    assert env.engine.health([marquez])[marquez].next_check is None
    assert state(codestream) is Health.OK
    env.engine.resume(marquez)

    plan = env.sim.faults("marquez").randomly(1.0, Fault(FaultKind.DROP))
    await env.drive.until(lambda: state(marquez) is Health.UNREACHABLE, what="unreachable")
    down = env.engine.health([marquez])[marquez]
    assert down.since is not None and down.until is not None
    assert down.until >= down.since
    plan.clear()
    await env.drive.until(lambda: state(marquez) is Health.OK, within=10, what="recovery")

    # 60 simulated seconds are two real ones at this time scale.
    env.sim.force("marquez", "long")
    await env.engine.create_run(marquez, env.request("marquez"))
    env.sim.faults("marquez").next(Fault(FaultKind.RATE_LIMIT, retry_after="60"))
    await env.drive.until(lambda: any(r.status == 429 for r in env.sim.requests("marquez")), what="the 429")
    await env.drive.until(lambda: state(marquez) is Health.RATE_LIMITED, within=2, what="rate limited")
    limited = env.engine.health([marquez])[marquez]
    assert limited.until is not None and limited.until > datetime.now(UTC)
    await env.drive.until(lambda: state(marquez) is Health.OK, within=10, what="the wait to end")


async def test_unchanged_checks_reach_the_history_in_batches(env: Env) -> None:
    key = "marquez"
    env.sim.force(key, "long")
    record = await env.engine.create_run(env.profile(key), env.request(key))
    await env.drive.advance(0.6)  # several checks at 0.05-0.15 s, none a transition
    followed = next(r for r in env.engine.followed() if r.id == record.id)
    assert followed.last_checked_at is not None and followed.last_checked_at > record.first_seen_at
    await env.engine.flush_quiet_checks()
    stored = await env.history.get_run(record.id)
    assert stored is not None
    assert stored.last_checked_at is not None and stored.last_checked_at >= followed.last_checked_at
    assert len(await env.history.timeline(record.id)) <= 3  # created, started maybe: no per-check rows


async def test_a_profile_that_is_gone_drops_its_runs_and_a_bug_does_not(tmp_path: Path) -> None:
    with Simulator(seed=21, time_scale=30.0) as sim:
        history = await AsyncHistory.open(tmp_path / "h.sqlite3")
        clients = make_clients(sim)
        gone: set[str] = set()
        broken: set[str] = set()

        def provider(profile_id: str) -> Service[Any, Any]:
            if profile_id in gone:
                raise ProfileGone(profile_id)
            if profile_id in broken:
                raise KeyError("a bug, not a missing profile")
            return clients[profile_id]

        clock = FakeClock(sim)
        engine = PollingEngine(history, provider, schedule=FAST, seed=6, clock=clock)
        drive = Driver(engine, clock)
        await engine.start()
        try:
            sim.force("marquez", "long")
            sim.force("invision", "slow")
            removed = await engine.create_run(
                "profile-marquez", get("marquez").request_model.model_validate(sim.demo_request("marquez"))
            )
            buggy = await engine.create_run(
                "profile-invision", get("invision").request_model.model_validate(sim.demo_request("invision"))
            )
            await drive.advance(0.2)
            gone.add("profile-marquez")
            broken.add("profile-invision")
            await drive.until(
                lambda: not engine.is_followed(removed.id), within=2, what="the gone profile's run"
            )
            await drive.until(lambda: engine.stats.errors.get("internal", 0) >= 2, within=10, what="the bug")
            assert engine.is_followed(buggy.id), "a bug was read as 'profile gone'"
            broken.clear()
            await drive.until(lambda: not engine.is_followed(buggy.id), within=60, what="the run to end")
        finally:
            await engine.stop()
            await history.close()
            for client in clients.values():
                await client.aclose()
