"""A fault storm: every kind of misbehaviour, one after another and then all at once.

Used by the reliability tests and ``benchmarks/bench_storm.py``. A storm is a list of
phases; in each phase every simulated service misbehaves on a share of its requests
(``rate``) in the phase's ways. One phase is an outage: the server stops answering and
comes back on the same port. The simulator counts what it injected
(``FaultPlan.injected_detail``), and :func:`final_statuses` says how each run really ended,
for comparing with what RunMonitor recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runmonitor.domain.errors import ServiceError
from runmonitor.domain.status import RunStatus
from runmonitor.engine import QueuedForQuota
from runmonitor.services import registry
from runmonitor.simulator.engine import Fault, FaultKind
from runmonitor.simulator.server import Simulator
from runmonitor.storage.history import IntentState, RunRecord

if TYPE_CHECKING:
    from runmonitor.app.context import AppContext

#: The simulator for storms: its clock is real time (the service's timestamps must agree with
#: RunMonitor's, or looking up a create whose answer was lost searches the wrong minutes), and
#: runs last a tenth of their usual length instead.
STORM_SIMULATOR: dict[str, float] = {"time_scale": 1.0, "duration_scale": 0.1}


@dataclass(frozen=True)
class Phase:
    name: str
    faults: tuple[Fault, ...] = ()
    outage: bool = False


def fault_kinds(timeout_seconds: float = 1.5, retry_after: str = "2") -> list[Phase]:
    """One phase per kind of fault, in the order the issue lists them."""
    return [
        Phase("http 500", (Fault(FaultKind.HTTP_ERROR, status=500),)),
        Phase("http 502", (Fault(FaultKind.HTTP_ERROR, status=502),)),
        Phase("http 503", (Fault(FaultKind.HTTP_ERROR, status=503),)),
        Phase("429 with Retry-After", (Fault(FaultKind.RATE_LIMIT, retry_after=retry_after),)),
        Phase("429 without Retry-After", (Fault(FaultKind.RATE_LIMIT),)),
        Phase("queue quota", (Fault(FaultKind.QUOTA, method="POST"),)),
        Phase("timeouts", (Fault(FaultKind.TIMEOUT, seconds=timeout_seconds),)),
        Phase("connection resets", (Fault(FaultKind.DROP),)),
        Phase("outage", outage=True),
        Phase("non-JSON bodies", (Fault(FaultKind.NON_JSON),)),
        Phase("truncated bodies", (Fault(FaultKind.TRUNCATED),)),
        Phase("HTML error pages", (Fault(FaultKind.HTML_ERROR),)),
        Phase("huge bodies", (Fault(FaultKind.HUGE),)),
        Phase("expired tokens", (Fault(FaultKind.EXPIRED_TOKEN),)),
    ]


def storm_phases(timeout_seconds: float = 1.5) -> list[Phase]:
    """Every kind in turn, then all of them mixed."""
    single = fault_kinds(timeout_seconds)
    mixed = tuple(f for phase in single for f in phase.faults)
    return [*single, Phase("mixed", mixed)]


@dataclass
class Storm:
    """Runs the phases against ``sim``; ``rate`` is the share of requests that misbehave."""

    sim: Simulator
    phases: list[Phase] = field(default_factory=storm_phases)
    rate: float = 0.2
    phase_seconds: float = 3.0
    outage_seconds: float = 3.0
    current: str = ""
    outages: int = 0

    @property
    def duration(self) -> float:
        """Real seconds the phases take."""
        return sum(self.outage_seconds + 0.5 if p.outage else self.phase_seconds for p in self.phases)

    def apply(self, phase: Phase) -> None:
        # The random faults of the last phase stop; its one sure fault per service still
        # waits for a request (a phase with little traffic still shows its kind).
        for service in self.sim.sims:
            self.sim.faults(service).clear_random()
        self.current = phase.name
        if phase.outage:
            self.outages += 1
            self.sim.outage(self.outage_seconds)
            return
        single = len(phase.faults) == 1
        for service, service_sim in self.sim.sims.items():
            plan = self.sim.faults(service)
            share = self.rate / max(1, len(phase.faults))
            for fault in phase.faults:
                if service_sim.supports(fault.kind):  # e.g. a quota only where the vendor has one
                    if single:
                        # The next matching request surely misbehaves, then a share of the rest.
                        # (A mixed phase adds none: each kind had its own phase, and a dozen sure
                        # faults per service left over would keep failing long after the storm.)
                        plan.next(fault)
                    plan.randomly(self.rate if single else share, fault)

    def clear(self) -> None:
        for service in self.sim.sims:
            self.sim.faults(service).clear()
        self.current = ""

    async def run(self, on_phase: Callable[[Phase], None] | None = None) -> None:
        """Every phase for ``phase_seconds`` (an outage lasts ``outage_seconds``), then calm:
        no more random faults; the last sure faults of quiet phases wait for their request."""
        try:
            for phase in self.phases:
                self.apply(phase)
                if on_phase is not None:
                    on_phase(phase)
                await asyncio.sleep(self.outage_seconds + 0.5 if phase.outage else self.phase_seconds)
        finally:
            for service in self.sim.sims:
                self.sim.faults(service).clear_random()
            self.current = ""

    def injected(self) -> dict[str, int]:
        """Faults injected so far, by kind (all services), plus outages."""
        totals: dict[str, int] = {}
        for sim in self.sim.sims.values():
            for label, count in sim.faults.injected_detail.items():
                totals[label] = totals.get(label, 0) + count
        if self.outages:
            totals["outage (server down, then back)"] = self.outages
        return dict(sorted(totals.items()))


def final_statuses(sim: Simulator) -> dict[tuple[str, str], RunStatus]:
    """How every run on the simulator ended (or stands now), in RunMonitor's terms:
    (service, run id) → status. Each service's simulator says what its API shows
    (:meth:`~runmonitor.simulator.engine.ServiceSim.final_statuses`)."""
    now = sim.clock.now()
    out: dict[tuple[str, str], RunStatus] = {}
    for key, service_sim in sim.sims.items():
        status_map = registry()[key].status_map
        for run_id, vendor in service_sim.final_statuses(now).items():
            out[(key, run_id)] = status_map.map(vendor).status
    return out


def client_runs(sim: Simulator) -> dict[str, set[str]]:
    """The ids of the runs a client created on each simulated service (not the ones the
    simulator started by itself)."""
    out: dict[str, set[str]] = {}
    for key, service_sim in sim.sims.items():
        with service_sim.lock:
            out[key] = {run.id for run in service_sim.runs.values() if run.by_client}
    return out


@dataclass
class StormReport:
    """What a storm did and what RunMonitor made of it."""

    seconds: float = 0.0
    runs_followed: int = 0
    creates_attempted: int = 0
    creates_refused: int = 0
    creates_queued: int = 0
    creates_unconfirmed: int = 0
    adopted: int = 0
    discarded: int = 0
    ambiguous: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    #: Runs the simulator has that RunMonitor lost track of ("service run-id").
    lost: list[str] = field(default_factory=list)
    #: Runs whose recorded final status differs from the simulator's ("service run-id: ours ≠ theirs").
    mismatched: list[str] = field(default_factory=list)
    #: Runs still not finished when the wait ended.
    unfinished: list[str] = field(default_factory=list)
    duplicates: int = 0
    lag_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    engine_errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.mismatched or self.unfinished or self.duplicates)


class LagProbe:
    """Event-loop lag: how late a 50 ms sleep wakes up, sampled until stopped."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LagProbe:
        self._task = asyncio.create_task(self._run(), name="runmonitor-lag-probe")
        return self

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, (loop.time() - started - self.interval) * 1000))

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return self.samples


