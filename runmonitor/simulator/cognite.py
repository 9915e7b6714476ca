"""Simulated Cognite Data Fusion extraction pipelines API (under ``/cognite``).

Served paths (relative to the prefix):

* ``POST /oauth2/token``: an OAuth 2.0 client-credentials token endpoint (the part of
  Entra ID / Auth0 that CDF relies on). Tokens expire in *simulated* time.
* ``/api/v1/projects/{project}/extpipes…``: ``POST runs`` (report a run), ``POST runs/list``
  and ``GET runs`` (read reports, newest first), ``POST byids``, ``POST list``,
  ``GET /extpipes`` and ``GET /extpipes/{id}``.

Auth: ``Authorization: Bearer <token from the token endpoint>`` or the legacy
``api-key`` header. Refusals are Cognite's ``{"error": {"code": 401, "message": "Unauthorized"}}``.

A posted ``seen`` report starts a simulated extractor session: the timeline of the run
*is* its list of reports (``seen`` heartbeats, then ``success`` or ``failure``), and a
report exists once the clock has passed its time, so reports are materialised lazily
whenever someone reads them. A posted ``success``/``failure`` is a report on its own.
:meth:`CogniteSim.start_external_run` starts a session as if an extractor elsewhere had;
its extra scenario ``"silent"`` (not in :attr:`scenarios`, since it never ends) models
an extractor that crashed: heartbeats just stop.

Judgement calls where Cognite documents nothing (kept plausible, listed in the report):
the 400 body for an unknown pipeline (wrapped error with ``missing``), 403 "Resource not
found…" for a project the credentials cannot use, ``lastSeen`` = the newest report of any
status, ``lastMessage`` = the message of the newest failure (the spec calls it "Last
failure message"), 400 for a non-numeric ``GET /extpipes/{id}``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar
from urllib.parse import parse_qs

from runmonitor.simulator.engine import (
    ServiceSim,
    SimRequest,
    SimResponse,
    SimRun,
    Timeline,
    epoch_ms,
)

PROJECT = "acme-energy-dev"
TOKEN_PATH = "/oauth2/token"
#: Lifetime of issued access tokens, in simulated seconds (Entra ID's usual hour).
TOKEN_LIFETIME = 3600.0
MAX_ID = 9007199254740991

DEMO_PIPELINES: list[dict[str, Any]] = [
    {
        "id": 1841723458290144,
        "externalId": "pi-historian-timeseries",
        "name": "PI historian: Plant A time series",
        "dataSetId": 5402219311853010,
        "description": "Streams tag values from the OSIsoft PI historian at Plant A.",
        "source": "OSIsoft PI",
        "schedule": "Continuous",
        "createdBy": "ingestion-team@acme-energy.example",
        "contacts": [
            {
                "name": "Ingestion team",
                "email": "ingestion-team@acme-energy.example",
                "role": "Owner",
                "sendNotification": True,
            }
        ],
        "notificationConfig": {"allowedNotSeenRangeInMinutes": 30},
    },
    {
        "id": 6203981174456321,
        "externalId": "sap-s4-maintenance-orders",
        "name": "SAP S/4HANA maintenance orders",
        "dataSetId": 2830114970125637,
        "description": "Copies maintenance orders and notifications from SAP into CDF RAW.",
        "source": "SAP S/4HANA",
        "schedule": "0 */2 * * *",
        "createdBy": "sap-integration@acme-energy.example",
        "rawTables": [{"dbName": "sap", "tableName": "maintenance_orders"}],
    },
    {
        "id": 3377190245518870,
        "externalId": "opcua-compressor-station-3",
        "name": "OPC UA: compressor station 3",
        "dataSetId": 5402219311853010,
        "source": "OPC UA",
        "schedule": "Continuous",
        "createdBy": "ot-team@acme-energy.example",
    },
    {
        "id": 7751340028841190,
        "externalId": "sharepoint-engineering-docs",
        "name": "SharePoint engineering documents",
        "dataSetId": 8812076531144602,
        "description": "Nightly sync of P&IDs and datasheets.",
        "source": "SharePoint Online",
        "schedule": "@daily",
        "createdBy": "docs@acme-energy.example",
        "metadata": {"site": "engineering"},
    },
]

SUCCESS_MESSAGES = [
    "Extracted 18432 data points from 212 tags",
    "Upload complete: 1 204 rows to RAW sap.maintenance_orders",
    "Synced 37 new and 5 changed files",
    "Extraction finished without errors",
]
FAILURE_MESSAGES = [
    "Connection to the source timed out after 30 s (host pi-01.plant-a.local:5450)",
    "Authentication against the source system failed: password expired",
    "Upload to CDF failed: 400 Bad Request from /timeseries/data (duplicate externalId)",
    "Extractor stopped: unhandled exception in the OPC UA subscription (BadSessionIdInvalid)",
]


def _session(end: float, every: float, final: str) -> Timeline:
    """Heartbeats every ``every`` seconds from 0 until ``end``, then the final report."""
    steps: Timeline = []
    offset = 0.0
    while offset < end:
        steps.append((offset, "seen"))
        offset += every
    steps.append((end, final))
    return steps


SILENT: Timeline = [(0.0, "seen"), (10.0, "seen"), (20.0, "seen"), (30.0, "seen")]


class CogniteSim(ServiceSim):
    key = "cognite"
    prefix = "/cognite"
    terminal: ClassVar[frozenset[str]] = frozenset({"success", "failure"})
    scenarios: ClassVar[dict[str, Timeline]] = {
        "success": _session(40, 10, "success"),
        "failure": _session(25, 10, "failure"),
        "long": _session(180, 15, "success"),
        "quick": [(0.0, "seen"), (6.0, "success")],
        "early_failure": [(0.0, "seen"), (3.0, "failure")],
    }
    weights: ClassVar[dict[str, float]] = {
        "success": 6,
        "failure": 2,
        "long": 1,
        "quick": 1,
        "early_failure": 1,
    }
    default_credentials: ClassVar[dict[str, str]] = {
        "client_id": "sim-cdf-client-7d41c2",
        "client_secret": "sim-cdf-secret-9f3b6e28a1",
        "api_key": "sim-cdf-legacy-apikey-52c7e1",
    }
    expiring_tokens = True

    # -- setup ----------------------------------------------------------------------------
    def setup_routes(self) -> None:
        self.tokens: dict[str, float] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        created = epoch_ms(self.now() - 200 * 86400)
        for index, pipeline in enumerate(DEMO_PIPELINES):
            self.pipelines[pipeline["externalId"]] = {
                **pipeline,
                "createdTime": created + index * 3_600_000,
                "lastUpdatedTime": created + index * 3_600_000 + 86_400_000,
            }
        self._seed_history()

        base = "/api/v1/projects/{project}/extpipes"
        self.route("POST", TOKEN_PATH, self.issue)
        self.route("POST", base + "/runs/list", self.filter_runs)
        self.route("POST", base + "/runs", self.create_runs)
        self.route("GET", base + "/runs", self.get_runs)
        self.route("POST", base + "/byids", self.by_ids)
        self.route("POST", base + "/list", self.list_pipelines)
        self.route("GET", base, self.get_pipelines)
        self.route("GET", base + "/{id}", self.show_pipeline)

    def _seed_history(self) -> None:
        """Finished sessions in the past, so a watched pipeline has a history from the start."""
        now = self.now()
        plan = [
            ("pi-historian-timeseries", 26 * 3600, "success"),
            ("pi-historian-timeseries", 3 * 3600, "failure"),
            ("pi-historian-timeseries", 2 * 3600, "success"),
            ("sap-s4-maintenance-orders", 4 * 3600, "success"),
            ("opcua-compressor-station-3", 30 * 3600, "failure"),
            ("sharepoint-engineering-docs", 20 * 3600, "success"),
        ]
        for target, ago, scenario in plan:
            name, timeline = self.pick_timeline(scenario)
            self._add_session(target, now - ago, timeline, name, by_client=False)

    # -- the vendor's shapes --------------------------------------------------------------
    def error(self, status: int, message: str, **extra: Any) -> SimResponse:
        return SimResponse.json(status, {"error": {"code": status, "message": message, **extra}})

    def quota_response(self) -> SimResponse:
        # CDF's documented 429 [spec components.responses.429ErrorResponse example].
        return self.error(
            429, "Project exceeded maximum number='50' of concurrent requests. Please try again later."
        )

    def authenticate(self, request: SimRequest) -> SimResponse | None:
        if request.path == TOKEN_PATH:
            return None  # the token endpoint checks the client itself
        token = request.bearer()
        api_key = request.header("api-key")
        if token is not None:
            expires = self.tokens.get(token)
            if expires is None or expires <= self.now():
                return self.error(401, "Unauthorized")
        elif api_key is None or api_key != self.credentials["api_key"]:
            return self.error(401, "Unauthorized")
        project = request.params.get("project")
        if project is not None and project != PROJECT:
            # CDF's answer for a project the credentials have no access to (or that does not exist).
            return self.error(403, "Resource not found. This may also be due to insufficient access rights.")
        return None

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "project": PROJECT,
            "auth_kind": "client_credentials",
            "token_url": base_url + TOKEN_PATH,
            "client_id": self.credentials["client_id"],
            "client_secret": self.credentials["client_secret"],
        }

    def demo_request(self) -> dict[str, Any]:
        return {
            "external_id": "pi-historian-timeseries",
            "status": "seen",
            "message": "Extractor started from RunMonitor",
        }

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    @classmethod
    def spread_over_demo_targets(cls, demo: dict[str, Any]) -> list[dict[str, Any]]:
        # The cost of a status check grows with the sessions on the same pipeline (the client
        # reads the reports after its own), and a real pipeline has one extractor, not hundreds.
        return [{**demo, "external_id": p["externalId"]} for p in DEMO_PIPELINES]

    def final_statuses(self, now: float) -> dict[str, str]:
        """A CDF "run" is a status report, and the vendor's data cannot say which later report
        belongs to which of several sessions running at once on one pipeline. So the truth for a
        run is what the API shows: the first ``success``/``failure`` report at or after it
        (``seen`` while there is none; see runmonitor/services/cognite.py)."""
        out: dict[str, str] = {}
        with self.lock:
            by_target: dict[str, list[dict[str, Any]]] = {}
            for run in self.runs.values():
                reports = by_target.get(run.target)
                if reports is None:
                    reports = by_target[run.target] = sorted(
                        self.reports(run.target), key=lambda i: (i["createdTime"], i["id"])
                    )
                mine = epoch_ms(run.created)
                out[run.id] = next(
                    (
                        r["status"]
                        for r in reports
                        if r["createdTime"] >= mine and r["status"] in self.terminal
                    ),
                    "seen",
                )
        return out

    def issue_token(self, lifetime: float = TOKEN_LIFETIME) -> str:
        """Mint an access token directly (for tests of the bearer-token sign-in)."""
        with self.lock:
            token = f"sim-cdf-at-{self.rng.getrandbits(96):024x}"
            self.tokens[token] = self.now() + lifetime
            return token

    # -- sessions and reports -------------------------------------------------------------
    def _base_id(self) -> int:
        # Ids stay below 2**53 - 1 (the spec's maximum), with room for 1000 reports per session.
        return self.rng.randrange(10**12, 9 * 10**12) * 1000

    def _add_session(
        self,
        target: str,
        created: float,
        timeline: Timeline,
        scenario: str,
        *,
        by_client: bool,
        first_message: str | None = None,
    ) -> SimRun:
        messages: list[str | None] = [None] * len(timeline)
        messages[0] = first_message
        final = timeline[-1][1]
        if final == "success":
            messages[-1] = self.rng.choice(SUCCESS_MESSAGES)
        elif final == "failure":
            messages[-1] = self.rng.choice(FAILURE_MESSAGES)
        base = self._base_id()
        run = SimRun(
            str(base),
            target,
            created,
            timeline,
            scenario,
            by_client=by_client,
            data={"base_id": base, "messages": messages},
        )
        return self.add_run(run)

    def _reports_of(self, run: SimRun, now: float) -> list[dict[str, Any]]:
        out = []
        for index, (offset, status) in enumerate(run.timeline):
            at = run.created + offset
            if index > 0 and at > now:
                break  # the first report exists from the moment it was posted
            item: dict[str, Any] = {
                "id": run.data["base_id"] + index,
                "status": status,
                "createdTime": epoch_ms(at),
            }
            message = run.data["messages"][index]
            if message:
                item["message"] = message
            out.append(item)
        return out

    def reports(self, target: str) -> list[dict[str, Any]]:
        """Every report of a pipeline so far, newest first (as the API sorts them)."""
        now = self.now()
        items = [
            item for run in self.runs.values() if run.target == target for item in self._reports_of(run, now)
        ]
        items.sort(key=lambda i: (i["createdTime"], i["id"]), reverse=True)
        return items

    def _pipeline_view(self, pipeline: dict[str, Any]) -> dict[str, Any]:
        view = dict(pipeline)
        reports = self.reports(pipeline["externalId"])
        if reports:
            view["lastSeen"] = reports[0]["createdTime"]
        for status, field in (("success", "lastSuccess"), ("failure", "lastFailure")):
            latest = next((r for r in reports if r["status"] == status), None)
            if latest is not None:
                view[field] = latest["createdTime"]
                if status == "failure" and latest.get("message"):
                    view["lastMessage"] = latest["message"]
        return view

    def start_external_run(self, target: str, scenario: str | None = None) -> str:
        if target not in self.pipelines:
            raise ValueError(f"no extraction pipeline {target!r} in project {PROJECT}")
        if scenario == "silent":
            # A crashed extractor: three heartbeats, then nothing ever again.
            run = self._add_session(target, self.now(), list(SILENT), "silent", by_client=False)
            return run.id
        name, timeline = self.pick_timeline(scenario)
        return self._add_session(target, self.now(), timeline, name, by_client=False).id

    # -- request parsing ------------------------------------------------------------------
    def _json_object(self, request: SimRequest) -> dict[str, Any] | SimResponse:
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "Unable to parse request body as JSON")
        if not isinstance(body, dict):
            return self.error(400, "Expected a JSON object as request body")
        return body

    def _limit(self, value: Any) -> int | SimResponse:
        if value is None:
            return 100
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            return self.error(400, "limit must be an integer between 1 and 1000")
        return value

    @staticmethod
    def _cursor(offset: int) -> str:
        return base64.urlsafe_b64encode(f"sim:{offset}".encode()).decode().rstrip("=")

    def _offset(self, cursor: Any) -> int | SimResponse:
        if cursor is None:
            return 0
        try:
            text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode()
            if not text.startswith("sim:"):
                raise ValueError(text)
            return int(text[4:])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return self.error(400, "Invalid cursor")

    def _page_args(self, limit: Any, cursor: Any) -> tuple[int, int] | SimResponse:
        """The checked (limit, offset) of a list request, or the refusal."""
        checked_limit = self._limit(limit)
        if isinstance(checked_limit, SimResponse):
            return checked_limit
        offset = self._offset(cursor)
        if isinstance(offset, SimResponse):
            return offset
        return checked_limit, offset

    @staticmethod
    def _query_limit(request: SimRequest) -> Any:
        """The ``limit`` query parameter as a number (-1 when it is not one, None when absent)."""
        raw = request.arg("limit")
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return -1

    def _page(self, items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
        page: dict[str, Any] = {"items": items[offset : offset + limit]}
        if offset + limit < len(items):
            page["nextCursor"] = self._cursor(offset + limit)
        return page

    # -- handlers -------------------------------------------------------------------------
    def issue(self, request: SimRequest) -> SimResponse:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return SimResponse.json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only client_credentials is supported.",
                },
            )
        if (
            form.get("client_id") != self.credentials["client_id"]
            or form.get("client_secret") != self.credentials["client_secret"]
        ):
            return SimResponse.json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "Invalid client secret provided. Ensure the secret being sent in "
                    "the request is the client secret value, not the client secret ID.",
                },
            )
        scope = form.get("scope", "")
        if not scope or not all(s.endswith("/.default") for s in scope.split()):
            return SimResponse.json(
                400,
                {
                    "error": "invalid_scope",
                    "error_description": "Client credential flows must have a scope value with /.default "
                    "suffixed to the resource identifier (application ID URI).",
                },
            )
        token = self.issue_token()
        return SimResponse.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": int(TOKEN_LIFETIME) - 1,
                "ext_expires_in": int(TOKEN_LIFETIME) - 1,
                "access_token": token,
            },
        )

    def create_runs(self, request: SimRequest) -> SimResponse:
        body = self._json_object(request)
        if isinstance(body, SimResponse):
            return body
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 1000:
            return self.error(400, "items must be a list of 1 to 1000 run reports")
        checked = []
        missing = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                return self.error(400, f"items[{index}] must be an object")
            external_id = item.get("externalId")
            status = item.get("status")
            message = item.get("message")
            created = item.get("createdTime")
            if not isinstance(external_id, str) or not 1 <= len(external_id) <= 255:
                return self.error(400, f"items[{index}].externalId must be 1-255 characters")
            if status not in ("success", "failure", "seen"):
                return self.error(
                    400, f"items[{index}].status must be one of success, failure, seen; got {status!r}"
                )
            if message is not None and (not isinstance(message, str) or len(message) > 1000):
                return self.error(400, f"items[{index}].message must be a string of at most 1000 characters")
            if created is not None and (
                isinstance(created, bool) or not isinstance(created, int) or created < 0
            ):
                return self.error(400, f"items[{index}].createdTime must be a non-negative integer")
            if external_id not in self.pipelines:
                missing.append({"externalId": external_id})
            checked.append((external_id, status, message, created))
        if missing:
            return self.error(400, "Extraction pipelines not found", missing=missing)
        answer = []
        for external_id, status, message, created in checked:
            at = created / 1000 if created is not None else self.now()
            if status == "seen":
                # Someone's extractor has started: it keeps heartbeating and then finishes.
                name, timeline = self.pick_timeline()
                run = self._add_session(
                    external_id, at, timeline, name, by_client=True, first_message=message
                )
            else:
                run = self._add_session(
                    external_id, at, [(0.0, status)], "report", by_client=True, first_message=message
                )
                # A lone report keeps exactly the client's message (no invented outcome text).
                run.data["messages"][0] = message
            item = self._reports_of(run, self.now())[0]
            answer.append({**item, "externalId": external_id})
        return SimResponse.json(200, {"items": answer})

    def _filtered(
        self, external_id: str, statuses: Any, created: Any, message: Any
    ) -> list[dict[str, Any]] | SimResponse:
        items = self.reports(external_id)
        if statuses is not None:
            if not isinstance(statuses, list) or any(
                s not in ("success", "failure", "seen") for s in statuses
            ):
                return self.error(400, "filter.statuses may only contain success, failure, seen")
            items = [i for i in items if i["status"] in statuses]
        if created is not None:
            if not isinstance(created, dict):
                return self.error(400, "filter.createdTime must be an object with min and/or max")
            low, high = created.get("min"), created.get("max")
            for bound in (low, high):
                if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 0):
                    return self.error(400, "filter.createdTime min/max must be non-negative integers")
            items = [
                i
                for i in items
                if (low is None or i["createdTime"] >= low) and (high is None or i["createdTime"] <= high)
            ]
        if message is not None:
            substring = message.get("substring") if isinstance(message, dict) else None
            if not isinstance(substring, str):
                return self.error(400, "filter.message must be an object with a substring")
            items = [i for i in items if substring.casefold() in i.get("message", "").casefold()]
        return items

    def filter_runs(self, request: SimRequest) -> SimResponse:
        body = self._json_object(request)
        if isinstance(body, SimResponse):
            return body
        filter_ = body.get("filter")
        if not isinstance(filter_, dict):
            return self.error(400, "filter is required")
        external_id = filter_.get("externalId")
        if not isinstance(external_id, str) or not 1 <= len(external_id) <= 255:
            return self.error(400, "filter.externalId is required (1-255 characters)")
        paging = self._page_args(body.get("limit"), body.get("cursor"))
        if isinstance(paging, SimResponse):
            return paging
        # An unknown externalId simply has no runs (an empty list, as a filter does).
        items = self._filtered(
            external_id, filter_.get("statuses"), filter_.get("createdTime"), filter_.get("message")
        )
        if isinstance(items, SimResponse):
            return items
        return SimResponse.json(200, self._page(items, *paging))

    def get_runs(self, request: SimRequest) -> SimResponse:
        external_id = request.arg("externalId")
        if not external_id:
            return self.error(400, "Query parameter externalId is required")
        paging = self._page_args(self._query_limit(request), request.arg("cursor"))
        if isinstance(paging, SimResponse):
            return paging
        return SimResponse.json(200, self._page(self.reports(external_id), *paging))

    def by_ids(self, request: SimRequest) -> SimResponse:
        body = self._json_object(request)
        if isinstance(body, SimResponse):
            return body
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 1000:
            return self.error(400, "items must be a list of 1 to 1000 identifiers")
        by_id = {p["id"]: p for p in self.pipelines.values()}
        found = []
        missing = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("externalId"), str):
                pipeline = self.pipelines.get(item["externalId"])
            elif isinstance(item, dict) and isinstance(item.get("id"), int):
                pipeline = by_id.get(item["id"])
            else:
                return self.error(400, 'each item must be {"id": …} or {"externalId": …}')
            if pipeline is None:
                missing.append(item)
            else:
                found.append(self._pipeline_view(pipeline))
        if missing and not body.get("ignoreUnknownIds", False):
            return self.error(400, "Extraction pipelines not found", missing=missing)
        return SimResponse.json(200, {"items": found})

    def _all_pipelines(self) -> list[dict[str, Any]]:
        return [self._pipeline_view(p) for p in sorted(self.pipelines.values(), key=lambda p: p["id"])]

    def list_pipelines(self, request: SimRequest) -> SimResponse:
        body = self._json_object(request)
        if isinstance(body, SimResponse):
            return body
        paging = self._page_args(body.get("limit"), body.get("cursor"))
        if isinstance(paging, SimResponse):
            return paging
        pipelines = self._all_pipelines()
        filter_ = body.get("filter") or {}
        if isinstance(filter_, dict) and isinstance(filter_.get("externalIdPrefix"), str):
            pipelines = [p for p in pipelines if p["externalId"].startswith(filter_["externalIdPrefix"])]
        return SimResponse.json(200, self._page(pipelines, *paging))

    def get_pipelines(self, request: SimRequest) -> SimResponse:
        paging = self._page_args(self._query_limit(request), request.arg("cursor"))
        if isinstance(paging, SimResponse):
            return paging
        return SimResponse.json(200, self._page(self._all_pipelines(), *paging))

    def show_pipeline(self, request: SimRequest) -> SimResponse:
        text = request.params["id"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
            return self.error(400, f"Invalid id: {text!r} is not a positive integer")
        pipeline = next((p for p in self.pipelines.values() if p["id"] == int(text)), None)
        if pipeline is None:
            return self.error(400, "Extraction pipelines not found", missing=[{"id": int(text)}])
        return SimResponse.json(200, self._pipeline_view(pipeline))


SIM = CogniteSim
