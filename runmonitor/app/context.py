"""Everything a running RunMonitor holds: workspace, history, polling engine (and the demo simulator).

Qt-free: the window and any other front end open one :class:`AppContext`, subscribe to the
engine's events, and close it on the way out. The demo's wiring is in :mod:`runmonitor.app.demo`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runmonitor.app.demo import add_demo_profiles, start_demo_runs, start_demo_simulator
from runmonitor.app.workspace import Workspace
from runmonitor.domain.errors import AuthFailed
from runmonitor.engine import PollingEngine
from runmonitor.storage.history import AsyncHistory, HistoryError
from runmonitor.storage.paths import AppPaths, app_paths
from runmonitor.storage.settings.model import Profile, ProfileError
from runmonitor.storage.settings.store import Notice

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """The workspace, history and engine of one running RunMonitor, opened and closed together."""

    workspace: Workspace
    history: AsyncHistory
    engine: PollingEngine
    simulator: Any = None  # runmonitor.simulator.Simulator in demo mode
    #: Profiles that cannot sign in (profile id → reason), e.g. a secret is not stored.
    sign_in_needed: dict[str, str] = field(default_factory=dict)
    demo: bool = False
    #: A folder made for this demo only, removed on close.
    scratch_home: Path | None = None
    #: A temporary history used because the real one could not be opened (removed on close).
    scratch_history: Path | None = None

    @classmethod
    async def open(
        cls,
        *,
        demo: bool = False,
        paths: AppPaths | None = None,
        simulator: Any = None,
        demo_runs: bool = True,
    ) -> AppContext:
        """Open everything. ``demo``: demo profiles on ``simulator`` (started here when not given),
        with a few runs and watches under way unless ``demo_runs`` is False."""
        scratch_home = None
        if demo and simulator is None:
            simulator = start_demo_simulator()
        if demo and paths is None:
            # The demo never touches the person's real settings, keyring or history.
            scratch_home = Path(tempfile.mkdtemp(prefix="runmonitor-demo-"))
            paths = app_paths({"RUNMONITOR_HOME": str(scratch_home)})
        paths = paths or app_paths()
        # The demo keeps its (fake) keys in memory: never in the person's keyring.
        workspace = await Workspace.open(paths, secret_mode="session" if demo else None)
        if demo:
            await add_demo_profiles(workspace, simulator)
        history, scratch_history = await _open_history(paths, workspace)

        def provider(profile_id: str) -> Any:
            return workspace.cached_client(profile_id)

        engine = PollingEngine(
            history,
            provider,
            schedule=workspace.settings.polling,
            retention_days=workspace.settings.retention_days,
        )
        context = cls(workspace, history, engine, simulator, demo=demo, scratch_home=scratch_home)
        context.scratch_history = scratch_history
        await context.open_clients()
        await engine.start()
        if demo and demo_runs:
            await start_demo_runs(context)
        return context

    async def open_clients(self) -> None:
        """A live client for every profile that can sign in; the others are 'sign-in needed'."""
        for profile in self.workspace.settings.profiles:
            await self.open_client(profile)

    async def open_client(self, profile: Profile) -> None:
        try:
            await self.workspace.client(profile)
        except (ProfileError, AuthFailed) as exc:  # one broken profile must not keep the app from starting
            self.sign_in_needed[str(profile.id)] = str(exc)
            self.engine.pause(str(profile.id))
            return
        self.sign_in_needed.pop(str(profile.id), None)
        schedule = profile.polling
        self.engine.set_profile_schedule(str(profile.id), schedule)

    async def profile_saved(self, profile: Profile) -> None:
        """A profile was added or edited (maybe new secrets): reconnect and resume it."""
        await self.open_client(profile)
        if str(profile.id) not in self.sign_in_needed:
            self.engine.credentials_changed(str(profile.id))

    def preferences_changed(self) -> None:
        """Global preferences changed: the engine takes the new polling defaults and retention."""
        settings = self.workspace.settings
        self.engine.schedule = settings.polling
        self.engine.retention_days = settings.retention_days

    def profiles(self, service: str | None = None) -> list[Profile]:
        return [p for p in self.workspace.settings.profiles if service is None or p.service == service]

    async def close(self) -> None:
        """Stop polling cleanly; every followed run stays in the history for the next start."""
        await self.engine.stop()
        await self.workspace.aclose()
        await self.history.close()
        if self.simulator is not None:
            await asyncio.to_thread(self.simulator.stop)
        if self.scratch_home is not None:
            await asyncio.to_thread(shutil.rmtree, self.scratch_home, True)
        if self.scratch_history is not None:
            await asyncio.to_thread(shutil.rmtree, self.scratch_history, True)


async def _open_history(paths: AppPaths, workspace: Workspace) -> tuple[AsyncHistory, Path | None]:
    """The run history; when it cannot be opened (newer schema, not a database, no access),
    the file is left exactly as it is and this session uses a temporary history instead."""
    try:
        return await AsyncHistory.open(paths.history_path), None
    except HistoryError as exc:
        log.error("run history unavailable: %s", exc)
        scratch = Path(tempfile.mkdtemp(prefix="runmonitor-history-"))
        workspace.notices.append(
            Notice(
                "error",
                f"{exc} The file was left as it is. This session keeps runs in a temporary history "
                "that is gone when RunMonitor quits.",
                paths.history_path,
                "history",
            )
        )
        return await AsyncHistory.open(scratch / "history.sqlite3"), scratch
