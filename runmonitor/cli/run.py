"""``runmonitor run create``: start a run and, with ``--wait``, follow it to its end.

With ``--profile`` the create goes through the polling engine on the person's run history (the
intent is stored before the request goes out, Connhex's quota queues the create), so the window
shows the run at its next start. With ``--sim`` or ``--conn`` it goes straight to the service and
is recorded nowhere; ``--wait`` then follows it with an engine on a throw-away history. Either
way the run is followed through the engine's events, never by a loop of its own.

The ``run`` parser (``create`` and ``status``) is built here too; ``status`` is in
:mod:`runmonitor.cli.run_status`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runmonitor.cli import run_status
from runmonitor.cli.follow import StopSignals, make_engine, unrecorded_engine
from runmonitor.cli.opening import (
    build_request,
    client_from_args,
    open_workspace,
    opened_history,
    profile_names,
    require_service,
)
from runmonitor.cli.output import (
    EXIT_AUTH_OR_CONNECTION,
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_TIMEOUT,
    SECRET_ENV_PREFIX,
    Progress,
    UsageError,
    err,
    note,
    positive_float,
    prefixed,
    say,
    say_json,
)
from runmonitor.cli.render import (
    describe_snapshot,
    describe_status,
    event_json,
    event_line,
    snapshot_json,
)
from runmonitor.domain.errors import ServiceError
from runmonitor.domain.events import EventKind
from runmonitor.domain.models import RunSnapshot
from runmonitor.domain.status import RunStatus
from runmonitor.engine import PollingEngine, QueuedForQuota, RunEvent
from runmonitor.services import get, registry

_AUTH_OR_CONNECTION_KINDS = frozenset({"auth_failed", "forbidden", "connection_failed", "timed_out"})
#: Events about a run that bring no new state of it.
_NOT_A_STATE = frozenset({EventKind.STALE, EventKind.RECOVERED, EventKind.AUTH_NEEDED})
#: The id a run made with --sim/--conn goes by in its engine, in place of a profile id.
DIRECT = "direct"


async def _cmd_create(args: argparse.Namespace) -> int:
    if args.profile and (args.sim or args.conn):
        raise UsageError("use either --profile (recorded in the history) or --sim/--conn, not both")
    if args.profile:
        return await create_with_profile(args)
    return await create_direct(args)


async def wait_for_outcome(
    events: asyncio.Queue[RunEvent],
    on_event: Callable[[RunEvent], int | None],
    *,
    give_up_after: float | None,
    stop: asyncio.Event,
) -> int | None:
    """Hand each event to ``on_event`` until it gives an exit code, and return that code.

    None when ``stop`` is set or ``give_up_after`` seconds have passed first.
    """
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            return None
        try:
            event = await asyncio.wait_for(events.get(), 0.25)
        except TimeoutError:
            continue
        code = on_event(event)
        if code is not None:
            return code
    return None


def drain(events: asyncio.Queue[RunEvent]) -> list[RunEvent]:
    """The events queued so far."""
    drained = []
    while not events.empty():
        drained.append(events.get_nowait())
    return drained


# -- with a profile: recorded in the history -------------------------------------------------------
async def create_with_profile(args: argparse.Namespace) -> int:
    """Create through the polling engine, recorded in the history; ``--wait`` follows its events."""
    service = get(args.service)
    workspace = await open_workspace()
    try:
        profile = workspace.profile(args.profile)
        require_service(profile, service.key)
        request = build_request(service, args, {})
        await workspace.client(profile)  # sign-in needed (a secret not stored) ends here: exit 3
        from runmonitor.storage.logs import setup_logging

        setup_logging(workspace.paths)
        names = profile_names(workspace.settings)
        async with opened_history(workspace.paths) as history:
            engine = make_engine(workspace.settings, history, workspace.cached_client, args.poll)
            if args.poll is None:
                engine.set_profile_schedule(str(profile.id), profile.polling)
            events: asyncio.Queue[RunEvent] = asyncio.Queue()
            engine.subscribe(events.put_nowait)
            await engine.start_empty()  # follows only what this command creates
            try:
                return await _create_and_follow(args, engine, str(profile.id), request, events, names)
            finally:
                await engine.stop()
    finally:
        await workspace.aclose()


async def _create_and_follow(
    args: argparse.Namespace,
    engine: PollingEngine,
    profile_id: str,
    request: Any,
    events: asyncio.Queue[RunEvent],
    names: dict[str, str],
) -> int:
    def show(event: RunEvent) -> None:
        if args.json_output:
            say_json(event_json(event, names))
        else:
            say(event_line(event, names))

    queued = await _send(args, engine, profile_id, request, events, show)
    if not args.wait:
        if queued:
            note(
                "The service's quota is full: the create is queued in the history and is sent when a "
                "slot frees, by the window or `runmonitor watch` (or use --wait)."
            )
        else:
            for event in drain(events):
                show(event)
        return EXIT_OK
    return await _wait_for_created(args, events, show)


async def _send(
    args: argparse.Namespace,
    engine: PollingEngine,
    profile_id: str,
    request: Any,
    events: asyncio.Queue[RunEvent],
    show: Callable[[RunEvent], None],
) -> bool:
    """Create the run through the engine; True when the quota is full and the create queued."""
    try:
        await engine.create_run(profile_id, request)
    except QueuedForQuota as exc:
        for event in drain(events):
            show(event)
        if args.wait:
            note(f"Queued: {exc.message}")
        return True
    except ServiceError as exc:
        for event in drain(events):
            if args.json_output:
                show(event)
        if exc.may_have_reached_service:
            note(
                "The service may have created the run anyway: it is in the history as "
                "'creation unconfirmed'. Look it up (the window offers it) before creating it again."
            )
        raise
    return False


async def _wait_for_created(
    args: argparse.Namespace, events: asyncio.Queue[RunEvent], show: Callable[[RunEvent], None]
) -> int:
    """Show the run's events until it ends (its exit code), Ctrl+C (130) or ``--timeout`` (4)."""
    stop = asyncio.Event()
    run_label = "the run"
    with StopSignals(stop):
        async with Progress("creating") as progress:

            def on_event(event: RunEvent) -> int | None:
                nonlocal run_label
                show(event)
                if event.run is not None:
                    run_label = f"run #{event.run.id}"
                    snap = event.run.snapshot
                    stale = ", stale" if event.run.stale else ""
                    progress.set(f"{run_label}: {describe_status(snap.status, snap.vendor_status)}{stale}")
                return _outcome(event)

            code = await wait_for_outcome(events, on_event, give_up_after=args.timeout, stop=stop)
    if code is not None:
        return code
    if stop.is_set():
        note(
            f"Stopped waiting: {run_label} goes on and stays in the history "
            "(the window follows it; `runmonitor runs` lists it)."
        )
        return EXIT_INTERRUPTED
    err(
        f"{run_label} did not finish within {args.timeout:g}s; it goes on and stays in the "
        "history (the window follows it)"
    )
    return EXIT_TIMEOUT


