"""``runmonitor watch``: follow every open run and watch of the run history with the polling
engine and print each transition as it happens, until Ctrl+C, ``--timeout`` or ``--until-idle``.

Runs and watches that other processes (the window, ``run create``) add to the history meanwhile
are picked up every :data:`RESCAN_EVERY` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runmonitor.cli.follow import StopSignals, make_engine
from runmonitor.cli.opening import open_workspace, opened_history, profile_names, require_service
from runmonitor.cli.output import (
    EXIT_AUTH_OR_CONNECTION,
    EXIT_OK,
    EXIT_TIMEOUT,
    Progress,
    err,
    note,
    positive_float,
    say,
    say_json,
)
from runmonitor.cli.render import event_json, event_line
from runmonitor.domain.errors import AuthFailed, ServiceError
from runmonitor.domain.events import EventKind
from runmonitor.domain.text import plural
from runmonitor.engine import PollingEngine, RunEvent
from runmonitor.services import registry
from runmonitor.storage.history import AsyncHistory, IntentState

#: How often ``watch`` looks in the history for runs and watches other processes added.
RESCAN_EVERY = 3.0


async def _cmd_watch(args: argparse.Namespace) -> int:
    workspace = await open_workspace()
    try:
        settings = workspace.settings
        if args.profile:
            chosen = workspace.profile(args.profile)
            require_service(chosen, args.service)
            profiles = [chosen]
        else:
            profiles = [p for p in settings.profiles if args.service is None or p.service == args.service]
        wanted = {str(p.id): p for p in profiles}
        from runmonitor.storage.logs import setup_logging

        setup_logging(workspace.paths)
        async with opened_history(workspace.paths) as history:
            engine = make_engine(settings, history, workspace.cached_client, args.poll)
            watch = Watch(args, history, engine, wanted, profile_names(settings))
            return await watch.run(workspace)
    finally:
        await workspace.aclose()


@dataclass
class Watch:
    """One ``watch`` command: which profiles it follows, what it has seen, how it ends."""

    args: argparse.Namespace
    history: AsyncHistory
    engine: PollingEngine
    #: The profiles asked for (``--profile``/``--service``), by id.
    wanted: dict[str, Any]
    names: dict[str, str]
    #: Profiles that cannot sign in: id → why.
    sign_in: dict[str, str] = field(default_factory=dict)
    #: Profiles whose runs could not be followed (sign-in needed): the exit code is 3.
    blocked: set[str] = field(default_factory=set)
    seen_runs: set[int] = field(default_factory=set)
    seen_watches: set[int] = field(default_factory=set)
    started_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    transitions: int = 0
    events: asyncio.Queue[RunEvent] = field(default_factory=asyncio.Queue)

    async def run(self, workspace: Any) -> int:
        await self.sign_in_profiles(workspace)
        involved = await self.look_at_history()
        self.engine.subscribe(self.events.put_nowait)
        self.started_wall = datetime.now(UTC)
        await self.engine.start()
        # Before the scheduler first runs: everything not asked for waits (parked), never polled.
        for profile_id in (involved - set(self.wanted)) | set(self.sign_in):
            self.engine.pause(profile_id)
        stop = asyncio.Event()
        try:
            with StopSignals(stop):
                timed_out = await self.follow(stop)
        finally:
            await self.engine.stop()
        if stop.is_set():
            return EXIT_OK  # Ctrl+C or SIGTERM: the normal way to end a watch
        if timed_out and self.args.until_idle:
            err(f"still not idle after {self.args.timeout:g}s")
            return EXIT_TIMEOUT
        return EXIT_AUTH_OR_CONNECTION if self.blocked else EXIT_OK

    async def sign_in_profiles(self, workspace: Any) -> None:
        """Open each wanted profile's client; those that cannot sign in are set aside."""
        for profile_id, profile in self.wanted.items():
            try:
                await workspace.client(profile)
            except AuthFailed as exc:
                self.sign_in[profile_id] = str(exc)
                continue
            if self.args.poll is None:
                self.engine.set_profile_schedule(profile_id, profile.polling)

    async def look_at_history(self) -> set[str]:
        """Say what will be followed; returns the profiles with open work in the history."""
        open_runs = await self.history.open_runs()
        watches = await self.history.watches()
        queued = [i for i in await self.history.open_intents() if i.state is IntentState.QUEUED]
        involved = (
            {r.profile_id for r in open_runs}
            | {w.profile_id for w in watches}
            | {i.profile_id for i in queued}
        )
        self.blocked = {pid for pid in self.sign_in if pid in involved}
        for profile_id in sorted(self.blocked):
            why = self.sign_in[profile_id]
            err(f"{self.names[profile_id]}: sign-in needed ({why}); its runs are not followed")
        self.seen_runs = {r.id for r in open_runs}
        self.seen_watches = {w.id for w in watches}
        if not self.args.json_output:
            mine_runs = sum(1 for r in open_runs if self._followable(r.profile_id))
            mine_watches = sum(1 for w in watches if self._followable(w.profile_id))
            scope = self._scope()
            if mine_runs or mine_watches:
                note(
                    f"Following {plural(mine_runs, 'open run')} and {plural(mine_watches, 'watch')}"
                    f"{scope}. Ctrl+C stops."
                )
            else:
                note(f"Nothing to follow{scope}: no open runs or watches in the history.")
        return involved

    def _followable(self, profile_id: str) -> bool:
        return profile_id in self.wanted and profile_id not in self.sign_in

    def _scope(self) -> str:
        if self.args.profile:
            return f" for profile {next(iter(self.wanted.values())).name}"
        if self.args.service:
            return f" on {self.args.service}"
        return ""

    async def follow(self, stop: asyncio.Event) -> bool:
        """Show events until stopped, idle (``--until-idle``) or timed out; True when timed out."""
        deadline = None if self.args.timeout is None else time.monotonic() + self.args.timeout
        next_rescan = time.monotonic() + RESCAN_EVERY
        async with Progress("watching") as progress:
            while not stop.is_set():
                await self.show_events()
                if self.args.until_idle and await self.idle():
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    return True
                if time.monotonic() >= next_rescan:
                    await self.rescan()
                    next_rescan = time.monotonic() + RESCAN_EVERY
                followed = sum(1 for r in self.engine.followed() if r.profile_id in self.wanted)
                progress.set(
                    f"watching {plural(followed, 'run')}, {plural(self.transitions, 'event')} so far"
                )
        return False

    async def show_events(self) -> None:
        """Wait a moment for an event, then show it and every other one queued."""
        try:
            event: RunEvent | None = await asyncio.wait_for(self.events.get(), 0.2)
        except TimeoutError:
            return
        while event is not None:
            if event.profile_id in self.wanted:
                self.transitions += 1
                self.show(event)
                if event.kind is EventKind.AUTH_NEEDED:
                    self.blocked.add(event.profile_id)
            event = None if self.events.empty() else self.events.get_nowait()

    def show(self, event: RunEvent) -> None:
        if self.args.json_output:
            say_json(event_json(event, self.names))
        else:
            say(event_line(event, self.names))

    def following(self, profile_id: str) -> bool:
        return profile_id in self.wanted and not self.engine.is_paused(profile_id)

    async def rescan(self) -> None:
        """Runs and watches that other processes (the window, `run create`) added meanwhile."""
        for record in await self.history.open_runs():
            if record.id in self.seen_runs or not self.following(record.profile_id):
                continue
            if not self.engine.is_followed(record.id):
                ref = record.ref
                try:
                    await self.engine.add_run(record.profile_id, ref.target, ref.run_id, dict(ref.extra))
                except ServiceError:
                    continue  # tried again at the next rescan
            self.seen_runs.add(record.id)
        for watch in await self.history.watches():
            if watch.id in self.seen_watches or not self.following(watch.profile_id):
                continue
            try:
                await self.engine.watch(watch.profile_id, watch.target)
            except (ServiceError, ValueError):
                continue
            self.seen_watches.add(watch.id)

    async def idle(self) -> bool:
        """Every followed run has ended, every watch had its look, no create is queued."""
        if any(self.following(r.profile_id) for r in self.engine.followed()):
            return False
        for watch in await self.history.watches():
            if self.following(watch.profile_id):
                if watch.last_checked_at is None or watch.last_checked_at < self.started_wall:
                    return False  # every watch gets one look for runs started elsewhere
        return not any(
            i.state is IntentState.QUEUED and self.following(i.profile_id)
            for i in await self.history.open_intents()
        )


def add_parser(sub: Any) -> None:
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
    watch.add_argument("--service", choices=list(registry()), help="only this service")
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
