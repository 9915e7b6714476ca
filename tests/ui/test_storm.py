"""The fault storm: the whole app (window offscreen) follows runs on all five simulated services
while every kind of fault is injected in turn and then mixed. Nothing is lost, nothing is
created twice, every run ends as the simulator says, and the window stays responsive.

CI runs a smaller, quicker storm than ``benchmarks/bench_storm.py`` (which prints the figures
for 1,000 runs): 80 runs, phases of 0.6 s and runs a third as long; the checks are the same.
Every phase still injects its kind, however short: it queues one sure fault per service that
waits for the next matching request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runmonitor.drills.storm import (
    STORM_SIMULATOR,
    Storm,
    StormReport,
    open_storm_context,
    storm_phases,
    storm_through,
)
from runmonitor.simulator import Simulator
from tests.ui.conftest import run

STORM_RUNS = 80
#: Runs last a thirtieth of their usual length (the benchmark: a tenth): the longest still
#: outlives the storm, and the wait for the last ones to end is short.
SIMULATOR = {**STORM_SIMULATOR, "duration_scale": 0.035}


@pytest.fixture
def storm_window(qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Any]:
    from runmonitor.ui.main_window import MainWindow

    sim = Simulator(seed=4242, **SIMULATOR).start()
    context = run(qtbot, open_storm_context(sim, tmp_path / "home"))
    window = MainWindow(context, tray=False)
    qtbot.addWidget(window)
    run(qtbot, window.load())
    window.show()
    try:
        yield window
    finally:
        run(qtbot, context.close(), timeout=30000)
        sim.stop()


def describe(report: StormReport) -> str:
    return (
        f"followed {report.runs_followed}, attempted {report.creates_attempted}, "
        f"queued {report.creates_queued}, "
        f"unconfirmed {report.creates_unconfirmed} (adopted {report.adopted}, discarded {report.discarded}, "
        f"ambiguous {report.ambiguous}), lost {report.lost[:5]}, mismatched {report.mismatched[:5]}, "
        f"unfinished {report.unfinished[:5]}, duplicates {report.duplicates}, faults {report.faults}"
    )


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_window_follows_every_run_through_the_storm(qtbot: Any, storm_window: Any) -> None:
    window = storm_window
    sim = window.context.simulator
    storm = Storm(sim, storm_phases(timeout_seconds=1.5), rate=0.25, phase_seconds=0.6, outage_seconds=1.5)
    report = run(
        qtbot,
        storm_through(
            window.context, storm, runs=STORM_RUNS, settle_timeout=150, on_record=window.run_changed
        ),
        timeout=300000,
    )
    print(
        f"{report.seconds:.1f} s: {describe(report)}"
    )  # shown with -s; the benchmark prints the full figures
    assert not report.lost, describe(report)
    assert report.duplicates == 0, describe(report)
    assert not report.mismatched, describe(report)
    assert not report.unfinished, describe(report)
    # Every kind of fault really happened.
    kinds = set(report.faults)
    for label in (
        "http 500",
        "http 502",
        "http 503",
        "429 with Retry-After",
        "429 without Retry-After",
        "quota",
        "timeout",
        "drop",
        "non json",
        "truncated",
        "html error",
        "huge",
        "expired token",
    ):
        assert label in kinds, (label, report.faults)
    assert "outage (server down, then back)" in kinds
    # The window shows what the history holds, and stayed responsive.
    assert window.all_runs.model.rowCount() >= report.runs_followed - report.adopted
    assert report.lag_ms and max(report.lag_ms) < 5000
