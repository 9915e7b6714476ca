"""Cognite Data Fusion extraction pipeline runs: client against the simulator, over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from runmonitor.domain.errors import AuthFailed, BadResponse, Forbidden, NotFound, RateLimited, ServerError
from runmonitor.domain.models import Capability, RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.services.auth import OAuth2ClientCredentials
from runmonitor.services.cognite import (
    STATUS_MAP,
    AuthKind,
    Cognite,
    CogniteConnection,
    CogniteRunReport,
)
from runmonitor.services.http import parse_time
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.simulator.cognite import FAILURE_MESSAGES, PROJECT, TOKEN_PATH, CogniteSim
from tests.helpers import client_for, distinct_statuses, follow, request_for
from tests.specs import Spec, load_spec

KEY = "cognite"
PIPELINE = "pi-historian-timeseries"
API = f"/cognite/api/v1/projects/{PROJECT}/extpipes"


def cognite(sim: Simulator, **overrides: Any) -> Cognite:
    client = client_for(sim, KEY, **overrides)
    assert isinstance(client, Cognite)
    return client


def sim_of(sim: Simulator) -> CogniteSim:
    inner = sim.sims[KEY]
    assert isinstance(inner, CogniteSim)
    return inner


def token_requests(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests(KEY) if r.path == "/cognite" + TOKEN_PATH]


def api_requests(sim: Simulator, suffix: str, method: str = "POST") -> list[Any]:
    return [r for r in sim.requests(KEY, method) if r.path == API + suffix]


# -- status table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "expected", "detail"),
    [
        ("success", RunStatus.SUCCEEDED, None),
        ("failure", RunStatus.FAILED, None),
        ("seen", RunStatus.RUNNING, "heartbeat"),
        # The response's status is a free string; tolerate other casings.
        ("SUCCESS", RunStatus.SUCCEEDED, None),
        # The toolkit bug (cognitedata/toolkit#1536) reported "fail": not a CDF status.
        ("fail", RunStatus.UNKNOWN, "unrecognised status 'fail'"),
        ("", RunStatus.UNKNOWN, "unrecognised status ''"),
    ],
)
def test_status_table(vendor: str, expected: RunStatus, detail: str | None) -> None:
    mapped = STATUS_MAP.map(vendor)
    assert mapped.status is expected
    assert mapped.vendor == vendor
    assert mapped.detail == detail


# -- request model ----------------------------------------------------------------------


def test_report_round_trips_to_the_create_body() -> None:
    when = datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    report = CogniteRunReport.model_validate(
        {"external_id": " my.pipeline ", "status": "failure", "message": "disk full", "created_time": when}
    )
    assert report.target() == "my.pipeline"
    assert report.body() == {
        "items": [
            {
                "externalId": "my.pipeline",
                "status": "failure",
                "message": "disk full",
                "createdTime": 1740832215250,
            }
        ]
    }
    # Defaults: a heartbeat, no message, CDF's own clock.
    minimal = CogniteRunReport.model_validate({"external_id": "x"})
    assert minimal.body() == {"items": [{"externalId": "x", "status": "seen"}]}
    assert CogniteRunReport.model_validate({"external_id": "x", "message": ""}).message is None


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"external_id": ""}, "external_id"),
        ({"external_id": "   "}, "external_id"),
        ({"external_id": "p" * 256}, "external_id"),
        ({"external_id": "p", "status": "fail"}, "status"),
        ({"external_id": "p", "status": "SUCCESS"}, "status"),
        ({"external_id": "p", "status": "running"}, "status"),
        ({"external_id": "p", "message": "m" * 1001}, "message"),
        ({"external_id": "p", "created_time": "not a time"}, "created_time"),
        ({"external_id": "p", "created_time": "1969-12-31T23:59:59Z"}, "created_time"),
        ({"external_id": "p", "created_time": datetime.now(UTC) + timedelta(hours=1)}, "created_time"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CogniteRunReport.model_validate(values)
    assert [err["loc"] for err in info.value.errors()] == [(field,)]


def test_report_limits_are_the_vendors() -> None:
    assert CogniteRunReport.model_validate({"external_id": "p" * 255, "message": "m" * 1000})
    # Clock skew of a minute is fine; a zone-less time is UTC.
    soon = CogniteRunReport.model_validate(
        {"external_id": "p", "created_time": datetime.now(UTC) + timedelta(minutes=1)}
    )
    assert soon.created_time is not None
    naive = CogniteRunReport.model_validate({"external_id": "p", "created_time": "2024-05-01T08:00:00"})
    assert naive.created_time_ms() == int(datetime(2024, 5, 1, 8, tzinfo=UTC).timestamp() * 1000)


# -- connection model -------------------------------------------------------------------

CC = {
    "base_url": "https://westeurope-1.cognitedata.com",
    "project": "acme-prod",
    "token_url": "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
    "client_id": "0f4c-app",
    "client_secret": "s3cr3t-value-xyz",
}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({**CC, "token_url": None}, "token_url"),
        ({**CC, "client_id": ""}, "client_id"),
        ({**CC, "client_secret": None}, "client_secret"),
        ({**CC, "token_url": "ftp://idp.example.com/token"}, "token_url"),
        ({**CC, "auth_kind": "token"}, "token"),
        ({**CC, "auth_kind": "api_key"}, "api_key"),
        ({**CC, "auth_kind": "password"}, "auth_kind"),
        ({**CC, "project": "ab"}, "project"),
        ({**CC, "project": "-acme"}, "project"),
        ({**CC, "project": "acme prod"}, "project"),
        ({**CC, "project": "12345"}, "project"),
        ({**CC, "project": "a" * 33}, "project"),
        ({**CC, "base_url": "https://api.cognitedata.com/api/v1/projects/acme-prod"}, "base_url"),
        ({**CC, "scopes": ["https://x/.default", " "]}, "scopes"),
    ],
)
def test_connection_refusals_name_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CogniteConnection.model_validate(values)
    assert [err["loc"] for err in info.value.errors()] == [(field,)]


def test_connection_defaults_and_secrets() -> None:
    config = CogniteConnection.model_validate(CC)
    assert config.auth_kind is AuthKind.CLIENT_CREDENTIALS
    assert config.effective_scopes() == ["https://westeurope-1.cognitedata.com/.default"]
    assert "s3cr3t-value-xyz" not in repr(config)
    assert config.warnings() == []
    # Other kinds need only their own secret; the API key is flagged as legacy.
    token = CogniteConnection.model_validate({**CC, "auth_kind": "token", "token": "eyJ0eXAi-token"})
    assert token.token is not None and token.token.get_secret_value() == "eyJ0eXAi-token"
    legacy = CogniteConnection.model_validate(
        {"base_url": CC["base_url"], "project": "acme-prod", "auth_kind": "api_key", "api_key": "k" * 20}
    )
    assert any("legacy" in note for note in legacy.warnings())
    assert "kkkkkkkkkk" not in repr(legacy)


async def test_api_root_and_scopes_reach_the_wire() -> None:
    client = Cognite(CogniteConnection.model_validate({**CC, "scopes": ["api://cdf/.default"]}))
    async with client:
        assert str(client.http.client.base_url) == (
            "https://westeurope-1.cognitedata.com/api/v1/projects/acme-prod/"
        )
        auth = client.http.client.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        assert auth.scopes == ["api://cdf/.default"]


# -- following a report -----------------------------------------------------------------


async def test_seen_report_is_followed_through_heartbeats_to_success(sim: Simulator) -> None:
    sim.force(KEY, "success")
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        assert first.status is RunStatus.RUNNING and first.vendor_status == "seen"
        assert first.detail == "heartbeat"
        assert first.message == "Extractor started from RunMonitor"
        created = first.raw["items"][0]["createdTime"]
        assert first.ref.extra["created_time"] == str(created)
        assert first.ref.run_id == str(first.raw["items"][0]["id"])
        seen = await follow(client, sim, first, step=4.0)
    assert distinct_statuses(seen) == [("RUNNING", "seen"), ("SUCCEEDED", "success")]
    # Several heartbeats were read back while it was RUNNING, each newer than the last.
    polls = api_requests(sim, "/runs/list")
    assert len(polls) == len(seen) - 1 >= 4
    heartbeat_counts = [
        sum(1 for item in snap.raw["items"] if item["status"] == "seen") for snap in seen[1:-1]
    ]
    assert heartbeat_counts == sorted(heartbeat_counts) and heartbeat_counts[-1] > heartbeat_counts[0]
    # Every poll asks for this pipeline's reports at or after ours.
    for record in polls:
        assert record.json()["filter"] == {"externalId": PIPELINE, "createdTime": {"min": created}}
    final = seen[-1]
    assert final.message and final.ended_at is not None and final.started_at is not None
    assert final.ended_at > final.started_at
    assert api_requests(sim, "/runs") and len(api_requests(sim, "/runs")) == 1


async def test_failure_carries_the_extractors_message(sim: Simulator) -> None:
    sim.force(KEY, "failure")
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        seen = await follow(client, sim, first, step=5.0)
    assert seen[-1].status is RunStatus.FAILED and seen[-1].vendor_status == "failure"
    truth = next(r for r in sim_of(sim).reports(PIPELINE) if r["status"] == "failure")
    assert seen[-1].message == truth["message"]


@pytest.mark.parametrize(
    ("status", "expected"), [("success", RunStatus.SUCCEEDED), ("failure", RunStatus.FAILED)]
)
async def test_our_own_success_or_failure_report_is_terminal_at_once(
    sim: Simulator, status: str, expected: RunStatus
) -> None:
    async with cognite(sim) as client:
        snapshot = await client.create_run(
            request_for(sim, KEY, status=status, message=f"batch {status} reported by hand")
        )
        assert snapshot.status is expected and snapshot.terminal
        assert snapshot.ended_at == snapshot.created_at
        # Reading it back agrees, even after a heartbeat session starts later on the same pipeline.
        sim.clock.advance(5)
        sim.start_external_run(KEY, PIPELINE, "success")
        sim.clock.advance(12)
        again = await client.get_status(snapshot.ref)
    assert again.status is expected and again.message == f"batch {status} reported by hand"
    assert sim.creates(KEY) == 1
    # No extractor session was started by our terminal report: only the external one heartbeats.
    assert [r["scenario"] for r in sim_of(sim).ground_truth() if r["by_client"]] == ["report"]


async def test_a_later_session_does_not_reopen_a_finished_run(sim: Simulator) -> None:
    sim.force(KEY, "quick")
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        seen = await follow(client, sim, first, step=5.0)
        assert seen[-1].status is RunStatus.SUCCEEDED
        sim.start_external_run(KEY, PIPELINE, "failure")
        sim.clock.advance(12)
        later = await client.get_status(first.ref)
        watched = await client.watch(PIPELINE)
    assert later.status is RunStatus.SUCCEEDED
    # …while the pipeline itself is heartbeating again.
    assert watched.runs[0].vendor_status == "seen"


async def test_a_restart_polls_again_from_the_stored_reference(sim: Simulator) -> None:
    sim.force(KEY, "success")
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
    stored = first.ref.model_dump_json()
    sim.clock.advance(120)
    async with cognite(sim) as fresh:
        snapshot = await fresh.get_status(RunRef.model_validate_json(stored))
    assert snapshot.status is RunStatus.SUCCEEDED
    assert snapshot.ref == first.ref


async def test_many_reports_after_ours_still_find_the_one_that_ended_it(sim: Simulator) -> None:
    sim.force(KEY, "quick")
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        # More than a page (100) of reports arrive after ours ended: a long silent extractor…
        sim.clock.advance(10)
        for _ in range(40):
            sim.start_external_run(KEY, PIPELINE, "silent")
        sim.clock.advance(60)
        snapshot = await client.get_status(first.ref)
    assert snapshot.status is RunStatus.SUCCEEDED
    lists = [r.json() for r in api_requests(sim, "/runs/list")]
    assert lists[-1]["filter"]["statuses"] == ["failure", "success"]


async def test_a_stopped_heartbeat_keeps_running_without_a_staleness_rule(sim: Simulator) -> None:
    async with cognite(sim) as client:
        silent = sim.start_external_run(KEY, "opcua-compressor-station-3", "silent")
        sim.clock.advance(15)
        runs = await client.list_runs("opcua-compressor-station-3", limit=5)
        mine = next(r for r in runs if r.ref.run_id == silent)
        before = await client.watch("opcua-compressor-station-3")
        sim.clock.advance(3600)
        after = await client.watch("opcua-compressor-station-3")
        follow_up = await client.get_status(mine.ref)
    assert before.last_seen is not None and after.last_seen is not None
    assert after.last_seen - before.last_seen <= timedelta(seconds=30)
    assert follow_up.status is RunStatus.RUNNING
    assert sim_of(sim).ground_truth()[-1]["finished"] is False
    # …but the silence shows: the newest heartbeat stays where the extractor stopped.
    last_beat = mine.created_at + timedelta(seconds=30)  # type: ignore[operator]
    assert follow_up.heartbeat_at == last_beat == after.runs[0].heartbeat_at
    assert mine.heartbeat_at == mine.created_at + timedelta(seconds=10)  # type: ignore[operator]


# -- list and watch ---------------------------------------------------------------------


async def test_watch_shows_the_pipeline_health_and_someone_elses_session(sim: Simulator) -> None:
    async with cognite(sim) as client:
        history = await client.watch(PIPELINE)
        assert history.last_success and history.last_failure and history.last_seen
        assert history.last_success > history.last_failure  # seeded: failed 3 h ago, fine 2 h ago
        assert history.last_message and history.last_message in history.raw["lastMessage"]
        # Seeded: three finished sessions (success, failure, success), one run each.
        assert [r.status for r in history.runs] == [
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.SUCCEEDED,
        ]
        assert history.last_seen == history.runs[0].ended_at
        sim.force(KEY, "long")
        external = sim.start_external_run(KEY, PIPELINE)
        sim.clock.advance(20)
        live = await client.watch(PIPELINE, limit=5)
        assert live.runs[0].status is RunStatus.RUNNING and live.runs[0].vendor_status == "seen"
        first = next(r for r in live.runs if r.ref.run_id == external)  # the session's first report
        assert first.status is RunStatus.RUNNING
        assert live.last_seen is not None and live.last_seen > history.last_seen
        assert len(live.runs) <= 5
        # Following someone else's session from its first report works like our own.
        seen = await follow(client, sim, first, step=15.0)
        done = await client.watch(PIPELINE)
    assert seen[-1].status is RunStatus.SUCCEEDED
    assert done.last_success == seen[-1].ended_at
    assert done.last_seen == done.runs[0].ended_at == done.last_success
    assert done.runs[0].ref.run_id == external and done.runs[0].created_at == first.created_at


async def test_list_runs_is_newest_first_and_limited(sim: Simulator) -> None:
    for scenario in ["quick", "early_failure", "success", "quick", "failure", "quick"]:
        sim.start_external_run(KEY, PIPELINE, scenario)
        sim.clock.advance(60)
    async with cognite(sim) as client:
        runs = await client.list_runs(PIPELINE, limit=7)
        everything = await client.list_runs(PIPELINE, limit=50)
    assert len(runs) == 7 and len(everything) == 9  # three seeded sessions and six new ones
    assert [r.ref for r in runs] == [r.ref for r in everything[:7]]
    times = [r.created_at for r in runs]
    assert all(t is not None for t in times)
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]
    assert {r.ref.target for r in runs} == {PIPELINE}
    # One page holds all of this pipeline's reports: one request each.
    assert [r.json() for r in api_requests(sim, "/runs/list")] == [
        {"filter": {"externalId": PIPELINE}, "limit": 100},
        {"filter": {"externalId": PIPELINE}, "limit": 500},
    ]
    assert Cognite.capabilities == {Capability.LIST_RUNS, Capability.WATCH}
    assert Cognite.actions == () and Cognite.cancel_action is None


# -- extractor sessions -----------------------------------------------------------------

SAP = "sap-s4-maintenance-orders"  # seeded: one successful session (5 reports) 4 h ago


def _session_reports(sim: Simulator, target: str, run_id: str) -> list[dict[str, Any]]:
    """The reports of one simulated session, oldest first (the simulator numbers them on)."""
    base = int(run_id)
    ours = [r for r in sim_of(sim).reports(target) if base <= r["id"] < base + 1000]
    return sorted(ours, key=lambda r: r["id"])


def _decision(snapshot: RunSnapshot) -> tuple[Any, ...]:
    return (
        snapshot.status,
        snapshot.vendor_status,
        snapshot.detail,
        snapshot.message,
        snapshot.created_at,
        snapshot.started_at,
        snapshot.ended_at,
        snapshot.heartbeat_at,
    )


async def _mixed_sessions(sim: Simulator, client: Cognite) -> list[str]:
    """A quick success, our own lone failure report, a failed session and a long one still
    running, on :data:`SAP`; their run ids, newest first."""
    quick = sim.start_external_run(KEY, SAP, "quick")
    sim.clock.advance(30)
    lone = await client.create_run(
        request_for(sim, KEY, external_id=SAP, status="failure", message="nightly batch failed")
    )
    sim.clock.advance(10)
    failed = sim.start_external_run(KEY, SAP, "failure")
    sim.clock.advance(40)
    running = sim.start_external_run(KEY, SAP, "long")
    sim.clock.advance(40)  # a heartbeat every 10.5-21 s (the simulator stretches timelines)
    return [running, failed, lone.ref.run_id, quick]


async def test_list_runs_groups_reports_into_extractor_sessions(sim: Simulator) -> None:
    async with cognite(sim) as client:
        ids = await _mixed_sessions(sim, client)
        runs = await client.list_runs(SAP)
    assert len(sim_of(sim).reports(SAP)) >= 5 + 2 + 1 + 4 + 2
    # One run per session, not per report; every simulated session is one, newest first.
    assert [r.ref.run_id for r in runs[:4]] == ids
    assert {r.ref.run_id for r in runs} == {t["id"] for t in sim_of(sim).ground_truth() if t["target"] == SAP}
    assert [(r.status, r.vendor_status) for r in runs] == [
        (RunStatus.RUNNING, "seen"),
        (RunStatus.FAILED, "failure"),
        (RunStatus.FAILED, "failure"),  # a lone report is a session of one
        (RunStatus.SUCCEEDED, "success"),
        (RunStatus.SUCCEEDED, "success"),
    ]
    for run in runs:
        reports = _session_reports(sim, SAP, run.ref.run_id)
        first, last = reports[0], reports[-1]
        assert run.ref.extra["created_time"] == str(first["createdTime"])
        assert run.created_at == run.started_at == parse_time(first["createdTime"])
        assert run.raw == last and run.message == last.get("message")
        if run.terminal:
            assert run.ended_at == parse_time(last["createdTime"]) and run.heartbeat_at is None
        else:
            assert run.heartbeat_at == parse_time(last["createdTime"]) and run.ended_at is None
    running, failed, lone = runs[0], runs[1], runs[2]
    assert len(_session_reports(sim, SAP, running.ref.run_id)) >= 2
    assert running.heartbeat_at > running.created_at  # type: ignore[operator]
    assert failed.message in FAILURE_MESSAGES
    assert lone.message == "nightly batch failed" and lone.ended_at == lone.created_at


async def test_following_a_listed_session_gives_the_listed_answer(sim: Simulator) -> None:
    async with cognite(sim) as client:
        await _mixed_sessions(sim, client)
        runs = await client.list_runs(SAP)
        followed = [await client.get_status(run.ref) for run in runs]
        sim.clock.advance(300)  # the long session has finished by now
        later = await client.list_runs(SAP)
        followed_later = [await client.get_status(run.ref) for run in later]
    assert runs[0].status is RunStatus.RUNNING and later[0].status is RunStatus.SUCCEEDED
    assert [r.ref for r in later] == [r.ref for r in runs]
    for listed, status in [*zip(runs, followed, strict=True), *zip(later, followed_later, strict=True)]:
        assert status.ref == listed.ref
        assert _decision(status) == _decision(listed)


async def test_heartbeat_at_is_the_newest_heartbeat_while_running_and_none_when_done(
    sim: Simulator,
) -> None:
    sim.force(KEY, "success")
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        seen = await follow(client, sim, first, step=4.0)
    assert first.heartbeat_at is not None and first.heartbeat_at == first.created_at  # our own report
    running, final = seen[1:-1], seen[-1]
    assert running and all(s.status is RunStatus.RUNNING for s in running)
    for snapshot in running:
        newest = max(i["createdTime"] for i in snapshot.raw["items"] if i["status"] == "seen")
        assert snapshot.heartbeat_at == parse_time(newest)
    beats = [s.heartbeat_at for s in running]
    assert beats == sorted(beats) and beats[-1] > beats[0]  # type: ignore[operator,type-var]
    assert final.status is RunStatus.SUCCEEDED and final.heartbeat_at is None


async def test_a_session_longer_than_a_page_is_listed_from_its_first_report(sim: Simulator) -> None:
    target = "opcua-compressor-station-3"  # seeded: one failed session
    # Extractors that crash and come back without a success or failure: one long session
    # of 120 heartbeats.
    start = sim.start_external_run(KEY, target, "silent")
    sim.clock.advance(40)
    for _ in range(29):
        sim.start_external_run(KEY, target, "silent")
        sim.clock.advance(40)
    async with cognite(sim) as client:
        runs = await client.list_runs(target, limit=1)
        followed = await client.get_status(runs[0].ref)
    assert [r.ref.run_id for r in runs] == [start]
    assert runs[0].status is RunStatus.RUNNING
    assert runs[0].heartbeat_at == parse_time(sim_of(sim).reports(target)[0]["createdTime"])
    assert _decision(followed) == _decision(runs[0])
    lists = [r.json() for r in api_requests(sim, "/runs/list")]
    # A second, bigger page was needed to reach the failure before the session.
    assert [body["limit"] for body in lists[:2]] == [100, 1000] and "cursor" in lists[1]


async def test_a_watch_after_two_extractor_sessions_shows_two_runs(sim: Simulator) -> None:
    target = "sharepoint-engineering-docs"  # seeded: one successful session
    async with cognite(sim) as client:
        before = await client.watch(target)
        reports_before = len(sim_of(sim).reports(target))
        ok = sim.start_external_run(KEY, target, "long")
        watched = []
        for _ in range(3):  # a heartbeat every 10.5-21 s, success after 126 s or more: still one run
            sim.clock.advance(25)
            watched.append(await client.watch(target))
        sim.clock.advance(200)
        bad = sim.start_external_run(KEY, target, "failure")
        sim.clock.advance(60)
        after = await client.watch(target)
    for during in watched:
        assert len(during.runs) == len(before.runs) + 1
        assert during.runs[0].ref.run_id == ok and during.runs[0].status is RunStatus.RUNNING
    beats = [w.runs[0].heartbeat_at for w in watched]
    assert beats == sorted(beats) and len(set(beats)) == 3  # type: ignore[type-var]
    assert len(sim_of(sim).reports(target)) - reports_before >= 9 + 4
    assert len(after.runs) == len(before.runs) + 2
    assert [r.ref.run_id for r in after.runs[:2]] == [bad, ok]
    assert [r.status for r in after.runs[:2]] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert [r.ref.run_id for r in after.runs[2:]] == [r.ref.run_id for r in before.runs]
    assert after.last_failure == after.runs[0].ended_at
    assert after.last_success == after.runs[1].ended_at
    assert after.last_seen == after.runs[0].ended_at
    assert {r.ref.extra["pipeline_id"] for r in after.runs} == {"7751340028841190"}


async def test_unknown_pipeline_is_not_found_naming_it(sim: Simulator) -> None:
    async with cognite(sim) as client:
        with pytest.raises(NotFound) as info:
            await client.create_run(request_for(sim, KEY, external_id="no-such-pipeline"))
        assert "'no-such-pipeline'" in str(info.value) and PROJECT in str(info.value)
        assert info.value.status_code == 400
        with pytest.raises(NotFound) as watched:
            await client.watch("no-such-pipeline")
        assert "'no-such-pipeline'" in str(watched.value)
    assert sim.creates(KEY) == 0


async def test_run_url_points_at_the_pipeline_in_fusion(sim: Simulator) -> None:
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        assert client.run_url(first.ref) is None  # the simulator has no Fusion UI
    cloud = Cognite(CogniteConnection.model_validate(CC))
    async with cloud:
        ref = cloud.ref(PIPELINE, "42", pipeline_id="1841723458290144", created_time="1")
        assert cloud.run_url(ref) == (
            "https://fusion.cognite.com/acme-prod/extpipes/extpipe/1841723458290144"
            "?cluster=westeurope-1.cognitedata.com"
        )
        assert cloud.run_url(cloud.ref(PIPELINE, "42")) is None


# -- auth -------------------------------------------------------------------------------


async def test_client_credentials_token_is_fetched_once_and_reused(sim: Simulator) -> None:
    async with cognite(sim) as client:
        assert PROJECT in await client.check_connection()
        first = await client.create_run(request_for(sim, KEY))
        for _ in range(3):
            await client.get_status(first.ref)
        await client.watch(PIPELINE)
    tokens = token_requests(sim)
    assert len(tokens) == 1
    form = {k: v[0] for k, v in parse_qs(tokens[0].body.decode()).items()}
    base = sim.base_url(KEY)
    assert form == {
        "grant_type": "client_credentials",
        "client_id": sim.demo_connection(KEY)["client_id"],
        "client_secret": sim.demo_connection(KEY)["client_secret"],
        "scope": f"{base}/.default",
    }
    bearer = {r.header("authorization") for r in sim.requests(KEY) if r.path.startswith(API)}
    assert len(bearer) == 1 and next(iter(bearer)).startswith("Bearer sim-cdf-at-")
    assert all(r.header("x-cdp-app") == "RunMonitor" for r in sim.requests(KEY) if r.path.startswith(API))


@pytest.mark.parametrize("how", ["clock", "revoked"])
async def test_expired_token_means_one_transparent_new_sign_in(sim: Simulator, how: str) -> None:
    async with cognite(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        if how == "clock":
            sim.clock.advance(3 * 3600)  # tokens live an hour of simulated time
        else:
            sim.faults(KEY).next(Fault(FaultKind.EXPIRED_TOKEN))
        snapshot = await client.get_status(first.ref)
        await client.get_status(first.ref)
    assert snapshot.ref == first.ref
    assert len(token_requests(sim)) == 2
    polls = [r.status for r in api_requests(sim, "/runs/list")]
    assert polls == [401, 200, 200]


async def test_wrong_client_secret_is_sign_in_needed(sim: Simulator) -> None:
    async with cognite(sim, client_secret="not-the-secret-1234") as client:
        with pytest.raises(AuthFailed) as info:
            await client.check_connection()
    assert "invalid_client" in str(info.value)
    assert "not-the-secret-1234" not in str(info.value)
    assert [r.path for r in sim.requests(KEY)] == ["/cognite" + TOKEN_PATH]


async def test_legacy_api_key_works_and_a_wrong_one_says_so(sim: Simulator) -> None:
    key = sim_of(sim).credentials["api_key"]
    legacy = {
        "auth_kind": "api_key",
        "api_key": key,
        "client_secret": None,
        "client_id": None,
        "token_url": None,
    }
    async with cognite(sim, **legacy) as client:
        first = await client.create_run(request_for(sim, KEY))
        assert (await client.get_status(first.ref)).status is RunStatus.RUNNING
    records = sim.requests(KEY)
    assert not token_requests(sim)
    assert all(r.header("api-key") == key and r.header("authorization") is None for r in records)
    async with cognite(sim, **{**legacy, "api_key": "wrong-legacy-key-000"}) as client:
        with pytest.raises(AuthFailed) as info:
            await client.check_connection()
    assert "legacy" in str(info.value) and info.value.status_code == 401


async def test_a_given_bearer_token_is_used_as_is_and_cannot_be_renewed(sim: Simulator) -> None:
    token = sim_of(sim).issue_token(lifetime=600)
    values = {"auth_kind": "token", "token": token}
    async with cognite(sim, **values) as client:
        first = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(601)
        with pytest.raises(AuthFailed) as info:
            await client.get_status(first.ref)
    assert "fresh token" in str(info.value)
    assert not token_requests(sim)


async def test_a_project_the_credentials_cannot_use_is_forbidden(sim: Simulator) -> None:
    async with cognite(sim, project="someone-elses-project") as client:
        with pytest.raises(Forbidden) as info:
            await client.check_connection()
    assert "extractionrunsAcl" in str(info.value) and "someone-elses-project" in str(info.value)


# -- errors -----------------------------------------------------------------------------


async def test_a_create_is_sent_once_even_on_rate_limits_and_server_errors(sim: Simulator) -> None:
    async with cognite(sim) as client:
        await client.check_connection()
        sim.faults(KEY).next(Fault(FaultKind.QUOTA))
        with pytest.raises(RateLimited) as limited:
            await client.create_run(request_for(sim, KEY))
        assert "concurrent requests" in str(limited.value)
        sim.faults(KEY).next(Fault(FaultKind.HTTP_ERROR, status=503, after_processing=True))
        with pytest.raises(ServerError) as failed:
            await client.create_run(request_for(sim, KEY))
    assert failed.value.may_have_reached_service is True
    assert len(api_requests(sim, "/runs")) == 2
    assert sim.creates(KEY) == 1


def test_both_error_body_shapes_are_understood() -> None:
    client = Cognite(CogniteConnection.model_validate(CC))
    classify = client.classify_error
    headers = httpx.Headers({"x-request-id": "req-1"})
    missing = [{"externalId": "gone"}]
    wrapped = classify(400, {"error": {"code": 400, "message": "not found", "missing": missing}}, headers)
    unwrapped = classify(400, {"code": 400, "message": "not found", "missing": missing}, headers)
    for error in (wrapped, unwrapped):
        assert isinstance(error, NotFound)
        assert "'gone'" in str(error) and error.request_id == "req-1"
    # Anything else falls through to the shared mapping.
    assert classify(400, {"error": {"code": 400, "message": "bad"}}, headers) is None
    assert classify(500, "oops", headers) is None


async def test_a_wrong_shaped_answer_is_a_bad_response() -> None:
    # A real CDF (or the simulator) never answers like this, hence a transport stub.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"status": "seen"}, {"status": "seen"}]})

    config = CogniteConnection.model_validate({**CC, "auth_kind": "token", "token": "t-123456"})
    async with Cognite(config, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(BadResponse, match="2 items"):
            await client.create_run(CogniteRunReport(external_id="x"))
        with pytest.raises(BadResponse, match="without an id"):
            await client.list_runs("x")


# -- the vendor's spec ------------------------------------------------------------------


def _spec(specs_dir: Path) -> Spec:
    return load_spec(specs_dir / "cognite" / "cognite-extpipes-subset.json")


def _responses(sim: Simulator, path: str, method: str = "POST") -> list[Any]:
    return [r for r in sim.requests(KEY, method) if r.path == API + path]


@pytest.mark.spec
async def test_create_and_list_bodies_follow_the_spec(sim: Simulator, specs_dir: Path) -> None:
    spec = _spec(specs_dir)
    sim.force(KEY, "quick")
    async with cognite(sim) as client:
        created = await client.create_run(
            request_for(sim, KEY, created_time=datetime.now(UTC) - timedelta(seconds=2))
        )
        spec.validate_response("POST", "/extpipes/runs", 200, created.raw)
        sim.clock.advance(20)
        snapshot = await client.get_status(created.ref)
        spec.validate_response("POST", "/extpipes/runs/list", 200, snapshot.raw)
        await client.create_run(request_for(sim, KEY, status="failure", message=None))
        await client.list_runs(PIPELINE, limit=3)
    for record in _responses(sim, "/runs"):
        spec.validate_request("POST", "/extpipes/runs", record.json())
        assert len(record.json()["items"]) == 1
    for record in _responses(sim, "/runs/list"):
        spec.validate_request("POST", "/extpipes/runs/list", record.json())


@pytest.mark.spec
async def test_pipeline_reads_follow_the_spec(sim: Simulator, specs_dir: Path) -> None:
    spec = _spec(specs_dir)
    sim.start_external_run(KEY, PIPELINE, "failure")
    sim.clock.advance(60)
    async with cognite(sim) as client:
        watched = await client.watch(PIPELINE)
        await client.check_connection()
    spec.validate_request("POST", "/extpipes/byids", _responses(sim, "/byids")[0].json())
    spec.validate_request("POST", "/extpipes/list", _responses(sim, "/list")[0].json())
    spec.validate_response("POST", "/extpipes/byids", 200, {"items": [watched.raw]})
    # Straight from the simulator: every read endpoint answers in the spec's shapes.
    token = sim_of(sim).issue_token()
    headers = {"Authorization": f"Bearer {token}"}
    root = sim.root_url + API
    async with httpx.AsyncClient(headers=headers) as raw:
        byids = await raw.post(
            root + "/byids",
            json={"items": [{"id": 1841723458290144}, {"externalId": "sap-s4-maintenance-orders"}]},
        )
        listed = await raw.post(root + "/list", json={"limit": 2})
        one = await raw.get(root + "/1841723458290144")
        runs = await raw.get(root + "/runs", params={"externalId": PIPELINE, "limit": 3})
        pipes = await raw.get(root)
        missing = await raw.post(root + "/runs", json={"items": [{"externalId": "nope", "status": "seen"}]})
        bad = await raw.post(root + "/runs", json={"items": [{"externalId": PIPELINE, "status": "fail"}]})
    spec.validate_response("POST", "/extpipes/byids", 200, byids.json())
    assert len(byids.json()["items"]) == 2 and byids.json()["items"][0]["lastFailure"]
    spec.validate_response("POST", "/extpipes/list", 200, listed.json())
    assert len(listed.json()["items"]) == 2 and listed.json()["nextCursor"]
    spec.validate_response("GET", "/extpipes/{id}", 200, one.json())
    spec.validate_response("GET", "/extpipes/runs", 200, runs.json())
    spec.validate_response("GET", "/extpipes", 200, pipes.json())
    assert missing.status_code == 400 and missing.json()["error"]["missing"] == [{"externalId": "nope"}]
    assert bad.status_code == 400 and "fail" in bad.json()["error"]["message"]
    error_schema = spec._resolve("#/components/responses/400ErrorResponse")["content"]["application/json"][
        "schema"
    ]
    for response in (missing, bad):
        spec.validate_response("POST", "/extpipes/runs", 400, response.json())
        spec.validate(response.json(), error_schema)


@pytest.mark.spec
async def test_refusals_use_cognites_error_shape(sim: Simulator, specs_dir: Path) -> None:
    spec = _spec(specs_dir)
    error_schema = spec._resolve("#/components/responses/400ErrorResponse")["content"]["application/json"][
        "schema"
    ]
    async with httpx.AsyncClient() as raw:
        unauthorised = await raw.post(
            sim.root_url + API + "/list", json={}, headers={"Authorization": "Bearer nope"}
        )
    assert unauthorised.status_code == 401
    assert unauthorised.json() == {"error": {"code": 401, "message": "Unauthorized"}}
    quota = sim_of(sim).quota_response()
    assert quota.status == 429
    body = json.loads(quota.body)
    assert body["error"]["message"].startswith("Project exceeded maximum number='50' of concurrent requests")
    for payload in (unauthorised.json(), body):
        spec.validate(payload, error_schema)
