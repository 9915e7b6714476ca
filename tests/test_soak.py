"""A bounded soak: runs keep being created and followed under a light mix of faults; memory and
open files/sockets must level off, not grow with time. CI runs it briefly
(``RUNMONITOR_SOAK_SECONDS``, default 14, sampling every second); ``benchmarks/bench_storm.py
--soak`` runs it longer and prints the series."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import pytest

from runmonitor.drills.storm import open_storm_context, soak
from runmonitor.simulator import Simulator

SECONDS = float(os.environ.get("RUNMONITOR_SOAK_SECONDS", "14"))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts open files in /proc")


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 120)
async def test_memory_and_open_files_level_off(tmp_path: Path) -> None:
    with Simulator(seed=99, time_scale=40.0) as sim:
        context = await open_storm_context(sim, tmp_path / "home")
        try:
            samples = await soak(context, sim, seconds=SECONDS, active=60, sample_every=1.0)
        finally:
            await context.close()
    assert len(samples) >= 10
    assert samples[-1].finished > 60, "runs kept finishing and being replaced"
    settled = samples[len(samples) // 4 :]  # after warm-up
    third = max(1, len(settled) // 3)
    early, late = settled[:third], settled[-third:]
    series = [(round(s.seconds), round(s.rss_mib), s.open_files, s.sockets) for s in samples]
    print(f"finished {samples[-1].finished}: {series}")  # shown with -s
    assert max(s.open_files for s in late) <= max(s.open_files for s in early) + 16, series
    assert max(s.sockets for s in late) <= max(s.sockets for s in early) + 16, series
    assert statistics.median(s.rss_mib for s in late) <= statistics.median(s.rss_mib for s in early) + 40, (
        series
    )
