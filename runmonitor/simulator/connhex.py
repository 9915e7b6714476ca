"""Simulated Connhex Exporter (under ``/connhex``).

Endpoints: ``POST /exports`` (201), ``GET /exports`` (list), ``GET /exports/{id}/status``,
``DELETE /exports/{id}`` (204). Bearer auth behind a gateway. What the public docs leave
open is chosen here, plausibly, and marked "undocumented" below:

* The status body: ``{"id", "type", "status" (latest job), "jobs": [...newest first]}``,
  each job ``{"id", "exportId", "status", "notificationStatus", "createdAt", "startedAt",
  "updatedAt", "error"?}``; at most :attr:`ConnhexSim.max_jobs_listed` jobs are kept.
* The list: ``{"results": [export + "status" + "lastJob"], "page", "pageSize", "total"}``,
  ``page`` counting from 1, newest export first; filters ``type``, ``status``, ``ids``.
* One job per execution of an export (the docs allow several jobs per item).
* A recurring export gets a job at ``periodStart`` (default: creation) and every
  ``periodicity`` after it, computed lazily from the clock; a year counts 365 days and a
  month 30 days here.
* A finished job turns ``expired`` after :attr:`ConnhexSim.retention_seconds` (6 h).
* Queue quota: at most :attr:`ConnhexSim.max_queued` unfinished jobs per user (override
  with the credential knob ``max_queued_exports``); beyond it 429 "Maximum number of
  queued exports reached" with a Retry-After until the first of them should finish.
* Auth: no Authorization header passes the gateway anonymously and the exporter answers
  400 "Missing user identity id"; a wrong token gets the gateway's 401 (Ory shape).
  :attr:`ConnhexSim.drop_identity` makes the gateway lose the identity for every request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from runmonitor.simulator.engine import ServiceSim, SimRequest, SimResponse, SimRun, Timeline

#: The exporter's own answers, as the vendor's pages quote them (apis.md §4, specs/seeds): the
#: 429 when the user's queue is full, and the 400 when the gateway passed no identity. Written
#: out here, not taken from the client, so a client that expects other words fails the tests.
QUOTA_MESSAGE = "Maximum number of queued exports reached"
MISSING_IDENTITY_MESSAGE = "Missing user identity id"

#: ISO 8601 durations as the exporter is assumed to check them (undocumented, so strictly):
#: designators upper case and in order, each at most once, a fraction only on the last one.
_N = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"P(?:({_N})Y)?(?:({_N})M)?(?:({_N})W)?(?:({_N})D)?(?:T(?:({_N})H)?(?:({_N})M)?(?:({_N})S)?)?"
)
#: Seconds per designator; a year counts 365 days and a month 30 (see the module docstring).
_DURATION_SECONDS = (365 * 86400.0, 30 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0)


def duration_seconds(text: str) -> float:
    """The length of an ISO 8601 duration in seconds; ValueError unless it is a valid, positive one."""
    match = _DURATION.fullmatch(text)
    parts = match.groups() if match else ()
    given = [part for part in parts if part is not None]
    if not given or text.endswith("T") or any(re.search("[.,]", part) for part in given[:-1]):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    pairs = zip(parts, _DURATION_SECONDS, strict=True)
    seconds = sum(float(part.replace(",", ".")) * unit for part, unit in pairs if part is not None)
    if seconds <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return seconds


def valid_timezone(name: str) -> bool:
    """An IANA zone name, in any case (the exporter's own default is ``utc``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return name.casefold() in {zone.casefold() for zone in available_timezones()}
    return True


CLIENT = "client"
SOMEONE_ELSE = "someone-else"
QUEUED = frozenset({"notProcessed", "inProgress"})
ENDED = frozenset({"done", "failed"})
EXTENSIONS = ("csv", "xlsx", "pdf")
TEMPLATES = ("tabular", "expanded")
FUNCTIONS = ("avg", "max", "min", "sum", "stddev", "variance")
MEDIA = ("email", "telegram", "slack", "discord")
POLICIES = ("onSuccess", "onFailure")
FAILURES = {
    "failure": "No data points in the selected time range",
    "fail_before_start": "Export worker could not read the channel: access denied",
}
DEMO_CHANNEL = "0115c85d-ef3e-4de9-9732-d0c5c4f2c482"
DEMO_TARGET = "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:temp"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class SimExport:
    id: str
    owner: str
    type: str
    created: float
    body: dict[str, Any]
    period_start: float
    periodicity: float | None
    next_k: int = 0
    jobs: list[str] = field(default_factory=list)
    updated: float = 0.0


class ConnhexSim(ServiceSim):
    key = "connhex"
    prefix = "/connhex"
    terminal: ClassVar[frozenset[str]] = frozenset({"done", "failed", "expired"})
    scenarios: ClassVar[dict[str, Timeline]] = {
        "success": [(0, "notProcessed"), (4, "inProgress"), (30, "done")],
        "failure": [(0, "notProcessed"), (3, "inProgress"), (20, "failed")],
        # Exports run in the background with low priority: some wait a while in the queue.
        "queued_long": [(0, "notProcessed"), (45, "inProgress"), (150, "done")],
        "fail_before_start": [(0, "notProcessed"), (8, "failed")],
    }
    weights: ClassVar[dict[str, float]] = {
        "success": 6,
        "failure": 2,
        "queued_long": 1,
        "fail_before_start": 1,
    }
    default_credentials: ClassVar[dict[str, str]] = {"token": "sim-connhex-token-7d41e9b2c5"}
    queue_quota = True

    #: Unfinished jobs one user may have before creates get 429 (undocumented number).
    max_queued: int = 5
    #: How long a finished job's file is kept before the job becomes "expired".
    retention_seconds: float = 6 * 3600.0
    #: Jobs kept (and listed) per export; older ones are pruned.
    max_jobs_listed: int = 200
    #: When True the gateway forwards every request without the caller's identity.
    drop_identity: bool = False

    def setup_routes(self) -> None:
        self.exports: dict[str, SimExport] = {}
        knob = self.credentials.get("max_queued_exports")
        if knob is not None:
            self.max_queued = int(knob)
        self.route("POST", "/exports", self.create)
        self.route("GET", "/exports", self.list_exports)
        self.route("GET", "/exports/{export}/status", self.status)
        self.route("DELETE", "/exports/{export}", self.delete)

    # -- vendor shapes ---------------------------------------------------------------------
    def authenticate(self, request: SimRequest) -> SimResponse | None:
        if not request.header("authorization"):
            # Undocumented: the gateway lets anonymous requests through and the exporter
            # itself refuses them for lack of an identity.
            return self.error(400, MISSING_IDENTITY_MESSAGE)
        if request.bearer() != self.credentials["token"]:
            # The gateway (Ory Oathkeeper style) refuses an unknown token.
            return SimResponse.json(
                401,
                {
                    "error": {
                        "code": 401,
                        "status": "Unauthorized",
                        "message": "Access credentials are invalid",
                    }
                },
            )
        if self.drop_identity:
            return self.error(400, MISSING_IDENTITY_MESSAGE)
        return None

    def error(self, status: int, message: str) -> SimResponse:
        return self._errors(status, [message])

    def _errors(self, status: int, messages: list[str]) -> SimResponse:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        errors = [{"status": str(status), "title": title, "detail": m} for m in messages]
        return SimResponse.json(status, {"errors": errors})

    def quota_response(self) -> SimResponse:
        return self.error(429, QUOTA_MESSAGE)

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "token": self.credentials["token"]}

    def demo_request(self) -> dict[str, Any]:
        return {
            "type": "oneTime",
            "items": [
                {
                    "target": DEMO_TARGET,
                    "target_label": "temperature",
                    "channel_id": DEMO_CHANNEL,
                    "subtopic": "events.data",
                    "period": "P1D",
                    "decimation": {"interval": "15m", "function": "avg"},
                }
            ],
            "format": {"extension": "csv", "timezone": "Europe/Rome"},
        }

    # -- jobs --------------------------------------------------------------------------------
    def _new_job(self, export: SimExport, at: float, scenario: str | None = None) -> SimRun:
        name, timeline = self.pick_timeline(scenario)
        if timeline[-1][1] == "done":
            timeline = [*timeline, (timeline[-1][0] + self.retention_seconds, "expired")]
        run = SimRun(
            self.new_id(),
            export.id,
            at,
            timeline,
            name,
            by_client=export.owner == CLIENT,
            data={"error": FAILURES.get(name, "Export failed")},
        )
        self.runs[run.id] = run
        export.jobs.append(run.id)
        while len(export.jobs) > self.max_jobs_listed:
            self.runs.pop(export.jobs.pop(0), None)
        return run

    def _materialise(self, now: float) -> None:
        """Create the jobs recurring exports have scheduled up to ``now``."""
        for export in self.exports.values():
            period = export.periodicity
            if period is None or now < export.period_start:
                continue
            k_max = math.floor((now - export.period_start) / period)
            if k_max < export.next_k:
                continue
            for k in range(max(export.next_k, k_max - self.max_jobs_listed + 1), k_max + 1):
                self._new_job(export, export.period_start + k * period)
            export.next_k = k_max + 1

    def _jobs(self, export: SimExport) -> list[SimRun]:
        """The export's jobs, newest first."""
        return [self.runs[j] for j in reversed(export.jobs) if j in self.runs]

    def _end_of(self, run: SimRun) -> float:
        for offset, status in run.timeline:
            if status in ENDED:
                return run.created + offset
        return run.created + run.timeline[-1][0]

    def _queued(self, owner: str, now: float) -> list[SimRun]:
        return [
            run
            for export in self.exports.values()
            if export.owner == owner
            for run in self._jobs(export)
            if run.status_at(now) in QUEUED
        ]

    def _notification_status(self, export: SimExport, status: str) -> str | None:
        messages = export.body.get("notification", {}).get("messages") or []
        if not messages:
            return None
        if status in QUEUED:
            return "pending"
        wanted = {m.get("policy") for m in messages if isinstance(m, dict)}
        ok = status in ("done", "expired")
        return (
            "sent" if ("onSuccess" in wanted and ok) or ("onFailure" in wanted and not ok) else "notRequired"
        )

    def _job_dto(self, export: SimExport, run: SimRun, now: float) -> dict[str, Any]:
        status = run.status_at(now)
        dto: dict[str, Any] = {
            "id": run.id,
            "exportId": export.id,
            "status": status,
            "createdAt": _iso(run.created),
            "startedAt": _iso(run.time_of("inProgress", now)),
            "updatedAt": _iso(run.entered_at(now)),
        }
        notification = self._notification_status(export, status)
        if notification is not None:
            dto["notificationStatus"] = notification
        if status == "failed":
            dto["error"] = run.data.get("error")
        return dto

    def _export_dto(self, export: SimExport) -> dict[str, Any]:
        return {
            **export.body,
            "id": export.id,
            "createdAt": _iso(export.created),
            "updatedAt": _iso(export.updated or export.created),
            "deletedAt": None,
        }

    # -- request validation (the reference's constraints) ------------------------------------
    def _problems(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["body must be an object"]
        problems: list[str] = []
        kind = body.get("type")
        if kind not in ("oneTime", "recurring"):
            problems.append("type must be one of the following values: recurring, oneTime")
        fmt = body.get("format")
        if not isinstance(fmt, dict):
            problems.append("format must be an object")
        else:
            if fmt.get("extension") not in EXTENSIONS:
                problems.append("format.extension must be one of the following values: csv, xlsx, pdf")
            if "template" in fmt and fmt["template"] not in TEMPLATES:
                problems.append("format.template must be one of the following values: tabular, expanded")
            if "timezone" in fmt:
                if not valid_timezone(str(fmt["timezone"])):
                    problems.append("format.timezone must be a valid IANA time zone")
            columns = fmt.get("columns", [])
            if not isinstance(columns, list) or not all(
                isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("label"), str)
                for c in columns
            ):
                problems.append("format.columns must be a list of {id, label}")
        items = body.get("items")
        if not isinstance(items, list) or not items:
            problems.append("items must contain at least 1 elements")
        else:
            for index, item in enumerate(items):
                problems.extend(self._item_problems(index, item))
        periodicity = body.get("periodicity")
        if kind == "recurring":
            if not isinstance(periodicity, str):
                problems.append("periodicity is required for recurring exports")
            else:
                problems.extend(self._duration_problems("periodicity", periodicity))
        elif periodicity is not None:
            problems.append("periodicity is only allowed for recurring exports")
        if "periodStart" in body and not _is_number(body["periodStart"]):
            problems.append("periodStart must be a number")
        notification = body.get("notification")
        if not isinstance(notification, dict) or not isinstance(notification.get("messages"), list):
            problems.append("notification.messages must be an array")
        else:
            for index, message in enumerate(notification["messages"]):
                if (
                    not isinstance(message, dict)
                    or message.get("policy") not in POLICIES
                    or message.get("medium") not in MEDIA
                    or not isinstance(message.get("title"), str)
                    or not isinstance(message.get("text"), str)
                ):
                    problems.append(f"notification.messages.{index} must have policy, medium, title and text")
        return problems

    def _duration_problems(self, name: str, value: str) -> list[str]:
        try:
            duration_seconds(value)
        except ValueError:
            return [f"{name} must be a valid ISO 8601 duration"]
        return []

    def _item_problems(self, index: int, item: Any) -> list[str]:
        where = f"items.{index}.params"
        params = item.get("params") if isinstance(item, dict) else None
        if not isinstance(params, dict):
            return [f"{where} must be an object"]
        problems: list[str] = []
        target = params.get("target")
        if not isinstance(target, dict) or not isinstance(target.get("value"), str) or not target["value"]:
            problems.append(f"{where}.target.value must be a string")
        if not isinstance(params.get("channelId"), str) or not params["channelId"]:
            problems.append(f"{where}.channelId must be a string")
        if not isinstance(params.get("subtopic"), str) or not params["subtopic"]:
            problems.append(f"{where}.subtopic must be a string")
        for name in ("from", "to"):
            if name in params and not _is_number(params[name]):
                problems.append(f"{where}.{name} must be a number")
        if "period" in params:
            problems.extend(self._duration_problems(f"{where}.period", str(params["period"])))
        decimation = params.get("decimation")
        if decimation is not None and (
            not isinstance(decimation, dict)
            or not isinstance(decimation.get("ds"), str)
            or decimation.get("dsf") not in FUNCTIONS
        ):
            problems.append(f"{where}.decimation must have ds and dsf")
        return problems

    # -- handlers ----------------------------------------------------------------------------
    def create(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "Request body is not valid JSON")
        problems = self._problems(body)
        if problems:
            return self._errors(400, problems)
        now = self.now()
        self._materialise(now)
        queued = self._queued(CLIENT, now)
        if len(queued) >= self.max_queued:
            # Undocumented whether the service sends Retry-After; the simulator says when the
            # first queued job should have finished (in real seconds).
            wait = min(self._end_of(run) for run in queued) - now
            response = self.quota_response()
            retry = math.ceil(self.clock.to_real(max(wait, 1.0)))
            response.headers["Retry-After"] = str(max(1, min(retry, 3600)))
            return response
        export = self._add_export(body, CLIENT, now)
        self.creates += 1
        return SimResponse.json(201, self._export_dto(export))

    def _add_export(
        self, body: dict[str, Any], owner: str, now: float, scenario: str | None = None
    ) -> SimExport:
        stored = dict(body)
        stored["format"] = {"timezone": "utc", "template": "tabular", **body["format"]}
        periodicity: float | None = None
        period_start = now
        if body["type"] == "recurring":
            periodicity = duration_seconds(body["periodicity"])
            period_start = float(body.get("periodStart", now))
            stored["periodStart"] = body.get("periodStart", int(now))
        export = SimExport(self.new_id(), owner, body["type"], now, stored, period_start, periodicity)
        if periodicity is None:
            self._new_job(export, now, scenario)
        elif period_start < now:
            export.next_k = math.ceil((now - period_start) / periodicity)
        self.exports[export.id] = export
        self._materialise(now)
        return export

    def status(self, request: SimRequest) -> SimResponse:
        export = self.exports.get(request.params["export"])
        if export is None:
            return self.error(404, "Export not found")
        now = self.now()
        self._materialise(now)
        jobs = [self._job_dto(export, run, now) for run in self._jobs(export)]
        body: dict[str, Any] = {"id": export.id, "type": export.type, "jobs": jobs}
        if jobs:
            body["status"] = jobs[0]["status"]
        return SimResponse.json(200, body)

    def list_exports(self, request: SimRequest) -> SimResponse:
        now = self.now()
        self._materialise(now)
        try:
            page = int(request.arg("page") or 1)
            size = int(request.arg("pageSize") or 20)
        except ValueError:
            return self.error(400, "page and pageSize must be numbers")
        if page < 1 or not 1 <= size <= 100:
            return self.error(400, "page must be at least 1 and pageSize between 1 and 100")

        def values(name: str) -> set[str]:
            return {v for raw in request.query.get(name, []) for v in raw.split(",") if v}

        kinds, statuses, ids = values("type"), values("status"), values("ids")
        results = []
        for export in sorted(self.exports.values(), key=lambda e: e.created, reverse=True):
            jobs = self._jobs(export)
            latest = self._job_dto(export, jobs[0], now) if jobs else None
            if kinds and export.type not in kinds:
                continue
            if ids and export.id not in ids:
                continue
            if statuses and (latest is None or latest["status"] not in statuses):
                continue
            dto = self._export_dto(export)
            if latest is not None:
                dto["status"] = latest["status"]
                dto["lastJob"] = latest
            results.append(dto)
        chunk = results[(page - 1) * size : page * size]
        return SimResponse.json(
            200, {"results": chunk, "page": page, "pageSize": size, "total": len(results)}
        )

    def delete(self, request: SimRequest) -> SimResponse:
        export = self.exports.pop(request.params["export"], None)
        if export is None:
            return self.error(404, "Export not found")
        # Deleting an export removes its jobs too: queued ones never run.
        for job_id in export.jobs:
            self.runs.pop(job_id, None)
        return SimResponse.empty(204)

    # -- control -----------------------------------------------------------------------------
    def start_external_run(self, target: str, scenario: str | None = None) -> str:
        """A job someone else started: a new job of export ``target`` if it exists, else a new
        one-time export created by another user. Returns the job id."""
        with self.lock:
            now = self.now()
            self._materialise(now)
            export = self.exports.get(target)
            if export is not None:
                return self._new_job(export, now, scenario).id
            body = {
                "type": "oneTime",
                "format": {"extension": "xlsx", "timezone": "UTC"},
                "items": [
                    {
                        "params": {
                            "target": {"value": DEMO_TARGET},
                            "channelId": DEMO_CHANNEL,
                            "subtopic": "events.data",
                            "period": "P7D",
                        }
                    }
                ],
                "notification": {"messages": []},
            }
            export = self._add_export(body, SOMEONE_ELSE, now, scenario)
            return export.jobs[-1]

    def ground_truth(self) -> list[dict[str, Any]]:
        with self.lock:
            self._materialise(self.now())
            return super().ground_truth()


SIM = ConnhexSim
