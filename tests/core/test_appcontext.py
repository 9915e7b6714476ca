"""Opening the app's core with hand-edited or broken files: a clear message, the file kept, and
RunMonitor still starts."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from runmonitor.app.context import AppContext
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