def _outcome(event: RunEvent) -> int | None:
    """The exit code a followed create ends with at this event, or None to keep waiting."""
    if event.kind is EventKind.AUTH_NEEDED:
        err(prefixed("sign-in needed", event.message))
        return EXIT_AUTH_OR_CONNECTION
    if event.kind is EventKind.CREATE_FAILED or event.kind is EventKind.CREATE_UNCONFIRMED:
        if event.kind is EventKind.CREATE_FAILED:
            err(f"the run was not created: {event.message}")
        else:
            err(
                f"the service may or may not have created the run ({event.message}); it is in the "
                "history as 'creation unconfirmed': look it up before creating it again"
            )
        if event.error_kind in _AUTH_OR_CONNECTION_KINDS:
            return EXIT_AUTH_OR_CONNECTION
        return EXIT_BAD_INPUT if event.error_kind in ("invalid_request", "not_found") else EXIT_RUN_FAILED
    run = event.run
    if run is None or not run.closed:
        return None
    if run.status is RunStatus.SUCCEEDED:
        return EXIT_OK
    if not run.status.terminal:
        err(f"run #{run.id} is no longer followed: {run.closed_reason}")
    return EXIT_RUN_FAILED


# -- with --sim or --conn: straight to the service, recorded nowhere ---------------------------------
async def create_direct(args: argparse.Namespace) -> int:
    """``run create`` with ``--sim`` or ``--conn``: one line (or JSON snapshot) per state."""
    service = get(args.service)
    client, defaults = await client_from_args(args)
    async with client:
        return await _follow_direct(args, service, client, build_request(service, args, defaults))


