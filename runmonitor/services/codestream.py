"""VMware Aria Automation (vRA 8.x) Code Stream: pipeline executions.

Start: ``POST /codestream/api/pipelines/{id}/executions`` with an ``ExecutionRequest``
→ 200 *or* 202 ``ExecutionResponse {executionId, executionIndex, executionLink}``.
Follow: ``GET /codestream/api/executions/{id}`` → ``Execution``. List one pipeline's
executions: ``GET /codestream/api/pipelines/{id}/executions`` (OData-like ``$orderby``,
``$top``, ``$filter``) → ``Executions {count, totalCount, links, documents}``. Act:
``POST /codestream/api/executions/{id}?action=cancel|pause|resume`` with an
``ExecutionActionRequest {reason}``. Cheap authenticated check: ``GET /codestream/api/about``.

Auth: a refresh (API) token is exchanged at ``POST /iaas/api/login`` for a bearer token
that lives about 30 minutes; on a 401 the client logs in again once and resends
(:class:`~runmonitor.services.auth.RefreshTokenLogin`). A pasted bearer token is also
accepted, but cannot be renewed.

The create takes a client-chosen ``executionId``, so a create whose answer was lost is
retried with the same id; an "already exists" answer to a retry means the first attempt
got through, and the execution is read back instead.

Timestamps come as ``2019-09-16 09:25:38.065065+00`` strings and as ``_…InMicros``
UNIX microsecond numbers.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from runmonitor.domain.errors import (
    AuthFailed,
    BadResponse,
    InvalidRequest,
    ServiceError,
)
from runmonitor.domain.models import Capability, RunAction, RunRef, RunSnapshot
from runmonitor.domain.redact import redact_json, secret_registry
from runmonitor.domain.status import RunStatus, StatusMap
from runmonitor.services.auth import RefreshTokenLogin, bearer
from runmonitor.services.base import BaseUrl, CreateRequest, Service, ServiceConfig
from runmonitor.services.http import ErrorClassifier, error_for_status, parse_time

log = logging.getLogger(__name__)

API = "codestream/api"
LOGIN_PATH = "iaas/api/login"

STATUS_MAP = StatusMap(
    {
        "NOT_STARTED": (RunStatus.PENDING, None),
        "QUEUED": (RunStatus.PENDING, "queued"),
        "PREPARING_WORKSPACE": (RunStatus.RUNNING, "preparing the workspace"),
        "STARTED": (RunStatus.RUNNING, None),
        "RUNNING": (RunStatus.RUNNING, None),
        "RESUMING": (RunStatus.RUNNING, "resuming"),
        "PAUSING": (RunStatus.RUNNING, "pausing"),
        "ROLLING_BACK": (RunStatus.RUNNING, "rolling back after a failure"),
        # Not terminal: these need a person (approve, resume, or wait for the cancel).
        "WAITING": (RunStatus.RUNNING, "waiting for a person (approval or user operation)"),
        "PAUSED": (RunStatus.RUNNING, "paused"),
        "CANCELING": (RunStatus.RUNNING, "cancelling"),
        # A task with "continue on failure" failed; the execution goes on (an inference:
        # Code Stream documents no meaning for the value at execution level).
        "FAILED_CONTINUE": (RunStatus.RUNNING, "a task failed; the pipeline continues"),
        "CANCELED": (RunStatus.CANCELLED, None),
        # Mostly seen on stages and tasks; at execution level it means it never ran.
        "SKIPPED": (RunStatus.CANCELLED, "skipped"),
        "COMPLETED": (RunStatus.SUCCEEDED, None),
        "FAILED": (RunStatus.FAILED, None),
        "ROLLBACK_FAILED": (RunStatus.FAILED, "failed, and the rollback failed too"),
        "ROLLBACK_COMPLETED": (RunStatus.FAILED, "failed and was rolled back"),
    }
)

#: Attempts for one create, each with the same executionId (so retrying is safe).

TOKEN_HELP = "access tokens expire after about 30 minutes"

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PIPELINE_LINK_RE = re.compile(r"/pipelines/([^/?#]+)")


class CodeStreamAuthKind(StrEnum):
    REFRESH_TOKEN = "refresh_token"
    BEARER = "bearer"


def _blank(secret: SecretStr | None) -> bool:
    return secret is None or not secret.get_secret_value().strip()


class CodeStreamConnection(ServiceConfig):
    base_url: BaseUrl = Field(
        title="Aria Automation URL",
        description="The address of your VMware Aria Automation (vRealize Automation 8) appliance or "
        "cloud host, as in your browser's address bar before /codestream, e.g. https://vra.example.com",
    )
    auth_kind: CodeStreamAuthKind = Field(
        default=CodeStreamAuthKind.REFRESH_TOKEN,
        title="Sign in with",
        description="'refresh_token': an API (refresh) token, exchanged for short-lived access tokens "
        "automatically (recommended). 'bearer': an access token you obtained yourself; "
        f"{TOKEN_HELP} and must then be replaced by hand.",
    )
    refresh_token: SecretStr | None = Field(
        default=None,
        title="Refresh token",
        description="An API token (refresh token), e.g. from POST /csp/gateway/am/api/login?access_token "
        "with your user name and password, or from the Cloud Services console (My Account → API Tokens). "
        "It is valid for months; RunMonitor exchanges it at /iaas/api/login.",
    )
    access_token: SecretStr | None = Field(
        default=None,
        title="Access token",
        description="A bearer access token (the 'token' from /iaas/api/login). Only for 'bearer' sign-in; "
        f"{TOKEN_HELP}.",
    )
    project: str | None = Field(
        default=None,
        max_length=255,
        title="Project",
        description="Optional Code Stream project name. Lists of executions are filtered to it and new "
        "executions are requested in it unless the request names another project.",
    )
    api_version: str | None = Field(
        default=None,
        title="API version",
        description="Optional Code Stream API version in yyyy-MM-dd form, e.g. 2019-10-17 (sent as the "
        "apiVersion parameter). Leave empty to use the latest version the server supports.",
    )

    @field_validator("project", mode="after")
    @classmethod
    def _empty_project_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("api_version", mode="after")
    @classmethod
    def _check_api_version(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _API_VERSION_RE.match(value):
            raise PydanticCustomError("api_version", "must be a date in yyyy-MM-dd form, e.g. 2019-10-17")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("api_version", "is not a real date (yyyy-MM-dd)") from None
        return value

    # The secrets follow auth_kind in field order, so info.data holds the chosen kind here;
    # checking per field puts the error beside the field that is missing.
    @field_validator("refresh_token", mode="after")
    @classmethod
    def _refresh_token_needed(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("auth_kind") is CodeStreamAuthKind.REFRESH_TOKEN and _blank(value):
            raise PydanticCustomError(
                "missing_secret", "a refresh token is needed to sign in with 'refresh_token'"
            )
        return None if _blank(value) else value

    @field_validator("access_token", mode="after")
    @classmethod
    def _access_token_needed(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("auth_kind") is CodeStreamAuthKind.BEARER and _blank(value):
            raise PydanticCustomError("missing_secret", "an access token is needed to sign in with 'bearer'")
        return None if _blank(value) else value

    def warnings(self) -> list[str]:
        notes = super().warnings()
        if self.auth_kind is CodeStreamAuthKind.BEARER:
            notes.append(
                "Code Stream access tokens expire after about 30 minutes; with 'bearer' sign-in you must "
                "paste a new one then. A refresh token is renewed automatically."
            )
        return notes


class CodeStreamExecuteRequest(CreateRequest):
    pipeline_id: str = Field(
        title="Pipeline id",
        description="The id of the pipeline to run (a UUID such as 8365ef3b-8bf3-48aa-bd5d-7113fcff827c), "
        "from the pipeline's URL in Code Stream or GET /codestream/api/pipelines.",
    )
    project_name: str | None = Field(
        default=None,
        max_length=255,
        title="Project",
        description="The pipeline's project, if it should differ from the connection's project. "
        "Leave empty to use the connection's project (or none).",
    )
    input: dict[str, str] = Field(
        default_factory=dict,
        title="Inputs",
        description="Values for the pipeline's input properties (name → value). Inputs left out keep the "
        "defaults defined in the pipeline.",
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=50,
        title="Tags",
        description="Tags to put on the execution, to find it again in Code Stream.",
    )
    comments: str = Field(
        default="",
        max_length=2000,
        title="Comments",
        description="A note stored with the execution (shown in Code Stream's execution view).",
    )
    execution_id: str | None = Field(
        default=None,
        title="Execution id",
        description="Optional UUID for the new execution. Leave empty and RunMonitor picks one, so a "
        "request whose answer was lost can be retried without starting the pipeline twice.",
    )

    @field_validator("pipeline_id", mode="after")
    @classmethod
    def _check_pipeline_id(cls, value: str) -> str:
        if not _UUID_RE.match(value):
            raise PydanticCustomError(
                "pipeline_id", "must be a Code Stream pipeline id (a UUID like 8365ef3b-8bf3-48aa-…)"
            )
        return value.lower()

    @field_validator("execution_id", mode="after")
    @classmethod
    def _check_execution_id(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _UUID_RE.match(value):
            raise PydanticCustomError("execution_id", "must be a UUID, or empty to let RunMonitor pick one")
        return value.lower()

    @field_validator("project_name", mode="after")
    @classmethod
    def _empty_project_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("input", mode="after")
    @classmethod
    def _check_input(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name.strip():
                raise PydanticCustomError("input_name", "input names must not be empty")
            if len(name) > 255:
                raise PydanticCustomError("input_name", "input names must be at most 255 characters")
            if len(text) > 65536:
                raise PydanticCustomError(
                    "input_value",
                    "the value of input {name!r} is longer than 65536 characters",
                    {"name": name},
                )
        return value

    @field_validator("tags", mode="after")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for tag in value:
            text = tag.strip()
            if not text:
                raise PydanticCustomError("tag", "tags must not be empty")
            if len(text) > 255:
                raise PydanticCustomError("tag", "tags must be at most 255 characters")
            if text in seen:
                raise PydanticCustomError("tag", "tag {tag!r} is listed twice", {"tag": text})
            seen.add(text)
            out.append(text)
        return out

    def target(self) -> str:
        return self.pipeline_id

    def with_execution_id(self) -> CodeStreamExecuteRequest:
        """This request with an execution id: its own, or a new UUID (store it before sending)."""
        if self.execution_id:
            return self
        return self.model_copy(update={"execution_id": str(uuid.uuid4())})


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: Any) -> datetime | None:
    """A ``_…InMicros`` value (UNIX microseconds) as a datetime, exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e17:
        return None
    return _EPOCH + timedelta(microseconds=int(value))


