"""Crash safety: SIGKILL while following runs and mid-create, then restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runmonitor.domain.events import EventKind
from runmonitor.domain.status import RunStatus
from runmonitor.engine import RunEvent
from runmonitor.simulator import Fault, FaultKind, Simulator
from runmonitor.storage.history import AsyncHistory, IntentState
from tests.core.test_engine import FAST, driven, make_clients

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _read_line(process: subprocess.Popen[str], expected: str, timeout: float = 30.0) -> str:
    assert process.stdout is not None
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        process.kill()
        stderr = process.stderr.read() if process.stderr else ""
        raise AssertionError(f"the worker did not print {expected!r} in {timeout}s: {stderr}")
    line = process.stdout.readline()
    assert line.startswith(expected), (
        f"expected {expected!r}, got {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
    )
    return line


async def test_sigkill_loses_no_run_and_shows_the_unconfirmed_create(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with Simulator(seed=31, time_scale=20.0) as sim:
        for key in ("marquez", "codestream", "invision"):
            sim.force(key, "long" if key == "marquez" else ("approval" if key == "codestream" else "slow"))
        # The create of the export hangs: the process dies with it in flight.
        sim.faults("connhex").next(Fault(FaultKind.TIMEOUT, seconds=30, after_processing=True, method="POST"))
        worker = subprocess.Popen(  # noqa: ASYNC220 - a child that is SIGKILLed on purpose
            [sys.executable, "-m", "tests.core.crash_worker", sim.root_url, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            await asyncio.to_thread(_read_line, worker, "following 3")
            await asyncio.to_thread(_read_line, worker, "creating")
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL

        history = await AsyncHistory.open(path)
        clients = make_clients(sim)
        events: list[RunEvent] = []
        # The restarted engine runs on a fake clock advanced with the simulator's.
        engine, drive = driven(sim, history, clients, schedule=FAST, seed=4)
        engine.subscribe(events.append)
        try:
            open_before = await history.open_runs()
            assert sorted(r.ref.service for r in open_before) == ["codestream", "invision", "marquez"]
            await engine.start()
            # The create the crash interrupted is shown, never silently sent again.
            unconfirmed = [e for e in events if e.kind is EventKind.CREATE_UNCONFIRMED]
            assert len(unconfirmed) == 1
            assert unconfirmed[0].intent is not None
            assert unconfirmed[0].intent.service == "connhex"
            intents = await history.open_intents()
            assert [i.state for i in intents] == [IntentState.UNCONFIRMED]
            # Every open run is followed again, from where it was, to its end.
            assert sorted(r.ref.service for r in engine.followed()) == ["codestream", "invision", "marquez"]
            took = await drive.until(lambda: engine.followed() == [], within=40, what="all runs to end")
            assert took > 0  # the runs ended as the clock was advanced, not before
            for record in open_before:
                final = await history.get_run(record.id)
                assert final is not None
                assert final.status is not RunStatus.UNKNOWN
                assert final.terminal
            # The hanging create did reach the service: looking it up finds it, once.
            assert sim.creates("connhex") == 1
            found = await engine.lookup_intent(intents[0].id)
            assert len(found) >= 1
        finally:
            await engine.stop()
            await history.close()
            for client in clients.values():
                await client.aclose()
