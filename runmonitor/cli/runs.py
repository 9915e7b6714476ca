"""``runmonitor run create|status``, ``runmonitor runs`` and ``runmonitor watch``.

With a profile these commands work on the person's run history, the same SQLite file the
window uses: ``run create --profile`` goes through the polling engine (the intent is stored
before the request goes out, Connhex's quota queues the create, ``--wait`` follows the run
through the engine's events), so the window shows the run at its next start; ``runs`` lists
the history; ``run status ID`` shows one run and asks the service once; ``watch`` follows
every open run and watch of the history and prints each transition as it happens.

``run create``/``run status`` with ``--sim`` or ``--conn`` talk to the service directly and
record nothing (see :mod:`runmonitor.cli.main`). Nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from runmonitor.cli import main as cli
from runmonitor.cli.main import (
    EXIT_AUTH_OR_CONNECTION,
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_TIMEOUT,
    SECRET_ENV_PREFIX,
    Progress,
    UsageError,
    _err,
    _open_workspace,
    _prefixed,
    build_request,
    note,
    positive_float,
    say,
)
from runmonitor.domain.errors import AuthFailed, ServiceError, check_outcome
from runmonitor.domain.events import EventKind, transition_event
from runmonitor.domain.schedule import PollSchedule
from runmonitor.domain.status import TERMINAL_STATUSES, RunStatus
from runmonitor.engine import PollingEngine, QueuedForQuota, RunEvent
from runmonitor.services import get, registry
from runmonitor.storage.history import AsyncHistory, IntentState, RunRecord, TransitionRecord
from runmonitor.storage.paths import AppPaths, app_paths
from runmonitor.storage.settings.model import Settings

#: ``--state`` choices: a common status, or open (still followed) / finished (ended).
STATES = ("pending", "running", "succeeded", "failed", "cancelled", "unknown", "open", "finished")
#: How often ``watch`` looks in the history for runs and watches other processes added.
RESCAN_EVERY = 3.0
#: Events that say something about the run besides its status; shown in front of it.
_STATUS_EVENTS = frozenset(
    {EventKind.STARTED, EventKind.SUCCEEDED, EventKind.FAILED, EventKind.CANCELLED, EventKind.UNKNOWN}
)
_INTENT_EVENTS = frozenset({EventKind.CREATE_QUEUED, EventKind.CREATE_UNCONFIRMED, EventKind.CREATE_FAILED})
_AUTH_OR_CONNECTION_KINDS = frozenset({"auth_failed", "forbidden", "connection_failed", "timed_out"})
_ORIGINS = {"created": "created with RunMonitor", "added": "added by its id", "watched": "found by a watch"}


# -- opening things ---------------------------------------------------------------------------------
async def load_settings() -> tuple[Settings, AppPaths]:
    """Settings and paths without opening the keyring (for commands that only read)."""
    from runmonitor.storage.settings.store import SettingsStore

    paths = app_paths().ensure()
    result = await asyncio.to_thread(SettingsStore.for_paths(paths).load)
    if result.migrated_secrets:
        # An old file held secrets in plain text: the workspace moves them to the keyring.
        workspace = await _open_workspace()
        await workspace.aclose()
        return workspace.settings, workspace.paths
    for notice in result.notices:
        _err(f"{notice.level}: {notice.text}")
    return result.settings, paths


@asynccontextmanager
async def opened_history(paths: AppPaths) -> AsyncIterator[AsyncHistory]:
    history = await AsyncHistory.open(paths.history_path)
    try:
        yield history
    finally:
        await history.close()


def fixed_schedule(base: PollSchedule, poll: float) -> PollSchedule:
    """``base`` with one check interval (and watch interval) of ``poll`` seconds at every age."""
    return PollSchedule.model_validate({**base.model_dump(), "steps": [(0.0, poll)], "watch_interval": poll})


def make_engine(
    settings: Settings, history: AsyncHistory, provider: Any, poll: float | None
) -> PollingEngine:
    """An engine like the window's (retention is left to the window)."""
    schedule = fixed_schedule(settings.polling, poll) if poll else settings.polling
    return PollingEngine(history, provider, schedule=schedule, retention_days=None, catch_up_spread=1.0)


