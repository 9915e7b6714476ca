"""The simulator's own machinery: clock, timelines, fault plans and the control API."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from runmonitor.simulator import Fault, FaultKind, SimClock, Simulator
from runmonitor.simulator.engine import FaultPlan, SimRequest, SimRun


def test_clock_scales_and_advances() -> None:
    clock = SimClock(scale=100.0, start=1000.0)
    time.sleep(0.05)
    assert 1004.0 <= clock.now() < 1030.0
    before = clock.now()
    clock.advance(60)
    assert clock.now() - before >= 60
    clock.set_scale(1.0)
    held = clock.now()
    time.sleep(0.02)
    assert clock.now() - held < 1.0
    with pytest.raises(ValueError, match="positive"):
        SimClock(scale=0)


def test_run_timeline_and_override() -> None:
    run = SimRun("r", "t", created=100.0, timeline=[(0, "A"), (10, "B"), (20, "C")], scenario="s")
    assert run.status_at(100) == "A"
    assert run.status_at(109.9) == "A"
    assert run.status_at(110) == "B"
    assert run.status_at(500) == "C"
    assert run.time_of("B", 500) == 110
    assert run.time_of("C", 115) is None
    run.override(112.0, [(0, "X"), (5, "Y")])
    assert run.status_at(111) == "B"
    assert run.status_at(112) == "X"
    assert run.status_at(117) == "Y"
    assert run.final_status() == "Y"


def _request(method: str = "GET", path: str = "/x") -> SimRequest:
    return SimRequest.build(method, path, "", [], b"")


def test_fault_queue_matches_method_and_path_in_order() -> None:
    plan = FaultPlan(random.Random(1))
    plan.next(Fault(FaultKind.DROP, method="POST"))
    plan.next(Fault(FaultKind.HTTP_ERROR, status=502, path_contains="/status"), count=2)
    assert plan.take(_request("GET", "/runs")) is None
    hit = plan.take(_request("GET", "/runs/1/status"))
    assert hit is not None and hit.status == 502
    post = plan.take(_request("POST", "/runs"))
    assert post is not None and post.kind is FaultKind.DROP
    assert plan.pending == 1
    assert plan.injected == {"http_error": 1, "drop": 1}
    plan.clear()
    assert plan.take(_request("GET", "/runs/1/status")) is None


def test_random_faults_are_seeded_and_bounded() -> None:
    def hits(seed: int) -> list[bool]:
        plan = FaultPlan(random.Random(seed)).randomly(0.3, Fault(FaultKind.RATE_LIMIT))
        return [plan.take(_request()) is not None for _ in range(1000)]

    first, again = hits(7), hits(7)
    assert first == again
    assert 200 < sum(first) < 400
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(random.Random(1)).randomly(1.5, Fault(FaultKind.DROP))


def test_fault_from_dict_refuses_unknown_fields() -> None:
    assert Fault.from_dict({"kind": "timeout", "seconds": 2}).seconds == 2
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_dict({"kind": "timeout", "sekonds": 2})
    with pytest.raises(ValueError, match="meteor"):
        Fault.from_dict({"kind": "meteor"})


def test_force_refuses_unknown_scenarios(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="no scenario"):
        sim.force("invision", "explode")


def test_control_api_over_http(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.root_url) as http:
        health = http.get("/_sim/health").json()
        assert health["ok"] is True
        assert health["services"]["invision"] == sim.base_url("invision")

        answer = http.post(
            "/_sim/faults/invision",
            json={"queue": [{"kind": "http_error", "status": 503, "count": 2}], "random": []},
        )
        assert answer.json() == {"pending": 2}
        demo = http.get("/_sim/demo/invision").json()
        headers = {"x-api-key": demo["connection"]["api_key"]}
        flow = demo["request"]["data_flow_id"]
        start = f"/invision/api/pub/v1/dataflows/{flow}/start"
        assert http.post(start, headers=headers).status_code == 503
        assert http.post(start, headers=headers).status_code == 503
        assert http.post(start, headers=headers).status_code == 200

        before = sim.clock.now()
        moved = http.post("/_sim/clock", json={"advance": 3600}).json()
        assert moved["sim_time"] - before >= 3600

        http.post("/_sim/force/invision", json={"scenarios": ["fail_fast"]})
        http.post(start, headers=headers)
        http.post("/_sim/clock", json={"advance": 10})
        truth = http.get("/_sim/runs/invision").json()
        assert len(truth) == 2
        assert truth[-1]["scenario"] == "fail_fast"
        assert truth[-1]["final"] == "Failed"
        assert truth[-1]["status"] == "Failed"
        assert truth[-1]["finished"] is True

        stats = http.get("/_sim/stats").json()
        assert stats["services"]["invision"]["creates"] == 2
        assert stats["services"]["invision"]["faults_injected"] == {"http_error": 2}

        assert http.post("/_sim/faults/invision", json={"queue": [{"kind": "nope"}]}).status_code == 400
        assert http.get("/_sim/runs/nosuchservice").status_code == 404
        assert http.get("/nowhere").status_code == 404


def test_request_body_limit_and_keep_alive(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.root_url) as http:
        too_big = http.post("/_sim/clock", content=b"x" * (2 * 1024 * 1024))
        assert too_big.status_code == 413
    with httpx.Client(base_url=sim.root_url) as http:
        for _ in range(20):
            assert http.get("/_sim/health").status_code == 200
    # One keep-alive connection served all twenty: the simulator speaks HTTP/1.1 properly.
    assert len(sim.requests("_sim")) >= 20


def test_simulator_is_deterministic_for_a_seed() -> None:
    def run_ids(seed: int) -> list[tuple[str, str]]:
        with Simulator(seed=seed) as sim:
            with httpx.Client(base_url=sim.root_url) as http:
                demo = http.get("/_sim/demo/invision").json()
                headers = {"x-api-key": demo["connection"]["api_key"]}
                for _ in range(3):
                    http.post(
                        f"/invision/api/pub/v1/dataflows/{demo['request']['data_flow_id']}/start",
                        headers=headers,
                    )
            return [(r["id"], r["scenario"]) for r in sim.sims["invision"].ground_truth()]

    assert run_ids(11) == run_ids(11)
    assert run_ids(11) != run_ids(12)
