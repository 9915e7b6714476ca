"""Building blocks of the simulator: clock, requests and responses, faults, run timelines.

The simulator is deliberately lazy: a run is created with a *timeline* (vendor status
values at offsets in simulated seconds), and its status is computed from the clock
whenever someone asks. There are no background tasks, so a test can advance the clock
or speed it up and every service progresses consistently and reproducibly.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import parse_qs

Timeline = list[tuple[float, str]]
"""(offset in simulated seconds from creation, vendor status), in ascending offset order."""


class SimClock:
    """Simulated wall-clock time: real time times ``scale``, plus manual advances."""

    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self._lock = threading.Lock()
        self._anchor_real = time.monotonic()
        self._anchor_sim = time.time() if start is None else start
        self.scale = scale

    def now(self) -> float:
        with self._lock:
            return self._anchor_sim + (time.monotonic() - self._anchor_real) * self.scale

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._anchor_sim += seconds
        return self.now()

    def set_scale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        with self._lock:
            real = time.monotonic()
            self._anchor_sim += (real - self._anchor_real) * self.scale
            self._anchor_real = real
            self.scale = scale

    def to_real(self, sim_seconds: float) -> float:
        return sim_seconds / self.scale


class CaseInsensitiveDict(dict[str, str]):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> SimRequest:
        return cls(
            method.upper(), path, parse_qs(query, keep_blank_values=True), CaseInsensitiveDict(headers), body
        )

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The decoded body; raises ValueError when it is not JSON."""
        return json.loads(self.body or b"null")

    def bearer(self) -> str | None:
        value = self.header("authorization") or ""
        if value.lower().startswith("bearer "):
            return value[7:].strip()
        return None


@dataclass
class SimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Set by faults: how the connection should misbehave instead of answering normally.
    action: str | None = None
    declared_length: int | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> SimResponse:
        return cls(status, text.encode(), {"Content-Type": content_type})

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> SimResponse:
        return cls(status, b"", dict(headers or {}))


class FaultKind(StrEnum):
    LATENCY = "latency"
    HTTP_ERROR = "http_error"
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    TIMEOUT = "timeout"
    DROP = "drop"
    NON_JSON = "non_json"
    HTML_ERROR = "html_error"
    TRUNCATED = "truncated"
    HUGE = "huge"
    EXPIRED_TOKEN = "expired_token"


@dataclass
class Fault:
    """One injected misbehaviour.

    ``after_processing`` lets the service do the work (e.g. really create the run) and
    then lose or spoil the answer, which is how duplicate creates happen in real life.
    ``seconds`` is real time: the delay of LATENCY, the hang of TIMEOUT.
    """

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    after_processing: bool = False
    method: str | None = None
    path_contains: str | None = None

    def matches(self, request: SimRequest) -> bool:
        if self.method and request.method != self.method.upper():
            return False
        return not (self.path_contains and self.path_contains not in request.path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        data = dict(data)
        data["kind"] = FaultKind(data["kind"])
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


def fault_label(fault: Fault) -> str:
    """A short name for reports: the kind, with the status or Retry-After where they differ."""
    if fault.kind is FaultKind.HTTP_ERROR:
        return f"http {fault.status}"
    if fault.kind is FaultKind.RATE_LIMIT:
        return "429 with Retry-After" if fault.retry_after else "429 without Retry-After"
    return fault.kind.value.replace("_", " ")


class FaultPlan:
    """The faults queued or randomly injected for one service."""

    def __init__(self, rng: random.Random) -> None:
        self._lock = threading.Lock()
        self._rng = rng
        self._queue: list[Fault] = []
        self._random: list[tuple[float, Fault]] = []
        self.injected: dict[str, int] = {}
        #: The same, by a finer label ("http_error 502", "rate_limit with Retry-After").
        self.injected_detail: dict[str, int] = {}

    def next(self, fault: Fault, count: int = 1) -> FaultPlan:
        """Apply ``fault`` to the next ``count`` matching requests."""
        with self._lock:
            self._queue.extend(fault for _ in range(count))
        return self

    def randomly(self, rate: float, fault: Fault) -> FaultPlan:
        """Apply ``fault`` to each matching request with probability ``rate``."""
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._random.append((rate, fault))
        return self

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._random.clear()

    def clear_random(self) -> None:
        """Stop the random faults; queued ones still wait for their request."""
        with self._lock:
            self._random.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, request: SimRequest) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._queue):
                if fault.matches(request):
                    del self._queue[index]
                    self._count(fault)
                    return fault
            for rate, fault in self._random:
                if fault.matches(request) and self._rng.random() < rate:
                    self._count(fault)
                    return fault
        return None

    def _count(self, fault: Fault) -> None:
        self.injected[fault.kind.value] = self.injected.get(fault.kind.value, 0) + 1
        label = fault_label(fault)
        self.injected_detail[label] = self.injected_detail.get(label, 0) + 1


