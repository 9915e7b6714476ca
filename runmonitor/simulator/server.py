"""The simulator's HTTP server: all five vendor APIs on one loopback port.

It runs in its own threads (``ThreadingHTTPServer``), independent of whatever event
loop the client under test uses, and has full control over the socket, so it can
drop connections, hang, or send truncated bodies on purpose.

Each service lives under its own base path (``/cognite``, ``/marquez``, …). A small
control API under ``/_sim`` lets another process (the CLI, benchmarks) inject faults,
move the clock and read the ground truth.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import logging
import pkgutil
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

from runmonitor.simulator.engine import (
    Fault,
    FaultKind,
    FaultPlan,
    ServiceSim,
    SimClock,
    SimRequest,
    SimResponse,
)

log = logging.getLogger(__name__)

MAX_REQUEST_BODY = 1024 * 1024
HUGE_BODY_BYTES = 12 * 1024 * 1024


@dataclass(frozen=True)
class RequestRecord:
    service: str
    method: str
    path: str
    status: int | None
    sim_time: float
    real_time: float
    fault: str | None
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def discover_sims() -> dict[str, type[ServiceSim]]:
    """Simulator class per service key: every module of this package that defines ``SIM``.

    Found here, not from the client's registry, so the simulator never imports the client it
    is the oracle for (a contract test checks that both know the same services)."""
    import runmonitor.simulator as package

    found: dict[str, type[ServiceSim]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        sim = getattr(module, "SIM", None)
        if isinstance(sim, type) and issubclass(sim, ServiceSim):
            found[sim.key] = sim
    return found


class Simulator:
    """A running simulator of every registered service.

    Use as a context manager, or call :meth:`start` / :meth:`stop`::

        with Simulator(seed=7, time_scale=50) as sim:
            url = sim.base_url("marquez")
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 1,
        time_scale: float = 1.0,
        duration_scale: float = 1.0,
        credentials: dict[str, dict[str, str]] | None = None,
        services: list[str] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.seed = seed
        self.clock = SimClock(time_scale)
        self.sims: dict[str, ServiceSim] = {}
        for key, cls in discover_sims().items():
            if services is not None and key not in services:
                continue
            self.sims[key] = cls(
                self.clock, seed, credentials=(credentials or {}).get(key), duration_scale=duration_scale
            )
        self.records: deque[RequestRecord] = deque(maxlen=200_000)
        self._records_lock = threading.Lock()
        self._request_ids = itertools.count(1)
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> Simulator:
        if self._server is not None:
            return self
        handler = type("BoundHandler", (_Handler,), {"simulator": self})
        server = _Server((self.host, self.requested_port), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="runmonitor-simulator",
            daemon=True,
        )
        self._thread.start()
        log.info("simulator serving on %s", self.root_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        self._stop.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def keep_requests(self, count: int) -> None:
        """Keep only the newest ``count`` request records (long soaks: the log is the
        simulator's memory, not the app's)."""
        with self._records_lock:
            self.records = deque(self.records, maxlen=max(1, count))

    def outage(self, seconds: float) -> threading.Timer:
        """Stop answering (connections are refused) and come back on the same port after
        ``seconds`` of real time; runs go on meanwhile, as on a server that restarts."""
        port = self.port
        self.stop()
        self.requested_port = port
        timer = threading.Timer(seconds, self.start)
        timer.daemon = True
        timer.start()
        return timer

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (for ``runmonitor simulate``)."""
        self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    # -- addresses ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            if self.requested_port:  # down for an outage: it comes back on this port
                return self.requested_port
            raise RuntimeError("simulator is not running")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, service: str) -> str:
        return self.root_url + self.sims[service].prefix

    def demo_connection(self, service: str) -> dict[str, Any]:
        """Connection-model values (secrets included) that work against this simulator."""
        return self.sims[service].demo_connection(self.base_url(service))

    def demo_request(self, service: str) -> dict[str, Any]:
        return self.sims[service].demo_request()

    # -- control ------------------------------------------------------------------------
    def faults(self, service: str) -> FaultPlan:
        return self.sims[service].faults

    def force(self, service: str, *scenarios: str) -> None:
        self.sims[service].force(*scenarios)

    def start_external_run(self, service: str, target: str, scenario: str | None = None) -> str:
        return self.sims[service].start_external_run(target, scenario)

    def creates(self, service: str) -> int:
        return self.sims[service].creates

    def requests(self, service: str | None = None, method: str | None = None) -> list[RequestRecord]:
        with self._records_lock:
            return [
                r
                for r in self.records
                if (service is None or r.service == service) and (method is None or r.method == method)
            ]

    def stats(self) -> dict[str, Any]:
        with self._records_lock:
            records = list(self.records)
        per_service: dict[str, Any] = {}
        for key, sim in self.sims.items():
            mine = [r for r in records if r.service == key]
            per_service[key] = {
                "requests": len(mine),
                "creates": sim.creates,
                "runs": len(sim.runs),
                "faults_injected": dict(sim.faults.injected),
            }
        return {"sim_time": self.clock.now(), "time_scale": self.clock.scale, "services": per_service}

    # -- request handling ---------------------------------------------------------------
    def handle(self, request: SimRequest) -> tuple[SimResponse, str, Fault | None]:
        if request.path.startswith("/_sim"):
            return self._control(request), "_sim", None
        for sim in self.sims.values():
            prefix = sim.prefix
            if request.path == prefix or request.path.startswith(prefix + "/"):
                inner = SimRequest(
                    request.method,
                    request.path[len(prefix) :] or "/",
                    request.query,
                    request.headers,
                    request.body,
                )
                return self._service_answer(sim, inner)
        return SimResponse.json(404, {"message": f"No simulated service at {request.path}"}), "-", None

    def _service_answer(self, sim: ServiceSim, request: SimRequest) -> tuple[SimResponse, str, Fault | None]:
        fault = sim.faults.take(request)
        if fault is None:
            return sim.dispatch(request), sim.key, None
        if fault.kind is FaultKind.LATENCY:
            self._stop.wait(fault.seconds)
            return sim.dispatch(request), sim.key, fault
        if fault.kind is FaultKind.EXPIRED_TOKEN:
            sim.expire_tokens()
            return sim.dispatch(request), sim.key, fault
        processed = sim.dispatch(request) if fault.after_processing else None
        return self._fault_response(sim, fault, processed), sim.key, fault

    def _fault_response(self, sim: ServiceSim, fault: Fault, processed: SimResponse | None) -> SimResponse:
        retry = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        kind = fault.kind
        if kind is FaultKind.HTTP_ERROR:
            response = sim.error(fault.status, "Simulated failure")
            response.headers.update(retry)
            return response
        if kind is FaultKind.RATE_LIMIT:
            response = sim.error(429, "Too many requests, slow down")
            response.headers.update(retry)
            return response
        if kind is FaultKind.QUOTA:
            response = sim.quota_response()
            response.headers.update(retry)
            return response
        if kind is FaultKind.HTML_ERROR:
            page = (
                "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
                "<body><h1>502 Bad Gateway</h1><hr><p>nginx</p></body></html>"
            )
            return SimResponse.text(fault.status if fault.status >= 500 else 502, page, "text/html")
        if kind is FaultKind.NON_JSON:
            return SimResponse.text(200, "OK - request accepted {not json", "application/json")
        if kind is FaultKind.HUGE:
            filler = "x" * 1000
            count = HUGE_BODY_BYTES // (len(filler) + 3)
            body = ("[" + ",".join(f'"{filler}"' for _ in range(count)) + "]").encode()
            return SimResponse(200, body, {"Content-Type": "application/json"})
        if kind is FaultKind.TRUNCATED:
            base = processed or SimResponse.json(200, {"items": [{"id": "truncated", "status": "x" * 200}]})
            cut = max(1, len(base.body) // 2)
            response = SimResponse(200, base.body[:cut], dict(base.headers), declared_length=len(base.body))
            response.action = "truncate"
            return response
        if kind is FaultKind.DROP:
            return SimResponse(0, action="drop")
        if kind is FaultKind.TIMEOUT:
            return SimResponse(0, action="hang", headers={"_seconds": str(fault.seconds or 30.0)})
        raise ValueError(f"unhandled fault kind {kind}")

    def real_retry_after(self, value: str) -> str:
        """Retry-After values are simulated seconds; a client waits real ones. At a time scale
        of 20, "Retry-After: 10" goes out as "0.5", so a client that obeys it waits exactly
        10 s on the simulator's clock. HTTP dates and unreadable values pass unchanged."""
        try:
            seconds = float(value)
        except ValueError:
            return value
        if self.clock.scale == 1.0:
            return value
        return f"{seconds / self.clock.scale:.3f}".rstrip("0").rstrip(".") or "0"

    def record(self, service: str, request: SimRequest, status: int | None, fault: Fault | None) -> None:
        record = RequestRecord(
            service,
            request.method,
            request.path,
            status,
            self.clock.now(),
            time.time(),
            fault.kind.value if fault else None,
            urlencode([(k, v) for k, values in request.query.items() for v in values]),
            tuple(request.headers.items()),
            request.body[:65536],
        )
        with self._records_lock:
            self.records.append(record)

    def _control(self, request: SimRequest) -> SimResponse:
        parts = [p for p in request.path.split("/") if p][1:]
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return SimResponse.json(400, {"message": "control body must be JSON"})
        try:
            if request.method == "GET" and parts == ["health"]:
                return SimResponse.json(
                    200, {"ok": True, "services": {k: self.base_url(k) for k in self.sims}}
                )
            if request.method == "GET" and parts == ["stats"]:
                return SimResponse.json(200, self.stats())
            if request.method == "GET" and len(parts) == 2 and parts[0] == "runs":
                return SimResponse.json(200, self.sims[parts[1]].ground_truth())
            if request.method == "GET" and len(parts) == 2 and parts[0] == "demo":
                return SimResponse.json(
                    200,
                    {"connection": self.demo_connection(parts[1]), "request": self.demo_request(parts[1])},
                )
            if request.method == "POST" and parts == ["clock"]:
                if "scale" in body:
                    self.clock.set_scale(float(body["scale"]))
                if "advance" in body:
                    self.clock.advance(float(body["advance"]))
                return SimResponse.json(200, {"sim_time": self.clock.now(), "time_scale": self.clock.scale})
            if request.method == "POST" and len(parts) == 2 and parts[0] == "faults":
                plan = self.faults(parts[1])
                if body.get("clear"):
                    plan.clear()
                for item in body.get("queue", []):
                    count = int(item.pop("count", 1))
                    plan.next(Fault.from_dict(item), count)
                for item in body.get("random", []):
                    rate = float(item.pop("rate"))
                    plan.randomly(rate, Fault.from_dict(item))
                return SimResponse.json(200, {"pending": plan.pending})
            if request.method == "POST" and len(parts) == 2 and parts[0] == "force":
                self.force(parts[1], *body.get("scenarios", []))
                return SimResponse.json(200, {"ok": True})
            if request.method == "POST" and len(parts) == 2 and parts[0] == "external":
                run_id = self.start_external_run(parts[1], body["target"], body.get("scenario"))
                return SimResponse.json(201, {"id": run_id})
        except KeyError as exc:
            return SimResponse.json(404, {"message": f"unknown: {exc}"})
        except (ValueError, TypeError, NotImplementedError) as exc:
            return SimResponse.json(400, {"message": str(exc)})
        return SimResponse.json(404, {"message": "unknown control endpoint"})


class _Server(ThreadingHTTPServer):
    # Bursts of new connections (hundreds of runs starting at once) overflow the default
    # listen backlog of 5, which shows up as refused connections and multi-second stalls.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    simulator: Simulator
    protocol_version = "HTTP/1.1"
    server_version = "RunMonitorSimulator/1"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length_text = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BODY:
            self._write(SimResponse.json(413, {"message": "request body too large or unreadable"}))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = SimRequest.build(self.command, parts.path, parts.query, list(self.headers.items()), body)
        try:
            response, service, fault = self.simulator.handle(request)
        except Exception:  # a simulator bug must show up as a 500, not a dead thread
            log.exception("simulator handler failed for %s %s", self.command, parts.path)
            response, service, fault = SimResponse.json(500, {"message": "simulator bug"}), "-", None
        if response.action == "drop":
            self.simulator.record(service, request, None, fault)
            self._drop()
            return
        if response.action == "hang":
            self.simulator.record(service, request, None, fault)
            self.simulator._stop.wait(float(response.headers.get("_seconds", "30")))
            self._drop()
            return
        self.simulator.record(service, request, response.status, fault)
        self._write(response)
        if response.action == "truncate":
            self._drop()

    def _write(self, response: SimResponse) -> None:
        request_id = f"sim-{next(self.simulator._request_ids)}"
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.startswith("_"):
                continue
            if name.lower() == "retry-after":
                value = self.simulator.real_retry_after(value)
            self.send_header(name, value)
        self.send_header("x-request-id", request_id)
        length = response.declared_length if response.declared_length is not None else len(response.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(response.body)
            self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[Simulator]:
    sim = Simulator(**kwargs).start()
    try:
        yield sim
    finally:
        sim.stop()


def fault_dict(fault: Fault) -> dict[str, Any]:
    data = asdict(fault)
    data["kind"] = fault.kind.value
    return data


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
