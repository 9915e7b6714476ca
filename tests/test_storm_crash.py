"""Crash and restart during the fault storm: the process following the runs is SIGKILLed at
random moments and started again; afterwards nothing is lost, nothing was created twice, and
every run ends as the simulator says.

Quicker than the benchmark's storm: phases of 0.8 s and runs a third as long as there; the first
worker lives 2-5 s (long enough to create most runs), the restarted ones 1-3 s."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runmonitor.app.workspace import Workspace
from runmonitor.drills.storm import STORM_SIMULATOR, Storm, StormReport, compare, storm_phases
from runmonitor.simulator import Simulator
from runmonitor.storage.history import AsyncHistory
from runmonitor.storage.paths import app_paths

ROOT = Path(__file__).resolve().parents[1]
RUNS = 60
KILLS = 3
#: Runs last a thirtieth of their usual length (the benchmark: a tenth).
SIMULATOR = {**STORM_SIMULATOR, "duration_scale": 0.035}

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


async def prepare_home(sim: Simulator, home: Path) -> None:
    """Demo profiles on ``sim`` whose keys are in a file the worker processes can read."""
    from runmonitor.app.demo import add_demo_profiles as _add_demo_profiles

    paths = app_paths({"RUNMONITOR_HOME": str(home)})
    workspace = await Workspace.open(paths, secret_mode="session")
    await _add_demo_profiles(workspace, sim)
    for profile in workspace.settings.profiles:
        await workspace.update_profile(
            profile.model_copy(update={"connection": {**profile.connection, "timeout_seconds": 1.0}})
        )
    await workspace.update_preferences(
        {"polling": {"steps": [[0, 1.0], [30, 2.0]], "max_backoff": 4.0, "jitter": 0.2}}
    )
    await workspace.change_secret_storage("plaintext_file")
    await workspace.aclose()


def spawn(home: Path, runs: int, requests: str) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.storm_worker", str(home), str(runs)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert worker.stdin is not None
    worker.stdin.write(requests + "\n")
    worker.stdin.close()
    worker.stdin = None  # written and closed: communicate() must not touch it
    return worker


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_sigkill_at_random_moments_during_the_storm_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    home = tmp_path / "home"
    with Simulator(seed=777, **SIMULATOR) as sim:
        await prepare_home(sim, home)
        requests = json.dumps({key: sim.demo_request(key) for key in sim.sims})
        # The quota phase first: the one worker that creates lives through it, so a create queued
        # for the quota is among what must survive the kills.
        phases = sorted(storm_phases(timeout_seconds=1.5), key=lambda phase: phase.name != "queue quota")
        storm = Storm(sim, phases, rate=0.2, phase_seconds=0.8, outage_seconds=1.5)
        storm_task = asyncio.create_task(storm.run())
        kills = 0
        try:
            for attempt in range(KILLS):
                worker = spawn(home, RUNS if attempt == 0 else 0, requests)
                await asyncio.sleep(rng.uniform(2.0, 5.0) if attempt == 0 else rng.uniform(1.0, 3.0))
                worker.send_signal(signal.SIGKILL)
                await asyncio.to_thread(worker.wait, 10)
                kills += 1
            # The last start lives through the rest of the storm and then follows everything home.
            final = spawn(home, 0, requests)
            await storm_task
            storm.clear()  # calm: the leftovers of quiet phases go too
            out, err = await asyncio.to_thread(final.communicate, None, 400)
        finally:
            storm.clear()
            if not storm_task.done():
                storm_task.cancel()
        assert final.returncode == 0, err[-3000:]
        last = next(line for line in reversed(out.splitlines()) if line.startswith("done "))
        candidates = {tuple(c) for c in json.loads(last.removeprefix("done "))}
        history = await AsyncHistory.open(app_paths({"RUNMONITOR_HOME": str(home)}).history_path)
        try:
            records, _ = await history.query_runs(limit=1000)
            attempts = await history.intent_count()
        finally:
            await history.close()
        report = compare(StormReport(), sim, records, attempts, candidates)
        summary = (
            f"kills {kills}, runs {len(records)}, intents {attempts}, lost {report.lost[:5]}, "
            f"mismatched {report.mismatched[:5]}, unfinished {report.unfinished[:5]}, "
            f"duplicates {report.duplicates}, faults {storm.injected()}"
        )
        print(summary)
        assert kills == KILLS
        assert "quota" in storm.injected(), summary
        assert len(records) >= RUNS // 2, summary  # the first worker lived long enough to create
        assert not report.lost, summary
        assert report.duplicates == 0, summary
        assert not report.mismatched, summary
        assert not report.unfinished, summary
