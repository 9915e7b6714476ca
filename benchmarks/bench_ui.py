"""Benchmark: time to the first painted main window, and event-loop lag with 1,000 live runs.

Part 1: each sample is a fresh process (this script, ``--child-first-paint MODE``) timed on the
system-wide monotonic clock from just before the parent spawns it to the end of the paint pass
after ``MainWindow.show()``, so interpreter start and imports count. ``empty``: a new throwaway
RUNMONITOR_HOME (settings, the keyring probe every start makes, a new history); ``demo``: as
``runmonitor --demo`` (in-process simulator, demo profiles and runs). Per step, median / max of
--repeats starts; "context rest" is the rest of AppContext.open (clients, engine; demo extras).

Part 2: --runs runs, the window on "All runs" with a row selected, two phases of --duration s:
``engine`` is the real path (``runmonitor simulate`` in its own process, one profile per
service, runs created through the PollingEngine and checked every 1 s ±10 %). The engine hands
a run to the window only when its state changes, so its "row updates/s" are transitions, and
"checks/s" shows how near it came to one check per run per second. ``model only`` pauses the
engine and feeds --runs synthetic updates a second (real records with a new check time and
detail) straight into ``window.run_changed`` in ten batches a second: the window's own cost at
that rate. In both, the window's ticker refreshes the time columns every second.
Per phase: loop lag (how late a precise 50 ms QTimer fires) p50/p99/max, calls of
window.run_changed per second, process CPU (all threads, % of one core), RSS start/end.
Target: lag p99 < 50 ms, printed met/MISSED, never asserted. Last, "µs per engine event" times
``window.on_event`` (what the engine calls per transition: the row plus the status refresh).

Qt runs on xcb when DISPLAY is set (use ``xvfb-run -a``), else offscreen; the report says which.
Bounded loops, 127.0.0.1 only, temp folders and processes removed also on errors and Ctrl+C.
Progress goes to stderr; the table and a one-line JSON (only the JSON with --json) to stdout.

    python benchmarks/bench_ui.py             # 3 starts per mode; 1,000 runs, 20 s per phase
    xvfb-run -a python benchmarks/bench_ui.py --quick       # a ~15 s smoke run
"""

# ruff: noqa: E402 - the clock starts before the imports, which part 1 times

from __future__ import annotations

import time

STARTED = time.monotonic()

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ExternalSimulator, percentile, rss_mib  # puts the checkout on sys.path

os.environ.setdefault("QT_API", "pyside6")
import qasync
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication

from runmonitor.app import workspace as workspace_module
from runmonitor.app.context import AppContext
from runmonitor.app.workspace import Workspace
from runmonitor.domain.errors import ServiceError
from runmonitor.domain.events import EventKind
from runmonitor.domain.schedule import PollSchedule
from runmonitor.engine import PollingEngine, RunEvent
from runmonitor.services import get, registry
from runmonitor.simulator.server import discover_sims
from runmonitor.storage.history import AsyncHistory, RunRecord
from runmonitor.storage.paths import app_paths
from runmonitor.storage.settings.model import Profile, secret_fields
from runmonitor.storage.settings.store import SettingsStore
from runmonitor.ui.app import make_application
from runmonitor.ui.main_window import MainWindow

SCRIPT = str(Path(__file__).resolve())
TARGET_LAG_P99_MS, LAG_TICK_MS = 50.0, 50
MAX_RUNS, MAX_DURATION, MAX_REPEATS, CHILD_TIMEOUT = 5_000, 300.0, 20, 180.0
MODES = ("empty", "demo")
INNER = ("settings", "secret store", "history open")  # the parts of AppContext.open timed apart
STEPS = ("python start", "imports", "QApplication", *INNER)
STEPS += ("context rest", "window", "load", "show → painted")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def lap(marks: dict[str, float], name: str) -> Iterator[None]:
    """Adds the time spent in the ``with`` block to ``marks[name]``."""
    start = time.monotonic()
    try:
        yield
    finally:
        marks[name] = marks.get(name, 0.0) + time.monotonic() - start