def _segment(value: str) -> str:
    """An id as one URL path segment (ids from storage must not change the path)."""
    return quote(value, safe="")


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class CodeStream(Service[CodeStreamConnection, CodeStreamExecuteRequest]):
    key = "codestream"
    display_name = "Code Stream"
    vendor = "VMware Aria Automation"
    summary = "Run a Code Stream pipeline and follow, pause, resume or cancel its execution."
    target_label = "Pipeline"
    order = 50
    config_model = CodeStreamConnection
    request_model = CodeStreamExecuteRequest
    status_map = STATUS_MAP
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LIST_RUNS, Capability.WATCH, Capability.ACTIONS, Capability.IDEMPOTENT_CREATE}
    )
    actions: ClassVar[tuple[RunAction, ...]] = (RunAction.CANCEL, RunAction.PAUSE, RunAction.RESUME)
    cancel_action = RunAction.CANCEL

    # -- wiring ------------------------------------------------------------------------------
    def build_auth(self, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth:
        config = self.config
        if config.auth_kind is CodeStreamAuthKind.BEARER:
            if config.access_token is None:  # the connection model refuses this
                raise AuthFailed("No access token is configured", service=self.key)
            return bearer(config.access_token)
        if config.refresh_token is None:  # the connection model refuses this
            raise AuthFailed("No refresh token is configured", service=self.key)
        return RefreshTokenLogin(self.key, f"{config.base_url}/{LOGIN_PATH}", config.refresh_token)

    @property
    def classify_error(self) -> ErrorClassifier:
        return self._classify

    def _classify(self, status: int, body: Any, headers: httpx.Headers) -> ServiceError | None:
        """Code Stream errors ``{timestamp, path, status, error, message, requestId, @type}``."""
        error = error_for_status(self.key, status, body, headers)
        if error.request_id is None and isinstance(body, dict):
            # Code Stream puts its request id in the body; IaaS errors carry serverErrorId.
            for name in ("requestId", "serverErrorId"):
                if isinstance(body.get(name), str) and body[name]:
                    error.request_id = body[name][:200]
                    break
        if status == 401:
            if self.config.auth_kind is CodeStreamAuthKind.BEARER:
                text = f"Code Stream rejected the access token; {TOKEN_HELP}: paste a fresh one"
            else:
                text = "Code Stream rejected the access token obtained with the refresh token"
            return AuthFailed(text, service=self.key, status_code=status, request_id=error.request_id)
        return error

    def _params(self, **extra: Any) -> dict[str, Any]:
        params = dict(extra)
        if self.config.api_version:
            params["apiVersion"] = self.config.api_version
        return params

    # -- create ------------------------------------------------------------------------------
    def execution_body(self, request: CodeStreamExecuteRequest) -> dict[str, Any]:
        """The ``ExecutionRequest`` sent for ``request`` (which must carry an execution id)."""
        body: dict[str, Any] = {
            "comments": request.comments,
            "executionId": request.execution_id,
            "input": dict(request.input),
            "tags": list(request.tags),
            "source": "RunMonitor",
        }
        project = request.project_name or self.config.project
        if project:
            body["projectName"] = project
        return body

    def prepare_request(self, request: CodeStreamExecuteRequest) -> CodeStreamExecuteRequest:
        return request.with_execution_id()

    def client_run_id(self, request: CodeStreamExecuteRequest) -> str | None:
        return str(request.execution_id) if request.execution_id else None

    async def create_run(self, request: CodeStreamExecuteRequest) -> RunSnapshot:
        request = self.prepare_request(request)
        execution_id = str(request.execution_id)
        pipeline_id = request.pipeline_id
        body = self.execution_body(request)
        path = f"{API}/pipelines/{_segment(pipeline_id)}/executions"

        async def send() -> RunSnapshot:
            result = await self.http.request(
                "POST", path, params=self._params(), json_body=body, ok=(200, 202)
            )
            return self._created(pipeline_id, execution_id, result.body)

        return await self.create_idempotently(
            send,
            is_duplicate=lambda exc: isinstance(exc, InvalidRequest) and exc.status_code == 409,
            read_back=lambda: self._read_back(pipeline_id, execution_id),
            duplicate_message=f"An execution with id {execution_id} already exists; leave the execution id "
            "empty or choose a new one",
            label=f"execution {execution_id}",
        )

    async def _read_back(self, pipeline_id: str, execution_id: str) -> RunSnapshot:
        """The execution an earlier attempt created; "requested" if it cannot be read just now."""
        try:
            return await self.get_status(self.ref(pipeline_id, execution_id))
        except ServiceError as exc:
            # The 409 proved the execution exists: report it created, and let polling catch up.
            log.info("codestream: could not read execution %s back yet (%s)", execution_id, exc.kind)
            return self._created(pipeline_id, execution_id, {"executionId": execution_id})

    def _created(self, pipeline_id: str, execution_id: str, body: Any) -> RunSnapshot:
        """The snapshot of an accepted execute (200/202): known by id, status not yet seen."""
        if not isinstance(body, dict):
            # Accepted all the same, and the id is ours: follow it rather than report a failure.
            log.warning(
                "codestream: execute answered without an ExecutionResponse; following %s", execution_id
            )
            body = {}
        answered = body.get("executionId")
        if isinstance(answered, str) and answered and answered.lower() != execution_id:
            # A server that ignores the client-chosen id: what it started is what to follow.
            log.warning(
                "codestream: asked for execution %s but the server started %s", execution_id, answered
            )
            execution_id = answered
        extra: dict[str, str] = {}
        index = body.get("executionIndex")
        if isinstance(index, int) and not isinstance(index, bool):
            extra["index"] = str(index)
        ref = self.ref(pipeline_id, execution_id, **extra)
        # ExecutionResponse carries no status: the execution is requested, not yet seen running.
        return RunSnapshot(
            ref=ref,
            status=RunStatus.PENDING,
            vendor_status=None,
            detail="requested",
            message="Execution requested",
            raw=redact_json(body),
        )

    # -- follow ------------------------------------------------------------------------------
    async def get_status(self, ref: RunRef) -> RunSnapshot:
        return await self.get_execution(ref)

    async def get_execution(self, ref: RunRef, *, expand: bool = False) -> RunSnapshot:
        """One execution; ``expand`` asks for stage and task detail (a larger answer)."""
        params = self._params(expand="PIPELINE_STAGE_TASK" if expand else None)
        result = await self.http.request("GET", f"{API}/executions/{_segment(ref.run_id)}", params=params)
        snapshot = self._snapshot(result.body, target=ref.target)
        if snapshot.ref.run_id.lower() != ref.run_id.lower():
            raise BadResponse("Code Stream answered about a different execution", service=self.key)
        return self._with_ref(snapshot, ref)

    @staticmethod
    def _with_ref(snapshot: RunSnapshot, ref: RunRef) -> RunSnapshot:
        """``snapshot`` under the caller's ref, keeping hints (the index) the answer added."""
        merged = ref.model_copy(update={"extra": {**snapshot.ref.extra, **ref.extra}})
        return snapshot.model_copy(update={"ref": merged})

    def _snapshot(self, body: Any, *, target: str | None = None) -> RunSnapshot:
        """A RunSnapshot from one ``Execution`` document."""
        if not isinstance(body, dict):
            raise BadResponse("Code Stream answered without an execution", service=self.key)
        execution_id = body.get("id")
        if not isinstance(execution_id, str) or not execution_id:
            raise BadResponse("Code Stream answered with an execution that has no id", service=self.key)
        pipeline = target or self._pipeline_of(body)
        if not pipeline:
            raise BadResponse(
                f"Code Stream execution {execution_id} does not say which pipeline it belongs to",
                service=self.key,
            )
        extra: dict[str, str] = {}
        index = body.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            extra["index"] = str(index)
        ref = self.ref(pipeline, execution_id, **extra)
        mapped = self.status_map.map(body.get("status"))
        created = parse_time(body.get("createdAt")) or _micros(body.get("_createTimeInMicros"))
        created = created or _micros(body.get("_requestTimeInMicros"))
        updated = parse_time(body.get("updatedAt")) or _micros(body.get("_updateTimeInMicros"))
        return RunSnapshot.from_mapped(
            ref,
            mapped,
            message=self._message(body),
            created_at=created,
            started_at=self._started(body),
            ended_at=updated if mapped.terminal else None,
            raw=redact_json(body),
        )

    @staticmethod
    def _pipeline_of(body: dict[str, Any]) -> str | None:
        link = body.get("_pipelineLink")
        if isinstance(link, str):
            match = _PIPELINE_LINK_RE.search(link)
            if match:
                return match.group(1)
        return None

    @staticmethod
    def _message(body: dict[str, Any]) -> str | None:
        message = _text(body.get("statusMessage"))
        reason = _text(body.get("reason"))
        if message and reason and reason not in message:
            return secret_registry.scrub(f"{message} (reason: {reason})")
        text = message or reason
        return secret_registry.scrub(text) if text else None

    @staticmethod
    def _started(body: dict[str, Any]) -> datetime | None:
        """The earliest stage start (Code Stream gives no start time for the execution itself)."""
        stages = body.get("stages")
        if not isinstance(stages, dict):
            return None
        starts = [
            when
            for stage in stages.values()
            if isinstance(stage, dict) and (when := _micros(stage.get("_startTime"))) is not None
        ]
        return min(starts) if starts else None

    # -- list and watch ----------------------------------------------------------------------
    async def list_runs(self, target: str, *, limit: int = 20) -> list[RunSnapshot]:
        params = self._params(**{"$orderby": "_requestTimeInMicros desc", "$top": str(max(1, limit))})
        if self.config.project:
            project = self.config.project.replace("'", "''")
            params["$filter"] = f"(project eq '{project}')"
        path = f"{API}/pipelines/{_segment(target)}/executions"
        result = await self.http.request("GET", path, params=params)
        body = result.body
        if not isinstance(body, dict):
            raise BadResponse("Code Stream answered without a list of executions", service=self.key)
        documents = body.get("documents")
        if documents is None:
            documents = {}
        if not isinstance(documents, dict):
            raise BadResponse("Code Stream's list of executions has no documents map", service=self.key)
        snapshots: list[tuple[int, int, RunSnapshot]] = []
        for document in documents.values():
            try:
                snapshot = self._snapshot(document, target=target)
            except BadResponse as exc:
                # One unreadable document should not hide the others.
                log.warning("codestream: skipping an execution in the list: %s", exc.message)
                continue
            requested = document.get("_requestTimeInMicros") or document.get("_createTimeInMicros")
            when = requested if isinstance(requested, int) and not isinstance(requested, bool) else 0
            index = document.get("index")
            number = index if isinstance(index, int) and not isinstance(index, bool) else 0
            snapshots.append((when, number, snapshot))
        # The server sorts as asked; sort again so "newest first" never depends on it.
        snapshots.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [snapshot for _, _, snapshot in snapshots[:limit]]

    # -- actions -----------------------------------------------------------------------------
    async def perform(self, ref: RunRef, action: RunAction, *, reason: str | None = None) -> RunSnapshot:
        if action not in self.actions:
            return await super().perform(ref, action, reason=reason)
        body = {
            "reason": (reason or "").strip()[:1000]
            or f"{action.value.capitalize()} requested from RunMonitor"
        }
        try:
            result = await self.http.request(
                "POST",
                f"{API}/executions/{_segment(ref.run_id)}",
                params=self._params(action=action.value),
                json_body=body,
            )
        except InvalidRequest as exc:
            detail = f": {exc.message.split(': ', 1)[-1]}" if ": " in exc.message else ""
            raise InvalidRequest(
                f"Code Stream refused to {action.value} execution {ref.run_id}{detail}",
                service=self.key,
                status_code=exc.status_code,
                request_id=exc.request_id,
            ) from exc
        # The action answers with the Execution; read it again when it does not.
        if isinstance(result.body, dict) and "status" in result.body and result.body.get("id"):
            snapshot = self._snapshot(result.body, target=ref.target)
            if snapshot.ref.run_id.lower() == ref.run_id.lower():
                return self._with_ref(snapshot, ref)
        return await self.get_status(ref)

    # -- connection and links ----------------------------------------------------------------
    async def check_connection(self) -> str:
        result = await self.http.request("GET", f"{API}/about", params=self._params())
        body = result.body
        if not isinstance(body, dict) or not isinstance(body.get("latestApiVersion"), str):
            raise BadResponse("Code Stream's about page has no latestApiVersion", service=self.key)
        latest = body["latestApiVersion"]
        text = f"Code Stream answered (latest API version {latest})"
        wanted = self.config.api_version
        if wanted:
            supported = {
                item.get("apiVersion") for item in body.get("supportedApis") or [] if isinstance(item, dict)
            }
            if wanted not in supported:
                text += f"; note: API version {wanted} is not among the supported versions"
        return text

    def run_url(self, ref: RunRef) -> str | None:
        # Best effort: the Code Stream UI is a single-page app under /codestream and shows an
        # execution at #/executions/<id>; this is not a documented, stable URL.
        return f"{self.config.base_url}/codestream/#/executions/{ref.run_id}"


SERVICE = CodeStream
