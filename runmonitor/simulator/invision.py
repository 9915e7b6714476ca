"""Simulated Profitbase InVision Data Flow execution API (under ``/invision``)."""

from __future__ import annotations

from typing import Any, ClassVar

from runmonitor.simulator.engine import ServiceSim, SimRequest, SimResponse, SimRun, Timeline

DEMO_FLOWS = {
    "2b081248-4963-43b3-ba06-5b7403d58b4d": "Load general ledger",
    "7c1e0f53-8a0e-4c55-9f1b-2f5d3c8e6a10": "Refresh sales forecast",
    "d4a9b6e2-1f3c-4e7a-8b5d-0c2e9f7a6b31": "Nightly consolidation",
}


class InVisionSim(ServiceSim):
    key = "invision"
    prefix = "/invision"
    terminal: ClassVar[frozenset[str]] = frozenset({"Succeeded", "Failed"})
    scenarios: ClassVar[dict[str, Timeline]] = {
        "success": [(0, "Pending"), (3, "Running"), (25, "Succeeded")],
        "failure": [(0, "Pending"), (2, "Running"), (15, "Failed")],
        "slow": [(0, "Pending"), (10, "Running"), (90, "Succeeded")],
        "fail_fast": [(0, "Pending"), (1, "Failed")],
    }
    weights: ClassVar[dict[str, float]] = {"success": 6, "failure": 2, "slow": 1, "fail_fast": 1}
    default_credentials: ClassVar[dict[str, str]] = {"api_key": "sim-invision-key-5f2c"}

    def setup_routes(self) -> None:
        self.flows = dict(DEMO_FLOWS)
        self.route("POST", "/api/pub/v1/dataflows/{flow}/start", self.start)
        self.route("GET", "/api/pub/v1/dataflows/{flow}/runs/{run}/status", self.status)

    def authenticate(self, request: SimRequest) -> SimResponse | None:
        key = request.header("x-api-key") or request.arg("api_key")
        if key != self.credentials["api_key"]:
            # InVision documents only 500; an ASP.NET API key filter answers 401 with no body.
            return SimResponse.empty(401)
        return None

    def error(self, status: int, message: str) -> SimResponse:
        # The documented error (500) has no body format; answer like ASP.NET's problem details.
        return SimResponse.json(status, {"type": "about:blank", "title": message, "status": status}, {})

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "api_key": self.credentials["api_key"]}

    def demo_request(self) -> dict[str, Any]:
        return {"data_flow_id": next(iter(self.flows))}

    def _body(self, run: SimRun) -> dict[str, Any]:
        return {"runId": run.id, "status": run.status_at(self.now())}

    def start(self, request: SimRequest) -> SimResponse:
        flow = request.params["flow"].lower()
        if flow not in self.flows:
            return self.error(500, f"Data Flow {flow} not found")
        scenario, timeline = self.pick_timeline()
        run = self.add_run(SimRun(self.new_id(), flow, self.now(), timeline, scenario))
        if request.arg("await") == "true":
            # The real service blocks until the flow ends; the simulator answers with the
            # final state at once rather than tying up a thread.
            return SimResponse.json(200, {"runId": run.id, "status": run.final_status()})
        return SimResponse.json(200, self._body(run))

    def status(self, request: SimRequest) -> SimResponse:
        run = self.runs.get(request.params["run"])
        if run is None or run.target != request.params["flow"].lower():
            return self.error(404, "Run not found")
        return SimResponse.json(200, self._body(run))

    def start_external_run(self, target: str, scenario: str | None = None) -> str:
        name, timeline = self.pick_timeline(scenario)
        run = SimRun(self.new_id(), target, self.now(), timeline, name, by_client=False)
        return self.add_run(run).id


SIM = InVisionSim