# -- part 1, in the child: one start of the window ------------------------------------------------
class PaintWatcher(QObject):
    """Resolves ``done`` when the paint pass that began with the watched window's first Paint is over."""

    def __init__(self, done: asyncio.Future[float]) -> None:
        super().__init__()
        self.done = done

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self.done.done():
            QTimer.singleShot(0, lambda: self.done.done() or self.done.set_result(time.monotonic()))
        return False


def child_first_paint(mode: str, home: str, spawned_at: float) -> int:
    marks = {"python start": STARTED - spawned_at, "imports": time.monotonic() - STARTED}

    def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lap(marks, name):
                return func(*args, **kwargs)

        return wrapper

    async def open_history(*args: Any, **kwargs: Any) -> AsyncHistory:
        with lap(marks, "history open"):
            return await real_open_history(*args, **kwargs)

    # Instrumentation only: the real functions run (settings and secrets in worker threads), timed.
    real_open_history = AsyncHistory.open
    AsyncHistory.open = staticmethod(open_history)  # type: ignore[assignment, method-assign]
    SettingsStore.load = timed("settings", SettingsStore.load)  # type: ignore[method-assign]
    workspace_module.open_secret_store = timed("secret store", workspace_module.open_secret_store)
    with lap(marks, "QApplication"):
        make_application()

    async def start() -> None:
        with lap(marks, "context rest"):
            context = await AppContext.open(demo=mode == "demo", paths=app_paths({"RUNMONITOR_HOME": home}))
        marks["context rest"] -= sum(marks.get(name, 0.0) for name in INNER)
        window = None
        try:
            with lap(marks, "window"):
                window = MainWindow(context)
                ini = str(context.workspace.paths.state_dir / "ui.ini")
                window.restore_state(QSettings(ini, QSettings.Format.IniFormat))
            with lap(marks, "load"):
                await window.load()
            painted: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            window.installEventFilter(watcher := PaintWatcher(painted))
            shown = time.monotonic()
            window.show()
            marks["show → painted"] = await asyncio.wait_for(painted, 60) - shown
            window.removeEventFilter(watcher)
        finally:  # as the app shuts down: the engine stops before the window goes
            if window is not None:
                window.ticker.stop()
            await context.close()
            if window is not None:
                window.hide()
                window.deleteLater()

    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        runner.run(start())
    steps = {step: marks.get(step, 0.0) for step in STEPS}
    result = {"platform": QGuiApplication.platformName(), "steps": steps, "total": sum(steps.values())}
    print(json.dumps(result))
    return 0


# -- part 1, in the parent ------------------------------------------------------------------------
def first_paint(repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        samples: list[dict[str, Any]] = []
        for number in range(repeats):
            log(f"first paint, {mode} workspace, start {number + 1} of {repeats}…")
            with tempfile.TemporaryDirectory(prefix="runmonitor-bench-ui-") as home:
                command = [sys.executable, SCRIPT, "--child-first-paint", mode, "--home", home]
                spawned = time.monotonic()
                command += ["--spawned-at", repr(spawned)]
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
                )
            if done.returncode != 0:
                raise RuntimeError(f"the {mode} start failed ({done.returncode}): {done.stderr[-2000:]}")
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
        ms = {s: [1000 * x["steps"][s] for x in samples] for s in STEPS}
        ms["total"] = [1000 * x["total"] for x in samples]
        stats = {s: {"median": statistics.median(v), "max": max(v)} for s, v in ms.items()}
        out[mode] = {"platform": samples[0]["platform"], "ms": stats}
    return out


