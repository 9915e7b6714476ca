"""Simulated VMware Aria Automation: IaaS login and Code Stream executions (under ``/vra``).

The base URL of a profile is ``http://127.0.0.1:PORT/vra``, like ``https://vra.example.com``:
the client adds ``/iaas/api/login`` and ``/codestream/api/…``.

Documented behaviour (vra-pipeline.json, vra-iaas.json): the paths, methods and bodies,
200 *or* 202 on execute, the 18 status values, ``Authorization: Bearer`` on every Code
Stream call, the ``apiVersion`` parameter, and the IaaS ``ServiceErrorResponse``.

Undocumented, chosen here (each marked "Undocumented" below):
* A wrong refresh token at ``/iaas/api/login`` gets **400** with a ServiceErrorResponse (400 is
  the spec's "Invalid Request - bad data"; users report 400 for bad refresh tokens).
* Access tokens live 30 simulated minutes; an expired or unknown token gets 401.
* Code Stream errors use the ``{timestamp, path, status, error, message, requestId, @type}``
  shape that real clients parse; the ``@type`` value is invented.
* A client-chosen ``executionId`` that already exists gets **409 Conflict**.
* Pausing, resuming or cancelling an execution in a state that does not allow it gets 400.
* ``projectName`` that does not match the pipeline's project gets 400; executing a disabled
  pipeline gets 400; a pipeline in a project the user is not a member of gets 403.
* ``$filter`` supports ``field eq 'value'`` terms joined by ``and`` (fields project, status,
  name, id, index); anything else gets 400. An unsupported ``apiVersion`` gets 400.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar

from runmonitor.simulator.engine import (
    Handler,
    ServiceSim,
    SimRequest,
    SimResponse,
    SimRun,
    Timeline,
    epoch_ms,
)

API_VERSIONS = ("2019-10-17",)
TOKEN_LIFETIME = 30 * 60.0
DOCS_LINK = "/codestream/api/swagger/swagger-ui.html?urls.primaryName="
SIM_USER = "sim-user@vra.example.com"
#: Undocumented: the real class name of Code Stream's error type is not public.
ERROR_TYPE = "com.vmware.devops.common.exceptions.CodeStreamException"


@dataclass(frozen=True)
class SimPipeline:
    id: str
    name: str
    project: str
    project_id: str
    description: str
    stages: tuple[str, str]
    inputs: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    member: bool = True


DEMO_PIPELINES = [
    SimPipeline(
        "b49898f9-d42d-4f19-8bda-e77a373c41b9",
        "build-and-test",
        "Demo",
        "2a4c6e8f-1b3d-4f5a-9c7e-0d2f4b6a8c1e",
        "Builds the web app and runs its tests",
        ("Build", "Test"),
        {"branch": "main", "buildNumber": ""},
    ),
    SimPipeline(
        "5c4a3f1e-9d2b-4e7a-8f6c-1b0d3e5a7c9f",
        "deploy-web",
        "Demo",
        "2a4c6e8f-1b3d-4f5a-9c7e-0d2f4b6a8c1e",
        "Deploys the web app to staging, with an approval before production",
        ("Deploy", "Verify"),
        {"environment": "staging", "version": "latest"},
    ),
    SimPipeline(
        "9e0d7c6b-5a4f-4e3d-b2c1-a0f9e8d7c6b5",
        "nightly-integration",
        "QA",
        "7f8e9d0c-1b2a-4c3d-8e4f-5a6b7c8d9e0f",
        "Runs the integration suite every night",
        ("Provision", "Integration tests"),
        {"suite": "full"},
    ),
    SimPipeline(
        "2f6b8d0a-3c5e-4a7f-9b1d-e3f5a7c9b1d3",
        "prod-release",
        "Finance",
        "4d5e6f70-8192-4a3b-bc4d-5e6f708192a3",
        "Releases to production (the demo user is not a member of this project)",
        ("Release", "Smoke test"),
        member=False,
    ),
    SimPipeline(
        "7a1c3e5f-2b4d-4f6a-8c0e-9d1b3f5a7c2e",
        "legacy-import",
        "Demo",
        "2a4c6e8f-1b3d-4f5a-9c7e-0d2f4b6a8c1e",
        "An old import job, disabled",
        ("Import", "Report"),
        enabled=False,
    ),
]

#: What the two stages of a pipeline show while the execution is in each status.
STAGE_STATUSES: dict[str, tuple[str, str]] = {
    "NOT_STARTED": ("NOT_STARTED", "NOT_STARTED"),
    "QUEUED": ("NOT_STARTED", "NOT_STARTED"),
    "PREPARING_WORKSPACE": ("NOT_STARTED", "NOT_STARTED"),
    "STARTED": ("STARTED", "NOT_STARTED"),
    "RUNNING": ("RUNNING", "NOT_STARTED"),
    "WAITING": ("COMPLETED", "WAITING"),
    "PAUSING": ("PAUSING", "NOT_STARTED"),
    "PAUSED": ("PAUSED", "NOT_STARTED"),
    "RESUMING": ("RESUMING", "NOT_STARTED"),
    "CANCELING": ("CANCELING", "NOT_STARTED"),
    "CANCELED": ("CANCELED", "SKIPPED"),
    "COMPLETED": ("COMPLETED", "COMPLETED"),
    "FAILED": ("COMPLETED", "FAILED"),
    "FAILED_CONTINUE": ("FAILED_CONTINUE", "RUNNING"),
    "ROLLING_BACK": ("COMPLETED", "ROLLING_BACK"),
    "ROLLBACK_FAILED": ("COMPLETED", "ROLLBACK_FAILED"),
    "ROLLBACK_COMPLETED": ("COMPLETED", "ROLLBACK_COMPLETED"),
    "SKIPPED": ("SKIPPED", "SKIPPED"),
}

STATUS_MESSAGES: dict[str, str] = {
    "NOT_STARTED": "Execution not started.",
    "QUEUED": "Execution queued.",
    "PREPARING_WORKSPACE": "Preparing the workspace.",
    "STARTED": "Execution started.",
    "RUNNING": "Executing stage {0}.",
    "WAITING": "Waiting for approval at {1}.Approve.",
    "PAUSING": "Pausing execution.",
    "PAUSED": "Execution paused.",
    "RESUMING": "Resuming execution.",
    "CANCELING": "Canceling execution.",
    "CANCELED": "Execution canceled.",
    "COMPLETED": "Execution Completed.",
    "FAILED": "{1}.Run: script exited with status 1.",
    "FAILED_CONTINUE": "{0}.Lint failed; continuing because the task ignores failures.",
    "ROLLING_BACK": "{1} failed; rolling back.",
    "ROLLBACK_FAILED": "{1} failed and its rollback failed.",
    "ROLLBACK_COMPLETED": "{1} failed; rollback completed.",
    "SKIPPED": "Execution skipped: the pipeline's precondition was false.",
}

RUNNING_LIKE = frozenset({"STARTED", "RUNNING", "FAILED_CONTINUE", "WAITING", "ROLLING_BACK"})
#: Undocumented: the states in which the simulator lets an execution be paused.
PAUSABLE = frozenset({"STARTED", "RUNNING", "WAITING", "FAILED_CONTINUE"})
_PAUSE_STEPS = frozenset({"PAUSING", "PAUSED", "RESUMING"})
_FILTER_TERM = re.compile(r"^(\w+)\s+eq\s+'((?:[^']|'')*)'$")
_FILTER_FIELDS = frozenset({"project", "status", "name", "id", "index"})
_ORDER_FIELDS = frozenset(
    {"_requestTimeInMicros", "_createTimeInMicros", "_updateTimeInMicros", "index", "name", "status"}
)


def cs_time(ts: float) -> str:
    """Code Stream's own timestamp text, e.g. ``2019-09-16 09:25:38.065065+00``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def micros(ts: float) -> int:
    return round(ts * 1_000_000)