async def storm_through(
    context: AppContext,
    storm: Storm,
    *,
    runs: int,
    settle_timeout: float = 120.0,
    on_record: Callable[[RunRecord], None] | None = None,
    rss: Callable[[], float] | None = None,
    concurrency: int = 16,
    spread: float | None = None,
) -> StormReport:
    """Create ``runs`` runs over every profile of ``context`` while ``storm`` rages, follow
    them to the end, resolve creates whose outcome was unknown, and compare with the
    simulator. Creates are spread over ``spread`` seconds (default: most of the storm), so
    they meet the faults too. Bounded: creation, the storm and the wait end."""
    sim = storm.sim
    engine = context.engine
    report = StormReport()
    loop = asyncio.get_running_loop()
    started = loop.time()
    probe = LagProbe().start()
    if rss is not None:
        report.rss_mib.append(rss())
    profiles = context.profiles()
    requests = {p.service: registry()[p.service].request_model for p in profiles}
    slots = asyncio.Semaphore(concurrency)

    pace = (storm.duration * 0.9 if spread is None else spread) / max(1, runs)

    async def create(index: int) -> None:
        await asyncio.sleep(index * pace)
        profile = profiles[index % len(profiles)]
        request = requests[profile.service].model_validate(sim.demo_request(profile.service))
        async with slots:
            report.creates_attempted += 1
            try:
                record = await engine.create_run(str(profile.id), request)
            except QueuedForQuota:
                report.creates_queued += 1
                return
            except ServiceError as exc:
                if exc.may_have_reached_service:
                    report.creates_unconfirmed += 1
                else:
                    report.creates_refused += 1
                return
        if on_record is not None:
            on_record(record)

    storm_task = asyncio.create_task(storm.run(), name="runmonitor-storm")
    await asyncio.gather(*(create(i) for i in range(runs)))
    await storm_task
    if rss is not None:
        report.rss_mib.append(rss())

    deadline = loop.time() + settle_timeout

    async def settle() -> None:
        while loop.time() < deadline:
            queued = [i for i in await context.history.open_intents() if i.state is IntentState.QUEUED]
            if not engine.followed() and not queued:
                return
            await asyncio.sleep(0.25)

    await settle()
    storm.clear()
    resolved = await resolve_unconfirmed(context, on_record)
    report.adopted, report.discarded = resolved.adopted, resolved.discarded
    report.ambiguous = resolved.ambiguous
    await settle()
    report.lag_ms = await probe.stop()
    if rss is not None:
        report.rss_mib.append(rss())
    report.seconds = loop.time() - started
    report.faults = storm.injected()
    report.engine_errors = dict(engine.stats.errors)

    records, _ = await context.history.query_runs(limit=runs * 4 + 100)
    report.runs_followed = len(records)
    compare(report, sim, records, report.creates_attempted, resolved.candidates)
    return report