class StopSignals:
    """Ctrl+C and SIGTERM set ``stop`` instead of interrupting, so the command can end cleanly
    (engine stopped, history closed). Where the loop takes no signal handlers (Windows),
    Ctrl+C still raises KeyboardInterrupt and ``main`` exits with 130."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.received: int | None = None
        self._installed: list[int] = []

    def _fire(self, signum: int) -> None:
        self.received = signum
        self.stop.set()

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._fire, int(signum))
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(signum)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._installed:
            loop.remove_signal_handler(signum)


# -- formatting -------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.astimezone().strftime(fmt) if value else "-"


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def run_times(record: RunRecord) -> tuple[datetime, float | None]:
    """When the run started (as well as it is known) and how long it took or has taken so far."""
    snap = record.snapshot
    start = snap.started_at or snap.created_at or record.first_seen_at
    if record.status.terminal:
        end = snap.ended_at or record.closed_at or record.last_checked_at
    elif record.closed:
        end = record.closed_at
    else:
        end = datetime.now(UTC)
    return start, ((end - start).total_seconds() if end is not None else None)


def describe_status(status: RunStatus | str, vendor: str | None, detail: str | None = None) -> str:
    text = RunStatus(status).value
    if vendor:
        text += f" ({vendor})"
    if detail:
        text += f" - {detail}"
    return text


def status_cell(record: RunRecord) -> str:
    text = record.status.value
    if record.stale:
        text += " (stale)"
    if record.closed and not record.status.terminal:
        text += f" ({(record.closed_reason or 'closed').split(':')[0]})"
    return text


def run_json(record: RunRecord, names: dict[str, str]) -> dict[str, Any]:
    snap = record.snapshot
    _, duration = run_times(record)
    return {
        "id": record.id,
        "service": snap.ref.service,
        "profile": names.get(record.profile_id),
        "profile_id": record.profile_id,
        "target": snap.ref.target,
        "run_id": snap.ref.run_id,
        "status": snap.status.value,
        "vendor_status": snap.vendor_status,
        "detail": snap.detail,
        "message": snap.message,
        "origin": record.origin,
        "open": not record.closed,
        "closed_reason": record.closed_reason,
        "stale": record.stale,
        "last_error": record.last_error,
        "created_at": _iso(snap.created_at),
        "started_at": _iso(snap.started_at),
        "ended_at": _iso(snap.ended_at),
        "first_seen_at": _iso(record.first_seen_at),
        "last_checked_at": _iso(record.last_checked_at),
        "duration_s": None if duration is None else round(duration, 3),
    }


def event_json(event: RunEvent, names: dict[str, str]) -> dict[str, Any]:
    run, intent = event.run, event.intent
    snap = run.snapshot if run is not None else None
    return {
        "event": event.kind.value,
        "time": _iso(event.at),
        "service": event.service or (snap.ref.service if snap else None),
        "profile": names.get(event.profile_id),
        "profile_id": event.profile_id,
        "id": run.id if run is not None else None,
        "target": snap.ref.target if snap else (intent.target if intent else None),
        "run_id": snap.ref.run_id if snap else None,
        "status": snap.status.value if snap else None,
        "previous": event.previous.value if event.previous else None,
        "vendor_status": snap.vendor_status if snap else None,
        "detail": snap.detail if snap else None,
        "message": event.message or (snap.message if snap else None),
        "quiet": event.quiet,
        "stale": run.stale if run is not None else False,
        "intent": intent.id if intent is not None else None,
    }


def event_line(event: RunEvent, names: dict[str, str]) -> str:
    """One line per event for people: time, run, what happened."""
    stamp = _local(event.at, "%H:%M:%S")
    who = f"{event.service}/{names.get(event.profile_id, event.profile_id[:8])}"
    run = event.run
    if run is None:
        target = event.intent.target if event.intent is not None else ""
        what = event.kind.value.replace("_", " ")
        return f"{stamp} {who} {target}: {what}" + (f": {event.message}" if event.message else "")
    snap = run.snapshot
    text = describe_status(snap.status, snap.vendor_status, snap.detail)
    if event.kind not in _STATUS_EVENTS:
        text = f"{event.kind.value.replace('_', ' ')}, {text}"
    message = event.message or snap.message
    if message:
        text += f": {message}"
    return f"{stamp} #{run.id} {who} {snap.ref.target} run {snap.ref.run_id}: {text}"


def render_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def profile_names(settings: Settings) -> dict[str, str]:
    return {str(p.id): p.name for p in settings.profiles}


def _profile_filter(settings: Settings, name: str | None, service: str | None) -> str | None:
    """The id of ``--profile`` (checked against ``--service``), or None."""
    if not name:
        return None
    profile = settings.profile(name)
    if service and profile.service != service:
        raise UsageError(f"profile {profile.name!r} is a {profile.service} profile, not {service}")
    return str(profile.id)


# -- run create ------------------------------------------------------------------------------------
async def _cmd_create(args: argparse.Namespace) -> int:
    if args.profile and (args.sim or args.conn):
        raise UsageError("use either --profile (recorded in the history) or --sim/--conn, not both")
    if args.profile:
        return await create_with_profile(args)
    return await cli._cmd_run_create(args)


async def create_with_profile(args: argparse.Namespace) -> int:
    """Create through the polling engine, recorded in the history; ``--wait`` follows its events."""
    service = get(args.service)
    workspace = await _open_workspace()
    try:
        profile = workspace.profile(args.profile)
        if profile.service != service.key:
            raise UsageError(f"profile {profile.name!r} is a {profile.service} profile, not {service.key}")
        request = build_request(service, args, {})
        if isinstance(request, int):
            return request
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
        say(json.dumps(event_json(event, names)) if args.json_output else event_line(event, names))

    def drain() -> list[RunEvent]:
        drained = []
        while not events.empty():
            drained.append(events.get_nowait())
        return drained

    try:
        await engine.create_run(profile_id, request)
    except QueuedForQuota as exc:
        for event in drain():
            show(event)
        if not args.wait:
            note(
                "The service's quota is full: the create is queued in the history and is sent when a "
                "slot frees, by the window or `runmonitor watch` (or use --wait)."
            )
            return EXIT_OK
        note(f"Queued: {exc.message}")
    except ServiceError as exc:
        for event in drain():
            if args.json_output:
                show(event)
        if exc.may_have_reached_service:
            note(
                "The service may have created the run anyway: it is in the history as "
                "'creation unconfirmed'. Look it up (the window offers it) before creating it again."
            )
        raise
    if not args.wait:
        for event in drain():
            show(event)
        return EXIT_OK

    stop = asyncio.Event()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    run_label = "the run"
    with StopSignals(stop):
        async with Progress("creating") as progress:
            while True:
                if stop.is_set():
                    note(
                        f"Stopped waiting: {run_label} goes on and stays in the history "
                        "(the window follows it; `runmonitor runs` lists it)."
                    )
                    return EXIT_INTERRUPTED
                if deadline is not None and time.monotonic() >= deadline:
                    _err(
                        f"{run_label} did not finish within {args.timeout:g}s; it goes on and stays in the "
                        "history (the window follows it)"
                    )
                    return EXIT_TIMEOUT
                try:
                    event = await asyncio.wait_for(events.get(), 0.25)
                except TimeoutError:
                    continue
                show(event)
                if event.run is not None:
                    run_label = f"run #{event.run.id}"
                    snap = event.run.snapshot
                    stale = ", stale" if event.run.stale else ""
                    progress.set(f"{run_label}: {describe_status(snap.status, snap.vendor_status)}{stale}")
                code = _outcome(event)
                if code is not None:
                    return code


def _outcome(event: RunEvent) -> int | None:
    """The exit code a followed create ends with at this event, or None to keep waiting."""
    if event.kind is EventKind.AUTH_NEEDED:
        _err(_prefixed("sign-in needed", event.message))
        return EXIT_AUTH_OR_CONNECTION
    if event.kind is EventKind.CREATE_FAILED or event.kind is EventKind.CREATE_UNCONFIRMED:
        if event.kind is EventKind.CREATE_FAILED:
            _err(f"the run was not created: {event.message}")
        else:
            _err(
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
        _err(f"run #{run.id} is no longer followed: {run.closed_reason}")
    return EXIT_RUN_FAILED


# -- run status -------------------------------------------------------------------------------------
async def _cmd_status(args: argparse.Namespace) -> int:
    if args.target or args.run_id or args.sim or args.conn or args.extra:
        # The direct form: run status SERVICE --target T --run-id R (--profile | --sim | --conn).
        if args.run not in registry():
            raise UsageError(
                f"unknown service {args.run!r} (with --target/--run-id the first argument is a "
                f"service: {', '.join(registry())})"
            )
        if not (args.target and args.run_id):
            raise UsageError("run status SERVICE asks the service directly and needs --target and --run-id")
        args.service = args.run
        return await cli._cmd_run_status(args)
    if args.run in registry():
        raise UsageError(
            f"{args.run} is a service: add --target and --run-id (and --profile, --sim or --conn), "
            "or give a run's id from `runmonitor runs`"
        )
    workspace = None if args.no_refresh else await _open_workspace()
    try:
        if workspace is not None:
            settings, paths = workspace.settings, workspace.paths
        else:
            settings, paths = await load_settings()
        names = profile_names(settings)
        profile_id = _profile_filter(settings, args.profile, args.service)
        async with opened_history(paths) as history:
            record = await resolve_run(history, args.run, service=args.service, profile_id=profile_id)
            recorded = record
            refresh_error: str | None = None
            code = EXIT_OK
            if workspace is not None:
                record, refresh_error, code = await _refresh(workspace, history, record)
            timeline = await history.timeline(record.id)
    finally:
        if workspace is not None:
            await workspace.aclose()
    if args.json_output:
        data = run_json(record, names)
        data.update(
            recorded_status=recorded.status.value,
            recorded_vendor_status=recorded.snapshot.vendor_status,
            refreshed=workspace is not None and refresh_error is None,
            refresh_error=refresh_error,
            timeline=[_transition_json(t) for t in timeline],
        )
        say(json.dumps(data))
    else:
        for line in _status_lines(record, recorded, names, timeline, refreshed=workspace is not None):
            say(line)
        if refresh_error:
            _err(f"could not ask the service: {refresh_error}")
    return code


async def _refresh(
    workspace: Any, history: AsyncHistory, record: RunRecord
) -> tuple[RunRecord, str | None, int]:
    """Ask the service once and record the answer: (record, error text, exit code)."""
    profile = next((p for p in workspace.settings.profiles if str(p.id) == record.profile_id), None)
    if profile is None:
        return record, "its profile no longer exists; this is what the history recorded", EXIT_OK
    try:
        client = await workspace.client(profile)
        snapshot = await client.get_status(record.ref)
    except ServiceError as exc:
        outcome, text = check_outcome(exc)
        code = EXIT_AUTH_OR_CONNECTION if outcome in ("signin", "unreachable") else EXIT_RUN_FAILED
        return record, text, code
    kind = transition_event(record.snapshot, snapshot)
    updated = await history.record_check(record.id, snapshot, event=kind.value if kind else None)
    return updated, None, EXIT_OK


async def resolve_run(
    history: AsyncHistory, text: str, *, service: str | None, profile_id: str | None
) -> RunRecord:
    """A run by RunMonitor's id (``12`` or ``#12``) or by the service's run id."""
    ident = text.strip()
    if not ident:
        raise UsageError("the run id is empty")

    def wanted(record: RunRecord) -> bool:
        return (service is None or record.ref.service == service) and (
            profile_id is None or record.profile_id == profile_id
        )

    if ident.startswith("#"):
        number = ident[1:]
        if not number.isdigit():
            raise UsageError(f"{ident!r}: after # comes RunMonitor's number for the run, e.g. #12")
        record = await history.get_run(int(number))
        if record is None or not wanted(record):
            raise UsageError(f"no run #{number} in the history (`runmonitor runs` lists them)")
        return record
    found: list[tuple[RunRecord, str]] = []
    if ident.isdigit():
        record = await history.get_run(int(ident))
        if record is not None and wanted(record):
            found.append((record, "RunMonitor's id"))
    for record in await history.runs_with_run_id(ident, service=service, profile_id=profile_id):
        if all(record.id != other.id for other, _ in found):
            found.append((record, "the service's run id"))
    if not found:
        raise UsageError(
            f"no run {ident!r} in the history, neither as RunMonitor's id nor as a service's run id "
            "(`runmonitor runs` lists them)"
        )
    if len(found) > 1:
        lines = "\n".join(
            f"  #{r.id}  {r.ref.service} {r.ref.target} run {r.ref.run_id} ({how})" for r, how in found
        )
        raise UsageError(
            f"{ident!r} is ambiguous; it matches {len(found)} runs:\n{lines}\n"
            "Use #ID for RunMonitor's id, or narrow it down with --service or --profile."
        )
    return found[0][0]


def _transition_json(item: TransitionRecord) -> dict[str, Any]:
    return {
        "time": _iso(item.at),
        "event": item.event,
        "from": item.from_status.value if item.from_status else None,
        "to": item.to_status.value,
        "vendor_status": item.vendor_status,
        "detail": item.detail,
        "message": item.message,
    }


def _status_lines(
    record: RunRecord,
    recorded: RunRecord,
    names: dict[str, str],
    timeline: list[TransitionRecord],
    *,
    refreshed: bool,
) -> Iterable[str]:
    snap = record.snapshot
    profile = names.get(record.profile_id, f"{record.profile_id} (removed)")
    start, duration = run_times(record)
    yield f"Run #{record.id}: {describe_status(snap.status, snap.vendor_status, snap.detail)}"
    yield f"  service:   {snap.ref.service} (profile {profile})"
    yield f"  target:    {snap.ref.target}"
    yield f"  run id:    {snap.ref.run_id}"
    yield f"  started:   {_local(start)}"
    if duration is not None:
        yield f"  duration:  {format_duration(duration)}{'' if record.closed else ' so far'}"
    checked = _local(record.last_checked_at)
    yield f"  checked:   {checked}{' (just now)' if refreshed and record is not recorded else ''}"
    if refreshed and not record.snapshot.same_state(recorded.snapshot):
        was = recorded.snapshot
        yield f"  was:       {describe_status(was.status, was.vendor_status, was.detail)} in the history"
    if snap.message:
        yield f"  message:   {snap.message}"
    if record.stale or record.last_error:
        yield f"  problem:   {record.last_error or 'stale'}"
    if not record.closed:
        state = "still followed"
    elif record.closed_reason == "terminal":
        state = "finished"
    else:
        state = f"no longer followed ({record.closed_reason})"
    yield f"  state:     {state}"
    yield f"  origin:    {_ORIGINS.get(record.origin, record.origin)}"
    if timeline:
        yield "  timeline:"
        for item in timeline[-10:]:
            what = describe_status(item.to_status, item.vendor_status)
            extra = f" - {item.detail}" if item.detail else ""
            yield f"    {_local(item.at)}  {item.event:<10} {what}{extra}"


# -- runs ------------------------------------------------------------------------------------------
async def _cmd_runs(args: argparse.Namespace) -> int:
    settings, paths = await load_settings()
    names = profile_names(settings)
    profile_id = _profile_filter(settings, args.profile, args.service)
    async with opened_history(paths) as history:
        if args.state == "open":
            records = [
                r
                for r in await history.open_runs(profile_id)
                if args.service is None or r.ref.service == args.service
            ]
            records.sort(key=lambda r: (r.first_seen_at, r.id), reverse=True)
            total = len(records)
            records = records[: args.limit]
        else:
            statuses: Collection[RunStatus] | None = None
            if args.state == "finished":
                statuses = TERMINAL_STATUSES
            elif args.state:
                statuses = {RunStatus(args.state.upper())}
            records, total = await history.query_runs(
                service=args.service, profile_id=profile_id, statuses=statuses, limit=args.limit
            )
    if args.json_output:
        for record in records:
            say(json.dumps(run_json(record, names)))
        return EXIT_OK
    if not records:
        say(
            "No runs in the history match."
            if total == 0 and _filtered(args)
            else "No runs in the history yet."
        )
        return EXIT_OK
    rows = []
    for record in records:
        start, duration = run_times(record)
        took = "-" if duration is None else format_duration(duration) + ("" if record.closed else " so far")
        rows.append(
            [
                f"#{record.id}",
                status_cell(record),
                record.ref.service,
                names.get(record.profile_id, "(removed)"),
                record.ref.target,
                record.ref.run_id,
                _local(start, "%Y-%m-%d %H:%M"),
                took,
            ]
        )
    headers = ["ID", "STATUS", "SERVICE", "PROFILE", "TARGET", "RUN ID", "STARTED", "DURATION"]
    for line in render_table(headers, rows):
        say(line)
    if total > len(records):
        say(f"({len(records)} of {total} shown, newest first; --limit N shows more)")
    return EXIT_OK


def _filtered(args: argparse.Namespace) -> bool:
    return bool(args.service or args.profile or args.state)


# -- watch -----------------------------------------------------------------------------------------
async def _cmd_watch(args: argparse.Namespace) -> int:
    workspace = await _open_workspace()
    try:
        settings = workspace.settings
        names = profile_names(settings)
        if args.profile:
            chosen = workspace.profile(args.profile)
            if args.service and chosen.service != args.service:
                raise UsageError(f"profile {chosen.name!r} is a {chosen.service} profile, not {args.service}")
            profiles = [chosen]
        else:
            profiles = [p for p in settings.profiles if args.service is None or p.service == args.service]
        wanted = {str(p.id): p for p in profiles}
        from runmonitor.storage.logs import setup_logging

        setup_logging(workspace.paths)
        async with opened_history(workspace.paths) as history:
            engine = make_engine(settings, history, workspace.cached_client, args.poll)
            return await _watch(args, workspace, history, engine, wanted, names)
    finally:
        await workspace.aclose()


async def _watch(
    args: argparse.Namespace,
    workspace: Any,
    history: AsyncHistory,
    engine: PollingEngine,
    wanted: dict[str, Any],
    names: dict[str, str],
) -> int:
    sign_in: dict[str, str] = {}
    for profile_id, profile in wanted.items():
        try:
            await workspace.client(profile)
        except AuthFailed as exc:
            sign_in[profile_id] = str(exc)
            continue
        if args.poll is None:
            engine.set_profile_schedule(profile_id, profile.polling)

    open_runs = await history.open_runs()
    watches = await history.watches()
    queued = [i for i in await history.open_intents() if i.state is IntentState.QUEUED]
    involved = (
        {r.profile_id for r in open_runs} | {w.profile_id for w in watches} | {i.profile_id for i in queued}
    )
    blocked = {pid for pid in sign_in if pid in involved}
    for profile_id in sorted(blocked):
        _err(f"{names[profile_id]}: sign-in needed ({sign_in[profile_id]}); its runs are not followed")
    mine_runs = [r for r in open_runs if r.profile_id in wanted and r.profile_id not in sign_in]
    mine_watches = [w for w in watches if w.profile_id in wanted and w.profile_id not in sign_in]
    if not args.json_output:
        scope = _scope(args, wanted)
        if mine_runs or mine_watches:
            note(
                f"Following {_plural(len(mine_runs), 'open run')} and {_plural(len(mine_watches), 'watch')}"
                f"{scope}. Ctrl+C stops."
            )
        else:
            note(f"Nothing to follow{scope}: no open runs or watches in the history.")

    def show(event: RunEvent) -> None:
        if event.profile_id not in wanted:
            return
        say(json.dumps(event_json(event, names)) if args.json_output else event_line(event, names))

    events: asyncio.Queue[RunEvent] = asyncio.Queue()
    engine.subscribe(events.put_nowait)
    started_wall = datetime.now(UTC)
    await engine.start()
    # Before the scheduler first runs: everything not asked for waits (parked), never polled.
    for profile_id in (involved - set(wanted)) | set(sign_in):
        engine.pause(profile_id)

    def following(profile_id: str) -> bool:
        return profile_id in wanted and not engine.is_paused(profile_id)

    seen_runs = {r.id for r in open_runs}
    seen_watches = {w.id for w in watches}

    async def rescan() -> None:
        """Runs and watches that other processes (the window, `run create`) added meanwhile."""
        for record in await history.open_runs():
            if record.id in seen_runs or not following(record.profile_id):
                continue
            if not engine.is_followed(record.id):
                ref = record.ref
                try:
                    await engine.add_run(record.profile_id, ref.target, ref.run_id, dict(ref.extra))
                except ServiceError:
                    continue  # tried again at the next rescan
            seen_runs.add(record.id)
        for watch in await history.watches():
            if watch.id in seen_watches or not following(watch.profile_id):
                continue
            try:
                await engine.watch(watch.profile_id, watch.target)
            except (ServiceError, ValueError):
                continue
            seen_watches.add(watch.id)

    async def idle() -> bool:
        if any(not engine.is_paused(r.profile_id) for r in engine.followed() if r.profile_id in wanted):
            return False
        for watch in await history.watches():
            if watch.profile_id in wanted and not engine.is_paused(watch.profile_id):
                if watch.last_checked_at is None or watch.last_checked_at < started_wall:
                    return False  # every watch gets one look for runs started elsewhere
        return not any(
            i.state is IntentState.QUEUED and i.profile_id in wanted and not engine.is_paused(i.profile_id)
            for i in await history.open_intents()
        )

    stop = asyncio.Event()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    next_rescan = time.monotonic() + RESCAN_EVERY
    transitions = 0
    timed_out = False
    try:
        with StopSignals(stop):
            async with Progress("watching") as progress:
                while not stop.is_set():
                    try:
                        event = await asyncio.wait_for(events.get(), 0.2)
                    except TimeoutError:
                        event = None
                    while event is not None:
                        if event.profile_id in wanted:
                            transitions += 1
                            show(event)
                            if event.kind is EventKind.AUTH_NEEDED:
                                blocked.add(event.profile_id)
                        event = None if events.empty() else events.get_nowait()
                    if args.until_idle and await idle():
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        timed_out = True
                        break
                    if time.monotonic() >= next_rescan:
                        await rescan()
                        next_rescan = time.monotonic() + RESCAN_EVERY
                    followed = sum(1 for r in engine.followed() if r.profile_id in wanted)
                    progress.set(
                        f"watching {_plural(followed, 'run')}, {_plural(transitions, 'event')} so far"
                    )
    finally:
        await engine.stop()
    if stop.is_set():
        return EXIT_OK  # Ctrl+C or SIGTERM: the normal way to end a watch
    if timed_out and args.until_idle:
        _err(f"still not idle after {args.timeout:g}s")
        return EXIT_TIMEOUT
    return EXIT_AUTH_OR_CONNECTION if blocked else EXIT_OK


def _plural(count: int, word: str) -> str:
    plural = word + ("es" if word.endswith("ch") else "s")
    return f"{count} {word if count == 1 else plural}"


def _scope(args: argparse.Namespace, wanted: dict[str, Any]) -> str:
    if args.profile:
        return f" for profile {next(iter(wanted.values())).name}"
    if args.service:
        return f" on {args.service}"
    return ""


# -- the parsers -----------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def add_parsers(sub: Any) -> None:
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

    status = run_sub.add_parser(
        "status",
        help="show one run: from the history by id, or asked directly (SERVICE --target --run-id)",
        description="run status ID shows a run of your history (ID is RunMonitor's number, e.g. 12 or #12, "
        "or the service's run id) and asks the service once for its status now (recorded in the "
        "history). run status SERVICE --target T --run-id R (--profile|--sim|--conn) asks the service "
        "about any run, without the history.",
        epilog="Exit codes: 0 shown (whatever the run's status), 1 the service answered with an error, "
        "2 bad input (an unknown or ambiguous id), 3 sign-in needed or the service cannot be reached "
        "(the recorded status is still shown).",
    )
    status.add_argument("run", metavar="ID|SERVICE", help="a run id, or a service with --target and --run-id")
    status.add_argument("--service", choices=services, help="with ID: only runs of this service")
    status.add_argument(
        "--profile", metavar="NAME", help="with ID: only runs of this profile; with SERVICE: the connection"
    )
    status.add_argument("--no-refresh", action="store_true", help="show what the history recorded only")
    status.add_argument("--sim", metavar="URL", help="with SERVICE: the demo connection of a simulator")
    status.add_argument(
        "--conn", action="append", metavar="FIELD=VALUE", help="with SERVICE: a connection field"
    )
    status.add_argument("--target", help="with SERVICE: the pipeline/job/data flow/export of the run")
    status.add_argument("--run-id", help="with SERVICE: the service's run id")
    status.add_argument(
        "--extra", action="append", metavar="KEY=VALUE", help="with SERVICE: service-specific hints"
    )
    status.add_argument("--json", "--json-output", dest="json_output", action="store_true", help="print JSON")
    status.set_defaults(handler=_cmd_status)

    runs = sub.add_parser(
        "runs",
        help="list the runs in your history, newest first",
        description="The runs of your run history (created here or in the window, added, or found by "
        "watching), newest first. --state open: still followed; finished: succeeded, failed or cancelled.",
        epilog="Exit codes: 0 listed (also when nothing matches), 2 bad input.",
    )
    runs.add_argument("--service", choices=services, help="only this service")
    runs.add_argument("--profile", metavar="NAME", help="only this profile (name or id)")
    runs.add_argument("--state", choices=STATES, help="only runs in this state")
    runs.add_argument(
        "--limit", type=_positive_int, default=50, metavar="N", help="at most N runs (default 50)"
    )
    runs.add_argument("--json", dest="json_output", action="store_true", help="one JSON object per line")
    runs.set_defaults(handler=_cmd_runs)

    watch = sub.add_parser(
        "watch",
        help="follow every open run and watch of the history and print transitions",
        description="Follow every open run (and watched pipeline or job) of your run history with the "
        "polling engine and print each transition as it happens: one line per transition, or JSON "
        "lines with --json. Runs that other processes add are picked up within a few seconds. "
        "Ctrl+C (or SIGTERM) stops it with exit code 0.",
        epilog="Exit codes: 0 stopped (Ctrl+C, --timeout, or idle with --until-idle), 2 bad input, "
        "3 a profile needs sign-in, so its runs were not followed, 4 --until-idle with --timeout "
        "and still not idle.",
    )
    watch.add_argument("--profile", metavar="NAME", help="only this profile (name or id)")
    watch.add_argument("--service", choices=services, help="only this service")
    watch.add_argument("--json", dest="json_output", action="store_true", help="one JSON object per event")
    watch.add_argument("--timeout", type=positive_float, metavar="S", help="stop after S seconds")
    watch.add_argument(
        "--until-idle",
        action="store_true",
        help="stop when every followed run has ended and every watch was looked at once",
    )
    watch.add_argument(
        "--poll", type=positive_float, metavar="S", help="seconds between checks (default: the schedules)"
    )
    watch.set_defaults(handler=_cmd_watch)


__all__ = ["add_parsers", "event_json", "event_line", "resolve_run", "run_json"]