# -- part 2: live runs ----------------------------------------------------------------------------
class LagProbe:
    """A precise single-shot QTimer re-armed every LAG_TICK_MS; records how late each one fires."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._fired)
        self.lags_ms: list[float] = []
        self.armed = 0.0

    def start(self) -> None:
        self.lags_ms = []
        self._arm()

    def _arm(self) -> None:
        self.armed = time.perf_counter()
        self.timer.start(LAG_TICK_MS)

    def _fired(self) -> None:
        self.lags_ms.append(max(0.0, 1000 * (time.perf_counter() - self.armed) - LAG_TICK_MS))
        self._arm()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        lags = self.lags_ms
        return {"p50": percentile(lags, 50), "p99": percentile(lags, 99), "max": max(lags, default=0.0)}


async def open_context(
    sim: ExternalSimulator, home: Path, per_host: int
) -> tuple[AppContext, dict[str, Any]]:
    """What AppContext.open does, with one profile per service on ``sim``, a 1 s schedule and a
    per-host limit for five services on one host:port (in real use each has its own four)."""
    paths = app_paths({"RUNMONITOR_HOME": str(home)})
    workspace = await Workspace.open(paths, secret_mode="session")
    requests: dict[str, list[Any]] = {}
    for key in registry():
        values = sim.demo_connection(key)
        secrets = {n: str(values.pop(n)) for n in list(values) if n in secret_fields(key) and values[n]}
        await workspace.add_profile(Profile(service=key, name="bench", connection=values), secrets)
        # Spread where the simulator says so (Cognite's runs over its pipelines: one extractor each).
        variants = discover_sims()[key].spread_over_demo_targets(sim.demo_request(key))
        requests[key] = [get(key).request_model.model_validate(v) for v in variants]
    history = await AsyncHistory.open(paths.history_path)
    schedule = PollSchedule(steps=((0, 1.0),), jitter=0.1)
    engine = PollingEngine(
        history, workspace.cached_client, schedule=schedule, per_host_in_flight=per_host, seed=7
    )
    context = AppContext(workspace, history, engine)
    await context.open_clients()
    await engine.start()
    return context, requests


async def create_runs(context: AppContext, requests: dict[str, list[Any]], count: int) -> dict[str, Any]:
    profiles = {p.service: str(p.id) for p in context.profiles()}
    keys, gate, errors = list(profiles), asyncio.Semaphore(32), dict[str, int]()

    async def create(i: int) -> None:
        key = keys[i % len(keys)]
        await asyncio.sleep(min(i, 32) * 0.01)  # a ramp: the simulator's listen backlog is small
        async with gate:
            try:
                variant = requests[key][(i // len(keys)) % len(requests[key])]
                await context.engine.create_run(profiles[key], variant)
            except ServiceError as exc:
                errors[f"{key}: {exc.kind}"] = errors.get(f"{key}: {exc.kind}", 0) + 1

    started = time.perf_counter()
    tasks = [asyncio.create_task(create(i)) for i in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=60 + 0.05 * count)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {"seconds": time.perf_counter() - started, "errors": errors, "unsent": len(pending)}


async def event_cost(window: MainWindow, records: list[RunRecord], count: int = 300) -> float | None:
    """µs per ``window.on_event`` (what the engine calls on a transition: the row, then the status
    bar and health strip, which look at every followed run), in batches of 10 between loop turns."""
    spent = 0.0
    for number, record in enumerate(records[:count]):
        event = RunEvent(
            EventKind.CHANGED, datetime.now(UTC), record.ref.service, record.profile_id, run=record
        )
        start = time.perf_counter()
        window.on_event(event)
        spent += time.perf_counter() - start
        if number % 10 == 9:
            await asyncio.sleep(0.01)
    return 1e6 * spent / min(count, len(records)) if records else None


async def live_runs(args: argparse.Namespace, sim: ExternalSimulator, home: Path) -> dict[str, Any]:
    context, requests = await open_context(sim, home, args.per_host)
    engine, window, probe, calls = context.engine, None, LagProbe(), [0]
    figures: dict[str, Any] = {"platform": QGuiApplication.platformName()}

    async def measure(label: str, feed: Callable[[float], Any] | None = None) -> dict[str, Any]:
        log(f"phase '{label}': measuring for {args.duration:g} s…")
        stats = engine.stats
        calls0, polls0, trans0, errors0 = calls[0], stats.polls, stats.transitions, sum(stats.errors.values())
        rss0, cpu0, wall0 = rss_mib(), time.process_time(), time.perf_counter()
        probe.start()
        try:
            spent = await feed(args.duration) if feed else await asyncio.sleep(args.duration, 0.0)
        finally:
            lag = probe.stop()
        wall, cpu, updates = time.perf_counter() - wall0, time.process_time() - cpu0, calls[0] - calls0
        return {
            "seconds": wall,
            "lag_ms": lag,
            "lag_samples": len(probe.lags_ms),
            "row_updates_per_s": updates / wall,
            "checks_per_s": (engine.stats.polls - polls0) / wall,
            "transitions": engine.stats.transitions - trans0,
            "check_errors": sum(engine.stats.errors.values()) - errors0,
            "cpu_percent_of_one_core": 100 * cpu / wall,
            "rss_mib_start": rss0,
            "rss_mib_end": rss_mib(),
            "us_per_update_in_run_changed": 1e6 * spent / updates if feed and updates else None,
        }

    async def feed(seconds: float) -> float:
        """--runs updates a second in ten batches; returns the time spent inside run_changed."""
        assert window is not None
        records, batch = window.all_runs.model.records(), max(1, args.runs // 10)
        spent, index, next_at = 0.0, 0, time.perf_counter()
        end = next_at + seconds
        while records and time.perf_counter() < end:
            now, updates = datetime.now(UTC), []
            for number in range(index, index + batch):
                record = records[number % len(records)]
                snapshot = record.snapshot.model_copy(update={"detail": f"synthetic update {number}"})
                updates.append(replace(record, snapshot=snapshot, last_checked_at=now, last_attempt_at=now))
            index += batch
            start = time.perf_counter()
            for record in updates:
                window.run_changed(record)
            spent += time.perf_counter() - start
            next_at += 0.1
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        return spent

    try:
        window = MainWindow(context)
        await window.load()
        window.open_tab("all")
        window.show()
        deliver = window.run_changed

        def counted(record: RunRecord) -> None:
            calls[0] += 1
            deliver(record)

        window.run_changed = counted  # type: ignore[method-assign]
        log(f"creating {args.runs} runs through the engine…")
        figures["create"] = await create_runs(context, requests, args.runs)
        rows = window.all_runs.model.records()
        chosen = rows[len(rows) // 2].id if rows else None
        if chosen is not None:
            window.all_runs.select_run(chosen)
        await asyncio.sleep(2.0)  # the newest runs get their first check before measuring
        figures |= {"rows": len(rows), "followed": len(engine.followed())}
        figures["engine"] = await measure("engine")
        engine.pause()
        for _ in range(100):  # let the checks in flight land
            if engine.in_flight() == 0:
                break
            await asyncio.sleep(0.1)
        figures["model_only"] = await measure("model only", feed)
        figures["us_per_engine_event"] = await event_cost(window, window.all_runs.model.records())
        selected = window.all_runs.selected()
        figures["selection_held"] = chosen is not None and selected is not None and selected.id == chosen
    finally:
        probe.timer.stop()
        if window is not None:
            window.ticker.stop()
        await context.close()
        if window is not None:
            window.hide()
            window.deleteLater()
    return figures


# -- output ---------------------------------------------------------------------------------------
def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def render(figures: dict[str, Any], args: argparse.Namespace) -> str:
    paint, live, create = figures["first_paint"], figures["live"], figures["live"]["create"]
    lines = [f"RunMonitor UI benchmark (Qt platform: {figures['platform']})", ""]
    lines.append(f"Time to first painted window, ms, median / max of {args.repeats} fresh processes:")
    lines.append(f"  {'step':<16}" + "".join(f"{mode:>20}" for mode in paint))
    for step in (*STEPS, "total"):
        cells = (f"{m['ms'][step]['median']:>11.0f} / {m['ms'][step]['max']:<6.0f}" for m in paint.values())
        lines.append(f"  {step:<16}" + "".join(cells))
    lines += ["", f"{args.runs:,} runs checked every 1 s (±10 %), the window on All runs, a row selected:"]
    lines.append(
        f"  rows {live['rows']:,}, followed {live['followed']:,}; created in {create['seconds']:.1f} s, "
        f"errors {create['errors'] or 'none'}, not sent {create['unsent']}; "
        f"selection held: {'yes' if live['selection_held'] else 'NO'}"
    )
    lines.append(f"  {'phase':<38}{'engine (real path)':>24}{'model only (synthetic)':>26}")
    us = "us_per_update_in_run_changed"
    cells: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (
            "event-loop lag p50 / p99 / max",
            lambda p: "{p50:.1f} / {p99:.1f} / {max:.0f} ms".format(**p["lag_ms"]),
        ),
        ("row updates/s (window.run_changed)", lambda p: f"{p['row_updates_per_s']:,.0f}"),
        ("engine checks/s (asks for ≈ runs/s)", lambda p: f"{p['checks_per_s']:,.0f}"),
        ("transitions / failed checks", lambda p: f"{p['transitions']:,} / {p['check_errors']:,}"),
        ("µs per update in run_changed", lambda p: _us(p[us])),
        ("process CPU, % of one core", lambda p: f"{p['cpu_percent_of_one_core']:.0f} %"),
        ("RSS start → end", lambda p: f"{p['rss_mib_start']:.0f} → {p['rss_mib_end']:.0f} MiB"),
    ]
    lines += [f"  {name:<38}{cell(live['engine']):>24}{cell(live['model_only']):>26}" for name, cell in cells]
    lines.append(f"  {'µs per engine event (window.on_event)':<38}{_us(live['us_per_engine_event']):>24}")
    lines += ["", "Targets:"]
    for t in figures["targets"]:
        lines.append(f"  {t['target']:<48}{t['measured']:>10}  {'met' if t['met'] else 'MISSED'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="fresh starts per mode (default 3)")
    parser.add_argument("--runs", type=int, default=1000, help="live runs (default 1000)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase (default 20)")
    parser.add_argument("--per-host", type=int, default=20, help="engine per_host_in_flight (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 start per mode, 200 runs, 2 s")
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    parser.add_argument("--child-first-paint", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_first_paint:
        return child_first_paint(args.child_first_paint, args.home, args.spawned_at or STARTED)
    if args.quick:
        args.repeats, args.runs, args.duration = 1, 200, 2.0
    limits = [(args.repeats, MAX_REPEATS), (args.runs, MAX_RUNS), (args.duration, MAX_DURATION)]
    if not all(1 <= value <= top for value, top in [*limits, (args.per_host, 256)]):
        parser.error(
            f"use --repeats 1-{MAX_REPEATS}, --runs 1-{MAX_RUNS}, --duration 1-{MAX_DURATION:g}, "
            "--per-host 1-256"
        )
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # inherited by the child processes too
    # Every run stays open through creating and both phases: the quickest scenario
    # (0.7 × its length at the shortest) must outlast that, with a margin.
    sims = discover_sims().values()
    quickest = min(
        (t for c in sims for tl in c.scenarios.values() for t, s in tl if s in c.terminal), default=1.0
    )
    scale = max(20.0, math.ceil((90 + 0.05 * args.runs + 2 * args.duration) / (0.7 * quickest)))
    options = {"connhex.max_queued_exports": 100_000}
    try:
        figures: dict[str, Any] = {"first_paint": first_paint(args.repeats)}
        with (
            tempfile.TemporaryDirectory(prefix="runmonitor-bench-ui-") as home,
            ExternalSimulator(time_scale=1.0, duration_scale=scale, options=options) as sim,
        ):
            log(f"simulator pid {sim.pid} on {sim.root_url} (duration scale {scale:g})")
            make_application()
            with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
                figures["live"] = runner.run(live_runs(args, sim, Path(home)))
    except KeyboardInterrupt:
        log("interrupted: the processes and folders it started are stopped and removed")
        return 130
    figures["platform"] = figures["live"].pop("platform")
    figures["targets"] = []
    for name, key in (("engine phase", "engine"), ("model-only phase", "model_only")):
        p99 = figures["live"][key]["lag_ms"]["p99"]
        target = f"{name}: loop lag p99 < {TARGET_LAG_P99_MS:g} ms"
        figures["targets"].append(
            {"target": target, "measured": f"{p99:.1f} ms", "met": p99 < TARGET_LAG_P99_MS}
        )
    figures["args"] = {"repeats": args.repeats, "runs": args.runs, "duration": args.duration}
    if not args.json:
        print(render(figures, args) + "\n")
    print(json.dumps(figures, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