@dataclass
class Resolved:
    adopted: int = 0
    discarded: int = 0
    ambiguous: int = 0
    #: Lookups that kept failing (the intent stays for the person).
    unresolved: int = 0
    #: Runs an ambiguous lookup offered (service, run id): the person picks among them.
    candidates: set[tuple[str, str]] = field(default_factory=set)


async def resolve_unconfirmed(
    context: AppContext, on_record: Callable[[RunRecord], None] | None = None
) -> Resolved:
    """Look up every create whose outcome is unknown, as a person would from its banner:
    one new run found → follow it; none → discard; several → leave it to the person."""
    engine, history = context.engine, context.history
    out = Resolved()
    for intent in await history.open_intents():
        if intent.state is not IntentState.UNCONFIRMED:
            continue
        found = None
        for attempt in range(5):  # a lookup is a request like any other: it may fail
            try:
                found = await engine.lookup_intent(intent.id)
                break
            except ServiceError:
                await asyncio.sleep(0.5 * (attempt + 1))
        if found is None:
            out.unresolved += 1
            continue
        fresh = [
            r
            for r in found
            if await history.find_run(r.ref.service, intent.profile_id, r.ref.target, r.ref.run_id) is None
        ]
        if len(fresh) == 1:
            record = await engine.adopt_intent(intent.id, fresh[0])
            out.adopted += 1
            if on_record is not None:
                on_record(record)
        elif not fresh:
            await engine.discard_intent(intent.id)
            out.discarded += 1
        else:
            out.ambiguous += 1
            out.candidates.update((r.ref.service, r.ref.run_id) for r in fresh)
    return out


