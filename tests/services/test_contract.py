"""Contract tests, parametrised over the service registry.

Every service (and so a sixth one, the day it is added) must: declare its models and
status table, have a simulator with working demo values, follow every simulated
scenario to the right terminal status over real HTTP, and turn every kind of fault
into a clear typed error without duplicating a create.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    ConnectionFailed,
    QuotaReached,
    RateLimited,
    ServerError,
    ServiceError,
    TimedOut,
)
from runmonitor.domain.models import Capability
from runmonitor.domain.status import RunStatus
from runmonitor.services import get, registry
from runmonitor.services.base import CreateRequest, ServiceConfig
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.simulator.engine import ServiceSim
from runmonitor.simulator.server import discover_sims
from tests.helpers import client_for, follow, request_for

SERVICES = list(registry())
SIMS = discover_sims()


def test_the_simulator_knows_the_same_services_as_the_clients() -> None:
    """The simulator finds its services itself (it never imports the clients): both lists agree."""
    assert sorted(SIMS) == sorted(SERVICES)


@pytest.mark.parametrize("key", SERVICES)
def test_the_simulator_declares_the_vendor_behaviour_it_simulates(key: str) -> None:
    sim_cls = SIMS[key]
    # Tokens that can expire are expired by the simulator that declares them, and only there.
    assert sim_cls.expiring_tokens == (sim_cls.expire_tokens is not ServiceSim.expire_tokens)
    assert sim_cls.supports(FaultKind.EXPIRED_TOKEN) is sim_cls.expiring_tokens
    assert sim_cls.supports(FaultKind.QUOTA) is sim_cls.queue_quota
    if sim_cls.queue_quota:
        assert sim_cls.quota_response is not ServiceSim.quota_response, (
            "a quota answers in the vendor's words"
        )
    others = set(FaultKind) - {FaultKind.QUOTA, FaultKind.EXPIRED_TOKEN}
    assert all(sim_cls.supports(kind) for kind in others)


def test_some_simulator_has_each_optional_behaviour() -> None:
    """Else a fault storm would inject no QUOTA or EXPIRED_TOKEN fault at all."""
    assert any(SIMS[key].queue_quota for key in SERVICES)
    assert any(SIMS[key].expiring_tokens for key in SERVICES)


@pytest.mark.parametrize("key", SERVICES)
def test_demo_requests_spread_over_targets_are_valid_and_distinct(key: str) -> None:
    with Simulator(seed=3) as sim:
        demo = sim.demo_request(key)
    variants = SIMS[key].spread_over_demo_targets(demo)
    assert variants and variants[0].keys() == demo.keys()
    requests = [get(key).request_model.model_validate(v) for v in variants]
    assert len({r.target() for r in requests}) == len(requests)


def test_all_five_services_are_registered() -> None:
    assert SERVICES[:5] == ["cognite", "marquez", "invision", "connhex", "codestream"]


@pytest.mark.parametrize("key", SERVICES)
def test_service_declares_its_data(key: str) -> None:
    cls = get(key)
    assert cls.key == key
    assert cls.display_name and cls.vendor and cls.summary and cls.target_label
    assert issubclass(cls.config_model, ServiceConfig)
    assert issubclass(cls.request_model, CreateRequest)
    assert list(cls.status_map.vendor_values), "a status table must name the vendor's values"
    # Every field a form will show has a title and a description.
    for model in (cls.config_model, cls.request_model):
        for name, info in model.model_fields.items():
            assert info.title, f"{model.__name__}.{name} has no title"
            assert info.description, f"{model.__name__}.{name} has no description"
    if cls.cancel_action is not None:
        assert cls.cancel_action in cls.actions


@pytest.mark.parametrize("key", SERVICES)
def test_unknown_vendor_status_maps_to_unknown(key: str) -> None:
    mapped = get(key).status_map.map("SOMETHING_NEW_FROM_THE_VENDOR")
    assert mapped.status is RunStatus.UNKNOWN
    assert mapped.vendor == "SOMETHING_NEW_FROM_THE_VENDOR"
    assert get(key).status_map.map(None).status is RunStatus.UNKNOWN
    assert get(key).status_map.map(42).status is RunStatus.UNKNOWN


@pytest.mark.parametrize("key", SERVICES)
def test_simulator_terminal_statuses_agree_with_the_status_table(key: str) -> None:
    table = get(key).status_map
    sim_cls = SIMS[key]
    for scenario, steps in sim_cls.scenarios.items():
        for _, vendor in steps:
            assert table.map(vendor).status is not RunStatus.UNKNOWN, (
                f"{key} scenario {scenario} uses {vendor!r}, which the client does not know"
            )
        final = steps[-1][1]
        assert final in sim_cls.terminal, f"{key} scenario {scenario} never ends"
        assert table.map(final).status.terminal


@pytest.mark.parametrize("key", SERVICES)
def test_demo_values_validate(sim: Simulator, key: str) -> None:
    cls = get(key)
    config = cls.config_model.model_validate(sim.demo_connection(key))
    request = cls.request_model.model_validate(sim.demo_request(key))
    assert request.target()
    # Secrets never show in repr or in a plain dump.
    for secret in config.secret_values():
        assert secret not in repr(config)
        assert secret not in str(config.model_dump())


@pytest.mark.parametrize("key", SERVICES)
def test_bad_base_url_is_refused_naming_the_field(sim: Simulator, key: str) -> None:
    cls = get(key)
    values = sim.demo_connection(key)
    for bad in ("ftp://example.com", "not a url", "https://", "https://user:pw@example.com/x"):
        with pytest.raises(ValidationError) as info:
            cls.config_model.model_validate({**values, "base_url": bad})
        assert any(err["loc"] == ("base_url",) for err in info.value.errors()), bad


@pytest.mark.parametrize("key", SERVICES)
def test_request_model_refuses_unknown_fields(sim: Simulator, key: str) -> None:
    cls = get(key)
    with pytest.raises(ValidationError) as info:
        cls.request_model.model_validate({**sim.demo_request(key), "no_such_field": 1})
    assert any(err["loc"] == ("no_such_field",) for err in info.value.errors())


def _scenario_cases() -> list[Any]:
    return [pytest.param(key, name, id=f"{key}-{name}") for key in SERVICES for name in SIMS[key].scenarios]


@pytest.mark.parametrize(("key", "scenario"), _scenario_cases())
async def test_every_scenario_is_followed_to_its_terminal_status(
    sim: Simulator, key: str, scenario: str
) -> None:
    cls = get(key)
    sim.force(key, scenario)
    async with client_for(sim, key) as client:
        first = await client.create_run(request_for(sim, key))
        assert first.ref.service == key
        assert first.ref.run_id
        seen = await follow(client, sim, first)
    expected_final = cls.status_map.map(SIMS[key].scenarios[scenario][-1][1]).status
    assert seen[-1].status is expected_final
    assert seen[-1].vendor_status is not None
    for snapshot in seen:
        assert snapshot.status is not RunStatus.UNKNOWN, snapshot
        assert snapshot.raw is not None
    # Nothing after terminal: statuses seen before the end are never terminal.
    assert not any(s.terminal for s in seen[:-1])
    assert sim.creates(key) == 1


# -- faults ---------------------------------------------------------------------------


async def _warm(client: Any) -> None:
    """One successful call first, so token-based clients hold a token before the fault."""
    await client.check_connection()


@pytest.mark.parametrize("key", SERVICES)
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=500), ServerError, id="500"),
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=502), ServerError, id="502"),
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=503, retry_after="3"), ServerError, id="503"),
        pytest.param(Fault(FaultKind.RATE_LIMIT, retry_after="7"), RateLimited, id="429-retry-after"),
        pytest.param(Fault(FaultKind.RATE_LIMIT), RateLimited, id="429-bare"),
        pytest.param(Fault(FaultKind.TIMEOUT, seconds=3.0), TimedOut, id="timeout"),
        pytest.param(Fault(FaultKind.DROP), ConnectionFailed, id="drop"),
        pytest.param(Fault(FaultKind.NON_JSON), BadResponse, id="non-json"),
        pytest.param(Fault(FaultKind.HTML_ERROR, status=502), ServerError, id="html-502"),
        pytest.param(Fault(FaultKind.TRUNCATED), ConnectionFailed, id="truncated"),
        pytest.param(Fault(FaultKind.HUGE), BadResponse, id="huge"),
    ],
)
async def test_fault_while_following_gives_a_typed_error_then_recovers(
    sim: Simulator, key: str, fault: Fault, error: type[ServiceError]
) -> None:
    async with client_for(sim, key, timeout_seconds=1.0) as client:
        await _warm(client)
        first = await client.create_run(request_for(sim, key))
        sim.faults(key).next(fault)
        with pytest.raises(error) as info:
            await client.get_status(first.ref)
        assert info.value.service == key
        assert str(info.value)
        if fault.kind is FaultKind.RATE_LIMIT:
            expected = float(fault.retry_after) if fault.retry_after else None
            assert info.value.retry_after == expected  # type: ignore[attr-defined]
        if fault.kind is FaultKind.HTTP_ERROR and fault.retry_after:
            assert info.value.retry_after == 3.0  # type: ignore[attr-defined]
        # The next poll works again and the run is the same one.
        again = await client.get_status(first.ref)
        assert again.ref.run_id == first.ref.run_id
    assert sim.creates(key) == 1


@pytest.mark.parametrize("key", SERVICES)
async def test_latency_below_the_timeout_is_just_slow(sim: Simulator, key: str) -> None:
    async with client_for(sim, key, timeout_seconds=5.0) as client:
        await _warm(client)
        first = await client.create_run(request_for(sim, key))
        sim.faults(key).next(Fault(FaultKind.LATENCY, seconds=0.3))
        again = await client.get_status(first.ref)
    assert again.ref.run_id == first.ref.run_id


@pytest.mark.parametrize("key", SERVICES)
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=503), id="503-before"),
        pytest.param(Fault(FaultKind.RATE_LIMIT, retry_after="1"), id="429-before"),
        pytest.param(Fault(FaultKind.QUOTA, retry_after="1"), id="quota-before"),
        pytest.param(Fault(FaultKind.HTTP_ERROR, status=500, after_processing=True), id="500-after"),
        pytest.param(Fault(FaultKind.DROP, after_processing=True), id="drop-after"),
        pytest.param(Fault(FaultKind.DROP), id="drop-before"),
    ],
)
async def test_create_is_never_duplicated(sim: Simulator, key: str, fault: Fault) -> None:
    cls = get(key)
    idempotent = Capability.IDEMPOTENT_CREATE in cls.capabilities
    async with client_for(sim, key, timeout_seconds=2.0) as client:
        await _warm(client)
        sim.faults(key).next(fault)
        try:
            snapshot = await client.create_run(request_for(sim, key))
        except ServiceError as exc:
            assert not idempotent or isinstance(exc, RateLimited), (
                f"{key} takes a client-chosen id, so it should have retried safely: {exc!r}"
            )
            if fault.kind is FaultKind.QUOTA and SIMS[key].queue_quota:
                assert isinstance(exc, QuotaReached)
            elif fault.kind is FaultKind.QUOTA:  # a plain 429: no quota the client knows of
                assert not isinstance(exc, QuotaReached)
            if fault.kind in (FaultKind.RATE_LIMIT, FaultKind.QUOTA):
                assert isinstance(exc, RateLimited)
                assert exc.may_have_reached_service is False
            if fault.after_processing:
                assert exc.may_have_reached_service is True
            created = 1 if fault.after_processing else 0
        else:
            assert idempotent, f"{key} cannot have retried this create safely"
            assert snapshot.ref.run_id
            created = 1
    assert sim.creates(key) == created


@pytest.mark.parametrize("key", SERVICES)
async def test_wrong_credentials_mean_sign_in_needed(key: str) -> None:
    cls = get(key)
    with Simulator(seed=5, credentials={key: SIMS[key].auth_required_credentials()}) as sim:
        values = sim.demo_connection(key)
        secret_fields = cls.config_model.secret_field_names()
        present = [name for name in secret_fields if values.get(name)]
        assert present, f"{key}: the demo connection with auth required has no secret"
        wrong = {**values, **{name: "definitely-wrong-secret" for name in present}}
        async with cls(cls.config_model.model_validate(wrong)) as client:
            with pytest.raises(AuthFailed) as info:
                await client.create_run(request_for(sim, key))
        assert "definitely-wrong-secret" not in str(info.value)
        assert sim.creates(key) == 0


@pytest.mark.parametrize("key", SERVICES)
async def test_unreachable_service_is_a_connection_error(key: str) -> None:
    with Simulator(seed=6) as sim:
        values = sim.demo_connection(key)
        request_values = sim.demo_request(key)
    # The simulator is stopped now: nothing listens on that port any more.
    cls = get(key)
    async with cls(cls.config_model.model_validate({**values, "timeout_seconds": 2.0})) as client:
        with pytest.raises((ConnectionFailed, TimedOut)) as info:
            await client.create_run(cls.request_model.model_validate(request_values))
    assert info.value.may_have_reached_service is False


@pytest.mark.parametrize("key", SERVICES)
async def test_secrets_are_not_in_error_messages_or_reprs(sim: Simulator, key: str) -> None:
    cls = get(key)
    config = cls.config_model.model_validate(sim.demo_connection(key))
    async with cls(config) as client:
        assert all(s not in repr(client) for s in config.secret_values())
        assert all(s not in repr(client.http.client.auth) for s in config.secret_values())
    for name in cls.config_model.secret_field_names():
        assert cls.config_model.model_fields[name].annotation in (SecretStr, SecretStr | None)
