"""Simulated Marquez API server (under ``/marquez``; the API itself under ``/marquez/api/v1``).

What it does, as Marquez 0.51 does (``JobResource``, ``RunResource``, ``RunService``):

* namespaces (``default`` plus ``analytics`` with demo jobs): list, get, create (PUT);
* jobs: list, get, create (PUT, ``CreatedJob``);
* runs: create (POST, 201 + ``Location``), get, list per job (``{"runs", "totalCount"}``,
  ``startedAt`` descending, nulls last), transitions ``start|complete|fail|abort?at=``;
* errors as Dropwizard writes them: ``{"code": int, "message": str}``, with Marquez's messages
  ("Job '%s' not found.", "Run '%s' already exists for '%s' under namespace '%s'." …).

A run created through the API starts NEW. Real Marquez leaves it there until a producer (the
job's OpenLineage integration) reports progress; here a simulated producer moves it along the
scenario's timeline. An explicit transition call takes the run over: the producer's remaining
steps are dropped (``SimRun.override``), as a manual mark is what the caller wants to see.

Marquez has no authentication. When the credentials hold a ``token`` (see
:meth:`MarquezSim.auth_required_credentials`), the simulator behaves like an authenticating
gateway in front of it: ``Authorization: Bearer <token>`` or a 401.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import unquote

from runmonitor.simulator.engine import ServiceSim, SimRequest, SimResponse, SimRun, Timeline, iso

DEMO_NAMESPACE = "analytics"
DEMO_JOBS = {
    "daily_orders_etl": "Loads yesterday's orders into the warehouse.",
    "refresh_customer_metrics": "Recomputes customer lifetime value and churn scores.",
    "nightly_revenue_rollup": "Aggregates revenue per region and product line.",
}
DONE = frozenset({"COMPLETED", "FAILED", "ABORTED"})
TRANSITIONS = {"start": "RUNNING", "complete": "COMPLETED", "fail": "FAILED", "abort": "ABORTED"}
JOB_TYPES = frozenset({"BATCH", "STREAM", "SERVICE"})


def _key(name: str) -> str:
    # Namespaces are case-insensitive in Marquez; job names are compared as given.
    return name.casefold()


def _parse_instant(text: str) -> datetime | None:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Java's Instant.parse wants a zone.
    return parsed if parsed.tzinfo is not None else None


class MarquezSim(ServiceSim):
    key = "marquez"
    prefix = "/marquez"
    terminal: ClassVar[frozenset[str]] = DONE
    scenarios: ClassVar[dict[str, Timeline]] = {
        "completed": [(0, "NEW"), (4, "RUNNING"), (75, "COMPLETED")],
        "failed": [(0, "NEW"), (3, "RUNNING"), (40, "FAILED")],
        "aborted": [(0, "NEW"), (5, "RUNNING"), (30, "ABORTED")],
        "long": [(0, "NEW"), (20, "RUNNING"), (200, "COMPLETED")],
        # A producer that reports FAIL without ever sending START (setup failed).
        "failed_before_start": [(0, "NEW"), (12, "FAILED")],
    }
    weights: ClassVar[dict[str, float]] = {
        "completed": 6,
        "failed": 2,
        "aborted": 1,
        "long": 1,
        "failed_before_start": 0.5,
    }
    # Marquez itself has no authentication: no credentials unless a gateway is simulated.
    default_credentials: ClassVar[dict[str, str]] = {}

    def setup_routes(self) -> None:
        seeded = self.now() - 14 * 86400
        #: casefolded namespace name -> namespace record
        self.namespaces: dict[str, dict[str, Any]] = {}
        #: (casefolded namespace, job name) -> job record
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self._add_namespace("default", "anonymous", None, seeded)
        self._add_namespace(DEMO_NAMESPACE, "data-platform", "Warehouse and reporting jobs", seeded)
        for index, (name, description) in enumerate(DEMO_JOBS.items()):
            self._add_job(DEMO_NAMESPACE, name, "BATCH", description, seeded + 3600 * (index + 1))
        api = "/api/v1"
        self.route("GET", f"{api}/namespaces", self.list_namespaces)
        self.route("GET", f"{api}/namespaces/{{namespace}}", self.get_namespace)
        self.route("PUT", f"{api}/namespaces/{{namespace}}", self.put_namespace)
        self.route("GET", f"{api}/namespaces/{{namespace}}/jobs", self.list_jobs)
        self.route("GET", f"{api}/namespaces/{{namespace}}/jobs/{{job}}", self.get_job)
        self.route("PUT", f"{api}/namespaces/{{namespace}}/jobs/{{job}}", self.put_job)
        self.route("GET", f"{api}/namespaces/{{namespace}}/jobs/{{job}}/runs", self.list_runs)
        self.route("POST", f"{api}/namespaces/{{namespace}}/jobs/{{job}}/runs", self.create_run)
        self.route("GET", f"{api}/jobs/runs/{{id}}", self.get_run)
        self.route("POST", f"{api}/jobs/runs/{{id}}/{{transition}}", self.transition)

    # -- vendor shapes --------------------------------------------------------------------
    def authenticate(self, request: SimRequest) -> SimResponse | None:
        token = self.credentials.get("token")
        if not token:
            return None
        if request.bearer() != token:
            # Not Marquez: a gateway in front of it (the shape is Kong's; others are similar).
            return SimResponse.json(
                401, {"message": "Unauthorized"}, {"WWW-Authenticate": 'Bearer realm="marquez"'}
            )
        return None

    def error(self, status: int, message: str) -> SimResponse:
        # Dropwizard's ErrorMessage.
        return SimResponse.json(status, {"code": status, "message": message})

    @classmethod
    def auth_required_credentials(cls) -> dict[str, str]:
        return {"token": "sim-marquez-gateway-token-7d1e"}

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        values: dict[str, Any] = {"base_url": base_url, "namespace": DEMO_NAMESPACE}
        if self.credentials.get("token"):
            values["token"] = self.credentials["token"]
        return values

    def demo_request(self) -> dict[str, Any]:
        return {"job": next(iter(DEMO_JOBS))}

    # -- records --------------------------------------------------------------------------
    def _add_namespace(self, name: str, owner: str, description: str | None, at: float) -> dict[str, Any]:
        record = {"name": name, "ownerName": owner, "description": description, "created": at, "updated": at}
        self.namespaces[_key(name)] = record
        return record

    def _add_job(
        self, namespace: str, name: str, kind: str, description: str | None, at: float
    ) -> dict[str, Any]:
        ns = self.namespaces[_key(namespace)]
        record = {
            "namespace": ns["name"],
            "name": name,
            "type": kind,
            "description": description,
            "location": None,
            "created": at,
            "updated": at,
        }
        self.jobs[(_key(namespace), name)] = record
        return record

    def _namespace_body(self, ns: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": ns["name"],
            "createdAt": iso(ns["created"]),
            "updatedAt": iso(ns["updated"]),
            "ownerName": ns["ownerName"],
            "isHidden": False,
        }
        if ns["description"] is not None:
            body["description"] = ns["description"]
        return body

    def _job_runs(self, job: dict[str, Any]) -> list[SimRun]:
        target = f"{job['namespace']}/{job['name']}"
        return [run for run in self.runs.values() if run.target == target]

    def _job_body(self, job: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        runs = sorted(self._job_runs(job), key=lambda r: r.created, reverse=True)
        body: dict[str, Any] = {
            "id": {"namespace": job["namespace"], "name": job["name"]},
            "type": job["type"],
            "name": job["name"],
            "simpleName": job["name"],
            "createdAt": iso(job["created"]),
            "updatedAt": iso(max([job["updated"], *(r.entered_at(now) for r in runs)])),
            "namespace": job["namespace"],
            "inputs": [],
            "outputs": [],
            "context": {},
            "latestRuns": [self._run_body(r, now) for r in runs[:10]],
            "facets": {},
        }
        if job["description"] is not None:
            body["description"] = job["description"]
        if job["location"] is not None:
            body["location"] = job["location"]
        if runs:
            body["latestRun"] = self._run_body(runs[0], now)
        return body

    def _moments(self, run: SimRun, now: float) -> tuple[float | None, float | None]:
        """startedAt and endedAt as Marquez keeps them: the latest start and the latest end.

        Neither is ever cleared, so a START processed after the end leaves ``endedAt`` set on a
        RUNNING run (MarquezProject/marquez#2264).
        """
        started: float | None = None
        ended: float | None = None
        elapsed = now - run.created
        for offset, status in run.timeline:
            if offset > elapsed:
                break
            if status == "RUNNING":
                started = run.created + offset
            elif status in DONE:
                ended = run.created + offset
        return started, ended

    def _run_body(self, run: SimRun, now: float | None = None) -> dict[str, Any]:
        """A Run: absent values are left out (the spec's date-time fields are not nullable)."""
        now = self.now() if now is None else now
        state = run.status_at(now)
        started, ended = self._moments(run, now)
        body: dict[str, Any] = {
            "id": run.id,
            "createdAt": iso(run.created),
            "updatedAt": iso(run.entered_at(now)),
        }
        for field in ("nominalStartTime", "nominalEndTime"):
            if run.data.get(field):
                body[field] = run.data[field]
        body["state"] = state
        if started is not None:
            body["startedAt"] = iso(started)
        if ended is not None:
            body["endedAt"] = iso(ended)
        if started is not None and ended is not None and ended >= started:
            body["durationMs"] = round((ended - started) * 1000)
        body["args"] = dict(run.data.get("args") or {})
        if state == "COMPLETED":
            # Marquez creates a job version when a run completes.
            namespace, _, job = run.target.partition("/")
            version = uuid.uuid5(uuid.NAMESPACE_URL, f"marquez-sim:{run.target}:{run.id}")
            body["jobVersion"] = {"namespace": namespace, "name": job, "version": str(version)}
        body["inputDatasetVersions"] = []
        body["outputDatasetVersions"] = []
        body["facets"] = {}
        return body

    # -- lookups ------------------------------------------------------------------------------
    def _namespace(self, request: SimRequest) -> tuple[dict[str, Any] | None, str]:
        name = unquote(request.params["namespace"])
        return self.namespaces.get(_key(name)), name

    def _job(self, request: SimRequest) -> tuple[dict[str, Any] | None, SimResponse | None]:
        ns, ns_name = self._namespace(request)
        if ns is None:
            return None, self.error(404, f"Namespace '{ns_name}' not found.")
        name = unquote(request.params["job"])
        job = self.jobs.get((_key(ns_name), name))
        if job is None:
            return None, self.error(404, f"Job '{name}' not found.")
        return job, None

    def _run(self, request: SimRequest) -> tuple[SimRun | None, SimResponse | None]:
        raw = unquote(request.params["id"])
        try:
            run_id = str(uuid.UUID(raw))
        except ValueError:
            # Jersey cannot convert the path parameter: a plain 404.
            return None, self.error(404, "HTTP 404 Not Found")
        run = self.runs.get(run_id)
        if run is None:
            return None, self.error(404, f"Run '{run_id}' not found.")
        return run, None

    def _page(self, request: SimRequest) -> tuple[int, int] | SimResponse:
        values = []
        for name, default in (("limit", 100), ("offset", 0)):
            text = request.arg(name)
            try:
                value = default if text in (None, "") else int(text)
            except ValueError:
                # Jersey cannot convert the query parameter: a plain 404.
                return self.error(404, "HTTP 404 Not Found")
            if value < 0:
                return SimResponse.json(
                    400, {"errors": [f"query param {name} must be greater than or equal to 0"]}
                )
            values.append(value)
        return values[0], values[1]

    def _json_body(self, request: SimRequest) -> dict[str, Any] | SimResponse:
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "Unable to process JSON")
        if body is None:
            return SimResponse.json(422, {"errors": ["The request body must not be null"]})
        if not isinstance(body, dict):
            return self.error(400, "Unable to process JSON")
        return body

    # -- namespaces ---------------------------------------------------------------------------
    def list_namespaces(self, request: SimRequest) -> SimResponse:
        page = self._page(request)
        if isinstance(page, SimResponse):
            return page
        limit, offset = page
        items = sorted(self.namespaces.values(), key=lambda ns: ns["name"])
        return SimResponse.json(
            200, {"namespaces": [self._namespace_body(ns) for ns in items[offset : offset + limit]]}
        )

    def get_namespace(self, request: SimRequest) -> SimResponse:
        ns, name = self._namespace(request)
        if ns is None:
            return self.error(404, f"Namespace '{name}' not found.")
        return SimResponse.json(200, self._namespace_body(ns))

    def put_namespace(self, request: SimRequest) -> SimResponse:
        _, name = self._namespace(request)
        if not (1 <= len(name) <= 1024) or not all(
            c.isascii() and (c.isalnum() or c in ":;=/_-.") for c in name
        ):
            return self.error(
                400,
                f"namespace '{name}' must contain only letters (a-z, A-Z), numbers (0-9), underscores (_), "
                "dashes (-), colons (:), equals (=), semicolons (;), slashes (/) or dots (.) with a "
                "maximum length of 1024 characters.",
            )
        body = self._json_body(request)
        if isinstance(body, SimResponse):
            return body
        owner = body.get("ownerName")
        if not isinstance(owner, str) or not owner.strip():
            return SimResponse.json(422, {"errors": ["ownerName must not be blank"]})
        description = body.get("description")
        now = self.now()
        existing = self.namespaces.get(_key(name))
        if existing is None:
            existing = self._add_namespace(
                name, owner, description if isinstance(description, str) else None, now
            )
        else:
            existing.update(ownerName=owner, updated=now)
            if isinstance(description, str):
                existing["description"] = description
        return SimResponse.json(200, self._namespace_body(existing))

    # -- jobs -------------------------------------------------------------------------------------
    def list_jobs(self, request: SimRequest) -> SimResponse:
        ns, name = self._namespace(request)
        if ns is None:
            return self.error(404, f"Namespace '{name}' not found.")
        page = self._page(request)
        if isinstance(page, SimResponse):
            return page
        limit, offset = page
        jobs = sorted((j for (n, _), j in self.jobs.items() if n == _key(name)), key=lambda j: j["name"])
        return SimResponse.json(
            200,
            {"jobs": [self._job_body(j) for j in jobs[offset : offset + limit]], "totalCount": len(jobs)},
        )

    def get_job(self, request: SimRequest) -> SimResponse:
        job, refusal = self._job(request)
        if refusal is not None:
            return refusal
        assert job is not None
        return SimResponse.json(200, self._job_body(job))

    def put_job(self, request: SimRequest) -> SimResponse:
        ns, ns_name = self._namespace(request)
        if ns is None:
            return self.error(404, f"Namespace '{ns_name}' not found.")
        name = unquote(request.params["job"])
        if not name.strip():
            return self.error(400, "value must not be blank")
        body = self._json_body(request)
        if isinstance(body, SimResponse):
            return body
        errors = []
        if body.get("type") not in JOB_TYPES:
            errors.append("type must be one of BATCH, STREAM, SERVICE")
        for field in ("inputs", "outputs"):
            if not isinstance(body.get(field), list):
                errors.append(f"{field} must not be null")
            elif body[field]:
                # The simulator has no datasets, so every referenced one is unknown.
                first = body[field][0]
                dataset = first.get("name") if isinstance(first, dict) else first
                return self.error(404, f"Dataset '{dataset}' not found.")
        if errors:
            return SimResponse.json(422, {"errors": errors})
        description = body.get("description")
        location = body.get("location")
        now = self.now()
        job = self.jobs.get((_key(ns_name), name))
        if job is None:
            job = self._add_job(ns["name"], name, body["type"], None, now)
        job.update(
            type=body["type"],
            description=description if isinstance(description, str) else None,
            location=location if isinstance(location, str) else None,
            updated=now,
        )
        return SimResponse.json(200, self._job_body(job))

    # -- runs -------------------------------------------------------------------------------------
    def create_run(self, request: SimRequest) -> SimResponse:
        job, refusal = self._job(request)
        if refusal is not None:
            return refusal
        assert job is not None
        body = self._json_body(request)
        if isinstance(body, SimResponse):
            return body
        data: dict[str, Any] = {}
        for field in ("nominalStartTime", "nominalEndTime"):
            value = body.get(field)
            if value is None:
                continue
            parsed = _parse_instant(value) if isinstance(value, str) else None
            if parsed is None:
                return self.error(400, "Unable to process JSON")
            data[field] = iso(parsed.timestamp())
        args = body.get("args")
        if args is not None:
            if not isinstance(args, dict):
                return self.error(400, "Unable to process JSON")
            data["args"] = {str(k): v if isinstance(v, str) else str(v) for k, v in args.items()}
        raw_id = body.get("id")
        if raw_id is None:
            run_id = self.new_id()
        else:
            try:
                run_id = str(uuid.UUID(str(raw_id)))
            except ValueError:
                return self.error(400, "Unable to process JSON")
            if run_id in self.runs:
                name, namespace = job["name"], job["namespace"]
                message = f"Run '{run_id}' already exists for '{name}' under namespace '{namespace}'."
                return self.error(400, message)
        scenario, timeline = self.pick_timeline()
        target = f"{job['namespace']}/{job['name']}"
        run = self.add_run(SimRun(run_id, target, self.now(), timeline, scenario, data=data))
        host = request.header("host") or "localhost"
        location = f"http://{host}{self.prefix}/api/v1/jobs/runs/{run.id}"
        return SimResponse.json(201, self._run_body(run), {"Location": location})

    def list_runs(self, request: SimRequest) -> SimResponse:
        job, refusal = self._job(request)
        if refusal is not None:
            return refusal
        assert job is not None
        page = self._page(request)
        if isinstance(page, SimResponse):
            return page
        limit, offset = page
        now = self.now()
        bodies = [self._run_body(run, now) for run in self._job_runs(job)]
        # RunDao.findAll: ORDER BY started_at DESC NULLS LAST.
        bodies.sort(key=lambda b: b.get("startedAt") or "", reverse=True)
        return SimResponse.json(200, {"runs": bodies[offset : offset + limit], "totalCount": len(bodies)})

    def get_run(self, request: SimRequest) -> SimResponse:
        run, refusal = self._run(request)
        if refusal is not None:
            return refusal
        assert run is not None
        return SimResponse.json(200, self._run_body(run))

    def transition(self, request: SimRequest) -> SimResponse:
        state = TRANSITIONS.get(request.params["transition"])
        if state is None:
            return self.error(404, "HTTP 404 Not Found")
        run, refusal = self._run(request)
        if refusal is not None:
            return refusal
        assert run is not None
        at = request.arg("at")
        if at and _parse_instant(at) is None:
            # Undocumented: Marquez's Instant.parse would fail; answer as a bad request.
            return self.error(400, f"Text '{at}' could not be parsed as an ISO-8601 instant")
        # Marquez does not validate transitions; the mark takes effect at the simulator's own
        # clock (``at`` is checked, not used, since the simulated clock may be far ahead).
        run.override(self.now(), [(0, state)])
        run.data["manual"] = True
        return SimResponse.json(200, self._run_body(run))

    # -- knobs for tests and demos ------------------------------------------------------------
    def start_external_run(self, target: str, scenario: str | None = None) -> str:
        """A run reported by the job's own integration (``target`` is a job name)."""
        namespace = DEMO_NAMESPACE
        if (_key(namespace), target) not in self.jobs:
            found = [ns for (ns, name) in self.jobs if name == target]
            if found:
                namespace = self.namespaces[found[0]]["name"]
            else:
                # An OpenLineage START for an unknown job creates the job.
                self._add_job(namespace, target, "BATCH", None, self.now())
        name, timeline = self.pick_timeline(scenario)
        run = SimRun(self.new_id(), f"{namespace}/{target}", self.now(), timeline, name, by_client=False)
        return self.add_run(run).id

    def mark_stale_running(self, run_id: str, *, for_seconds: float = 45.0) -> None:
        """Reproduce marquez#2264: the run ends, then a retried START marks it RUNNING again
        (``endedAt`` stays set) until the producer's COMPLETE arrives ``for_seconds`` later."""
        with self.lock:
            run = self.runs[run_id]
            run.override(self.now(), [(0, "COMPLETED"), (0, "RUNNING"), (for_seconds, "COMPLETED")])


SIM = MarquezSim
