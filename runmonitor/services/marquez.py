"""Marquez (OpenLineage metadata server): runs of a job.

Create: ``POST /api/v1/namespaces/{ns}/jobs/{job}/runs`` with ``CreatedRun {id, nominalStartTime,
nominalEndTime, args}`` → 201 ``Run`` (plus a ``Location`` header). Follow: ``GET
/api/v1/jobs/runs/{id}``. List: ``GET …/jobs/{job}/runs?limit=&offset=`` → ``{"runs", "totalCount"}``.
Transitions: ``POST /api/v1/jobs/runs/{id}/start|complete|fail|abort?at=<ISO 8601>``.

The server has no authentication; deployments behind a gateway may want a bearer token,
which is what the official Java client sends when given an API key. The namespace and the
job must exist before a run can be created (:meth:`Marquez.ensure_job` creates them).

Run ids are chosen by the client (Marquez accepts any UUID), so a create whose answer was
lost can be sent again with the same id: a 400 "Run '…' already exists" on a retry then
proves the first attempt worked, and the run is read back. Marquez does not validate state
transitions, and its state follows the order in which OpenLineage events arrive: a run can
have ``endedAt`` set while its state says RUNNING (a retried START processed after the
COMPLETE). Such a run is reported UNKNOWN, never as running (MarquezProject/marquez#2264).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote
from uuid import UUID, uuid4

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    InvalidRequest,
    NotFound,
    ServiceError,
    Unsupported,
)
from runmonitor.domain.models import Capability, RunAction, RunRef, RunSnapshot, newest_first
from runmonitor.domain.redact import redact_json, secret_registry
from runmonitor.domain.status import RunStatus, StatusMap
from runmonitor.services.auth import bearer
from runmonitor.services.base import BaseUrl, CreateRequest, Service, ServiceConfig
from runmonitor.services.http import ErrorClassifier, parse_time, request_id_of

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: Marquez's own rule for namespace names (``marquez.common.models.NamespaceName``).
NAMESPACE_PATTERN = re.compile(r"^[a-zA-Z:;=/0-9_\-.]{1,1024}$")
#: The spec's ``maxLength`` for namespace and job path parameters.
MAX_NAME_LENGTH = 1024
#: ``ownerName`` is required when creating a namespace; Marquez only stores it.
OWNER_NAME = "runmonitor"

#: Create attempts in all (the first one plus retries with the same run id).

_ALREADY_EXISTS = re.compile(r"^Run '(?P<id>[^']*)' already exists", re.IGNORECASE)
_JOB_NOT_FOUND = re.compile(r"^Job '(?P<name>.*)' not found\.?$", re.IGNORECASE | re.DOTALL)
_NAMESPACE_NOT_FOUND = re.compile(r"^Namespace '(?P<name>.*)' not found\.?$", re.IGNORECASE | re.DOTALL)
_RUN_NOT_FOUND = re.compile(r"^Run '(?P<id>.*)' not found\.?$", re.IGNORECASE | re.DOTALL)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

STATUS_MAP = StatusMap(
    {
        "NEW": (RunStatus.PENDING, "created, not started yet"),
        "RUNNING": (RunStatus.RUNNING, None),
        "COMPLETED": (RunStatus.SUCCEEDED, None),
        "FAILED": (RunStatus.FAILED, None),
        "ABORTED": (RunStatus.CANCELLED, "aborted"),
        # RunState.OTHER: an OpenLineage OTHER event; says nothing about progress.
        "OTHER": (RunStatus.UNKNOWN, "the producer reported an OTHER event; state not known"),
    },
    case_sensitive=False,
)


def _iso(value: datetime) -> str:
    """An instant as Marquez parses it (``Instant.parse``): UTC with a ``Z``, milliseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _segment(value: str) -> str:
    """One URL path segment: namespaces may hold ``/`` and ``:`` (``postgres://host:5432``)."""
    return quote(value, safe="")


class _RunAlreadyExists(InvalidRequest):
    """Marquez's RunAlreadyExistsException (HTTP 400), recognised by its message."""


