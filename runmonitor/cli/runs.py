"""``runmonitor runs``: the runs of the person's run history (the window's SQLite file), newest
first, as a table or JSON lines."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any

from runmonitor.cli.opening import load_settings, opened_history, profile_filter, profile_names
from runmonitor.cli.output import EXIT_OK, positive_int, say, say_json
from runmonitor.cli.render import local, render_table, run_json, run_times, status_cell
from runmonitor.domain.status import TERMINAL_STATUSES, RunStatus
from runmonitor.domain.text import format_duration
from runmonitor.services import registry
from runmonitor.storage.history import AsyncHistory, RunRecord

#: ``--state`` choices: a common status, or open (still followed) / finished (ended).
STATES = ("pending", "running", "succeeded", "failed", "cancelled", "unknown", "open", "finished")


async def _cmd_runs(args: argparse.Namespace) -> int:
    settings, paths = await load_settings()
    names = profile_names(settings)
    profile_id = profile_filter(settings, args.profile, args.service)
    async with opened_history(paths) as history:
        records, total = await _select(history, args, profile_id)
    if args.json_output:
        for record in records:
            say_json(run_json(record, names))
        return EXIT_OK
    if not records:
        filtered = bool(args.service or args.profile or args.state)
        say("No runs in the history match." if total == 0 and filtered else "No runs in the history yet.")
        return EXIT_OK
    headers = ["ID", "STATUS", "SERVICE", "PROFILE", "TARGET", "RUN ID", "STARTED", "DURATION"]
    for line in render_table(headers, [_row(record, names) for record in records]):
        say(line)
    if total > len(records):
        say(f"({len(records)} of {total} shown, newest first; --limit N shows more)")
    return EXIT_OK


async def _select(
    history: AsyncHistory, args: argparse.Namespace, profile_id: str | None
) -> tuple[list[RunRecord], int]:
    """The runs ``--service``, ``--profile``, ``--state`` and ``--limit`` ask for, and how many match."""
    if args.state == "open":
        records = [
            r
            for r in await history.open_runs(profile_id)
            if args.service is None or r.ref.service == args.service
        ]
        records.sort(key=lambda r: (r.first_seen_at, r.id), reverse=True)
        return records[: args.limit], len(records)
    statuses: Collection[RunStatus] | None = None
    if args.state == "finished":
        statuses = TERMINAL_STATUSES
    elif args.state:
        statuses = {RunStatus(args.state.upper())}
    return await history.query_runs(
        service=args.service, profile_id=profile_id, statuses=statuses, limit=args.limit
    )


def _row(record: RunRecord, names: dict[str, str]) -> list[str]:
    start, duration = run_times(record)
    took = "-" if duration is None else format_duration(duration) + ("" if record.closed else " so far")
    return [
        f"#{record.id}",
        status_cell(record),
        record.ref.service,
        names.get(record.profile_id, "(removed)"),
        record.ref.target,
        record.ref.run_id,
        local(start, "%Y-%m-%d %H:%M"),
        took,
    ]


def add_parser(sub: Any) -> None:
    runs = sub.add_parser(
        "runs",
        help="list the runs in your history, newest first",
        description="The runs of your run history (created here or in the window, added, or found by "
        "watching), newest first. --state open: still followed; finished: succeeded, failed or cancelled.",
        epilog="Exit codes: 0 listed (also when nothing matches), 2 bad input.",
    )
    runs.add_argument("--service", choices=list(registry()), help="only this service")
    runs.add_argument("--profile", metavar="NAME", help="only this profile (name or id)")
    runs.add_argument("--state", choices=STATES, help="only runs in this state")
    runs.add_argument(
        "--limit", type=positive_int, default=50, metavar="N", help="at most N runs (default 50)"
    )
    runs.add_argument("--json", dest="json_output", action="store_true", help="one JSON object per line")
    runs.set_defaults(handler=_cmd_runs)
