"""Connhex Exporter: request model, status table, tolerant status parsing, and the client
against the simulator over real HTTP (jobs, recurring exports, quota, delete, auth)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    InvalidRequest,
    NotFound,
    QuotaReached,
    RateLimited,
    Unsupported,
)
from runmonitor.domain.models import Capability, RunAction
from runmonitor.domain.status import RunStatus
from runmonitor.services.connhex import (
    Connhex,
    ConnhexConnection,
    ConnhexExportRequest,
    classify_connhex_error,
    parse_status_body,
)
from runmonitor.services.validators import parse_iso_duration
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.simulator.connhex import ConnhexSim
from tests.helpers import client_for, distinct_statuses, follow, request_for

KEY = "connhex"
CHANNEL = "0115c85d-ef3e-4de9-9732-d0c5c4f2c482"
TARGET = "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:temp"


def item(**overrides: Any) -> dict[str, Any]:
    return {"target": TARGET, "channel_id": CHANNEL, "subtopic": "events.data", **overrides}


def locs(info: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [tuple(err["loc"]) for err in info.value.errors()]


def connhex_sim(sim: Simulator) -> ConnhexSim:
    found = sim.sims[KEY]
    assert isinstance(found, ConnhexSim)
    return found


# -- status table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "status", "detail"),
    [
        ("notProcessed", RunStatus.PENDING, None),
        ("inProgress", RunStatus.RUNNING, None),
        ("done", RunStatus.SUCCEEDED, None),
        ("failed", RunStatus.FAILED, None),
        ("expired", RunStatus.SUCCEEDED, "result expired"),
        ("DONE", RunStatus.SUCCEEDED, None),
        ("cancelled", RunStatus.UNKNOWN, "unrecognised status 'cancelled'"),
        ("queued", RunStatus.UNKNOWN, "unrecognised status 'queued'"),
    ],
)
def test_status_table(vendor: str, status: RunStatus, detail: str | None) -> None:
    mapped = Connhex.status_map.map(vendor)
    assert (mapped.status, mapped.detail, mapped.vendor) == (status, detail, vendor)


def test_every_vendor_status_is_in_the_table() -> None:
    assert set(Connhex.status_map.vendor_values) == {
        "notProcessed",
        "inProgress",
        "done",
        "failed",
        "expired",
    }
    assert ConnhexSim.terminal == {"done", "failed", "expired"}


# -- ISO 8601 durations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds", "sent"),
    [
        ("P1Y2M10DT2H30M", 365 * 86400 + 60 * 86400 + 10 * 86400 + 2 * 3600 + 1800, "P1Y2M10DT2H30M"),
        ("P1Y", 365 * 86400, "P1Y"),
        ("P3M", 90 * 86400, "P3M"),
        ("P1W", 7 * 86400, "P1W"),
        ("P2W3D", 17 * 86400, "P2W3D"),
        ("P1D", 86400, "P1D"),
        ("PT15M", 900, "PT15M"),
        ("PT36H", 36 * 3600, "PT36H"),
        ("P1DT12H", 36 * 3600, "P1DT12H"),
        ("P0.5D", 43200, "P0.5D"),
        ("P0,5D", 43200, "P0.5D"),
        ("PT1.5S", 1.5, "PT1.5S"),
        ("P1Y2M3W4DT5H6M7S", 365 * 86400 + 60 * 86400 + 25 * 86400 + 5 * 3600 + 367, "P1Y2M3W4DT5H6M7S"),
        (" PT1H ", 3600, "PT1H"),
    ],
)
def test_good_durations_parse(text: str, seconds: float, sent: str) -> None:
    duration = parse_iso_duration(text)
    assert duration.approx_seconds() == pytest.approx(seconds)
    assert duration.text == sent


def test_duration_components_are_kept_apart() -> None:
    d = parse_iso_duration("P1Y2M3W4DT5H6M7.5S")
    assert (d.years, d.months, d.weeks, d.days, d.hours, d.minutes, d.seconds) == (1, 2, 3, 4, 5, 6, 7.5)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must not be empty"),
        ("P", "at least one number"),
        ("PT", "at least one number"),
        ("P1DT", "'T' with no hours"),
        ("1D", "must start with 'P'"),
        ("1 day", "upper case"),
        ("P1H", "after 'T'"),
        ("P1DT2H3D", "not an ISO 8601 duration"),
        ("-P1D", "sign"),
        ("+P1D", "sign"),
        ("p1d", "upper case"),
        ("P1d", "upper case"),
        ("PT0S", "longer than zero"),
        ("P0D", "longer than zero"),
        ("P1.5DT1H", "last (smallest) unit"),
        ("P1M1Y", "not an ISO 8601 duration"),
        ("P1D1D", "not an ISO 8601 duration"),
        ("P 1D", "not an ISO 8601 duration"),
        ("P.5D", "not an ISO 8601 duration"),
        ("P1.D", "not an ISO 8601 duration"),
        ("PXD", "not an ISO 8601 duration"),
        ("P1234567890D", "not an ISO 8601 duration"),
        ("R5/P1D", "must start with 'P'"),
    ],
)
def test_bad_durations_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_iso_duration(text)


@pytest.mark.parametrize("bad", ["P", "PT", "1D", "P1H", "-P1D", "", "PT0S", "P1W1X"])
def test_bad_periodicity_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        ConnhexExportRequest.model_validate({"type": "recurring", "periodicity": bad, "items": [item()]})
    assert ("periodicity",) in locs(info)


def test_recurring_needs_periodicity_and_one_time_refuses_it() -> None:
    with pytest.raises(ValidationError) as info:
        ConnhexExportRequest.model_validate({"type": "recurring", "items": [item()]})
    assert locs(info) == [("periodicity",)]
    assert "required for a recurring export" in str(info.value)
    with pytest.raises(ValidationError) as info:
        ConnhexExportRequest.model_validate({"type": "oneTime", "periodicity": "P1D", "items": [item()]})
    assert locs(info) == [("periodicity",)]
    with pytest.raises(ValidationError) as info:
        ConnhexExportRequest.model_validate(
            {"type": "oneTime", "period_start": "2025-01-01T00:00:00Z", "items": [item()]}
        )
    assert locs(info) == [("period_start",)]


# -- request model ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "loc"),
    [
        ({"items": []}, ("items",)),
        ({"type": "weekly"}, ("type",)),
        ({"format": {"timezone": "Mars/Olympus_Mons"}}, ("format", "timezone")),
        ({"format": {"timezone": ""}}, ("format", "timezone")),
        ({"format": {"extension": "json"}}, ("format", "extension")),
        ({"format": {"extension": "xlsx", "csv_delimiter": ";"}}, ("format", "csv_delimiter")),
        ({"format": {"csv_delimiter": ";;"}}, ("format", "csv_delimiter")),
        (
            {"format": {"columns": [{"id": "time", "label": "Time"}, {"id": "time", "label": "Zeit"}]}},
            ("format", "columns"),
        ),
        ({"format": {"columns": [{"id": "my col", "label": "x"}]}}, ("format", "columns", 0, "id")),
        ({"items": [item(channel_id="channel-7")]}, ("items", 0, "channel_id")),
        ({"items": [item(subtopic="events..data")]}, ("items", 0, "subtopic")),
        ({"items": [item(subtopic="")]}, ("items", 0, "subtopic")),
        ({"items": [item(target="urn:a,,urn:b")]}, ("items", 0, "target")),
        ({"items": [item(target="urn:a, urn:b", target_label="only one")]}, ("items", 0, "target_label")),
        (
            {"items": [item(from_time="2025-01-02T00:00:00Z", to_time="2025-01-01T00:00:00Z")]},
            ("items", 0, "to_time"),
        ),
        ({"items": [item(from_time="1969-12-31T00:00:00Z")]}, ("items", 0, "from_time")),
        ({"items": [item(from_time=1700000000, period="P1D")]}, ("items", 0, "period")),
        ({"items": [item(period="P1H")]}, ("items", 0, "period")),
        ({"items": [item(decimation={"interval": "15"})]}, ("items", 0, "decimation", "interval")),
        ({"items": [item(decimation={"interval": "0m"})]}, ("items", 0, "decimation", "interval")),
        ({"items": [item(decimation={"interval": "15x"})]}, ("items", 0, "decimation", "interval")),
        (
            {"items": [item(decimation={"interval": "1h", "function": "median"})]},
            ("items", 0, "decimation", "function"),
        ),
        ({"items": [item(transform="double")]}, ("items", 0, "transform")),
        ({"items": [item(filename="../etc/passwd")]}, ("items", 0, "filename")),
        ({"items": [item(unknown=1)]}, ("items", 0, "unknown")),
        (
            {"notifications": [{"recipient": "not-an-address", "title": "t", "text": "x"}]},
            ("notifications", 0, "recipient"),
        ),
        (
            {"notifications": [{"recipient": "a@b", "title": "t", "text": "x"}]},
            ("notifications", 0, "recipient"),
        ),
        ({"notifications": [{"title": "", "text": "x"}]}, ("notifications", 0, "title")),
        ({"notifications": [{"medium": "fax", "title": "t", "text": "x"}]}, ("notifications", 0, "medium")),
        (
            {"notifications": [{"policy": "always", "title": "t", "text": "x"}]},
            ("notifications", 0, "policy"),
        ),
    ],
)
def test_bad_request_values_are_refused_naming_the_field(
    values: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    data: dict[str, Any] = {"items": [item()], **values}
    with pytest.raises(ValidationError) as info:
        ConnhexExportRequest.model_validate(data)
    assert loc in locs(info), info.value


def test_a_label_count_mismatch_says_both_counts() -> None:
    with pytest.raises(ValidationError, match="one label per data source: 2 sources, 1 label"):
        ConnhexExportRequest.model_validate({"items": [item(target="urn:a, urn:b", target_label="only one")]})


@pytest.mark.parametrize(
    ("given", "kept"), [("europe/rome", "Europe/Rome"), ("utc", "UTC"), ("Asia/Tokyo", "Asia/Tokyo")]
)
def test_time_zones_are_iana_names(given: str, kept: str) -> None:
    request = ConnhexExportRequest.model_validate({"items": [item()], "format": {"timezone": given}})
    assert request.format.timezone == kept


def test_a_full_request_round_trips_and_becomes_the_vendor_body() -> None:
    values = {
        "type": "recurring",
        "periodicity": "P1M",
        "period_start": "2025-03-01T00:00:00",
        "items": [
            item(
                target="urn:a, urn:b",
                target_label="first,second",
                from_time="2025-01-01T00:00:00Z",
                to_time=1735779600.5,
                decimation={"interval": "1h", "function": "max"},
                transform="delta",
                filename="meters",
            ),
            item(period="P1W"),
        ],
        "format": {
            "extension": "csv",
            "timezone": "Europe/Rome",
            "template": "expanded",
            "columns": [{"id": "time", "label": "Zeit"}, {"id": "value", "label": "Wert"}],
            "csv_delimiter": ";",
        },
        "notifications": [
            {"recipient": "ops@example.com", "title": "Export ready", "text": "See attachment"},
            {"medium": "telegram", "policy": "onFailure", "recipient": "-100123", "title": "t", "text": "x"},
        ],
    }
    request = ConnhexExportRequest.model_validate(values)
    again = ConnhexExportRequest.model_validate(request.model_dump())
    assert again == request
    assert request.target() == "urn:a,urn:b (+1 more)"
    assert request.to_body() == {
        "type": "recurring",
        "periodicity": "P1M",
        "periodStart": 1740787200,
        "format": {
            "extension": "csv",
            "timezone": "Europe/Rome",
            "template": "expanded",
            "columns": [{"id": "time", "label": "Zeit"}, {"id": "value", "label": "Wert"}],
            "csvDelimiter": ";",
        },
        "items": [
            {
                "params": {
                    "target": {"value": "urn:a,urn:b", "label": "first,second"},
                    "channelId": CHANNEL,
                    "subtopic": "events.data",
                    "from": 1735689600,
                    "to": 1735779600.5,
                    "decimation": {"ds": "1h", "dsf": "max"},
                    "transform": "delta",
                },
                "filename": "meters",
            },
            {
                "params": {
                    "target": {"value": TARGET},
                    "channelId": CHANNEL,
                    "subtopic": "events.data",
                    "period": "P1W",
                }
            },
        ],
        "notification": {
            "messages": [
                {
                    "policy": "onSuccess",
                    "medium": "email",
                    "title": "Export ready",
                    "text": "See attachment",
                    "target": "ops@example.com",
                },
                {"policy": "onFailure", "medium": "telegram", "title": "t", "text": "x", "target": "-100123"},
            ]
        },
    }


def test_minimal_request_has_sensible_defaults() -> None:
    request = ConnhexExportRequest.model_validate({"items": [item()]})
    assert request.to_body() == {
        "type": "oneTime",
        "format": {"extension": "csv", "timezone": "UTC", "template": "tabular"},
        "items": [{"params": {"target": {"value": TARGET}, "channelId": CHANNEL, "subtopic": "events.data"}}],
        "notification": {"messages": []},
    }


# -- connection model ------------------------------------------------------------------------


def test_connection_model(sim: Simulator) -> None:
    values = sim.demo_connection(KEY)
    for bad in ({"token": ""}, {"token": "two words"}, {"token": None}):
        with pytest.raises(ValidationError) as info:
            ConnhexConnection.model_validate({**values, **bad})
        assert ("token",) in locs(info)
    without = {k: v for k, v in values.items() if k != "token"}
    with pytest.raises(ValidationError) as info:
        ConnhexConnection.model_validate(without)
    assert locs(info) == [("token",)]
    pasted = ConnhexConnection.model_validate({**values, "token": "Bearer abc.def.ghi"})
    assert pasted.token.get_secret_value() == "abc.def.ghi"
    assert "/exports" in (ConnhexConnection.model_fields["base_url"].description or "")
    assert ConnhexConnection.secret_field_names() == ["token"]


# -- tolerant parsing of the undocumented status body ----------------------------------------


def test_status_body_with_jobs_is_read_newest_first() -> None:
    info = parse_status_body(
        {
            "id": "exp-1",
            "type": "recurring",
            "status": "inProgress",
            "jobs": [
                {
                    "id": "j1",
                    "status": "done",
                    "createdAt": "2025-01-01T00:00:00Z",
                    "updatedAt": "2025-01-01T00:05:00Z",
                },
                {"id": "j3", "status": "inProgress", "createdAt": "2025-01-03T00:00:00.000Z"},
                {"id": "j2", "status": "failed", "createdAt": 1735776000, "error": "disk full"},
            ],
        }
    )
    assert [job.id for job in info.jobs] == ["j3", "j2", "j1"]
    assert info.export_type == "recurring"
    latest = info.latest()
    assert latest is not None and latest.status == "inProgress"
    j1 = info.find("j1")
    assert j1 is not None and j1.ended_at == datetime(2025, 1, 1, 0, 5, tzinfo=UTC)
    j2 = info.find("j2")
    assert j2 is not None and j2.message == "disk full"


@pytest.mark.parametrize(
    ("body", "job_id", "status"),
    [
        ("done", None, "done"),
        ({"status": "expired"}, None, "expired"),
        ({"exportStatus": "notProcessed", "id": "exp-1"}, None, "notProcessed"),
        ({"state": "inProgress"}, None, "inProgress"),
        ({"status": {"export": "failed", "notification": "sent"}}, None, "failed"),
        ({"data": {"id": "exp-1", "type": "exports", "attributes": {"status": "done"}}}, None, "done"),
        ({"lastJob": {"jobId": "j9", "jobStatus": "inProgress"}}, "j9", "inProgress"),
        ({"exportJobs": [{"_id": "a", "state": "done"}, {"_id": "b", "state": "failed"}]}, "b", "failed"),
        ([{"id": "a", "status": "done"}, {"id": "b", "status": "notProcessed"}], "b", "notProcessed"),
        ({"jobs": [], "status": "notProcessed"}, None, "notProcessed"),
        (
            {
                "data": [
                    {"id": "a", "status": "failed", "createdAt": 2},
                    {"id": "b", "status": "done", "createdAt": 1},
                ]
            },
            "a",
            "failed",
        ),
    ],
)
def test_status_body_shapes(body: Any, job_id: str | None, status: str) -> None:
    latest = parse_status_body(body).latest()
    assert latest is not None
    assert (latest.id, latest.status) == (job_id, status)


def test_status_body_without_jobs_means_waiting() -> None:
    assert parse_status_body({"id": "exp-1", "jobs": []}).latest() is None
    assert parse_status_body({"status": None}).latest() is None


@pytest.mark.parametrize(
    "body", [None, 42, {"id": "exp-1", "name": "x"}, {"jobs": "many"}, {"jobs": [1, 2]}, [1]]
)
def test_status_body_without_a_status_is_a_bad_response(body: Any) -> None:
    with pytest.raises(BadResponse):
        parse_status_body(body)


# -- error classification --------------------------------------------------------------------


def test_error_classification() -> None:
    quota = classify_connhex_error(
        429,
        {"errors": [{"status": "429", "detail": "Maximum number of queued exports reached"}]},
        httpx.Headers({"retry-after": "12"}),
    )
    assert isinstance(quota, QuotaReached) and quota.retry_after == 12.0
    assert quota.may_have_reached_service is False
    assert classify_connhex_error(429, {"errors": [{"detail": "Too many requests"}]}, httpx.Headers()) is None
    identity = classify_connhex_error(
        400, {"error": {"message": "Missing user identity id"}}, httpx.Headers()
    )
    assert isinstance(identity, AuthFailed)
    assert (
        classify_connhex_error(400, {"errors": [{"detail": "items must not be empty"}]}, httpx.Headers())
        is None
    )


# -- against the simulator -------------------------------------------------------------------


def test_service_declaration() -> None:
    assert Connhex.capabilities == {Capability.LIST_RUNS, Capability.WATCH, Capability.ACTIONS}
    assert Connhex.actions == (RunAction.DELETE,)
    assert Connhex.cancel_action is RunAction.DELETE
    assert Capability.IDEMPOTENT_CREATE not in Connhex.capabilities


async def test_one_time_export_is_followed_to_done(sim: Simulator) -> None:
    sim.force(KEY, "success")
    async with client_for(sim, KEY) as client:
        request = request_for(sim, KEY)
        first = await client.create_run(request)
        seen = await follow(client, sim, first)
    assert first.ref.target != first.ref.run_id, "run_id is the job id, target the export id"
    assert first.ref.extra == {"type": "oneTime"}
    assert distinct_statuses(seen) == [
        ("PENDING", "notProcessed"),
        ("RUNNING", "inProgress"),
        ("SUCCEEDED", "done"),
    ]
    assert seen[-1].started_at is not None and seen[-1].ended_at is not None
    assert seen[-1].created_at is not None and seen[-1].created_at <= seen[-1].started_at <= seen[-1].ended_at
    posts = sim.requests(KEY, "POST")
    assert len(posts) == 1
    assert posts[0].path == "/connhex/exports"
    assert posts[0].json() == request.to_body()
    assert posts[0].header("authorization") == "Bearer " + sim.demo_connection(KEY)["token"]
    assert all(r.path.endswith("/status") for r in sim.requests(KEY, "GET"))


async def test_failed_export_carries_the_error(sim: Simulator) -> None:
    sim.force(KEY, "failure")
    async with client_for(sim, KEY) as client:
        seen = await follow(client, sim, await client.create_run(request_for(sim, KEY)))
    assert seen[-1].status is RunStatus.FAILED
    assert seen[-1].vendor_status == "failed"
    assert seen[-1].message == "No data points in the selected time range"


async def test_finished_job_later_expires(sim: Simulator) -> None:
    sim.force(KEY, "success")
    async with client_for(sim, KEY) as client:
        seen = await follow(client, sim, await client.create_run(request_for(sim, KEY)))
        assert seen[-1].vendor_status == "done"
        sim.clock.advance(connhex_sim(sim).retention_seconds + 60)
        later = await client.get_status(seen[0].ref)
    assert (later.status, later.vendor_status, later.detail) == (
        RunStatus.SUCCEEDED,
        "expired",
        "result expired",
    )


async def test_queue_quota_is_reported_as_quota_reached(sim: Simulator) -> None:
    connhex_sim(sim).max_queued = 2
    sim.force(KEY, "queued_long", "queued_long", "success")
    async with client_for(sim, KEY) as client:
        await client.create_run(request_for(sim, KEY))
        await client.create_run(request_for(sim, KEY))
        with pytest.raises(QuotaReached) as info:
            await client.create_run(request_for(sim, KEY))
        assert isinstance(info.value, RateLimited)
        assert info.value.retry_after is not None and 1 <= info.value.retry_after <= 300
        assert info.value.may_have_reached_service is False
        assert info.value.status_code == 429
        assert sim.creates(KEY) == 2
        assert len(await client.list_runs("*")) == 2
        # Once the queued exports have finished there is room again.
        sim.clock.advance(400)
        created = await client.create_run(request_for(sim, KEY))
    assert created.status is RunStatus.PENDING
    assert sim.creates(KEY) == 3


async def test_exports_of_someone_else_do_not_count_against_the_quota(sim: Simulator) -> None:
    connhex_sim(sim).max_queued = 1
    for _ in range(3):
        sim.start_external_run(KEY, "*", "queued_long")
    async with client_for(sim, KEY) as client:
        await client.create_run(request_for(sim, KEY))
    assert sim.creates(KEY) == 1


async def test_plain_429_is_a_rate_limit_not_a_quota(sim: Simulator) -> None:
    async with client_for(sim, KEY) as client:
        sim.faults(KEY).next(Fault(FaultKind.RATE_LIMIT, retry_after="4"))
        with pytest.raises(RateLimited) as info:
            await client.create_run(request_for(sim, KEY))
    assert not isinstance(info.value, QuotaReached)
    assert info.value.retry_after == 4.0


async def test_recurring_export_makes_a_job_every_period_newest_first(sim: Simulator) -> None:
    sim.force(KEY, "success", "failure", "success", "success")
    async with client_for(sim, KEY) as client:
        first = await client.create_run(request_for(sim, KEY, type="recurring", periodicity="PT10M"))
        assert first.ref.extra == {"type": "recurring"}
        assert first.vendor_status == "notProcessed"
        sim.clock.advance(35 * 60)
        runs = await client.list_runs(first.ref.target)
        watched = await client.watch(first.ref.target)
        limited = await client.list_runs(first.ref.target, limit=2)
    assert len(runs) == 4
    assert runs[-1].ref == first.ref
    assert len({r.ref.run_id for r in runs}) == 4
    created = [r.created_at for r in runs if r.created_at is not None]
    assert len(created) == 4
    assert created == sorted(created, reverse=True)
    assert [r.vendor_status for r in runs] == ["done", "done", "failed", "done"]
    assert all(r.ref.target == first.ref.target for r in runs)
    assert [r.ref for r in watched.runs] == [r.ref for r in runs]
    assert watched.last_failure is not None and watched.last_success is not None
    assert watched.last_success > watched.last_failure
    assert [r.ref for r in limited] == [r.ref for r in runs[:2]]
    assert sim.creates(KEY) == 1


async def test_recurring_export_with_a_later_period_start_waits_for_its_first_job(sim: Simulator) -> None:
    start = datetime.fromtimestamp(int(sim.clock.now()) + 3600, UTC)
    sim.force(KEY, "queued_long")
    async with client_for(sim, KEY) as client:
        first = await client.create_run(
            request_for(sim, KEY, type="recurring", periodicity="P1D", period_start=start.isoformat())
        )
        assert first.ref.run_id == first.ref.target
        assert (first.status, first.vendor_status, first.detail) == (
            RunStatus.PENDING,
            None,
            "waiting for the first job",
        )
        waiting = await client.list_runs(first.ref.target)
        assert [(r.ref, r.status, r.detail) for r in waiting] == [
            (first.ref, RunStatus.PENDING, "waiting for the first job")
        ]
        sim.clock.advance(3600 + 5)
        now = await client.get_status(first.ref)
        jobs = await client.list_runs(first.ref.target)
    assert now.vendor_status == "notProcessed"
    assert len(jobs) == 1 and jobs[0].ref.run_id != first.ref.target
    post = sim.requests(KEY, "POST")[0].json()
    assert post["periodStart"] == int(start.timestamp())


async def test_watching_all_exports_shows_those_of_someone_else(sim: Simulator) -> None:
    async with client_for(sim, KEY) as client:
        mine = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(2)
        theirs = sim.start_external_run(KEY, "*", "failure")
        watched = await client.watch("*")
        everything = await client.list_runs("")
    assert [r.ref.run_id for r in watched.runs] == [theirs, mine.ref.run_id]
    assert [r.ref.run_id for r in everything] == [theirs, mine.ref.run_id]
    assert watched.target == "*"
    assert all(r.ref.extra == {"type": "oneTime"} for r in watched.runs)


async def test_a_job_someone_else_starts_on_my_export_shows_in_its_watch(sim: Simulator) -> None:
    async with client_for(sim, KEY) as client:
        mine = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(60)
        extra = sim.start_external_run(KEY, mine.ref.target, "success")
        watched = await client.watch(mine.ref.target)
    assert [r.ref.run_id for r in watched.runs] == [extra, mine.ref.run_id]


async def test_delete_removes_the_export(sim: Simulator) -> None:
    sim.force(KEY, "queued_long")
    async with client_for(sim, KEY) as client:
        first = await client.create_run(request_for(sim, KEY))
        deleted = await client.perform(first.ref, RunAction.DELETE)
        assert (deleted.status, deleted.detail) == (RunStatus.CANCELLED, "export deleted")
        assert deleted.ref == first.ref
        with pytest.raises(NotFound):
            await client.get_status(first.ref)
        with pytest.raises(NotFound):
            await client.perform(first.ref, RunAction.DELETE)
        assert await client.list_runs("*") == []
        with pytest.raises(Unsupported):
            await client.perform(first.ref, RunAction.PAUSE)
    deletes = sim.requests(KEY, "DELETE")
    assert [(r.path, r.status) for r in deletes] == [
        (f"/connhex/exports/{first.ref.target}", 204),
        (f"/connhex/exports/{first.ref.target}", 404),
    ]


async def test_unknown_job_of_a_known_export_is_not_found(sim: Simulator) -> None:
    async with client_for(sim, KEY) as client:
        first = await client.create_run(request_for(sim, KEY))
        with pytest.raises(NotFound):
            await client.get_status(first.ref.model_copy(update={"run_id": "no-such-job"}))


async def test_first_status_read_failing_after_create_still_gives_the_export(sim: Simulator) -> None:
    sim.force(KEY, "success")
    async with client_for(sim, KEY) as client:
        sim.faults(KEY).next(Fault(FaultKind.HTTP_ERROR, status=503, method="GET", path_contains="/status"))
        first = await client.create_run(request_for(sim, KEY))
        assert first.ref.run_id == first.ref.target
        assert (first.status, first.detail) == (RunStatus.PENDING, "waiting for the first job")
        assert first.raw["export"]["id"] == first.ref.target
        seen = await follow(client, sim, first)
    assert seen[-1].vendor_status == "done"
    assert sim.creates(KEY) == 1


async def test_wrong_token_means_sign_in_needed(sim: Simulator) -> None:
    async with client_for(sim, KEY, token="wrong-token-0000") as client:
        with pytest.raises(AuthFailed) as info:
            await client.check_connection()
    assert info.value.status_code == 401
    assert "Access credentials are invalid" in str(info.value)


async def test_missing_user_identity_means_sign_in_needed(sim: Simulator) -> None:
    connhex_sim(sim).drop_identity = True
    async with client_for(sim, KEY) as client:
        with pytest.raises(AuthFailed) as info:
            await client.create_run(request_for(sim, KEY))
    assert info.value.status_code == 400
    assert "identity" in str(info.value)
    assert sim.creates(KEY) == 0


async def test_anonymous_requests_get_missing_user_identity(sim: Simulator) -> None:
    async with httpx.AsyncClient() as raw:
        response = await raw.get(sim.base_url(KEY) + "/exports")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"status": "400", "title": "Bad Request", "detail": "Missing user identity id"}]
    }


async def test_check_connection_reports_the_export_count(sim: Simulator) -> None:
    sim.start_external_run(KEY, "*")
    async with client_for(sim, KEY) as client:
        text = await client.check_connection()
    assert "1 export visible" in text
    assert sim.requests(KEY, "GET")[0].query == "pageSize=1"


async def test_simulator_refuses_bodies_the_reference_refuses(sim: Simulator) -> None:
    good = request_for(sim, KEY).to_body()
    async with client_for(sim, KEY) as client:
        for bad, words in [
            ({**good, "type": "recurring"}, "periodicity is required"),
            ({**good, "type": "recurring", "periodicity": "P1H"}, "periodicity must be a valid"),
            ({**good, "items": []}, "items must contain"),
            ({**good, "format": {"extension": "docx"}}, "format.extension"),
            ({k: v for k, v in good.items() if k != "notification"}, "notification.messages"),
        ]:
            with pytest.raises(InvalidRequest) as info:
                await client.http.request("POST", "exports", json_body=bad, ok=(201,))
            assert words in str(info.value)
    assert sim.creates(KEY) == 0


async def test_simulator_lists_with_pages_and_filters(sim: Simulator) -> None:
    ids = [sim.start_external_run(KEY, "*", "success") for _ in range(3)]
    sim.clock.advance(300)
    async with client_for(sim, KEY) as client:
        page1 = (await client.http.request("GET", "exports", params={"page": 1, "pageSize": 2})).body
        page2 = (await client.http.request("GET", "exports", params={"page": 2, "pageSize": 2})).body
        failed = (await client.http.request("GET", "exports", params={"status": "failed"})).body
    assert page1["total"] == 3 and len(page1["results"]) == 2 and len(page2["results"]) == 1
    listed = [r["lastJob"]["id"] for r in page1["results"] + page2["results"]]
    assert listed == list(reversed(ids))
    assert failed["results"] == []


# -- the documented body shape ---------------------------------------------------------------
# Connhex publishes no machine-readable spec for the exporter, so the ../shared/specs checks
# do not apply. This schema is transcribed from the API reference page "Create export
# request" (POST /exports, connhex.com/docs/api/exporter/create-request): required fields,
# enums and names. Request objects forbid other properties, so a misspelt vendor name fails.


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


DOCUMENTED_REQUEST = _closed(
    {
        "format": _closed(
            {
                "filename": {"type": "string"},
                "extension": {"enum": ["csv", "xlsx", "pdf"]},
                "columns": {
                    "type": "array",
                    "items": _closed(
                        {"id": {"type": "string"}, "label": {"type": "string"}}, ["id", "label"]
                    ),
                },
                "timezone": {"type": "string"},
                "template": {"enum": ["tabular", "expanded"]},
                "csvDelimiter": {"type": "string"},
            },
            ["extension"],
        ),
        "type": {"enum": ["recurring", "oneTime"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": _closed(
                {
                    "params": _closed(
                        {
                            "target": _closed(
                                {"value": {"type": "string"}, "label": {"type": "string"}}, ["value"]
                            ),
                            "channelId": {"type": "string"},
                            "subtopic": {"type": "string"},
                            "from": {"type": "number"},
                            "to": {"type": "number"},
                            "period": {"type": "string"},
                            "decimation": _closed(
                                {
                                    "ds": {"type": "string"},
                                    "dsf": {"enum": ["avg", "max", "min", "sum", "stddev", "variance"]},
                                },
                                ["ds", "dsf"],
                            ),
                            "transform": {"enum": ["delta"]},
                        },
                        ["target", "channelId", "subtopic"],
                    ),
                    "filename": {"type": "string"},
                },
                ["params"],
            ),
        },
        "periodicity": {"type": "string"},
        "periodStart": {"type": "number"},
        "notification": _closed(
            {
                "messages": {
                    "type": "array",
                    "items": _closed(
                        {
                            "target": {"type": "string"},
                            "policy": {"enum": ["onSuccess", "onFailure"]},
                            "medium": {"enum": ["email", "telegram", "slack", "discord"]},
                            "title": {"type": "string"},
                            "text": {"type": "string"},
                        },
                        ["policy", "medium", "title", "text"],
                    ),
                }
            },
            ["messages"],
        ),
    },
    ["format", "type", "items", "notification"],
)


def _documented_response() -> dict[str, Any]:
    schema = {**DOCUMENTED_REQUEST, "additionalProperties": True}
    schema["properties"] = {
        **DOCUMENTED_REQUEST["properties"],
        "id": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        # The reference marks deletedAt as a required date-time; an export that is not
        # deleted has none, so the simulator sends null.
        "deletedAt": {"type": ["string", "null"]},
    }
    schema["required"] = [*DOCUMENTED_REQUEST["required"], "id", "createdAt", "updatedAt", "deletedAt"]
    return schema


async def test_request_and_response_bodies_have_the_documented_shape(sim: Simulator) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    variants = [
        request_for(sim, KEY),
        request_for(
            sim,
            KEY,
            type="recurring",
            periodicity="P1W",
            period_start="2030-01-01T00:00:00Z",
            format={
                "extension": "xlsx",
                "columns": [{"id": "value", "label": "Wert"}],
                "template": "expanded",
            },
            notifications=[{"recipient": "ops@example.com", "title": "t", "text": "x"}],
        ),
        request_for(
            sim,
            KEY,
            items=[
                item(
                    from_time=1700000000,
                    to_time=1700086400,
                    transform="delta",
                    filename="f",
                    target_label="l",
                )
            ],
            format={"csv_delimiter": ";"},
        ),
    ]
    async with client_for(sim, KEY) as client:
        for request in variants:
            await client.create_run(request)
    posts = sim.requests(KEY, "POST")
    assert len(posts) == len(variants)
    for record in posts:
        jsonschema.validate(record.json(), DOCUMENTED_REQUEST)
    async with client_for(sim, KEY) as client:
        answer = await client.http.request("POST", "exports", json_body=variants[1].to_body(), ok=(201,))
    jsonschema.validate(answer.body, _documented_response())
