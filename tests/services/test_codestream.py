"""VMware Aria Automation Code Stream: client against the simulator, over real HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from runmonitor.domain.errors import (
    AuthFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerError,
    TimedOut,
    Unsupported,
)
from runmonitor.domain.models import Capability, RunAction, RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.services.codestream import (
    STATUS_MAP,
    CodeStream,
    CodeStreamConnection,
    CodeStreamExecuteRequest,
)
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.simulator.codestream import DEMO_PIPELINES, CodeStreamSim
from tests.helpers import client_for, distinct_statuses, follow, request_for
from tests.specs import Spec, load_spec

KEY = "codestream"
PIPELINE = DEMO_PIPELINES[0]
LOGIN_PATH = "/vra/iaas/api/login"


def _sim(sim: Simulator) -> CodeStreamSim:
    return cast(CodeStreamSim, sim.sims[KEY])


def _client(sim: Simulator, **overrides: Any) -> CodeStream:
    client = client_for(sim, KEY, **overrides)
    assert isinstance(client, CodeStream)
    return client


def _logins(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests(KEY) if r.path == LOGIN_PATH]


def _query(record: Any) -> dict[str, list[str]]:
    return parse_qs(record.query, keep_blank_values=True)


# -- status table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "expected", "detail"),
    [
        ("NOT_STARTED", RunStatus.PENDING, None),
        ("QUEUED", RunStatus.PENDING, "queued"),
        ("PREPARING_WORKSPACE", RunStatus.RUNNING, "preparing the workspace"),
        ("STARTED", RunStatus.RUNNING, None),
        ("RUNNING", RunStatus.RUNNING, None),
        ("RESUMING", RunStatus.RUNNING, "resuming"),
        ("PAUSING", RunStatus.RUNNING, "pausing"),
        ("ROLLING_BACK", RunStatus.RUNNING, "rolling back after a failure"),
        ("WAITING", RunStatus.RUNNING, "waiting for a person (approval or user operation)"),
        ("PAUSED", RunStatus.RUNNING, "paused"),
        ("CANCELING", RunStatus.RUNNING, "cancelling"),
        ("FAILED_CONTINUE", RunStatus.RUNNING, "a task failed; the pipeline continues"),
        ("CANCELED", RunStatus.CANCELLED, None),
        ("SKIPPED", RunStatus.CANCELLED, "skipped"),
        ("COMPLETED", RunStatus.SUCCEEDED, None),
        ("FAILED", RunStatus.FAILED, None),
        ("ROLLBACK_FAILED", RunStatus.FAILED, "failed, and the rollback failed too"),
        ("ROLLBACK_COMPLETED", RunStatus.FAILED, "failed and was rolled back"),
    ],
)
def test_status_table(vendor: str, expected: RunStatus, detail: str | None) -> None:
    mapped = STATUS_MAP.map(vendor)
    assert (mapped.status, mapped.vendor, mapped.detail) == (expected, vendor, detail)


def test_status_table_names_exactly_the_specs_eighteen_values() -> None:
    assert len(list(STATUS_MAP.vendor_values)) == 18
    # Code Stream's values are upper case; another casing is not one of them.
    assert STATUS_MAP.map("completed").status is RunStatus.UNKNOWN
    assert STATUS_MAP.map("SUCCEEDED").status is RunStatus.UNKNOWN


def test_client_and_simulator_agree_on_what_is_terminal() -> None:
    terminal = {v for v in STATUS_MAP.vendor_values if STATUS_MAP.map(v).terminal}
    assert terminal == set(CodeStreamSim.terminal)


# -- request model ----------------------------------------------------------------------


def _request(**values: Any) -> CodeStreamExecuteRequest:
    return CodeStreamExecuteRequest.model_validate({"pipeline_id": PIPELINE.id, **values})


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"pipeline_id": ""}, "pipeline_id"),
        ({"pipeline_id": "build-and-test"}, "pipeline_id"),
        ({"pipeline_id": "b49898f9-d42d-4f19-8bda"}, "pipeline_id"),
        ({"pipeline_id": "../../codestream/api/about"}, "pipeline_id"),
        ({"tags": ["ok", ""]}, "tags"),
        ({"tags": ["   "]}, "tags"),
        ({"tags": ["a", "a"]}, "tags"),
        ({"tags": ["x" * 256]}, "tags"),
        ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"comments": "x" * 2001}, "comments"),
        ({"execution_id": "my-run-1"}, "execution_id"),
        ({"input": {"": "x"}}, "input"),
        ({"input": {"branch": 5}}, "input"),
        ({"input": {"big": "x" * 65537}}, "input"),
        ({"project_name": "p" * 256}, "project_name"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _request(**values)
    assert info.value.errors()[0]["loc"][0] == field


def test_good_request_round_trips_and_normalises() -> None:
    upper = PIPELINE.id.upper()
    request = CodeStreamExecuteRequest.model_validate(
        {
            "pipeline_id": upper,
            "project_name": "",
            "input": {" branch ": "release/1.2", "buildNumber": ""},
            "tags": [" nightly ", "v1.2"],
            "comments": "  first try  ",
        }
    )
    assert request.target() == PIPELINE.id
    assert request.input == {"branch": "release/1.2", "buildNumber": ""}
    assert request.tags == ["nightly", "v1.2"]
    assert request.comments == "first try"
    assert request.project_name is None
    assert request.execution_id is None
    again = CodeStreamExecuteRequest.model_validate(request.model_dump())
    assert again == request


def test_an_execution_id_is_picked_once_and_kept() -> None:
    request = _request()
    chosen = request.with_execution_id()
    assert chosen.execution_id is not None
    assert str(uuid.UUID(chosen.execution_id)) == chosen.execution_id
    assert chosen.with_execution_id() is chosen
    mine = _request(execution_id="0F8FAD5B-D9CB-469F-A165-70867728950E")
    assert mine.with_execution_id().execution_id == "0f8fad5b-d9cb-469f-a165-70867728950e"


# -- connection model -------------------------------------------------------------------

BASE = "https://vra.example.com"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"auth_kind": "refresh_token"}, "refresh_token"),
        ({"auth_kind": "refresh_token", "refresh_token": "   "}, "refresh_token"),
        ({"auth_kind": "bearer", "refresh_token": "rt-123456"}, "access_token"),
        ({"auth_kind": "password", "refresh_token": "rt-123456"}, "auth_kind"),
        ({"refresh_token": "rt-123456", "api_version": "latest"}, "api_version"),
        ({"refresh_token": "rt-123456", "api_version": "2019-13-45"}, "api_version"),
        ({"refresh_token": "rt-123456", "project": "p" * 256}, "project"),
    ],
)
def test_bad_connections_are_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CodeStreamConnection.model_validate({"base_url": BASE, **values})
    assert [err["loc"] for err in info.value.errors()] == [(field,)]


def test_connections_per_auth_kind() -> None:
    refresh = CodeStreamConnection.model_validate(
        {"base_url": BASE + "/", "refresh_token": "rt-secret-123456", "api_version": "2019-10-17"}
    )
    assert refresh.base_url == BASE
    assert refresh.api_version == "2019-10-17"
    assert refresh.project is None
    assert "rt-secret-123456" not in repr(refresh)
    assert not any("30 minutes" in note for note in refresh.warnings())
    bearer = CodeStreamConnection.model_validate(
        {"base_url": BASE, "auth_kind": "bearer", "access_token": "at-secret-123456", "project": ""}
    )
    assert bearer.refresh_token is None
    assert bearer.project is None
    assert any("30 minutes" in note for note in bearer.warnings())
    assert sorted(CodeStreamConnection.secret_field_names()) == ["access_token", "refresh_token"]


def test_declared_capabilities() -> None:
    assert CodeStream.capabilities == {
        Capability.LIST_RUNS,
        Capability.WATCH,
        Capability.ACTIONS,
        Capability.IDEMPOTENT_CREATE,
    }
    assert CodeStream.actions == (RunAction.CANCEL, RunAction.PAUSE, RunAction.RESUME)
    assert CodeStream.cancel_action is RunAction.CANCEL


# -- following an execution --------------------------------------------------------------


async def test_execute_and_follow_a_pipeline_through_every_step(sim: Simulator) -> None:
    sim.force(KEY, "success")
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        assert (first.status, first.vendor_status, first.detail) == (RunStatus.PENDING, None, "requested")
        assert first.ref.target == PIPELINE.id
        assert first.ref.extra == {"index": "1"}
        seen = [first]
        while seen[-1].vendor_status != "RUNNING":
            sim.clock.advance(1.0)
            seen.append(await client.get_status(first.ref))
        seen += await follow(client, sim, seen[-1], step=30.0)
    assert distinct_statuses(seen) == [
        ("PENDING", None),
        ("PENDING", "NOT_STARTED"),
        ("PENDING", "QUEUED"),
        ("RUNNING", "PREPARING_WORKSPACE"),
        ("RUNNING", "STARTED"),
        ("RUNNING", "RUNNING"),
        ("SUCCEEDED", "COMPLETED"),
    ]
    last = seen[-1]
    assert last.message == "Execution Completed."
    assert last.created_at is not None and last.started_at is not None and last.ended_at is not None
    assert last.created_at < last.started_at < last.ended_at
    assert last.raw["input"] == {"branch": "main", "buildNumber": ""}
    assert last.raw["tags"] == ["runmonitor"]


async def test_timestamps_are_read_from_code_streams_formats(sim: Simulator) -> None:
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(30)
        snapshot = await client.get_status(first.ref)
    raw = snapshot.raw
    # "2019-09-16 09:25:38.065065+00": a space and a two-digit offset.
    assert raw["createdAt"][10] == " " and raw["createdAt"].endswith("+00")
    expected = datetime.fromtimestamp(raw["_createTimeInMicros"] / 1e6, UTC)
    assert snapshot.created_at is not None
    assert abs(snapshot.created_at - expected) < timedelta(microseconds=2)
    started = min(stage["_startTime"] for stage in raw["stages"].values() if "_startTime" in stage)
    assert snapshot.started_at == datetime.fromtimestamp(started / 1e6, UTC)
    assert abs(snapshot.created_at.timestamp() - (sim.clock.now() - 30)) < 5


def test_timestamps_from_the_spec_examples() -> None:
    client = CodeStream(CodeStreamConnection(base_url=BASE, refresh_token="rt-123456"))
    body = {
        "id": "b80254a7-fcff-4918-ad88-501d08096337",
        "name": "test",
        "description": "",
        "status": "COMPLETED",
        "createdAt": "2019-09-16 09:25:38.065065+00",
        "updatedAt": "2019-09-23 13:48:54.483",
        "_pipelineLink": "/codestream/api/pipelines/b49898f9-d42d-4f19-8bda-e77a373c41b9",
        "stages": {"Build": {"name": "Build", "_startTime": 1568625938000000}},
    }
    snapshot = client._snapshot(body)
    assert snapshot.ref.target == "b49898f9-d42d-4f19-8bda-e77a373c41b9"
    assert snapshot.created_at == datetime(2019, 9, 16, 9, 25, 38, 65065, tzinfo=UTC)
    assert snapshot.ended_at == datetime(2019, 9, 23, 13, 48, 54, 483000, tzinfo=UTC)
    assert snapshot.started_at == datetime(2019, 9, 16, 9, 25, 38, tzinfo=UTC)
    # Only the microsecond fields: still read, as microseconds (not ms, not seconds).
    micros_only: dict[str, Any] = {k: v for k, v in body.items() if k not in ("createdAt", "updatedAt")}
    micros_only |= {"_createTimeInMicros": 1569226720988000, "_updateTimeInMicros": 1569226734483000}
    snapshot = client._snapshot(micros_only)
    assert snapshot.created_at == datetime(2019, 9, 23, 8, 18, 40, 988000, tzinfo=UTC)
    assert snapshot.ended_at == datetime(2019, 9, 23, 8, 18, 54, 483000, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [[], {"status": "RUNNING"}, {"id": "x", "status": "RUNNING"}, "not an execution"],
    ids=["list", "no-id", "no-pipeline", "text"],
)
def test_wrong_shapes_are_bad_responses(body: Any) -> None:
    from runmonitor.domain.errors import BadResponse

    client = CodeStream(CodeStreamConnection(base_url=BASE, refresh_token="rt-123456"))
    with pytest.raises(BadResponse):
        client._snapshot(body)


async def test_answers_the_simulator_never_gives_are_handled_tolerantly() -> None:
    # A real server cannot be made to send these, so a mock transport stands in for it.
    server_id = "c0ffee00-0000-4000-8000-000000000001"
    seen_paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen_paths.append(request.url.path)
        if request.url.path == "/iaas/api/login":
            return httpx.Response(200, json={"token": "t-123456", "tokenType": "Bearer"})
        if request.method == "POST" and b'"comments":"empty"' in request.content:
            return httpx.Response(202)  # accepted, without a body
        if request.method == "POST":
            return httpx.Response(200, json={"executionId": server_id, "executionIndex": 7})
        good = {"id": server_id, "status": "RUNNING", "index": 7, "_requestTimeInMicros": 1}
        return httpx.Response(200, json={"count": 2, "documents": {"/a": good, "/b": {"status": "x"}}})

    config = CodeStreamConnection(base_url=BASE, refresh_token="rt-123456")
    async with CodeStream(config, transport=httpx.MockTransport(answer)) as client:
        empty = await client.create_run(_request(comments="empty", execution_id=str(uuid.UUID(int=5))))
        other = await client.create_run(_request(comments="other"))
        runs = await client.list_runs(PIPELINE.id)
    assert (empty.ref.run_id, empty.status, empty.detail) == (
        str(uuid.UUID(int=5)),
        RunStatus.PENDING,
        "requested",
    )
    # A server that ignored the client-chosen id: follow the execution it did start.
    assert (other.ref.run_id, other.ref.extra) == (server_id, {"index": "7"})
    # The unreadable document is skipped, not fatal.
    assert [r.ref.run_id for r in runs] == [server_id]
    assert seen_paths.count("/iaas/api/login") == 1


async def test_secret_looking_inputs_are_masked_in_the_stored_payload(sim: Simulator) -> None:
    request = request_for(sim, KEY, input={"branch": "main", "dbPassword": "hunter2-very-secret"})
    async with _client(sim) as client:
        first = await client.create_run(request)
        snapshot = await client.get_status(first.ref)
    assert snapshot.raw["input"]["dbPassword"] == "***"
    assert snapshot.raw["input"]["branch"] == "main"
    assert "hunter2-very-secret" not in str(snapshot.model_dump())


async def test_expand_asks_for_stage_and_task_detail(sim: Simulator) -> None:
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(30)
        plain = await client.get_status(first.ref)
        expanded = await client.get_execution(first.ref, expand=True)
    assert all("tasks" not in stage for stage in plain.raw["stages"].values())
    assert all(stage["tasks"] for stage in expanded.raw["stages"].values())
    gets = [r for r in sim.requests(KEY, "GET") if "/executions/" in r.path]
    assert "expand" not in _query(gets[0])
    assert _query(gets[1])["expand"] == ["PIPELINE_STAGE_TASK"]


# -- sign-in ----------------------------------------------------------------------------


async def test_refresh_token_login_happens_once_and_the_token_is_reused(sim: Simulator) -> None:
    async with _client(sim) as client:
        assert "2019-10-17" in await client.check_connection()
        first = await client.create_run(request_for(sim, KEY))
        for _ in range(3):
            await client.get_status(first.ref)
    logins = _logins(sim)
    assert len(logins) == 1
    assert logins[0].json() == {"refreshToken": sim.demo_connection(KEY)["refresh_token"]}
    calls = [r for r in sim.requests(KEY) if r.path != LOGIN_PATH]
    assert len(calls) == 5
    tokens = {r.header("authorization") for r in calls}
    assert len(tokens) == 1
    assert str(next(iter(tokens))).startswith("Bearer sim-vra-access-")
    assert _sim(sim).logins == 1


@pytest.mark.parametrize("how", ["clock", "revoked"])
async def test_an_expired_token_means_one_new_login_and_the_call_succeeds(sim: Simulator, how: str) -> None:
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        if how == "clock":
            sim.clock.advance(31 * 60)  # tokens live 30 minutes
        else:
            sim.faults(KEY).next(Fault(FaultKind.EXPIRED_TOKEN))
        snapshot = await client.get_status(first.ref)
        await client.get_status(first.ref)
    assert snapshot.ref.run_id == first.ref.run_id
    assert len(_logins(sim)) == 2
    gets = [r for r in sim.requests(KEY, "GET")]
    assert [r.status for r in gets] == [401, 200, 200]
    assert gets[0].header("authorization") != gets[1].header("authorization")


async def test_wrong_refresh_token_is_sign_in_needed(sim: Simulator) -> None:
    async with _client(sim, refresh_token="wrong-refresh-token-000") as client:
        with pytest.raises(AuthFailed) as info:
            await client.check_connection()
        with pytest.raises(AuthFailed):
            await client.create_run(request_for(sim, KEY))
    assert info.value.status_code == 400
    assert "refresh token" in str(info.value)
    assert "wrong-refresh-token-000" not in str(info.value)
    assert [r.status for r in _logins(sim)] == [400, 400]
    assert sim.creates(KEY) == 0


async def test_a_hanging_login_times_out(sim: Simulator) -> None:
    sim.faults(KEY).next(Fault(FaultKind.TIMEOUT, seconds=3.0, path_contains="/iaas/api/login"))
    async with _client(sim, timeout_seconds=0.5) as client:
        with pytest.raises(TimedOut):
            await client.check_connection()


async def test_bearer_sign_in_works_until_the_token_expires(sim: Simulator) -> None:
    token = _sim(sim).issue_token()
    async with _client(sim, auth_kind="bearer", access_token=token, refresh_token=None) as client:
        first = await client.create_run(request_for(sim, KEY))
        await client.get_status(first.ref)
        sim.clock.advance(31 * 60)
        with pytest.raises(AuthFailed) as info:
            await client.get_status(first.ref)
    assert "30 minutes" in str(info.value)
    assert not _logins(sim)
    assert {r.header("authorization") for r in sim.requests(KEY)} == {f"Bearer {token}"}


async def test_missing_or_bad_bearer_tokens_are_refused_by_code_stream(sim: Simulator) -> None:
    base = sim.base_url(KEY)
    async with httpx.AsyncClient() as raw:
        missing = await raw.get(f"{base}/codestream/api/about")
        bad = await raw.get(f"{base}/codestream/api/about", headers={"Authorization": "Bearer nope"})
    for answer in (missing, bad):
        assert answer.status_code == 401
        body = answer.json()
        assert body["status"] == 401 and body["error"] == "Unauthorized" and body["message"]
        assert body["path"] == "/codestream/api/about"


# -- creating: 200/202, retries, reused ids ----------------------------------------------


@pytest.mark.parametrize("status", [200, 202])
async def test_both_documented_success_codes_are_accepted(sim: Simulator, status: int) -> None:
    _sim(sim).create_status = status
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
    post = sim.requests(KEY, "POST")[-1]
    assert post.status == status
    assert first.ref.run_id == post.json()["executionId"]
    assert sim.creates(KEY) == 1


async def test_the_request_body_carries_what_the_user_asked_for(sim: Simulator) -> None:
    request = request_for(sim, KEY, project_name="Demo", comments="Nightly", tags=["a", "b"])
    async with _client(sim, api_version="2019-10-17") as client:
        first = await client.create_run(request)
    post = next(r for r in sim.requests(KEY, "POST") if r.path != LOGIN_PATH)
    body = post.json()
    assert body == {
        "comments": "Nightly",
        "executionId": first.ref.run_id,
        "input": {"branch": "main"},
        "tags": ["a", "b"],
        "source": "RunMonitor",
        "projectName": "Demo",
    }
    assert post.path == f"/vra/codestream/api/pipelines/{PIPELINE.id}/executions"
    assert _query(post) == {"apiVersion": ["2019-10-17"]}


@pytest.mark.parametrize("after_processing", [True, False], ids=["answer-lost", "never-arrived"])
async def test_a_dropped_create_is_retried_with_the_same_id_and_creates_one_execution(
    sim: Simulator, after_processing: bool
) -> None:
    async with _client(sim) as client:
        await client.check_connection()
        sim.faults(KEY).next(Fault(FaultKind.DROP, after_processing=after_processing, method="POST"))
        snapshot = await client.create_run(request_for(sim, KEY))
    posts = [r for r in sim.requests(KEY, "POST") if r.path != LOGIN_PATH]
    assert len(posts) == 2
    assert posts[0].json()["executionId"] == posts[1].json()["executionId"] == snapshot.ref.run_id
    assert sim.creates(KEY) == 1
    truth = sim.sims[KEY].ground_truth()
    assert [run["id"] for run in truth] == [snapshot.ref.run_id]
    if after_processing:
        # The retry was refused as a duplicate, and the execution was read back.
        assert posts[1].status == 409
        assert snapshot.vendor_status is not None
        assert sim.requests(KEY, "GET")[-1].path.endswith(f"/executions/{snapshot.ref.run_id}")
    else:
        assert posts[1].status == 202
        assert snapshot.vendor_status is None


async def test_a_created_execution_is_reported_even_when_reading_it_back_fails(sim: Simulator) -> None:
    async with _client(sim) as client:
        await client.check_connection()
        sim.faults(KEY).next(Fault(FaultKind.HTTP_ERROR, status=500, after_processing=True, method="POST"))
        sim.faults(KEY).next(Fault(FaultKind.HTTP_ERROR, status=503, method="GET"))
        snapshot = await client.create_run(request_for(sim, KEY))
        later = await client.get_status(snapshot.ref)
    assert (snapshot.status, snapshot.detail) == (RunStatus.PENDING, "requested")
    assert [r.status for r in sim.requests(KEY) if r.path != LOGIN_PATH][1:] == [500, 409, 503, 200]
    assert later.ref.run_id == snapshot.ref.run_id
    assert sim.creates(KEY) == 1


async def test_creates_give_up_after_three_uncertain_failures(sim: Simulator) -> None:
    async with _client(sim) as client:
        await client.check_connection()
        sim.faults(KEY).next(Fault(FaultKind.HTTP_ERROR, status=503, method="POST"), count=3)
        with pytest.raises(ServerError) as info:
            await client.create_run(request_for(sim, KEY))
    assert info.value.may_have_reached_service is True
    posts = [r for r in sim.requests(KEY, "POST") if r.path != LOGIN_PATH]
    assert len(posts) == 3
    assert len({p.json()["executionId"] for p in posts}) == 1
    assert sim.creates(KEY) == 0


async def test_a_reused_execution_id_is_an_invalid_request(sim: Simulator) -> None:
    chosen = str(uuid.uuid4())
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY, execution_id=chosen))
        assert first.ref.run_id == chosen
        with pytest.raises(InvalidRequest) as info:
            await client.create_run(request_for(sim, KEY, execution_id=chosen))
    assert info.value.status_code == 409
    assert chosen in str(info.value)
    posts = [r for r in sim.requests(KEY, "POST") if r.path != LOGIN_PATH]
    assert len(posts) == 2  # the refused one is not retried
    assert sim.creates(KEY) == 1


@pytest.mark.parametrize(
    ("pipeline", "error"),
    [
        ("00000000-0000-4000-8000-000000000000", NotFound),
        ("2f6b8d0a-3c5e-4a7f-9b1d-e3f5a7c9b1d3", Forbidden),  # not a member of its project
        ("7a1c3e5f-2b4d-4f6a-8c0e-9d1b3f5a7c2e", InvalidRequest),  # disabled
    ],
    ids=["unknown", "other-project", "disabled"],
)
async def test_pipelines_that_cannot_run(sim: Simulator, pipeline: str, error: type[Exception]) -> None:
    async with _client(sim, project=None) as client:
        with pytest.raises(error) as info:
            await client.create_run(request_for(sim, KEY, pipeline_id=pipeline))
    assert str(info.value)
    assert sim.creates(KEY) == 0


async def test_unknown_execution_is_not_found(sim: Simulator) -> None:
    async with _client(sim) as client:
        ref = client.ref(PIPELINE.id, str(uuid.uuid4()))
        with pytest.raises(NotFound):
            await client.get_status(ref)


# -- actions ----------------------------------------------------------------------------


async def _running(client: CodeStream, sim: Simulator, scenario: str = "success") -> RunSnapshot:
    sim.force(KEY, scenario)
    first = await client.create_run(request_for(sim, KEY))
    sim.clock.advance(30)
    snapshot = await client.get_status(first.ref)
    assert snapshot.vendor_status == "RUNNING"
    return snapshot


async def test_cancel_goes_through_canceling_to_canceled(sim: Simulator) -> None:
    async with _client(sim) as client:
        running = await _running(client, sim)
        after = await client.perform(running.ref, RunAction.CANCEL, reason="Wrong branch")
        assert (after.status, after.vendor_status, after.detail) == (
            RunStatus.RUNNING,
            "CANCELING",
            "cancelling",
        )
        seen = await follow(client, sim, after, step=2.0)
    assert seen[-1].vendor_status == "CANCELED"
    assert seen[-1].status is RunStatus.CANCELLED
    assert seen[-1].message is not None and "Wrong branch" in seen[-1].message
    action = [r for r in sim.requests(KEY, "POST") if r.path.endswith(f"/executions/{running.ref.run_id}")]
    assert len(action) == 1
    assert _query(action[0]) == {"action": ["cancel"]}
    assert action[0].json() == {"reason": "Wrong branch"}


async def test_pause_holds_until_resumed_then_the_rest_of_the_run_follows(sim: Simulator) -> None:
    async with _client(sim) as client:
        running = await _running(client, sim)
        pausing = await client.perform(running.ref, RunAction.PAUSE)
        assert (pausing.vendor_status, pausing.detail) == ("PAUSING", "pausing")
        sim.clock.advance(5)
        paused = await client.get_status(running.ref)
        assert (paused.status, paused.vendor_status, paused.detail) == (RunStatus.RUNNING, "PAUSED", "paused")
        sim.clock.advance(3600)
        assert (await client.get_status(running.ref)).vendor_status == "PAUSED"
        resuming = await client.perform(running.ref, RunAction.RESUME, reason="Fixed the agent")
        assert (resuming.vendor_status, resuming.detail) == ("RESUMING", "resuming")
        seen = await follow(client, sim, resuming, step=5.0)
    assert [v for _, v in distinct_statuses(seen)] == ["RESUMING", "RUNNING", "COMPLETED"]
    bodies = [
        r.json() for r in sim.requests(KEY, "POST") if "/executions/" in r.path and "action=" in r.query
    ]
    assert bodies == [{"reason": "Pause requested from RunMonitor"}, {"reason": "Fixed the agent"}]


async def test_a_run_paused_by_someone_else_can_be_resumed(sim: Simulator) -> None:
    sim.force(KEY, "paused_and_resumed")
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(60)
        assert (await client.get_status(first.ref)).vendor_status == "PAUSED"
        resumed = await client.perform(first.ref, RunAction.RESUME)
        seen = await follow(client, sim, resumed, step=5.0)
    assert [v for _, v in distinct_statuses(seen)] == ["RESUMING", "RUNNING", "COMPLETED"]


@pytest.mark.parametrize(
    ("action", "when"),
    [
        (RunAction.PAUSE, "finished"),
        (RunAction.CANCEL, "finished"),
        (RunAction.RESUME, "running"),
        (RunAction.PAUSE, "queued"),
    ],
)
async def test_actions_the_state_does_not_allow_are_refused(
    sim: Simulator, action: RunAction, when: str
) -> None:
    sim.force(KEY, "success")
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        sim.clock.advance({"finished": 300, "running": 30, "queued": 0}[when])
        before = await client.get_status(first.ref)
        with pytest.raises(InvalidRequest) as info:
            await client.perform(first.ref, action)
        after = await client.get_status(first.ref)
    assert info.value.status_code == 400
    assert f"refused to {action.value}" in str(info.value)
    assert str(before.vendor_status) in str(info.value)
    assert after.vendor_status == before.vendor_status


async def test_other_actions_are_unsupported(sim: Simulator) -> None:
    async with _client(sim) as client:
        first = await client.create_run(request_for(sim, KEY))
        with pytest.raises(Unsupported):
            await client.perform(first.ref, RunAction.DELETE)


# -- listing and watching ----------------------------------------------------------------


async def test_list_runs_is_newest_first_and_includes_runs_started_by_others(sim: Simulator) -> None:
    async with _client(sim) as client:
        older = await client.create_run(request_for(sim, KEY))
        sim.clock.advance(10)
        external = sim.start_external_run(KEY, PIPELINE.id, "failure")
        sim.clock.advance(10)
        newer = await client.create_run(request_for(sim, KEY))
        # A run of another pipeline is not listed.
        sim.start_external_run(KEY, DEMO_PIPELINES[1].id)
        sim.clock.advance(120)
        runs = await client.list_runs(PIPELINE.id)
        two = await client.list_runs(PIPELINE.id, limit=2)
        watched = await client.watch(PIPELINE.id)
    assert [r.ref.run_id for r in runs] == [newer.ref.run_id, external, older.ref.run_id]
    assert [r.ref.extra["index"] for r in runs] == ["3", "2", "1"]
    assert runs[1].status is RunStatus.FAILED
    assert runs[1].raw["_executedBy"] == "git-webhook"
    assert all(r.ref.target == PIPELINE.id for r in runs)
    assert [r.ref.run_id for r in two] == [newer.ref.run_id, external]
    assert [r.ref.run_id for r in watched.runs] == [r.ref.run_id for r in runs]
    assert watched.last_failure == runs[1].ended_at
    lists = [r for r in sim.requests(KEY, "GET") if r.path.endswith(f"/pipelines/{PIPELINE.id}/executions")]
    query = _query(lists[0])
    assert query["$orderby"] == ["_requestTimeInMicros desc"]
    assert query["$top"] == ["20"]
    assert query["$filter"] == ["(project eq 'Demo')"]
    assert _query(lists[1])["$top"] == ["2"]


async def test_the_project_filter_applies_to_lists(sim: Simulator) -> None:
    sim.start_external_run(KEY, PIPELINE.id)
    async with _client(sim, project="QA") as client:
        assert await client.list_runs(PIPELINE.id) == []
    async with _client(sim, project=None) as client:
        assert len(await client.list_runs(PIPELINE.id)) == 1
    last = sim.requests(KEY, "GET")[-1]
    assert "$filter" not in _query(last)


# -- connection check, versions, links ---------------------------------------------------


async def test_check_connection_and_api_version(sim: Simulator) -> None:
    async with _client(sim, api_version="2019-10-17") as client:
        text = await client.check_connection()
    assert "latest API version 2019-10-17" in text
    about = sim.requests(KEY, "GET")[-1]
    assert about.path == "/vra/codestream/api/about"
    assert _query(about) == {"apiVersion": ["2019-10-17"]}
    async with _client(sim, api_version="2001-01-01") as client:
        with pytest.raises(InvalidRequest) as info:
            await client.check_connection()
    assert "2001-01-01" in str(info.value)


def test_run_url_points_at_the_code_stream_ui() -> None:
    client = CodeStream(CodeStreamConnection(base_url=BASE, refresh_token="rt-123456"))
    ref = client.ref(PIPELINE.id, "b80254a7-fcff-4918-ad88-501d08096337")
    assert client.run_url(ref) == f"{BASE}/codestream/#/executions/b80254a7-fcff-4918-ad88-501d08096337"


# -- the vendor's own spec ---------------------------------------------------------------


def _pipeline_spec(specs_dir: Path) -> Spec:
    return load_spec(specs_dir / "vmware-codestream" / "vra-pipeline.json")


def _login_spec(specs_dir: Path) -> Spec:
    return load_spec(specs_dir / "vmware-codestream" / "vra-iaas-login-subset.json")


@pytest.mark.spec
async def test_client_request_bodies_match_the_spec(sim: Simulator, specs_dir: Path) -> None:
    spec, login = _pipeline_spec(specs_dir), _login_spec(specs_dir)
    async with _client(sim) as client:
        await client.create_run(request_for(sim, KEY))
        bare = await client.create_run(request_for(sim, KEY, input={}, tags=[], comments=""))
        sim.clock.advance(30)
        await client.perform(bare.ref, RunAction.PAUSE)
        sim.clock.advance(5)
        await client.perform(bare.ref, RunAction.RESUME, reason="go on")
        await client.perform(bare.ref, RunAction.CANCEL)
    posts = sim.requests(KEY, "POST")
    kinds = {"login": 0, "execute": 0, "action": 0}
    for record in posts:
        if record.path == LOGIN_PATH:
            login.validate_request("POST", "/iaas/api/login", record.json())
            kinds["login"] += 1
        elif record.path.endswith("/executions"):
            spec.validate_request("POST", "/codestream/api/pipelines/{id}/executions", record.json())
            kinds["execute"] += 1
        else:
            spec.validate_request("POST", "/codestream/api/executions/{id}", record.json())
            kinds["action"] += 1
    assert kinds == {"login": 1, "execute": 2, "action": 3}


@pytest.mark.spec
def test_simulator_answers_match_the_spec(sim: Simulator, specs_dir: Path) -> None:
    spec, login_spec = _pipeline_spec(specs_dir), _login_spec(specs_dir)
    base = sim.base_url(KEY)
    refresh = sim.demo_connection(KEY)["refresh_token"]
    with httpx.Client(base_url=base) as http:
        bad = http.post("/iaas/api/login", json={"refreshToken": "nope-nope-nope"})
        assert bad.status_code == 400
        login_spec.validate_response("POST", "/iaas/api/login", 400, bad.json())
        login = http.post("/iaas/api/login", json={"refreshToken": refresh})
        assert login.status_code == 200
        login_spec.validate_response("POST", "/iaas/api/login", 200, login.json())
        http.headers["Authorization"] = f"Bearer {login.json()['token']}"

        about = http.get("/codestream/api/about")
        spec.validate_response("GET", "/codestream/api/about", 200, about.json())
        for status in (202, 200):
            _sim(sim).create_status = status
            created = http.post(f"/codestream/api/pipelines/{PIPELINE.id}/executions", json={})
            assert created.status_code == status
            spec.validate_response(
                "POST", "/codestream/api/pipelines/{id}/executions", status, created.json()
            )
        execution_id = created.json()["executionId"]
        sim.clock.advance(30)
        for params in ({}, {"expand": "PIPELINE_STAGE_TASK"}):
            one = http.get(f"/codestream/api/executions/{execution_id}", params=params)
            spec.validate_response("GET", "/codestream/api/executions/{id}", 200, one.json())
        acted = http.post(f"/codestream/api/executions/{execution_id}", params={"action": "pause"}, json={})
        spec.validate_response("POST", "/codestream/api/executions/{id}", 200, acted.json())
        sim.start_external_run(KEY, PIPELINE.id)
        listed = http.get(
            f"/codestream/api/pipelines/{PIPELINE.id}/executions", params={"$orderby": "index desc"}
        )
        spec.validate_response("GET", "/codestream/api/pipelines/{id}/executions", 200, listed.json())
        assert listed.json()["count"] == listed.json()["totalCount"] == 3


@pytest.mark.spec
def test_every_simulated_status_gives_a_valid_execution(sim: Simulator, specs_dir: Path) -> None:
    spec = _pipeline_spec(specs_dir)
    schema = spec.response_schema("GET", "/codestream/api/executions/{id}", 200)
    assert schema is not None
    code_stream = _sim(sim)
    seen: set[str] = set()
    for scenario in CodeStreamSim.scenarios:
        run_id = code_stream.start_external_run(PIPELINE.id, scenario)
        run = code_stream.runs[run_id]
        for offset, status in run.timeline:
            body = code_stream.execution(run, expand=True, now=run.created + offset + 0.001)
            assert body["status"] == status
            spec.validate(body, schema)
            seen.add(status)
    assert seen == set(STATUS_MAP.vendor_values)