def compare(
    report: StormReport,
    sim: Simulator,
    records: list[RunRecord],
    attempts: int,
    candidates: Collection[tuple[str, str]] = (),
) -> StormReport:
    """Fill ``report``'s lost / mismatched / unfinished / duplicates from the history's
    ``records`` and the simulator; ``attempts`` is how many creates were sent."""
    truth = final_statuses(sim)
    ours = {(r.ref.service, r.ref.run_id): r for r in records}
    for key, record in ours.items():
        expected = truth.get(key)
        if not record.terminal:
            report.unfinished.append(f"{key[0]} {key[1]}")
        elif expected is not None and expected is not record.status:
            report.mismatched.append(f"{key[0]} {key[1]}: {record.status.value} ≠ {expected.value}")
    created = client_runs(sim)
    for service, ids in created.items():
        for run_id in sorted(ids - {rid for (svc, rid) in ours if svc == service}):
            if (service, run_id) not in candidates:
                report.lost.append(f"{service} {run_id}")
    total = sum(len(ids) for ids in created.values())
    report.duplicates = max(0, total - attempts)
    return report


@dataclass(frozen=True)
class SoakSample:
    seconds: float
    rss_mib: float
    open_files: int
    sockets: int
    followed: int
    finished: int


def process_usage() -> tuple[float, int, int]:
    """(RSS MiB, open file descriptors, of which sockets) of this process (Linux /proc;
    elsewhere RSS from getrusage and -1 for the counts)."""
    import os
    import resource
    from pathlib import Path

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return rss, -1, -1
    sockets = 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                sockets += 1
        except OSError:
            continue
    return rss, len(fds), sockets


async def soak(
    context: AppContext,
    sim: Simulator,
    *,
    seconds: float,
    active: int = 60,
    fault_rate: float = 0.05,
    sample_every: float = 2.0,
    on_record: Callable[[RunRecord], None] | None = None,
) -> list[SoakSample]:
    """Keep about ``active`` runs going (a new one for each that ends) for ``seconds`` while a
    light mix of faults goes on; sample memory and open files. Bounded by ``seconds``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sim.keep_requests(5000)  # so that the samples measure RunMonitor, not the simulator's log
    storm = Storm(sim, rate=fault_rate)
    # Every kind but the 12 MB bodies: the memory they pass through is the allocator's to keep
    # or return (the storm covers them); a soak looks for what RunMonitor itself keeps.
    mixed = storm_phases()[-1]
    storm.apply(Phase("soak mix", tuple(f for f in mixed.faults if f.kind is not FaultKind.HUGE)))
    profiles = context.profiles()
    requests = {p.service: registry()[p.service].request_model for p in profiles}
    samples: list[SoakSample] = []
    created = 0
    finished = 0
    next_sample = start
    try:
        while loop.time() - start < seconds:
            followed = len(context.engine.followed())
            finished = max(finished, created - followed)
            for _ in range(max(0, active - followed)):
                profile = profiles[created % len(profiles)]
                request = requests[profile.service].model_validate(sim.demo_request(profile.service))
                created += 1
                try:
                    record = await context.engine.create_run(str(profile.id), request)
                except ServiceError:
                    continue
                if on_record is not None:
                    on_record(record)
            if loop.time() >= next_sample:
                rss, files, sockets = process_usage()
                samples.append(SoakSample(loop.time() - start, rss, files, sockets, followed, finished))
                next_sample += sample_every
            await asyncio.sleep(0.2)
    finally:
        storm.clear()
    return samples


async def open_storm_context(sim: Simulator, home: Path) -> AppContext:
    """RunMonitor's core on ``sim``'s demo profiles in ``home``, tuned for a storm: short
    timeouts (a hung request gives up after a second) and a back-off capped at 4 s, so the
    runs are caught up soon after the storm ends."""
    from runmonitor.app.context import AppContext
    from runmonitor.storage.paths import app_paths

    context = await AppContext.open(
        demo=True, paths=app_paths({"RUNMONITOR_HOME": str(home)}), simulator=sim, demo_runs=False
    )
    for profile in context.profiles():
        faster = profile.model_copy(update={"connection": {**profile.connection, "timeout_seconds": 1.0}})
        saved = await context.workspace.update_profile(faster)
        await context.profile_saved(saved)
    await context.workspace.update_preferences(
        {"polling": {"steps": [[0, 1.0], [30, 2.0]], "max_backoff": 4.0, "jitter": 0.2}}
    )
    context.preferences_changed()
    return context