async def _follow_direct(args: argparse.Namespace, service: Any, client: Any, request: Any) -> int:
    progress = Progress()

    def show(snapshot: RunSnapshot) -> None:
        progress.set(f"{snapshot.status.value} ({snapshot.vendor_status or '-'}), run {snapshot.ref.run_id}")
        if args.json_output:
            say(snapshot_json(snapshot))
        else:
            ref = snapshot.ref
            stamp = datetime.now().strftime("%H:%M:%S")
            say(f"{stamp} {service.key} {ref.target} run {ref.run_id}: {describe_snapshot(snapshot)}")

    def on_event(event: RunEvent) -> int | None:
        if event.kind is EventKind.STALE:
            note(f"{datetime.now():%H:%M:%S} {event.message}; retrying")
        elif event.run is not None and event.kind not in _NOT_A_STATE:
            show(event.run.snapshot)
        return _direct_outcome(event)

    events: asyncio.Queue[RunEvent] = asyncio.Queue()
    async with unrecorded_engine({DIRECT: client}, args.poll or 2.0, events.put_nowait) as engine:
        first = (await engine.create_run(DIRECT, request)).snapshot
        for event in drain(events):
            on_event(event)
        if not args.wait:
            return EXIT_OK
        async with progress:
            progress.set(f"{first.status.value} ({first.vendor_status or '-'}), run {first.ref.run_id}")
            if first.terminal:
                return EXIT_OK if first.status is RunStatus.SUCCEEDED else EXIT_RUN_FAILED
            code = await wait_for_outcome(events, on_event, give_up_after=args.timeout, stop=asyncio.Event())
    if code is None:
        err(f"run {first.ref.run_id} did not finish within {args.timeout:g}s")
        return EXIT_TIMEOUT
    return code


def _direct_outcome(event: RunEvent) -> int | None:
    """The exit code a run followed without a history ends with at this event, or None."""
    if event.kind is EventKind.AUTH_NEEDED:
        err(prefixed("sign-in needed", event.message))
        return EXIT_AUTH_OR_CONNECTION
    run = event.run
    if run is None or not run.closed:
        return None
    if not run.status.terminal:
        err(f"run {run.ref.run_id} is no longer followed: {run.closed_reason}")
    return EXIT_OK if run.status is RunStatus.SUCCEEDED else EXIT_RUN_FAILED


# -- the parser ------------------------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    services = list(registry())
    epilog = (
        "Exit codes: 0 ok, 1 run failed or cancelled, 2 bad input, 3 auth or connection failure, "
        "4 timed out, 130 interrupted."
    )

    run = sub.add_parser("run", help="create a run, or show one run's status")
    run_sub = run.add_subparsers(dest="run_command", metavar="ACTION", required=True)

    create = run_sub.add_parser(
        "create",
        help="create a run and optionally wait for it to finish",
        description="Create a run. With --profile it is recorded in your run history (the window shows "
        "it and follows it); with --sim or --conn it goes straight to the service and is not recorded. "
        f"Secrets come from {SECRET_ENV_PREFIX}<FIELD>, never from the command line.",
        epilog=epilog,
    )
    create.add_argument("service", choices=services, help="the service")
    create.add_argument("--profile", metavar="NAME", help="a saved connection profile (name or id)")
    create.add_argument("--sim", metavar="URL", help="use the demo connection of a running simulator")
    create.add_argument(
        "--conn",
        action="append",
        metavar="FIELD=VALUE",
        help=f"a connection field (repeatable); secrets come from {SECRET_ENV_PREFIX}<FIELD>",
    )
    create.add_argument("--param", action="append", metavar="KEY=VALUE", help="a request field (repeatable)")
    create.add_argument("--json", metavar="FILE", help="request fields from a JSON file")
    create.add_argument("--wait", action="store_true", help="follow the run until it ends")
    create.add_argument("--timeout", type=positive_float, metavar="S", help="give up waiting after S seconds")
    create.add_argument(
        "--poll",
        type=positive_float,
        metavar="S",
        help="seconds between status checks (default: the profile's schedule; 2 without a profile)",
    )
    create.add_argument("--json-output", action="store_true", help="print JSON lines instead of text")
    create.set_defaults(handler=_cmd_create)

    run_status.add_parser(run_sub, services)
