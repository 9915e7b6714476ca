"""``runmonitor run status``: one run, from the history by its id (asking the service once and
recording the answer), or asked directly with ``SERVICE --target T --run-id R``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from runmonitor.cli.opening import (
    client_from_args,
    load_settings,
    open_workspace,
    opened_history,
    profile_filter,
    profile_names,
)
from runmonitor.cli.output import (
    EXIT_AUTH_OR_CONNECTION,
    EXIT_OK,
    EXIT_RUN_FAILED,
    UsageError,
    err,
    parse_assignments,
    say,
    say_json,
)
from runmonitor.cli.render import (
    describe_snapshot,
    describe_status,
    local,
    run_json,
    run_times,
    snapshot_json,
    transition_json,
)
from runmonitor.domain.errors import ServiceError, check_outcome
from runmonitor.domain.events import transition_event
from runmonitor.domain.models import RunRef
from runmonitor.domain.text import format_duration
from runmonitor.services import get, registry
from runmonitor.storage.history import AsyncHistory, RunRecord, TransitionRecord

_ORIGINS = {"created": "created with RunMonitor", "added": "added by its id", "watched": "found by a watch"}


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
        return await _status_direct(args)
    if args.run in registry():
        raise UsageError(
            f"{args.run} is a service: add --target and --run-id (and --profile, --sim or --conn), "
            "or give a run's id from `runmonitor runs`"
        )
    return await _status_recorded(args)


async def _status_direct(args: argparse.Namespace) -> int:
    """``run status SERVICE --target T --run-id R``: ask the service directly."""
    service = get(args.service)
    client, _ = await client_from_args(args)
    extra = parse_assignments(args.extra or [], option="--extra")
    ref = RunRef(
        service=service.key,
        target=args.target,
        run_id=args.run_id,
        extra={k: str(v) for k, v in extra.items()},
    )
    async with client:
        snapshot = await client.get_status(ref)
    say(snapshot_json(snapshot) if args.json_output else describe_snapshot(snapshot))
    return EXIT_OK


async def _status_recorded(args: argparse.Namespace) -> int:
    """``run status ID``: the run of the history, refreshed once unless ``--no-refresh``."""
    workspace = None if args.no_refresh else await open_workspace()
    try:
        if workspace is not None:
            settings, paths = workspace.settings, workspace.paths
        else:
            settings, paths = await load_settings()
        names = profile_names(settings)
        profile_id = profile_filter(settings, args.profile, args.service)
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
            timeline=[transition_json(t) for t in timeline],
        )
        say_json(data)
    else:
        for line in _status_lines(record, recorded, names, timeline, refreshed=workspace is not None):
            say(line)
        if refresh_error:
            err(f"could not ask the service: {refresh_error}")
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
    found = await _matches(history, ident, wanted, service=service, profile_id=profile_id)
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


async def _matches(
    history: AsyncHistory,
    ident: str,
    wanted: Callable[[RunRecord], bool],
    *,
    service: str | None,
    profile_id: str | None,
) -> list[tuple[RunRecord, str]]:
    """The runs ``ident`` may mean (as RunMonitor's id, as the service's run id), with which it is."""
    found: list[tuple[RunRecord, str]] = []
    if ident.isdigit():
        record = await history.get_run(int(ident))
        if record is not None and wanted(record):
            found.append((record, "RunMonitor's id"))
    for record in await history.runs_with_run_id(ident, service=service, profile_id=profile_id):
        if all(record.id != other.id for other, _ in found):
            found.append((record, "the service's run id"))
    return found


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
    yield f"  started:   {local(start)}"
    if duration is not None:
        yield f"  duration:  {format_duration(duration)}{'' if record.closed else ' so far'}"
    checked = local(record.last_checked_at)
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
            yield f"    {local(item.at)}  {item.event:<10} {what}{extra}"


def add_parser(run_sub: Any, services: list[str]) -> None:
    """``run status`` under the ``run`` parser's actions."""
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