class CodeStreamSim(ServiceSim):
    key = "codestream"
    prefix = "/vra"
    terminal: ClassVar[frozenset[str]] = frozenset(
        {"COMPLETED", "FAILED", "CANCELED", "ROLLBACK_FAILED", "ROLLBACK_COMPLETED", "SKIPPED"}
    )
    scenarios: ClassVar[dict[str, Timeline]] = {
        "success": [
            (0, "NOT_STARTED"),
            (2, "QUEUED"),
            (5, "PREPARING_WORKSPACE"),
            (15, "STARTED"),
            (18, "RUNNING"),
            (75, "COMPLETED"),
        ],
        "failure": [
            (0, "NOT_STARTED"),
            (2, "QUEUED"),
            (5, "PREPARING_WORKSPACE"),
            (14, "RUNNING"),
            (50, "FAILED"),
        ],
        "approval": [
            (0, "QUEUED"),
            (4, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (35, "WAITING"),
            (125, "RUNNING"),
            (160, "COMPLETED"),
        ],
        # No FAILED before ROLLING_BACK: FAILED is terminal, and the execution is not over yet.
        "rollback_failed": [
            (0, "NOT_STARTED"),
            (3, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (55, "ROLLING_BACK"),
            (85, "ROLLBACK_FAILED"),
        ],
        "rollback_completed": [
            (0, "QUEUED"),
            (3, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (50, "ROLLING_BACK"),
            (80, "ROLLBACK_COMPLETED"),
        ],
        "continue_then_completed": [
            (0, "NOT_STARTED"),
            (3, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (40, "FAILED_CONTINUE"),
            (95, "COMPLETED"),
        ],
        "continue_then_failed": [
            (0, "QUEUED"),
            (3, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (45, "FAILED_CONTINUE"),
            (85, "FAILED"),
        ],
        # Someone cancels it in the Code Stream UI.
        "canceled": [
            (0, "NOT_STARTED"),
            (3, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (40, "CANCELING"),
            (46, "CANCELED"),
        ],
        # Someone pauses it in the UI and resumes it a minute later.
        "paused_and_resumed": [
            (0, "NOT_STARTED"),
            (3, "PREPARING_WORKSPACE"),
            (12, "RUNNING"),
            (30, "PAUSING"),
            (33, "PAUSED"),
            (100, "RESUMING"),
            (104, "RUNNING"),
            (140, "COMPLETED"),
        ],
        # A nested pipeline whose precondition is false.
        "skipped": [(0, "NOT_STARTED"), (2, "QUEUED"), (6, "SKIPPED")],
    }
    weights: ClassVar[dict[str, float]] = {
        "success": 10,
        "failure": 3,
        "approval": 2,
        "rollback_failed": 1,
        "rollback_completed": 1,
        "continue_then_completed": 1,
        "continue_then_failed": 1,
        "canceled": 1,
        "paused_and_resumed": 1,
        "skipped": 0.5,
    }
    default_credentials: ClassVar[dict[str, str]] = {"refresh_token": "sim-vra-refresh-7d3e91c4b25a"}
    expiring_tokens = True

    #: The success status of execute: the spec allows 200 and 202 (VMware's own tools expect 202).
    create_status = 202

    def setup_routes(self) -> None:
        self.pipelines: dict[str, SimPipeline] = {p.id: p for p in DEMO_PIPELINES}
        self.tokens: dict[str, float] = {}
        self.logins = 0
        self.indexes: dict[str, int] = {}
        self._ids = random.Random(self.rng.random())
        self.route("POST", "/iaas/api/login", self.login)
        self.route("GET", "/codestream/api/about", self._versioned(self.about))
        self.route("POST", "/codestream/api/pipelines/{pipeline}/executions", self._versioned(self.execute))
        self.route(
            "GET", "/codestream/api/pipelines/{pipeline}/executions", self._versioned(self.list_executions)
        )
        self.route("GET", "/codestream/api/executions/{execution}", self._versioned(self.get_execution))
        self.route("POST", "/codestream/api/executions/{execution}", self._versioned(self.act))

    # -- auth --------------------------------------------------------------------------------
    def authenticate(self, request: SimRequest) -> SimResponse | None:
        if request.path.rstrip("/") == "/iaas/api/login":
            return None
        token = request.bearer()
        if not token:
            return self._error(request, 401, "Missing bearer token in the Authorization header")
        with self.lock:
            issued = self.tokens.get(token)
            if issued is None or self.now() - issued >= TOKEN_LIFETIME:
                self.tokens.pop(token, None)
                return self._error(request, 401, "The access token is invalid or has expired")
        return None

    def issue_token(self) -> str:
        """A valid access token, as if the user had logged in elsewhere (for bearer sign-in)."""
        with self.lock:
            token = f"sim-vra-access-{self._ids.getrandbits(128):032x}"
            self.tokens[token] = self.now()
            return token

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def login(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            return self._login_error(400, "Invalid JSON in the request body.")
        refresh = body.get("refreshToken") if isinstance(body, dict) else None
        if not isinstance(refresh, str) or not refresh:
            # The real service's wording for a missing token.
            return self._login_error(400, "'refreshToken' can not be null.")
        if refresh != self.credentials.get("refresh_token"):
            # Undocumented: 400 (the spec's "bad data"), as users report for bad refresh tokens.
            return self._login_error(400, "Unable to authenticate: the refresh token is invalid or expired.")
        self.logins += 1
        return SimResponse.json(200, {"tokenType": "Bearer", "token": self.issue_token()})

    def _login_error(self, status: int, message: str) -> SimResponse:
        return SimResponse.json(
            status,
            {
                "message": message,
                "statusCode": status,
                "errorCode": 0,
                "serverErrorId": self._hex_id(),
                "documentKind": "com:vmware:xenon:common:ServiceErrorResponse",
            },
        )

    # -- errors ------------------------------------------------------------------------------
    def error(self, status: int, message: str) -> SimResponse:
        return self._error(None, status, message)

    def _error(self, request: SimRequest | None, status: int, message: str) -> SimResponse:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        path = request.path if request is not None else "/codestream/api"
        body = {
            "timestamp": epoch_ms(self.now()),
            "path": path,
            "status": status,
            "error": phrase,
            "message": message,
            "requestId": self._hex_id()[:16],
            "@type": ERROR_TYPE,
        }
        return SimResponse.json(status, body)

    def _hex_id(self) -> str:
        return f"{self._ids.getrandbits(128):032x}"

    def _versioned(self, handler: Handler) -> Handler:
        def checked(request: SimRequest) -> SimResponse:
            version = request.arg("apiVersion")
            if version and version not in API_VERSIONS:
                return self._error(
                    request, 400, f"Unsupported API version '{version}'; supported: {', '.join(API_VERSIONS)}"
                )
            return handler(request)

        return checked

    # -- demo values -------------------------------------------------------------------------
    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "auth_kind": "refresh_token",
            "refresh_token": self.credentials.get("refresh_token"),
            "project": "Demo",
        }

    def demo_request(self) -> dict[str, Any]:
        return {
            "pipeline_id": DEMO_PIPELINES[0].id,
            "input": {"branch": "main"},
            "tags": ["runmonitor"],
            "comments": "Started from RunMonitor",
        }

    # -- endpoints ---------------------------------------------------------------------------
    def about(self, request: SimRequest) -> SimResponse:
        return SimResponse.json(
            200,
            {
                "latestApiVersion": API_VERSIONS[-1],
                "supportedApis": [
                    {
                        "apiVersion": version,
                        "documentationLink": f"{DOCS_LINK}{version}",
                    }
                    for version in API_VERSIONS
                ],
            },
        )

    def execute(self, request: SimRequest) -> SimResponse:
        pipeline = self.pipelines.get(request.params["pipeline"].lower())
        if pipeline is None:
            return self._error(request, 404, f"Pipeline with id '{request.params['pipeline']}' not found")
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return self._error(request, 400, "Malformed JSON in the request body")
        if not isinstance(body, dict):
            return self._error(request, 400, "The request body must be an ExecutionRequest object")
        if not pipeline.member:
            return self._error(request, 403, f"You are not a member of project '{pipeline.project}'")
        if not pipeline.enabled:
            return self._error(request, 400, f"Pipeline '{pipeline.name}' is disabled")
        project = body.get("projectName")
        if project not in (None, "") and project != pipeline.project:
            return self._error(
                request, 400, f"Pipeline '{pipeline.name}' does not belong to project '{project}'"
            )
        given = body.get("input")
        if given is not None and not isinstance(given, dict):
            return self._error(request, 400, "'input' must be an object")
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            return self._error(request, 400, "'tags' must be a list of strings")
        execution_id = body.get("executionId")
        if execution_id in (None, ""):
            execution_id = self.new_id()
        if not isinstance(execution_id, str):
            return self._error(request, 400, "'executionId' must be a string")
        if execution_id in self.runs:
            # Undocumented: a duplicate client-chosen id is refused with 409 Conflict.
            return self._error(request, 409, f"Execution with id '{execution_id}' already exists")
        scenario, timeline = self.pick_timeline()
        run = self._new_run(
            pipeline,
            execution_id,
            scenario,
            timeline,
            by_client=True,
            inputs={**pipeline.inputs, **{str(k): str(v) for k, v in (given or {}).items()}},
            tags=list(tags or []),
            comments=str(body.get("comments") or ""),
            source=str(body.get("source") or ""),
            executed_by=SIM_USER,
        )
        return SimResponse.json(
            self.create_status,
            {
                "executionId": run.id,
                "executionIndex": run.data["index"],
                "executionLink": f"/codestream/api/executions/{run.id}",
            },
        )

    def _new_run(
        self,
        pipeline: SimPipeline,
        execution_id: str,
        scenario: str,
        timeline: Timeline,
        *,
        by_client: bool,
        inputs: dict[str, str],
        tags: list[str],
        comments: str,
        source: str,
        executed_by: str,
    ) -> SimRun:
        with self.lock:
            index = self.indexes.get(pipeline.id, 0) + 1
            self.indexes[pipeline.id] = index
            data = {
                "pipeline": pipeline.id,
                "index": index,
                "input": inputs,
                "tags": tags,
                "comments": comments,
                "source": source,
                "executed_by": executed_by,
                "reason": None,
            }
            run = SimRun(execution_id, pipeline.id, self.now(), timeline, scenario, by_client, data)
            return self.add_run(run)

    def get_execution(self, request: SimRequest) -> SimResponse:
        run = self.runs.get(request.params["execution"])
        if run is None:
            return self._error(request, 404, f"Execution with id '{request.params['execution']}' not found")
        expand = (request.arg("expand") or "").upper() == "PIPELINE_STAGE_TASK"
        return SimResponse.json(200, self.execution(run, expand=expand))

    def list_executions(self, request: SimRequest) -> SimResponse:
        pipeline = self.pipelines.get(request.params["pipeline"].lower())
        if pipeline is None:
            return self._error(request, 404, f"Pipeline with id '{request.params['pipeline']}' not found")
        try:
            terms = self._parse_filter(request.arg("$filter") or "")
            order_field, descending = self._parse_orderby(request.arg("$orderby") or "name desc")
            top = int(request.arg("$top") or 25)
            skip = int(request.arg("$skip") or 0) + int(request.arg("page") or 0) * top
            if top < 0 or skip < 0:
                raise ValueError("$top, $skip and page must not be negative")
        except ValueError as exc:
            return self._error(request, 400, str(exc))
        documents = [self.execution(run) for run in self.runs.values() if run.data["pipeline"] == pipeline.id]
        documents = [d for d in documents if all(str(d.get(k)) == v for k, v in terms)]
        documents.sort(key=lambda d: (d.get(order_field), d["index"]), reverse=descending)
        page = documents[skip : skip + top]
        return SimResponse.json(
            200,
            {
                "count": len(page),
                "totalCount": len(documents),
                "links": [d["_link"] for d in page],
                "documents": {d["_link"]: d for d in page},
            },
        )

    @staticmethod
    def _parse_filter(text: str) -> list[tuple[str, str]]:
        terms: list[tuple[str, str]] = []
        if not text.strip():
            return terms
        for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
            term = part.strip()
            while term.startswith("(") and term.endswith(")"):
                term = term[1:-1].strip()
            match = _FILTER_TERM.match(term)
            if not match or match.group(1) not in _FILTER_FIELDS:
                raise ValueError(f"Unsupported $filter expression: {part.strip()!r}")
            terms.append((match.group(1), match.group(2).replace("''", "'")))
        return terms

    @staticmethod
    def _parse_orderby(text: str) -> tuple[str, bool]:
        parts = text.split()
        if not parts or len(parts) > 2 or parts[0] not in _ORDER_FIELDS:
            raise ValueError(f"Unsupported $orderby: {text!r}")
        direction = parts[1].lower() if len(parts) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ValueError(f"Unsupported $orderby direction: {parts[1]!r}")
        return parts[0], direction == "desc"

    def act(self, request: SimRequest) -> SimResponse:
        run = self.runs.get(request.params["execution"])
        if run is None:
            return self._error(request, 404, f"Execution with id '{request.params['execution']}' not found")
        action = (request.arg("action") or "").lower()
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return self._error(request, 400, "Malformed JSON in the request body")
        if not isinstance(body, dict):
            body = {}
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        now = self.now()
        status = run.status_at(now)
        if action == "cancel":
            if status in self.terminal or status == "CANCELING":
                return self._refuse(request, run, status, "canceled")
            run.override(now, [(0, "CANCELING"), (3, "CANCELED")])
            run.data.pop("rest", None)
        elif action == "pause":
            if status not in PAUSABLE:
                return self._refuse(request, run, status, "paused")
            elapsed = now - run.created
            run.data["rest"] = [(o - elapsed, s) for o, s in run.timeline if o > elapsed]
            run.override(now, [(0, "PAUSING"), (2, "PAUSED")])
        elif action == "resume":
            if status != "PAUSED":
                return self._refuse(request, run, status, "resumed")
            rest = run.data.pop("rest", None)
            if rest is None:  # paused by the scenario (someone else in the UI)
                elapsed = now - run.created
                rest = [(o - elapsed, s) for o, s in run.timeline if o > elapsed]
            rest = [(o, s) for o, s in rest if s not in _PAUSE_STEPS]
            if rest and rest[0][1] == "RUNNING":
                rest = rest[1:]
            run.override(now, [(0, "RESUMING"), (2, "RUNNING"), *[(2 + max(o, 1.0), s) for o, s in rest]])
        elif action == "tag":
            tags = body.get("tags")
            if isinstance(tags, list):
                run.data["tags"] = list(dict.fromkeys([*run.data["tags"], *map(str, tags)]))
        else:
            return self._error(
                request, 400, f"Unsupported action '{action}'; supported: pause, resume, cancel, tag"
            )
        if reason and action != "tag":
            run.data["reason"] = reason
        return SimResponse.json(200, self.execution(run))

    def _refuse(self, request: SimRequest, run: SimRun, status: str, verb: str) -> SimResponse:
        # Undocumented: the wording and status (400) are the simulator's choice.
        return self._error(request, 400, f"Execution '{run.id}' is {status} and cannot be {verb}")

    # -- the Execution document --------------------------------------------------------------
    def execution(self, run: SimRun, *, expand: bool = False, now: float | None = None) -> dict[str, Any]:
        now = self.now() if now is None else now
        pipeline = self.pipelines[run.data["pipeline"]]
        status = run.status_at(now)
        updated = run.entered_at(now)
        started = next(
            (run.created + o for o, s in run.timeline if s in RUNNING_LIKE and run.created + o <= now), None
        )
        finished = status in self.terminal
        until = updated if finished else now
        stage_names = pipeline.stages
        message = STATUS_MESSAGES.get(status, status).format(*stage_names)
        stages: dict[str, Any] = {}
        for position, (name, stage_status) in enumerate(
            zip(stage_names, STAGE_STATUSES[status], strict=True)
        ):
            stage: dict[str, Any] = {
                "id": f"{run.id}~{position}",
                "name": name,
                "status": stage_status,
                "statusMessage": f"{name}: {stage_status.replace('_', ' ').lower()}",
                "taskOrder": [f"{name}.Run"],
                "notifications": [],
            }
            if stage_status != "NOT_STARTED" and started is not None:
                stage["_startTime"] = micros(started)
                if stage_status in self.terminal:
                    stage["_endTime"] = micros(updated)
                stage["_durationInMicros"] = micros(until - started)
            if expand:
                stage["tasks"] = {
                    f"{name}.Run": {
                        "id": f"{run.id}~{position}.0",
                        "name": f"{name}.Run",
                        "type": "SSH",
                        "status": stage_status,
                        "statusMessage": f"{name}.Run: {stage_status.replace('_', ' ').lower()}",
                        "input": {},
                        "output": {},
                        "ignoreFailure": status == "FAILED_CONTINUE",
                    }
                }
            stages[name] = stage
        body: dict[str, Any] = {
            "id": run.id,
            "name": pipeline.name,
            "description": pipeline.description,
            "project": pipeline.project,
            "_projectId": pipeline.project_id,
            "index": run.data["index"],
            "comments": run.data["comments"],
            "icon": "organization,left, is-pink",
            "version": "v1",
            "input": dict(run.data["input"]),
            "output": {"result": "success"} if status == "COMPLETED" else {},
            "tags": list(run.data["tags"]),
            "status": status,
            "statusMessage": message,
            "createdAt": cs_time(run.created),
            "updatedAt": cs_time(updated),
            "createdBy": run.data["executed_by"],
            "updatedBy": run.data["executed_by"],
            "_createdBy": run.data["executed_by"],
            "_updatedBy": run.data["executed_by"],
            "_createTimeInMicros": micros(run.created),
            "_updateTimeInMicros": micros(updated),
            "_requestTimeInMicros": micros(run.created),
            "_durationInMicros": micros(until - started) if started is not None else 0,
            "_totalDurationInMicros": micros(until - run.created),
            "_executedBy": run.data["executed_by"],
            "_triggeredBy": "MANUAL" if run.by_client else "GIT_TRIGGER",
            "_source": run.data["source"],
            "_link": f"/codestream/api/executions/{run.id}",
            "_pipelineLink": f"/codestream/api/pipelines/{pipeline.id}",
            "_nested": False,
            "_global": False,
            "_rollback": status in ("ROLLING_BACK", "ROLLBACK_FAILED", "ROLLBACK_COMPLETED"),
            "_inputMeta": {name: {"description": f"The {name} input"} for name in pipeline.inputs},
            "_outputMeta": {},
            "notifications": [],
            "starred": {},
            "stageOrder": list(stage_names),
            "stages": stages,
            "workspaceResults": [
                {
                    "step": "CREATE_CONTAINER",
                    "status": "RUNNING" if status == "PREPARING_WORKSPACE" else "COMPLETED",
                    "logs": [],
                }
            ]
            if started is not None or status == "PREPARING_WORKSPACE"
            else [],
        }
        if run.data.get("reason"):
            body["reason"] = run.data["reason"]
        return body

    # -- runs by others ----------------------------------------------------------------------
    def start_external_run(self, target: str, scenario: str | None = None) -> str:
        pipeline = self.pipelines.get(target.lower())
        if pipeline is None:
            raise ValueError(f"codestream has no pipeline {target!r}; known: {sorted(self.pipelines)}")
        name, timeline = self.pick_timeline(scenario)
        run = self._new_run(
            pipeline,
            self.new_id(),
            name,
            timeline,
            by_client=False,
            inputs=dict(pipeline.inputs),
            tags=["git"],
            comments="Triggered by a push to main",
            source="GIT_TRIGGER",
            executed_by="git-webhook",
        )
        return run.id


SIM = CodeStreamSim