@dataclass
class SimRun:
    """One simulated run: when it was created and the statuses it goes through."""

    id: str
    target: str
    created: float
    timeline: Timeline
    scenario: str
    by_client: bool = True
    data: dict[str, Any] = field(default_factory=dict)

    def status_at(self, now: float) -> str:
        elapsed = now - self.created
        current = self.timeline[0][1]
        for offset, status in self.timeline:
            if offset <= elapsed:
                current = status
            else:
                break
        return current

    def entered_at(self, now: float) -> float:
        """Simulated time at which the current status was entered."""
        elapsed = now - self.created
        entered = self.timeline[0][0]
        for offset, _ in self.timeline:
            if offset <= elapsed:
                entered = offset
        return self.created + entered

    def time_of(self, status: str, now: float) -> float | None:
        """When the run (first) entered ``status``, if it has by ``now``."""
        for offset, value in self.timeline:
            if value == status and self.created + offset <= now:
                return self.created + offset
        return None

    def final_status(self) -> str:
        return self.timeline[-1][1]

    def finished(self, now: float, terminal: frozenset[str]) -> bool:
        return self.status_at(now) in terminal

    def override(self, now: float, steps: Timeline) -> None:
        """Replace what has not happened yet with ``steps`` (offsets relative to ``now``)."""
        elapsed = now - self.created
        kept = [(o, s) for o, s in self.timeline if o <= elapsed]
        self.timeline = kept + [(elapsed + o, s) for o, s in steps]


Handler = Callable[[SimRequest], SimResponse]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str


