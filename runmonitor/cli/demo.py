"""The simulator from the command line: ``runmonitor simulate`` serves the simulated APIs on
loopback, and ``runmonitor --demo --console`` follows one run per service on an embedded
simulator in the terminal (through the polling engine, recorded nowhere)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from datetime import datetime
from typing import Any

from runmonitor import __version__
from runmonitor.cli.follow import unrecorded_engine
from runmonitor.cli.output import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, UsageError, err, say
from runmonitor.cli.render import describe_snapshot
from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunSnapshot
from runmonitor.engine import PollingEngine, RunEvent
from runmonitor.services import get, registry


# -- simulate --------------------------------------------------------------------------------------
def _cmd_simulate(args: argparse.Namespace) -> int:
    from runmonitor.simulator import Simulator
    from runmonitor.simulator.server import discover_sims

    sims = discover_sims()
    overrides: dict[str, dict[str, str]] = {key: {} for key in sims}
    if args.require_auth:
        for key, cls in sims.items():
            overrides[key].update(cls.auth_required_credentials())
    for item in args.option or []:
        name, _, value = item.partition("=")
        service, _, knob = name.partition(".")
        if not value or not knob or service not in sims:
            raise UsageError(f"--option {item!r}: expected SERVICE.NAME=VALUE with a known service")
        overrides[service][knob] = value
    try:
        sim = Simulator(
            args.host,
            args.port,
            seed=args.seed,
            time_scale=args.time_scale,
            duration_scale=args.duration_scale,
            credentials=overrides,
        )
        sim.start()
    except OSError as exc:
        err(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_BAD_INPUT
    say(f"RunMonitor simulator {__version__} on {sim.root_url} (seed {args.seed}, time x{args.time_scale:g})")
    for key in sim.sims:
        say(f"  {key:<11} {sim.base_url(key)}")
    say(f"Demo connection and request values: GET {sim.root_url}/_sim/demo/<service>")
    say("Press Ctrl+C to stop.")
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop["now"]:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return EXIT_OK


def add_parser(sub: Any) -> None:
    simulate = sub.add_parser("simulate", help="serve the five simulated APIs on loopback")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed for run outcomes (default 1)")
    simulate.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second (default 1)"
    )
    simulate.add_argument(
        "--duration-scale", type=float, default=1.0, help="stretch every run's duration (default 1)"
    )
    simulate.add_argument(
        "--require-auth",
        action="store_true",
        help="also require credentials where they are optional (Marquez)",
    )
    simulate.add_argument(
        "--option",
        action="append",
        metavar="SERVICE.NAME=VALUE",
        help="a simulator knob or credential, e.g. connhex.max_queued_exports=100 (repeatable)",
    )
    simulate.set_defaults(handler=_cmd_simulate)


# -- the console demo ------------------------------------------------------------------------------
async def run_console_demo(*, time_scale: float = 8.0, give_up_after: float = 120.0, seed: int = 7) -> int:
    """Start the embedded simulator and follow one run on every service, printing transitions."""
    from runmonitor.simulator import Simulator

    with Simulator(seed=seed, time_scale=time_scale) as sim:
        say(f"Embedded simulator on {sim.root_url}; starting one run on each service.")
        keys = [key for key in registry() if key in sim.sims]  # in tab order
        clients = {key: _client(key, sim.demo_connection(key)) for key in keys}
        finals: dict[str, RunSnapshot] = {}
        ended = asyncio.Event()

        def on_event(event: RunEvent) -> None:
            _show_demo_event(event)
            if event.run is not None and event.run.closed:
                finals[event.profile_id] = event.run.snapshot
                ended.set()

        try:
            async with unrecorded_engine(clients, 0.5, on_event) as engine:
                results = await asyncio.gather(
                    *(_create(engine, key, sim.demo_request(key)) for key in keys), return_exceptions=True
                )
                outcomes = dict(zip(keys, results, strict=True))
                for key, result in outcomes.items():
                    if isinstance(result, RunSnapshot) and result.terminal:
                        finals.setdefault(key, result)
                created = {key for key, result in outcomes.items() if isinstance(result, RunSnapshot)}
                await _until_ended(created, finals, ended, give_up_after)
        finally:
            for client in clients.values():
                await client.aclose()
    return _summary(outcomes, finals, give_up_after)


def _client(key: str, connection: dict[str, Any]) -> Any:
    cls = get(key)
    return cls(cls.config_model.model_validate(connection))


async def _create(engine: PollingEngine, key: str, values: dict[str, Any]) -> RunSnapshot:
    request = get(key).request_model.model_validate(values)
    return (await engine.create_run(key, request)).snapshot


async def _until_ended(
    created: set[str], finals: dict[str, RunSnapshot], ended: asyncio.Event, limit: float
) -> None:
    """Until every run in ``created`` has ended (is in ``finals``), or ``limit`` seconds have passed."""
    deadline = time.monotonic() + limit
    while not created <= set(finals):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ended.clear()
        try:
            await asyncio.wait_for(ended.wait(), left)
        except TimeoutError:
            return


def _show_demo_event(event: RunEvent) -> None:
    if event.run is None or event.kind in (EventKind.RECOVERED, EventKind.AUTH_NEEDED):
        return
    snapshot = event.run.snapshot
    text = (event.message or "") if event.kind is EventKind.STALE else describe_snapshot(snapshot)
    name = get(event.profile_id).display_name
    target = snapshot.ref.target
    say(f"{datetime.now():%H:%M:%S}  {name:<24} {target[:28]:<28} {text}")


def _summary(outcomes: dict[str, Any], finals: dict[str, RunSnapshot], limit: float) -> int:
    failures = 0
    say()
    for key, result in outcomes.items():
        if isinstance(result, BaseException):
            failures += 1
            say(f"  {key:<11} error: {result}")
        elif key not in finals:
            failures += 1
            say(f"  {key:<11} error: did not finish within {limit:g}s")
        else:
            final = finals[key]
            say(f"  {key:<11} {final.status.value} ({final.vendor_status})")
    return EXIT_OK if failures == 0 else EXIT_RUN_FAILED