class MarquezConnection(ServiceConfig):
    base_url: BaseUrl = Field(
        title="Marquez API URL",
        description="Address of the Marquez API server, e.g. http://localhost:5000 (the API port, "
        "not the web UI's port 3000). RunMonitor adds /api/v1 itself.",
    )
    namespace: str = Field(
        default="default",
        title="Namespace",
        description="The Marquez namespace whose jobs you run. Letters, digits and _ - : ; = / . "
        "only, at most 1024 characters (Marquez's own rule).",
    )
    token: SecretStr | None = Field(
        default=None,
        title="Bearer token (optional)",
        description="Only for a Marquez behind an authenticating gateway or proxy: sent as "
        "'Authorization: Bearer …'. Marquez itself has no sign-in; leave empty otherwise.",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters")
        if not NAMESPACE_PATTERN.match(value):
            raise ValueError(
                "may contain only letters (a-z, A-Z), digits (0-9), underscores (_), dashes (-), "
                "colons (:), semicolons (;), equals signs (=), slashes (/) and dots (.)"
            )
        return value

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        if isinstance(value, str):
            return value.strip()
        return value


class MarquezRunRequest(CreateRequest):
    job: str = Field(
        title="Job",
        description="Name of the Marquez job to create a run of, in the connection's namespace. "
        "It must exist; RunMonitor can create it for you.",
        min_length=1,
        max_length=MAX_NAME_LENGTH,
    )
    run_id: UUID | None = Field(
        default=None,
        title="Run id (optional)",
        description="A UUID for the new run. Leave empty to let RunMonitor choose one, which also "
        "makes it safe to resend the request when an answer is lost.",
    )
    nominal_start_time: datetime | None = Field(
        default=None,
        title="Nominal start time",
        description="When the run is scheduled to start (ISO 8601, e.g. 2024-05-01T02:00:00Z). "
        "Without a time zone, UTC is assumed.",
    )
    nominal_end_time: datetime | None = Field(
        default=None,
        title="Nominal end time",
        description="When the run is scheduled to end (ISO 8601). Not before the nominal start time.",
    )
    args: dict[str, str] = Field(
        default_factory=dict,
        title="Arguments",
        description="Key/value arguments of the run, stored with it by Marquez (text values).",
    )

    @field_validator("job")
    @classmethod
    def _check_job(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if _CONTROL_CHARS.search(value):
            raise ValueError("must not contain control characters such as line breaks or tabs")
        return value

    @field_validator("nominal_start_time", "nominal_end_time")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("nominal_end_time")
    @classmethod
    def _end_not_before_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("nominal_start_time")
        if value is not None and isinstance(start, datetime) and value < start:
            raise ValueError("must not be before the nominal start time")
        return value

    @field_validator("args")
    @classmethod
    def _check_args(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.strip():
                raise ValueError("argument names must not be blank")
        return value

    def target(self) -> str:
        return self.job

    def created_run_body(self, run_id: UUID) -> dict[str, Any]:
        """The ``CreatedRun`` JSON for this request, with the run id the client chose."""
        body: dict[str, Any] = {"id": str(run_id)}
        if self.nominal_start_time is not None:
            body["nominalStartTime"] = _iso(self.nominal_start_time)
        if self.nominal_end_time is not None:
            body["nominalEndTime"] = _iso(self.nominal_end_time)
        if self.args:
            body["args"] = dict(self.args)
        return body


_ACTION_PATHS: dict[RunAction, str] = {
    RunAction.START: "start",
    RunAction.COMPLETE: "complete",
    RunAction.FAIL: "fail",
    RunAction.ABORT: "abort",
}


class Marquez(Service[MarquezConnection, MarquezRunRequest]):
    key = "marquez"
    display_name = "Marquez"
    vendor = "Marquez (OpenLineage)"
    summary = "Create runs of a Marquez job, follow them and mark them started, completed, failed or aborted."
    target_label = "Job"
    order = 20
    config_model = MarquezConnection
    request_model = MarquezRunRequest
    status_map = STATUS_MAP
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LIST_RUNS, Capability.WATCH, Capability.IDEMPOTENT_CREATE, Capability.ACTIONS}
    )
    actions: ClassVar[tuple[RunAction, ...]] = (
        RunAction.START,
        RunAction.COMPLETE,
        RunAction.FAIL,
        RunAction.ABORT,
    )
    cancel_action: ClassVar[RunAction | None] = RunAction.ABORT

    # -- hooks --------------------------------------------------------------------------
    def api_root(self) -> str:
        base = self.config.base_url
        # Accept a URL that already ends in /api/v1 as well.
        return base if base.endswith(API_PREFIX) else base + API_PREFIX

    def build_auth(self, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth | None:
        return bearer(self.config.token) if self.config.token is not None else None

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def classify_error(self) -> ErrorClassifier:
        return self._classify

    def _classify(self, status: int, body: Any, headers: httpx.Headers) -> ServiceError | None:
        """Marquez answers errors the Dropwizard way: ``{"code": int, "message": str}``."""
        kw: dict[str, Any] = {
            "service": self.key,
            "status_code": status,
            "request_id": request_id_of(headers),
        }
        message = body.get("message") if isinstance(body, dict) else None
        message = secret_registry.scrub(message.strip()) if isinstance(message, str) else None
        if status == 401:
            if self.config.token is None:
                text = "Sign-in needed: this Marquez sits behind a gateway that wants a bearer token"
            else:
                text = "Sign-in needed: the gateway in front of Marquez rejected the bearer token"
            return AuthFailed(text + (f" ({message})" if message else ""), **kw)
        if status == 404 and message:
            if match := _JOB_NOT_FOUND.match(message):
                return NotFound(
                    f"Marquez has no job '{match['name']}' in namespace '{self.namespace}'. "
                    "RunMonitor can create the namespace and the job for you.",
                    **kw,
                )
            if match := _NAMESPACE_NOT_FOUND.match(message):
                return NotFound(
                    f"The namespace '{match['name']}' does not exist on this Marquez server. "
                    "RunMonitor can create it (with the job) for you.",
                    **kw,
                )
            if match := _RUN_NOT_FOUND.match(message):
                return NotFound(f"Marquez has no run {match['id']}", **kw)
        if status == 400 and message and _ALREADY_EXISTS.match(message):
            return _RunAlreadyExists(message, **kw)
        if status in (400, 422) and isinstance(body, dict):
            # Dropwizard's bean-validation answer: {"errors": ["ownerName must not be null", …]}.
            errors = body.get("errors")
            if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
                text = "; ".join(str(e) for e in errors[:5])
                return InvalidRequest(secret_registry.scrub(f"Marquez refused the request: {text}"), **kw)
        return None

    # -- parsing ------------------------------------------------------------------------
    def _ref_for(self, job: str, run_id: str, namespace: str | None = None) -> RunRef:
        return self.ref(job, run_id, namespace=namespace or self.namespace)

    def _snapshot(self, body: Any, *, job: str, namespace: str | None = None) -> RunSnapshot:
        """A Run (or IncompleteRun) body as a snapshot; wrong shapes are BadResponse."""
        if not isinstance(body, dict):
            raise BadResponse("Marquez answered without a run object", service=self.key)
        run_id = body.get("id")
        if not isinstance(run_id, str) or not run_id.strip():
            raise BadResponse("Marquez answered with a run that has no id", service=self.key)
        ref = self._ref_for(job, run_id, namespace)
        state = body.get("state")
        started_at = parse_time(body.get("startedAt"))
        ended_at = parse_time(body.get("endedAt"))
        times = {
            "created_at": parse_time(body.get("createdAt")),
            "started_at": started_at,
            "ended_at": ended_at,
            # args may carry anything a producer put there, passwords included.
            "raw": redact_json(body),
        }
        if isinstance(state, str) and state.strip().upper() == "RUNNING" and ended_at is not None:
            # State follows event order: a START processed after the COMPLETE leaves a finished
            # run marked RUNNING. Do not show it as running; the next poll may know better.
            return RunSnapshot(
                ref=ref,
                status=RunStatus.UNKNOWN,
                vendor_status=state,
                detail=f"ended at {_iso(ended_at)} but still marked running; checking again",
                **times,
            )
        return RunSnapshot.from_mapped(ref, self.status_map.map(state), **times)

    # -- runs -----------------------------------------------------------------------------
    def _runs_path(self, job: str) -> str:
        return f"namespaces/{_segment(self.namespace)}/jobs/{_segment(job)}/runs"

    def prepare_request(self, request: MarquezRunRequest) -> MarquezRunRequest:
        """The request with its run id: the user's, or a new UUID (so a resend is safe)."""
        if request.run_id is not None:
            return request
        return request.model_copy(update={"run_id": uuid4()})

    def client_run_id(self, request: MarquezRunRequest) -> str | None:
        return str(request.run_id) if request.run_id else None

    def ref_for_client_id(self, target: str, client_run_id: str) -> RunRef:
        return self._ref_for(target, client_run_id)

    async def create_run(self, request: MarquezRunRequest) -> RunSnapshot:
        request = self.prepare_request(request)
        run_id = request.run_id
        assert run_id is not None
        body = request.created_run_body(run_id)
        path = self._runs_path(request.job)

        async def send() -> RunSnapshot:
            result = await self.http.request("POST", path, json_body=body, ok=(201, 200))
            snapshot = self._snapshot(result.body, job=request.job)
            if snapshot.ref.run_id.lower() != str(run_id).lower():
                log.warning("marquez: asked for run id %s, Marquez created %s", run_id, snapshot.ref.run_id)
            return snapshot

        async def read_back() -> RunSnapshot:
            return await self.get_status(self._ref_for(request.job, str(run_id)))

        return await self.create_idempotently(
            send,
            is_duplicate=lambda exc: isinstance(exc, _RunAlreadyExists),
            read_back=read_back,
            duplicate_message=f"The run id {run_id} is already used by another Marquez run. Leave the run "
            "id empty to get a new one, or choose a different UUID.",
            label=f"run {run_id}",
        )

    async def get_status(self, ref: RunRef) -> RunSnapshot:
        result = await self.http.request("GET", f"jobs/runs/{_segment(ref.run_id)}")
        snapshot = self._snapshot(result.body, job=ref.target, namespace=ref.extra.get("namespace"))
        if snapshot.ref.run_id.lower() != ref.run_id.lower():
            raise BadResponse("Marquez answered about a different run", service=self.key)
        return snapshot

    async def list_runs(self, target: str, *, limit: int = 20) -> list[RunSnapshot]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        result = await self.http.request("GET", self._runs_path(target), params={"limit": limit, "offset": 0})
        body = result.body
        runs = body.get("runs") if isinstance(body, dict) else None
        if not isinstance(runs, list):
            raise BadResponse("Marquez answered without a list of runs", service=self.key)
        snapshots = [self._snapshot(item, job=target) for item in runs]
        # The server orders by startedAt (desc, nulls last), which puts new, unstarted runs at
        # the bottom; people expect the most recently created first. The sort is stable.
        return newest_first(snapshots)[:limit]

    async def perform(self, ref: RunRef, action: RunAction, *, reason: str | None = None) -> RunSnapshot:
        """Mark a run started, completed, failed or aborted (Marquez keeps no reason)."""
        transition = _ACTION_PATHS.get(action)
        if transition is None:
            raise Unsupported(f"Marquez cannot {action.value} a run", service=self.key)
        result = await self.http.request(
            "POST",
            f"jobs/runs/{_segment(ref.run_id)}/{transition}",
            params={"at": _iso(datetime.now(UTC))},
        )
        return self._snapshot(result.body, job=ref.target, namespace=ref.extra.get("namespace"))

    # -- namespace and job ------------------------------------------------------------------
    async def ensure_job(self, job: str, *, description: str | None = None) -> None:
        """Create the connection's namespace and ``job`` (a BATCH job) where they do not exist.

        Existing ones are left untouched: re-sending a job would create a new job version.
        """
        job = MarquezRunRequest.model_validate({"job": job}).job
        ns_path = f"namespaces/{_segment(self.namespace)}"
        try:
            await self.http.request("GET", ns_path)
        except NotFound:
            await self.http.request(
                "PUT",
                ns_path,
                json_body={"ownerName": OWNER_NAME, "description": "Created by RunMonitor"},
            )
        job_path = f"{ns_path}/jobs/{_segment(job)}"
        try:
            await self.http.request("GET", job_path)
        except NotFound:
            created: dict[str, Any] = {"type": "BATCH", "inputs": [], "outputs": []}
            if description:
                created["description"] = description
            await self.http.request("PUT", job_path, json_body=created)

    async def check_connection(self) -> str:
        result = await self.http.request("GET", f"namespaces/{_segment(self.namespace)}")
        body = result.body
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise BadResponse("Marquez answered without a namespace", service=self.key)
        owner = body.get("ownerName")
        owned = f" (owner {owner})" if isinstance(owner, str) and owner else ""
        return f"Marquez is reachable; namespace '{body['name']}'{owned} exists"

    def run_url(self, ref: RunRef) -> str | None:
        # Marquez's web UI is a separate app (port 3000 by default, API on 5000) whose address
        # cannot be derived from the API URL, and its routes are not a documented interface.
        return None


SERVICE = Marquez