class ServiceSim:
    """Base of the per-service simulators.

    Subclasses set ``key`` (the service key), ``prefix`` (the base path under the
    simulator root), ``terminal`` statuses, ``scenarios`` with ``weights``, and
    default credentials; they register routes in :meth:`setup_routes` and answer in
    the vendor's own shapes. They also declare what of the vendor's behaviour they
    simulate (``expiring_tokens``, ``queue_quota``), so drills and benchmarks never
    name a service.
    """

    key: ClassVar[str]
    prefix: ClassVar[str]
    terminal: ClassVar[frozenset[str]] = frozenset()
    scenarios: ClassVar[dict[str, Timeline]] = {}
    weights: ClassVar[dict[str, float]] = {}
    default_credentials: ClassVar[dict[str, str]] = {}
    #: The API hands out tokens that can expire (the others use fixed keys): an EXPIRED_TOKEN
    #: fault invalidates them (:meth:`expire_tokens`).
    expiring_tokens: ClassVar[bool] = False
    #: The vendor has a quota on queued work: a QUOTA fault answers with its own refusal
    #: (:meth:`quota_response`), which the client reads as "wait for work to finish".
    queue_quota: ClassVar[bool] = False

    def __init__(
        self,
        clock: SimClock,
        seed: int,
        *,
        credentials: dict[str, str] | None = None,
        duration_scale: float = 1.0,
    ) -> None:
        self.clock = clock
        self.rng = random.Random(f"{seed}:{self.key}")
        self.lock = threading.RLock()
        self.credentials = {**self.default_credentials, **(credentials or {})}
        self.duration_scale = duration_scale
        self.faults = FaultPlan(random.Random(f"{seed}:{self.key}:faults"))
        self.routes: list[Route] = []
        self.runs: dict[str, SimRun] = {}
        self.creates = 0
        self._forced: list[str] = []
        self.setup_routes()

    # -- to implement ------------------------------------------------------------------
    def setup_routes(self) -> None:
        raise NotImplementedError

    def authenticate(self, request: SimRequest) -> SimResponse | None:
        """None when the request's credentials are good, else the vendor's refusal."""
        return None

    def error(self, status: int, message: str) -> SimResponse:
        """An error answer in the vendor's error body shape."""
        return SimResponse.json(status, {"message": message})

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        """Connection-model values for a profile that talks to this simulator."""
        raise NotImplementedError

    def demo_request(self) -> dict[str, Any]:
        """Create-request values that work against this simulator out of the box."""
        raise NotImplementedError

    @classmethod
    def auth_required_credentials(cls) -> dict[str, str]:
        """Credential overrides that make authentication mandatory (for services where it is optional)."""
        return {}

    def start_external_run(self, target: str, scenario: str | None = None) -> str:
        """Start a run as if someone else had (for watch tests). Returns its id."""
        raise NotImplementedError(f"{self.key} has no runs started by others")

    def expire_tokens(self) -> None:
        """Make every issued token invalid (fault EXPIRED_TOKEN)."""

    def quota_response(self) -> SimResponse:
        return self.error(429, "Too many requests")

    @classmethod
    def supports(cls, kind: FaultKind) -> bool:
        """Whether faults of ``kind`` mean something for this vendor (a fault storm injects only
        those): every kind, but QUOTA only with a ``queue_quota`` and EXPIRED_TOKEN only with
        ``expiring_tokens``."""
        if kind is FaultKind.QUOTA:
            return cls.queue_quota
        if kind is FaultKind.EXPIRED_TOKEN:
            return cls.expiring_tokens
        return True

    @classmethod
    def spread_over_demo_targets(cls, demo: dict[str, Any]) -> list[dict[str, Any]]:
        """Create requests like ``demo`` (a :meth:`demo_request`) spread over the demo targets,
        where many runs on one target would cost more than real use does (benchmarks create
        hundreds of runs). One target is enough for most vendors."""
        return [demo]

    def final_statuses(self, now: float) -> dict[str, str]:
        """Run id → the vendor status each run ended with (or stands at) ``now``, as the API
        shows it: the truth a drill compares RunMonitor's records with."""
        with self.lock:
            return {run.id: run.status_at(now) for run in self.runs.values()}

    # -- helpers for subclasses --------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")
        self.routes.append(Route(method.upper(), regex, handler, pattern))

    def now(self) -> float:
        return self.clock.now()

    def new_id(self) -> str:
        with self.lock:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def force(self, *scenarios: str) -> None:
        """The next created runs follow these scenarios, in order."""
        for name in scenarios:
            if name not in self.scenarios:
                raise ValueError(f"{self.key} has no scenario {name!r}; known: {sorted(self.scenarios)}")
        with self.lock:
            self._forced.extend(scenarios)

    def pick_timeline(self, scenario: str | None = None) -> tuple[str, Timeline]:
        with self.lock:
            if scenario is None and self._forced:
                scenario = self._forced.pop(0)
            if scenario is None:
                names = list(self.weights)
                scenario = self.rng.choices(names, weights=[self.weights[n] for n in names])[0]
            steps = self.scenarios[scenario]
            stretch = self.rng.uniform(0.7, 1.4) * self.duration_scale
            return scenario, [(round(offset * stretch, 3), status) for offset, status in steps]

    def add_run(self, run: SimRun) -> SimRun:
        with self.lock:
            self.runs[run.id] = run
            if run.by_client:
                self.creates += 1
        return run

    def ground_truth(self) -> list[dict[str, Any]]:
        now = self.now()
        with self.lock:
            return [
                {
                    "id": run.id,
                    "target": run.target,
                    "scenario": run.scenario,
                    "status": run.status_at(now),
                    "final": run.final_status(),
                    "finished": run.finished(now, self.terminal),
                    "by_client": run.by_client,
                }
                for run in self.runs.values()
            ]

    def dispatch(self, request: SimRequest) -> SimResponse:
        path_matched = False
        for route in self.routes:
            match = route.pattern.match(request.path)
            if not match:
                continue
            path_matched = True
            if route.method != request.method:
                continue
            request.params = match.groupdict()
            refusal = self.authenticate(request)
            if refusal is not None:
                return refusal
            with self.lock:
                return route.handler(request)
        if path_matched:
            return self.error(405, f"Method {request.method} not allowed")
        return self.error(404, f"No such endpoint: {request.path}")


def iso(ts: float, *, zone: bool = True) -> str:
    """ISO 8601 text of a simulated epoch time (UTC), with microseconds."""
    from datetime import UTC, datetime

    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z") if zone else text.replace("+00:00", "")


def epoch_ms(ts: float) -> int:
    return round(ts * 1000)
