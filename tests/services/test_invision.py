"""Profitbase InVision Data Flows: client against the simulator, over real HTTP."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runmonitor.domain.errors import AuthFailed, NotFound, ServerError, Unsupported
from runmonitor.domain.models import RunAction
from runmonitor.domain.status import RunStatus
from runmonitor.services.invision import STATUS_MAP, InVision, InVisionConnection, InVisionStartRequest
from runmonitor.simulator import Simulator
from tests.helpers import client_for, distinct_statuses, follow, request_for


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        ("Pending", RunStatus.PENDING),
        ("Running", RunStatus.RUNNING),
        ("Succeeded", RunStatus.SUCCEEDED),
        ("Failed", RunStatus.FAILED),
        # The service's casing is documented as above; be tolerant of other casings.
        ("succeeded", RunStatus.SUCCEEDED),
        ("Cancelled", RunStatus.UNKNOWN),
        ("", RunStatus.UNKNOWN),
    ],
)
def test_status_table(vendor: str, expected: RunStatus) -> None:
    mapped = STATUS_MAP.map(vendor)
    assert mapped.status is expected
    assert mapped.vendor == vendor


@pytest.mark.parametrize("bad", ["", "not-a-guid", "2b081248-4963-43b3-ba06", "../../admin"])
def test_data_flow_id_must_be_a_guid(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        InVisionStartRequest.model_validate({"data_flow_id": bad})
    assert info.value.errors()[0]["loc"] == ("data_flow_id",)


def test_connection_needs_a_key_and_hides_it() -> None:
    with pytest.raises(ValidationError) as info:
        InVisionConnection.model_validate({"base_url": "https://example.com/invision", "api_key": ""})
    assert info.value.errors()[0]["loc"] == ("api_key",)
    config = InVisionConnection.model_validate(
        {"base_url": "https://example.com/invision/", "api_key": "k-123456"}
    )
    assert config.base_url == "https://example.com/invision"
    assert "k-123456" not in repr(config)


async def test_start_and_follow_a_flow_to_success(sim: Simulator) -> None:
    sim.force("invision", "success")
    async with client_for(sim, "invision") as client:
        first = await client.create_run(request_for(sim, "invision"))
        seen = await follow(client, sim, first, step=2.0)
    assert distinct_statuses(seen) == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("SUCCEEDED", "Succeeded"),
    ]
    assert first.raw == {"runId": first.ref.run_id, "status": "Pending"}


async def test_the_key_travels_in_the_header_never_in_the_url(sim: Simulator) -> None:
    async with client_for(sim, "invision") as client:
        first = await client.create_run(request_for(sim, "invision"))
        await client.get_status(first.ref)
    key = sim.demo_connection("invision")["api_key"]
    records = sim.requests("invision")
    assert len(records) == 2
    for record in records:
        assert key not in record.path and key not in record.query
        assert "api_key" not in record.query
        assert record.header("x-api-key") == key
    # Never await=true from the app: a flow can run for hours.
    assert "await" not in records[0].query


async def test_wrong_key_is_sign_in_needed_and_starts_nothing(sim: Simulator) -> None:
    async with client_for(sim, "invision", api_key="wrong-key-000") as client:
        with pytest.raises(AuthFailed):
            await client.create_run(request_for(sim, "invision"))
    assert sim.creates("invision") == 0


async def test_unknown_flow_is_the_documented_500(sim: Simulator) -> None:
    request = InVisionStartRequest(data_flow_id="00000000-0000-0000-0000-00000000beef")  # type: ignore[arg-type]
    async with client_for(sim, "invision") as client:
        with pytest.raises(ServerError) as info:
            await client.create_run(request)
    assert info.value.status_code == 500
    assert "not found" in str(info.value).lower()


async def test_unknown_run_is_not_found(sim: Simulator) -> None:
    async with client_for(sim, "invision") as client:
        first = await client.create_run(request_for(sim, "invision"))
        ref = first.ref.model_copy(update={"run_id": "no-such-run"})
        with pytest.raises(NotFound):
            await client.get_status(ref)


async def test_invision_has_no_list_and_no_cancel(sim: Simulator) -> None:
    async with client_for(sim, "invision") as client:
        assert isinstance(client, InVision)
        first = await client.create_run(request_for(sim, "invision"))
        with pytest.raises(Unsupported):
            await client.list_runs(first.ref.target)
        with pytest.raises(Unsupported):
            await client.watch(first.ref.target)
        with pytest.raises(Unsupported):
            await client.perform(first.ref, RunAction.CANCEL)
    assert InVision.cancel_action is None


async def test_check_connection_reports_a_rejected_key(sim: Simulator) -> None:
    async with client_for(sim, "invision") as client:
        assert "reachable" in await client.check_connection()
    async with client_for(sim, "invision", api_key="wrong-key-000") as client:
        with pytest.raises(AuthFailed):
            await client.check_connection()
