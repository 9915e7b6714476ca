"""Profitbase InVision: Data Flow execution API.

Start: ``POST api/pub/v1/dataflows/{id}/start`` → ``{runId, status}`` (never with
``await=true``: flows can run for hours). Follow: ``GET
api/pub/v1/dataflows/{id}/runs/{runId}/status``. The key goes in the ``x-api-key``
header, never in the URL, although the service also accepts ``?api_key=``.
There is no list, no cancel and no timestamps; 500 is the only documented error,
and it does not prove that a run failed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from pydantic import Field, SecretStr

from runmonitor.domain.errors import BadResponse, NotFound, ServerError
from runmonitor.domain.models import RunRef, RunSnapshot
from runmonitor.domain.status import RunStatus, StatusMap
from runmonitor.services.auth import HeaderAuth
from runmonitor.services.base import BaseUrl, CreateRequest, Service, ServiceConfig

STATUS_MAP = StatusMap(
    {
        "Pending": (RunStatus.PENDING, None),
        "Running": (RunStatus.RUNNING, None),
        "Succeeded": (RunStatus.SUCCEEDED, None),
        "Failed": (RunStatus.FAILED, None),
    },
    case_sensitive=False,
)


class InVisionConnection(ServiceConfig):
    base_url: BaseUrl = Field(
        title="InVision site URL",
        description="The address of your InVision site, e.g. https://mydomain.com/invision",
    )
    api_key: SecretStr = Field(
        title="API key",
        description="A key from Application Menu → API Management → Manage API Keys → "
        "'Data Flow Execution' tab.",
        min_length=1,
    )


class InVisionStartRequest(CreateRequest):
    data_flow_id: UUID = Field(
        title="Data Flow id",
        description="The id (a GUID) of the Data Flow to start, as shown in the InVision designer.",
    )

    def target(self) -> str:
        return str(self.data_flow_id)


class InVision(Service[InVisionConnection, InVisionStartRequest]):
    key = "invision"
    display_name = "InVision Data Flows"
    vendor = "Profitbase InVision"
    summary = "Start a Data Flow and follow its execution."
    target_label = "Data flow"
    order = 30
    config_model = InVisionConnection
    request_model = InVisionStartRequest
    status_map = STATUS_MAP

    def build_auth(self, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth:
        return HeaderAuth("x-api-key", self.config.api_key)

    def _snapshot(self, flow_id: str, body: Any) -> RunSnapshot:
        if not isinstance(body, dict) or not isinstance(body.get("runId"), str) or not body["runId"]:
            raise BadResponse("InVision answered without a runId", service=self.key)
        ref = self.ref(flow_id, body["runId"])
        mapped = self.status_map.map(body.get("status"))
        return RunSnapshot.from_mapped(ref, mapped, raw=body)

    async def create_run(self, request: InVisionStartRequest) -> RunSnapshot:
        flow_id = request.target()
        result = await self.http.request("POST", f"api/pub/v1/dataflows/{flow_id}/start")
        return self._snapshot(flow_id, result.body)

    async def get_status(self, ref: RunRef) -> RunSnapshot:
        result = await self.http.request("GET", f"api/pub/v1/dataflows/{ref.target}/runs/{ref.run_id}/status")
        snapshot = self._snapshot(ref.target, result.body)
        if snapshot.ref.run_id != ref.run_id:
            raise BadResponse("InVision answered about a different run", service=self.key)
        return snapshot

    async def check_connection(self) -> str:
        # The API has no read-only endpoint that proves the key is good without starting a
        # flow; asking for a run that cannot exist shows reachability and, on 401/403,
        # a rejected key.
        try:
            await self.http.request(
                "GET",
                "api/pub/v1/dataflows/00000000-0000-0000-0000-000000000000/runs/connection-check/status",
            )
        except (NotFound, ServerError):
            return "InVision is reachable and did not reject the API key"
        return "InVision is reachable and did not reject the API key"


SERVICE = InVision
