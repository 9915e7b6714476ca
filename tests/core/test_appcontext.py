"""Opening the app's core with hand-edited or broken files: a clear message, the file kept, and
RunMonitor still starts."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from runmonitor.app.context import AppContext
from runmonitor.app.demo import add_demo_profiles
from runmonitor.services import registry
from runmonitor.simulator import Simulator
from runmonitor.storage.history import SCHEMA_VERSION, HistoryStore
from runmonitor.storage.paths import app_paths


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def newer_schema(path: Path) -> None:
    with HistoryStore(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, someone edited it\n" * 40)


@pytest.mark.parametrize(("spoil", "says"), [(newer_schema, "newer RunMonitor"), (garbage, "run history")])
async def test_an_unusable_history_is_kept_and_the_app_starts_anyway(
    tmp_path: Path, spoil: Callable[[Path], None], says: str
) -> None:
    paths = app_paths({"RUNMONITOR_HOME": str(tmp_path / "home")}).ensure()
    spoil(paths.history_path)
    before = digest(paths.history_path)
    context = await AppContext.open(paths=paths)
    try:
        notices = [n for n in context.workspace.notices if n.topic == "history"]
        assert len(notices) == 1 and says in notices[0].text
        assert "left as it is" in notices[0].text
        assert context.history.path != paths.history_path
        assert context.engine.running
        scratch = context.scratch_history
        assert scratch is not None and scratch.exists()
    finally:
        await context.close()
    assert digest(paths.history_path) == before
    assert not scratch.exists()


async def test_the_demo_opens_one_signed_in_profile_per_service_and_leaves_no_files() -> None:
    with Simulator(seed=3) as sim:
        context = await AppContext.open(demo=True, simulator=sim, demo_runs=False)
        try:
            assert context.demo
            home = context.scratch_home
            assert home is not None and home.exists()
            assert sorted(p.service for p in context.profiles()) == sorted(registry())
            assert {p.name for p in context.profiles()} == {"demo"}
            assert context.sign_in_needed == {}
            assert context.engine.running
            assert context.engine.followed() == []  # demo_runs=False: nothing started
            # Opening it again adds no second demo profile to a service that has one.
            await add_demo_profiles(context.workspace, sim)
            assert len(context.profiles()) == len(registry())
        finally:
            context.simulator = None  # the test's simulator: the with block stops it
            await context.close()
        assert not home.exists()
