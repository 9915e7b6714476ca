"""Marquez: client against the simulator, over real HTTP."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr, ValidationError

from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    Unsupported,
)
from runmonitor.domain.models import Capability, RunAction
from runmonitor.domain.status import RunStatus
from runmonitor.services.marquez import (
    STATUS_MAP,
    Marquez,
    MarquezConnection,
    MarquezRunRequest,
)
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.simulator.marquez import DEMO_JOBS, DEMO_NAMESPACE, MarquezSim
from tests.helpers import distinct_statuses, follow, request_for
from tests.specs import Spec, load_spec

JOB = next(iter(DEMO_JOBS))
TOKEN = MarquezSim.auth_required_credentials()["token"]


def marquez(sim: Simulator, **overrides: Any) -> Marquez:
    values = {**sim.demo_connection("marquez"), **overrides}
    return Marquez(MarquezConnection.model_validate(values))


def msim(sim: Simulator) -> MarquezSim:
    return cast(MarquezSim, sim.sims["marquez"])


def posts(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests("marquez", "POST") if r.path.endswith("/runs")]


@pytest.fixture
def gated() -> Iterator[Simulator]:
    """A simulator whose Marquez sits behind a gateway that wants a bearer token."""
    with Simulator(seed=77, credentials={"marquez": MarquezSim.auth_required_credentials()}) as simulator:
        yield simulator


# -- status table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        ("NEW", RunStatus.PENDING),
        ("RUNNING", RunStatus.RUNNING),
        ("COMPLETED", RunStatus.SUCCEEDED),
        ("FAILED", RunStatus.FAILED),
        ("ABORTED", RunStatus.CANCELLED),
        # In the server's RunState enum but not in the spec: an OpenLineage OTHER event.
        ("OTHER", RunStatus.UNKNOWN),
        ("completed", RunStatus.SUCCEEDED),
        ("PAUSED", RunStatus.UNKNOWN),
    ],
)
def test_status_table(vendor: str, expected: RunStatus) -> None:
    mapped = STATUS_MAP.map(vendor)
    assert mapped.status is expected
    assert mapped.vendor == vendor
    if vendor == "OTHER":
        assert mapped.detail and "OTHER" in mapped.detail


def test_every_spec_state_is_in_the_table(specs_dir: Path) -> None:
    spec = load_spec(specs_dir / "marquez" / "openapi.yml")
    states = spec.document["components"]["schemas"]["IncompleteRun"]["properties"]["state"]["enum"]
    assert set(states) | {"OTHER"} == set(STATUS_MAP.vendor_values)


# -- models -----------------------------------------------------------------------------


def _field_errors(exc: ValidationError) -> set[Any]:
    return {err["loc"][0] for err in exc.errors() if err["loc"]}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"job": ""}, "job"),
        ({"job": "   "}, "job"),
        ({"job": "x" * 1025}, "job"),
        ({"job": "line\nbreak"}, "job"),
        ({"job": JOB, "run_id": "not-a-uuid"}, "run_id"),
        ({"job": JOB, "run_id": "ea9badc5-7cb2-49af-9a9f"}, "run_id"),
        ({"job": JOB, "nominal_start_time": "yesterday"}, "nominal_start_time"),
        (
            {
                "job": JOB,
                "nominal_start_time": "2024-05-01T02:00:00Z",
                "nominal_end_time": "2024-05-01T01:59:59Z",
            },
            "nominal_end_time",
        ),
        ({"job": JOB, "args": {"retries": 1}}, "args"),
        ({"job": JOB, "args": {" ": "x"}}, "args"),
    ],
)
def test_request_refuses_bad_values_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        MarquezRunRequest.model_validate(values)
    assert _field_errors(info.value) == {field}


def test_request_round_trips_and_builds_a_created_run_body() -> None:
    run_id = uuid.UUID("870492da-ecfb-4be0-91b9-9a89ddd3db90")
    request = MarquezRunRequest.model_validate(
        {
            "job": " daily_orders_etl ",
            "run_id": str(run_id),
            "nominal_start_time": "2024-05-01T04:00:00+02:00",
            "nominal_end_time": "2024-05-01T03:00:00",  # no zone: UTC
            "args": {"email": "me@example.com"},
        }
    )
    assert request.target() == "daily_orders_etl"
    assert MarquezRunRequest.model_validate(request.model_dump()) == request
    assert request.created_run_body(run_id) == {
        "id": str(run_id),
        "nominalStartTime": "2024-05-01T02:00:00.000Z",
        "nominalEndTime": "2024-05-01T03:00:00.000Z",
        "args": {"email": "me@example.com"},
    }
    assert MarquezRunRequest(job="j").created_run_body(run_id) == {"id": str(run_id)}


@pytest.mark.parametrize("good", ["default", "postgres://db:5432", "a;b=c/d.e-f_g", "x" * 1024])
def test_connection_accepts_namespaces_marquez_accepts(good: str) -> None:
    config = MarquezConnection.model_validate({"base_url": "http://localhost:5000", "namespace": good})
    assert config.namespace == good


@pytest.mark.parametrize("bad", ["", "has space", "ümlaut", "what?", "a#b", "x" * 1025])
def test_connection_refuses_namespaces_marquez_refuses(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        MarquezConnection.model_validate({"base_url": "http://localhost:5000", "namespace": bad})
    assert _field_errors(info.value) == {"namespace"}


def test_connection_defaults_and_token_handling() -> None:
    config = MarquezConnection.model_validate({"base_url": "http://localhost:5000/"})
    assert (config.base_url, config.namespace, config.token) == ("http://localhost:5000", "default", None)
    assert MarquezConnection.model_validate({"base_url": "http://x:5000", "token": "  "}).token is None
    config = MarquezConnection.model_validate(
        {"base_url": "https://gw.example.com", "namespace": "postgres://db:5432", "token": "tok-abcdef123"}
    )
    assert isinstance(config.token, SecretStr)
    assert "tok-abcdef123" not in repr(config)
    assert config.secret_values() == ["tok-abcdef123"]
    with pytest.raises(ValidationError) as info:
        MarquezConnection.model_validate({"base_url": "http://x:5000", "colour": "red"})
    assert _field_errors(info.value) == {"colour"}


def test_declared_capabilities() -> None:
    assert Marquez.capabilities == {
        Capability.LIST_RUNS,
        Capability.WATCH,
        Capability.IDEMPOTENT_CREATE,
        Capability.ACTIONS,
    }
    assert Marquez.cancel_action is RunAction.ABORT


# -- following runs -----------------------------------------------------------------------


async def test_create_and_follow_a_run_to_completion(sim: Simulator) -> None:
    sim.force("marquez", "completed")
    async with marquez(sim) as client:
        first = await client.create_run(request_for(sim, "marquez"))
        seen = await follow(client, sim, first, step=5.0)
    assert distinct_statuses(seen) == [
        ("PENDING", "NEW"),
        ("RUNNING", "RUNNING"),
        ("SUCCEEDED", "COMPLETED"),
    ]
    assert first.ref.target == JOB
    assert first.ref.extra == {"namespace": DEMO_NAMESPACE}
    assert first.created_at is not None and first.started_at is None and first.message is None
    last = seen[-1]
    assert last.started_at is not None and last.ended_at is not None
    assert first.created_at <= last.started_at <= last.ended_at
    assert last.raw["state"] == "COMPLETED" and "jobVersion" in last.raw
    # The 201 came with a Location pointing at the run.
    assert sim.requests("marquez", "POST")[0].status == 201


async def test_ended_but_still_running_is_unknown_until_marquez_knows_better(sim: Simulator) -> None:
    sim.force("marquez", "completed")
    async with marquez(sim) as client:
        first = await client.create_run(request_for(sim, "marquez"))
        sim.clock.advance(20)
        running = await client.get_status(first.ref)
        assert running.status is RunStatus.RUNNING and running.ended_at is None
        # The run ends, then a retried START event is processed late (marquez#2264).
        msim(sim).mark_stale_running(first.ref.run_id, for_seconds=30)
        stale = await client.get_status(first.ref)
        assert stale.raw["state"] == "RUNNING" and stale.raw["endedAt"]
        assert stale.status is RunStatus.UNKNOWN
        assert stale.vendor_status == "RUNNING"
        assert stale.ended_at is not None
        assert stale.detail is not None and "still marked running" in stale.detail
        assert stale.detail.startswith("ended at ")
        assert not stale.terminal
        sim.clock.advance(31)
        final = await client.get_status(first.ref)
    assert final.status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("action", "state", "status"),
    [
        (RunAction.START, "RUNNING", RunStatus.RUNNING),
        (RunAction.COMPLETE, "COMPLETED", RunStatus.SUCCEEDED),
        (RunAction.FAIL, "FAILED", RunStatus.FAILED),
        (RunAction.ABORT, "ABORTED", RunStatus.CANCELLED),
    ],
)
async def test_transitions(sim: Simulator, action: RunAction, state: str, status: RunStatus) -> None:
    sim.force("marquez", "long")
    async with marquez(sim) as client:
        first = await client.create_run(request_for(sim, "marquez"))
        assert first.status is RunStatus.PENDING
        after = await client.perform(first.ref, action)
        assert (after.status, after.vendor_status) == (status, state)
        assert after.ref == first.ref
        # The mark sticks: the simulated producer no longer moves the run.
        sim.clock.advance(600)
        later = await client.get_status(first.ref)
    assert (later.status, later.vendor_status) == (status, state)
    record = sim.requests("marquez", "POST")[-1]
    assert record.path == f"/marquez/api/v1/jobs/runs/{first.ref.run_id}/{action.value}"
    (at,) = parse_qs(record.query)["at"]
    assert at.endswith("Z") and datetime.fromisoformat(at.replace("Z", "+00:00")).tzinfo is not None


async def test_a_completed_run_can_be_started_again_and_shows_unknown(sim: Simulator) -> None:
    # Marquez does not validate transitions: START after COMPLETE keeps endedAt.
    async with marquez(sim) as client:
        first = await client.create_run(request_for(sim, "marquez"))
        done = await client.perform(first.ref, RunAction.COMPLETE)
        assert done.status is RunStatus.SUCCEEDED
        sim.clock.advance(5)
        again = await client.perform(first.ref, RunAction.START)
    assert again.status is RunStatus.UNKNOWN and again.vendor_status == "RUNNING"


async def test_other_actions_are_unsupported(sim: Simulator) -> None:
    async with marquez(sim) as client:
        first = await client.create_run(request_for(sim, "marquez"))
        for action in (RunAction.CANCEL, RunAction.PAUSE, RunAction.DELETE):
            with pytest.raises(Unsupported):
                await client.perform(first.ref, action)
    assert len(sim.requests("marquez", "POST")) == 1


async def test_unknown_run_is_not_found(sim: Simulator) -> None:
    async with marquez(sim) as client:
        ref = client.ref(JOB, str(uuid.uuid4()), namespace=DEMO_NAMESPACE)
        with pytest.raises(NotFound) as info:
            await client.get_status(ref)
    assert ref.run_id in str(info.value)


async def test_a_restart_can_poll_from_the_stored_ref_alone(sim: Simulator) -> None:
    async with marquez(sim) as client:
        first = await client.create_run(request_for(sim, "marquez"))
    stored = first.ref.model_dump_json()
    async with marquez(sim, namespace="default") as other:
        again = await other.get_status(type(first.ref).model_validate_json(stored))
    assert again.ref == first.ref and again.ref.extra["namespace"] == DEMO_NAMESPACE


# -- creating: ids and retries -------------------------------------------------------------


async def test_client_chosen_run_id_round_trips(sim: Simulator) -> None:
    chosen = uuid.uuid4()
    async with marquez(sim) as client:
        mine = await client.create_run(request_for(sim, "marquez", run_id=str(chosen)))
        generated = await client.create_run(request_for(sim, "marquez"))
    assert mine.ref.run_id == str(chosen)
    bodies = [r.json() for r in posts(sim)]
    assert bodies[0]["id"] == str(chosen)
    # Without one, the client still sends an id (so a retry is safe) and it is the run's id.
    assert uuid.UUID(bodies[1]["id"]) and bodies[1]["id"] == generated.ref.run_id
    assert sim.creates("marquez") == 2


async def test_reused_run_id_is_an_invalid_request(sim: Simulator) -> None:
    chosen = str(uuid.uuid4())
    async with marquez(sim) as client:
        await client.create_run(request_for(sim, "marquez", run_id=chosen))
        with pytest.raises(InvalidRequest) as info:
            await client.create_run(request_for(sim, "marquez", run_id=chosen))
    assert chosen in str(info.value) and "already used" in str(info.value)
    assert info.value.may_have_reached_service is False
    assert sim.creates("marquez") == 1
    assert len(posts(sim)) == 2  # not retried


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(FaultKind.DROP, after_processing=True), id="dropped-answer"),
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=502, after_processing=True), id="502-after"),
        pytest.param(Fault(FaultKind.TRUNCATED, after_processing=True), id="truncated-answer"),
    ],
)
async def test_retry_after_a_lost_answer_does_not_create_twice(sim: Simulator, fault: Fault) -> None:
    sim.faults("marquez").next(dataclasses.replace(fault, method="POST"))
    async with marquez(sim) as client:
        snapshot = await client.create_run(request_for(sim, "marquez"))
    assert sim.creates("marquez") == 1
    attempts = posts(sim)
    assert len(attempts) == 2
    assert attempts[0].json()["id"] == attempts[1].json()["id"] == snapshot.ref.run_id
    assert attempts[1].status == 400  # "already exists": the first attempt worked
    read_back = sim.requests("marquez", "GET")[-1]
    assert read_back.path == f"/marquez/api/v1/jobs/runs/{snapshot.ref.run_id}"
    assert snapshot.status is RunStatus.PENDING and snapshot.ref.target == JOB


async def test_retries_stop_after_three_attempts(sim: Simulator) -> None:
    sim.faults("marquez").next(Fault(FaultKind.HTTP_ERROR, status=503, method="POST"), count=3)
    async with marquez(sim) as client:
        with pytest.raises(ServerError) as info:
            await client.create_run(request_for(sim, "marquez"))
    assert info.value.may_have_reached_service is True
    assert len(posts(sim)) == 3
    assert len({r.json()["id"] for r in posts(sim)}) == 1
    assert sim.creates("marquez") == 0


async def test_rate_limit_on_create_is_not_retried(sim: Simulator) -> None:
    sim.faults("marquez").next(Fault(FaultKind.RATE_LIMIT, retry_after="5", method="POST"))
    async with marquez(sim) as client:
        with pytest.raises(RateLimited) as info:
            await client.create_run(request_for(sim, "marquez"))
    assert info.value.retry_after == 5.0
    assert len(posts(sim)) == 1


# -- namespace and job ------------------------------------------------------------------------


async def test_missing_job_is_not_found_then_ensure_job_makes_create_work(sim: Simulator) -> None:
    async with marquez(sim) as client:
        request = MarquezRunRequest(job="brand_new_job")
        with pytest.raises(NotFound) as info:
            await client.create_run(request)
        assert "brand_new_job" in str(info.value) and "create" in str(info.value)
        assert len(posts(sim)) == 1  # a 404 proves nothing was created: no retry
        await client.ensure_job("brand_new_job", description="Made in a test")
        created = await client.create_run(request)
        job = (await client.http.request("GET", f"namespaces/{DEMO_NAMESPACE}/jobs/brand_new_job")).body
    assert created.ref.target == "brand_new_job"
    assert job["type"] == "BATCH" and job["description"] == "Made in a test"
    assert job["latestRun"]["id"] == created.ref.run_id
    assert sim.creates("marquez") == 1


async def test_missing_namespace_is_not_found_and_ensure_job_creates_both(sim: Simulator) -> None:
    namespace = "postgres://warehouse:5432"
    async with marquez(sim, namespace=namespace) as client:
        with pytest.raises(NotFound) as info:
            await client.check_connection()
        assert "does not exist" in str(info.value) and namespace in str(info.value)
        with pytest.raises(NotFound):
            await client.create_run(MarquezRunRequest(job="load orders"))
        await client.ensure_job("load orders")
        assert namespace in await client.check_connection()
        first = await client.create_run(MarquezRunRequest(job="load orders"))
        listed = await client.list_runs("load orders")
        # A second ensure_job finds both and changes nothing.
        puts_before = len(sim.requests("marquez", "PUT"))
        await client.ensure_job("load orders")
    assert [s.ref.run_id for s in listed] == [first.ref.run_id]
    assert puts_before == 2 and len(sim.requests("marquez", "PUT")) == 2
    # Namespace and job names travel as single, percent-encoded path segments.
    put_paths = [r.path for r in sim.requests("marquez", "PUT")]
    assert put_paths == [
        "/marquez/api/v1/namespaces/postgres%3A%2F%2Fwarehouse%3A5432",
        "/marquez/api/v1/namespaces/postgres%3A%2F%2Fwarehouse%3A5432/jobs/load%20orders",
    ]
    ns_body = sim.requests("marquez", "PUT")[0].json()
    assert ns_body["ownerName"]


async def test_ensure_job_validates_the_name(sim: Simulator) -> None:
    async with marquez(sim) as client:
        with pytest.raises(ValidationError):
            await client.ensure_job("  ")
    assert sim.requests("marquez") == []


async def test_check_connection_names_the_namespace(sim: Simulator) -> None:
    async with marquez(sim) as client:
        text = await client.check_connection()
    assert DEMO_NAMESPACE in text and "reachable" in text


async def test_base_url_may_already_end_in_api_v1(sim: Simulator) -> None:
    base = sim.demo_connection("marquez")["base_url"] + "/api/v1"
    async with marquez(sim, base_url=base) as client:
        assert "reachable" in await client.check_connection()
    assert sim.requests("marquez")[0].path == f"/marquez/api/v1/namespaces/{DEMO_NAMESPACE}"


def test_run_url_is_not_guessed(sim: Simulator) -> None:
    client = marquez(sim)
    assert client.run_url(client.ref(JOB, str(uuid.uuid4()), namespace=DEMO_NAMESPACE)) is None


# -- listing ---------------------------------------------------------------------------------


async def test_list_runs_newest_first_including_runs_started_by_others(sim: Simulator) -> None:
    sim.force("marquez", "completed", "failed")
    async with marquez(sim) as client:
        oldest = await client.create_run(request_for(sim, "marquez"))
        sim.clock.advance(10)
        middle = await client.create_run(request_for(sim, "marquez"))
        sim.clock.advance(10)
        external = sim.start_external_run("marquez", JOB, "aborted")
        sim.clock.advance(1)  # the external run is still NEW: no startedAt
        runs = await client.list_runs(JOB, limit=10)
        sim.clock.advance(600)
        watched = await client.watch(JOB)
    assert [s.ref.run_id for s in runs] == [external, middle.ref.run_id, oldest.ref.run_id]
    assert all(s.ref.target == JOB and s.ref.extra == {"namespace": DEMO_NAMESPACE} for s in runs)
    assert runs[0].status is RunStatus.PENDING
    record = sim.requests("marquez", "GET")[0]
    assert parse_qs(record.query) == {"limit": ["10"], "offset": ["0"]}
    assert [s.vendor_status for s in watched.runs] == ["ABORTED", "FAILED", "COMPLETED"]
    _aborted, failed, completed = watched.runs
    assert completed.ended_at is not None and watched.last_success == completed.ended_at
    assert failed.ended_at is not None and watched.last_failure == failed.ended_at


async def test_list_runs_of_a_missing_job_is_not_found(sim: Simulator) -> None:
    async with marquez(sim) as client:
        with pytest.raises(NotFound) as info:
            await client.list_runs("nope")
    assert "create" in str(info.value)


def test_wrong_shapes_are_bad_responses(sim: Simulator) -> None:
    client = marquez(sim)
    for body in (None, [], {"state": "NEW"}, {"id": ""}, {"id": 42}):
        with pytest.raises(BadResponse):
            client._snapshot(body, job=JOB)
    # Nulls (as a real server may send them) are simply absent values.
    snapshot = client._snapshot(
        {
            "id": "abc",
            "state": "RUNNING",
            "endedAt": None,
            "startedAt": None,
            "args": {"password": "pw-1234"},
        },
        job=JOB,
    )
    assert snapshot.status is RunStatus.RUNNING and snapshot.ended_at is None
    assert snapshot.raw["args"]["password"] != "pw-1234"


# -- gateway token ---------------------------------------------------------------------------


async def test_no_authorization_header_without_a_token(sim: Simulator) -> None:
    async with marquez(sim) as client:
        await client.check_connection()
    assert sim.requests("marquez")[0].header("authorization") is None


async def test_bearer_token_is_sent_when_configured(gated: Simulator) -> None:
    async with marquez(gated) as client:
        first = await client.create_run(request_for(gated, "marquez"))
        await client.get_status(first.ref)
    assert all(r.header("authorization") == f"Bearer {TOKEN}" for r in gated.requests("marquez"))


async def test_wrong_or_missing_token_is_sign_in_needed(gated: Simulator) -> None:
    async with marquez(gated, token="wrong-token-123456") as client:
        with pytest.raises(AuthFailed) as info:
            await client.create_run(request_for(gated, "marquez"))
    assert "rejected the bearer token" in str(info.value)
    assert "wrong-token-123456" not in str(info.value)
    async with marquez(gated, token=None) as client:
        with pytest.raises(AuthFailed) as info:
            await client.check_connection()
    assert "wants a bearer token" in str(info.value)
    assert gated.creates("marquez") == 0
    assert len(gated.requests("marquez", "POST")) == 1  # a 401 is not retried


# -- the vendor's spec -----------------------------------------------------------------------


def _spec(specs_dir: Path) -> Spec:
    return load_spec(specs_dir / "marquez" / "openapi.yml")


def _run_ok(spec: Spec, body: Any) -> None:
    # Run is an anyOf with a permissive branch: check the IncompleteRun part explicitly too.
    spec.validate(body, {"$ref": "#/components/schemas/Run"})
    spec.validate(body, {"$ref": "#/components/schemas/IncompleteRun"})
    assert body["state"] in {"NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}


@pytest.mark.spec
async def test_client_request_bodies_match_the_spec(sim: Simulator, specs_dir: Path) -> None:
    spec = _spec(specs_dir)
    async with marquez(sim, namespace="fresh") as client:
        await client.ensure_job("new_job", description="d")
        await client.create_run(
            request_for(
                sim,
                "marquez",
                job="new_job",
                nominal_start_time="2024-05-01T02:00:00Z",
                nominal_end_time="2024-05-01T03:00:00Z",
                args={"retries": "1"},
            )
        )
        await client.create_run(request_for(sim, "marquez", job="new_job"))
    put_ns, put_job = sim.requests("marquez", "PUT")
    spec.validate_request("PUT", "/namespaces/{namespace}", put_ns.json())
    spec.validate_request("PUT", "/namespaces/{namespace}/jobs/{job}", put_job.json())
    for record in posts(sim):
        spec.validate_request("POST", "/namespaces/{namespace}/jobs/{job}/runs", record.json())
        assert record.header("content-type") == "application/json"


@pytest.mark.spec
async def test_simulator_responses_match_the_spec(sim: Simulator, specs_dir: Path) -> None:
    spec = _spec(specs_dir)
    sim.force("marquez", "completed")
    async with marquez(sim) as client:
        http = client.http
        created = await http.request(
            "POST",
            f"namespaces/{DEMO_NAMESPACE}/jobs/{JOB}/runs",
            json_body={"nominalStartTime": "2024-05-01T02:00:00Z", "args": {"a": "b"}},
            ok=(201,),
        )
        spec.validate_response("POST", "/namespaces/{namespace}/jobs/{job}/runs", 201, created.body)
        _run_ok(spec, created.body)
        run_id = created.body["id"]
        assert created.headers["location"].endswith(f"/marquez/api/v1/jobs/runs/{run_id}")
        for advance in (0, 30, 120):  # NEW, RUNNING, COMPLETED
            sim.clock.advance(advance)
            got = await http.request("GET", f"jobs/runs/{run_id}")
            spec.validate_response("GET", "/jobs/runs/{id}", 200, got.body)
            _run_ok(spec, got.body)
        assert got.body["state"] == "COMPLETED" and isinstance(got.body["durationMs"], int)
        for name in ("start", "fail", "abort", "complete"):
            marked = await http.request(
                "POST", f"jobs/runs/{run_id}/{name}", params={"at": "2024-05-01T03:00:00Z"}
            )
            spec.validate_response("POST", f"/jobs/runs/{{id}}/{name}", 200, marked.body)
            _run_ok(spec, marked.body)
        sim.start_external_run("marquez", JOB)
        listed = await http.request("GET", f"namespaces/{DEMO_NAMESPACE}/jobs/{JOB}/runs")
        spec.validate_response("GET", "/namespaces/{namespace}/jobs/{job}/runs", 200, listed.body)
        assert listed.body["totalCount"] == 2
        for body in listed.body["runs"]:
            _run_ok(spec, body)
        namespace = await http.request("GET", f"namespaces/{DEMO_NAMESPACE}")
        spec.validate_response("GET", "/namespaces/{namespace}", 200, namespace.body)
        namespaces = await http.request("GET", "namespaces")
        spec.validate_response("GET", "/namespaces", 200, namespaces.body)
        assert {"default", DEMO_NAMESPACE} <= {ns["name"] for ns in namespaces.body["namespaces"]}
        job = await http.request("GET", f"namespaces/{DEMO_NAMESPACE}/jobs/{JOB}")
        spec.validate_response("GET", "/namespaces/{namespace}/jobs/{job}", 200, job.body)
        _run_ok(spec, job.body["latestRun"])
        jobs = await http.request("GET", f"namespaces/{DEMO_NAMESPACE}/jobs")
        spec.validate_response("GET", "/namespaces/{namespace}/jobs", 200, jobs.body)
        put_ns = await http.request("PUT", "namespaces/other", json_body={"ownerName": "me"})
        spec.validate_response("PUT", "/namespaces/{namespace}", 200, put_ns.body)
        put_job = await http.request(
            "PUT", "namespaces/other/jobs/j", json_body={"type": "STREAM", "inputs": [], "outputs": []}
        )
        spec.validate_response("PUT", "/namespaces/{namespace}/jobs/{job}", 200, put_job.body)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        (
            "GET",
            "jobs/runs/8c1f7a52-1b0e-4a43-9a0c-6d1f2b3c4d5e",
            None,
            404,
            "Run '8c1f7a52-1b0e-4a43-9a0c-6d1f2b3c4d5e' not found.",
        ),
        ("POST", f"namespaces/{DEMO_NAMESPACE}/jobs/missing/runs", {}, 404, "Job 'missing' not found."),
        ("GET", "namespaces/nowhere", None, 404, "Namespace 'nowhere' not found."),
        ("PUT", "namespaces/bad%20name", {"ownerName": "me"}, 400, None),
        ("PUT", "namespaces/x", {}, 422, None),
        ("PUT", "namespaces/default/jobs/j", {"type": "CRON", "inputs": [], "outputs": []}, 422, None),
        (
            "POST",
            f"namespaces/{DEMO_NAMESPACE}/jobs/{JOB}/runs",
            {"id": "nope"},
            400,
            "Unable to process JSON",
        ),
    ],
)
async def test_simulator_errors_are_dropwizard_shaped(
    sim: Simulator, method: str, path: str, body: Any, status: int, message: str | None
) -> None:
    async with marquez(sim) as client:
        answer = await client.http.client.request(method, path, json=body)
    payload = answer.json()
    assert answer.status_code == status
    if status == 422:
        assert isinstance(payload["errors"], list) and payload["errors"]
    else:
        assert payload["code"] == status
        if message is not None:
            assert payload["message"] == message


async def test_dropwizard_validation_errors_become_invalid_request(sim: Simulator) -> None:
    async with marquez(sim) as client:
        with pytest.raises(InvalidRequest) as info:
            await client.http.request("PUT", "namespaces/x", json_body={})
    assert "ownerName" in str(info.value)
